// cuBLAS for the CUDA decoder: one handle with a workspace we own (so cuBLAS allocates nothing while
// a forward runs and the model's device-byte count is complete), and the one product the decoder
// needs. Host-only header, no CUDA types.
#pragma once

#include <cstdint>
#include <memory>

#include "bna/status.hpp"

namespace bna::hf::cuda {

class Blas {
 public:
  static Expected<Blas> create();
  Blas();  // empty: linear() is an error until a create()d Blas is moved in
  Blas(Blas&&) noexcept;
  Blas& operator=(Blas&&) noexcept;
  ~Blas();

  // y [n, out] = x [n, in] · W^T + beta · y on tensor cores (f32 accumulation). W bf16 [out, in]
  // (the Hugging Face layout), x bf16 [n, in], y f32 (y_f32) or bf16 [n, out], all DEVICE, row-major.
  // beta = 1 with f32 y adds the product into y (the residual stream). Errors: sizes beyond int32, a
  // failed cuBLAS call (named with its status).
  Status linear(const uint16_t* x, const uint16_t* w, void* y, bool y_f32, int64_t n, int64_t in, int64_t out,
                float beta = 0.0f) const;
  size_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bna::hf::cuda
