// Tensor (owning, 64-byte aligned, contiguous row-major) and TensorView (non-owning, strided).
// Shapes use the dimension vocabulary of docs/numerics.md; strides are in elements.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bna/dtype.hpp"
#include "bna/status.hpp"

namespace bna {

inline constexpr int kMaxRank = 6;

struct Shape {
  int rank = 0;
  std::array<int64_t, kMaxRank> dims{};
  Shape() = default;
  Shape(std::initializer_list<int64_t> d);
  int64_t operator[](int i) const { return dims[i]; }
  int64_t numel() const;
  bool operator==(const Shape& o) const;
  std::string to_string() const;  // "[8, 4096, 64]"
};

struct TensorView {
  void* data = nullptr;
  DType dtype = DType::kF32;
  Shape shape;
  std::array<int64_t, kMaxRank> strides{};  // elements

  TensorView() = default;
  // Contiguous row-major view.
  TensorView(void* p, DType t, Shape s);
  bool is_contiguous() const;
  int64_t numel() const { return shape.numel(); }
  template <class T> T* as() const { return static_cast<T*>(data); }
};

class Tensor {
 public:
  Tensor() = default;
  // Zero-filled; returns an error for negative dims or ranks over kMaxRank.
  static Expected<Tensor> zeros(Shape shape, DType dtype = DType::kF32);
  const Shape& shape() const { return view_.shape; }
  DType dtype() const { return view_.dtype; }
  int64_t numel() const { return view_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  void* data() { return view_.data; }
  const void* data() const { return view_.data; }
  template <class T> T* as() { return static_cast<T*>(view_.data); }
  template <class T> const T* as() const { return static_cast<const T*>(view_.data); }
  const TensorView& view() const { return view_; }

 private:
  struct Free { void operator()(void* p) const; };
  std::unique_ptr<void, Free> buf_;
  TensorView view_;
};

}  // namespace bna
