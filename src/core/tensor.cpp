// Tensor storage: 64-byte aligned so SIMD loads of rows never split cache lines at row 0.
#include "bna/tensor.hpp"

#include <cstdlib>
#include <cstring>

namespace bna {

Shape::Shape(std::initializer_list<int64_t> d) {
  BNA_ASSERT(d.size() <= static_cast<size_t>(kMaxRank));
  for (int64_t x : d) dims[rank++] = x;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank; ++i) n *= dims[i];
  return n;
}

bool Shape::operator==(const Shape& o) const {
  if (rank != o.rank) return false;
  for (int i = 0; i < rank; ++i) if (dims[i] != o.dims[i]) return false;
  return true;
}

std::string Shape::to_string() const {
  std::string s = "[";
  for (int i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + "]";
}

TensorView::TensorView(void* p, DType t, Shape s) : data(p), dtype(t), shape(s) {
  int64_t st = 1;
  for (int i = shape.rank - 1; i >= 0; --i) { strides[i] = st; st *= shape.dims[i]; }
}

bool TensorView::is_contiguous() const {
  int64_t st = 1;
  for (int i = shape.rank - 1; i >= 0; --i) {
    if (shape.dims[i] != 1 && strides[i] != st) return false;
    st *= shape.dims[i];
  }
  return true;
}

void Tensor::Free::operator()(void* p) const { std::free(p); }

Expected<Tensor> Tensor::zeros(Shape shape, DType dtype) {
  for (int i = 0; i < shape.rank; ++i)
    if (shape.dims[i] < 0)
      return invalid_argument("tensor: dim " + std::to_string(i) + " = " + std::to_string(shape.dims[i]) +
                              ", expected >= 0");
  Tensor t;
  const size_t bytes = static_cast<size_t>(shape.numel()) * dtype_size(dtype);
  const size_t alloc = ((bytes + 63) / 64) * 64 + 64;
  void* p = std::aligned_alloc(64, alloc);
  if (!p) return unavailable("tensor: cannot allocate " + std::to_string(bytes) + " bytes");
  std::memset(p, 0, alloc);
  t.buf_.reset(p);
  t.view_ = TensorView(p, dtype, shape);
  return t;
}

}  // namespace bna
