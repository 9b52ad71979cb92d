// cuBLAS for the CUDA models (hf::CudaModel, model::CudaGpt): one handle with a workspace we own (so cuBLAS allocates nothing while
// a forward runs and the model's device-byte count is complete), and the products they need
// (gemm, and cuBLASLt matmul with epilogues). Host-only header, no CUDA types. Not thread-safe: one Blas per thread (matmul() caches
// plans and sets the epilogue pointer on a cached descriptor).
#pragma once

#include <cstdint>
#include <memory>

#include "bna/status.hpp"

namespace bna::nn::cuda {

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
  // General row-major product C [M, N] = alpha · op(A) · op(B) + beta · C, A and B bf16, f32
  // accumulation, C f32 (c_f32) or bf16. op(A) is [M, K]: A stored [M, K] (trans_a false) or [K, M]
  // (true); op(B) is [K, N]: B stored [K, N] or [N, K] (trans_b true). Leading dimensions are the
  // stored row lengths. The weight gradient dW [out, in] += dY^T X is gemm(true, false, ...) with
  // beta 1. Errors as linear().
  Status gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
              const uint16_t* B, float beta, void* C, bool c_f32) const;
  // The cuBLASLt product with what the training step fuses into it. Row-major, shapes and op()s as
  // gemm(): D [M, N] = alpha · op(A) · op(B) + beta · C, then the epilogue. C (same type and layout
  // as D) may differ from D (a residual x_out = x_in + y · W^T without a copy) or be null (D itself,
  // as gemm()). Epilogues, all on bf16 D with aux bf16 [M, N] row-major (GELU tanh, as nn.hpp):
  //   kGeluAux: aux = the product (the pre-activation, saved for backward), D = gelu(aux);
  //   kDGelu:   D = product * gelu'(aux)  (aux: the forward's pre-activation).
  // The algorithm is chosen once per shape and cached. Errors: as gemm(), an epilogue on f32 D, a null
  // aux, N % 8 != 0 with an epilogue, no cuBLASLt algorithm for the case (named).
  enum class Epilogue { kNone, kGeluAux, kDGelu };
  struct Matmul {
    bool trans_a = false, trans_b = false;
    int64_t M = 0, N = 0, K = 0;
    float alpha = 1.0f, beta = 0.0f;
    const uint16_t* A = nullptr;
    const uint16_t* B = nullptr;
    const void* C = nullptr;
    void* D = nullptr;
    bool d_f32 = false;
    Epilogue epilogue = Epilogue::kNone;
    uint16_t* aux = nullptr;
  };
  Status matmul(const Matmul& m) const;
  size_t workspace_bytes() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bna::nn::cuda
