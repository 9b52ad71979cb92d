// cuBLAS wrapper of the CUDA decoder (blas.hpp).
#include "nn/cuda/blas.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

#include "attention/cuda/device_memory.hpp"

namespace bna::nn::cuda {

namespace {
// 32 MiB: cuBLAS's recommendation for Hopper.
constexpr size_t kWorkspace = size_t{32} << 20;

Status blas_error(const char* call, cublasStatus_t s) {
  return internal_error(std::string("cublas: ") + call + " failed: " + cublasGetStatusName(s) + " (" +
                        cublasGetStatusString(s) + ")");
}
}  // namespace

struct Blas::Impl {
  cublasHandle_t handle = nullptr;
  bna::cuda::DeviceBuffer workspace;
  ~Impl() {
    if (handle != nullptr) cublasDestroy(handle);
  }
};

Blas::Blas() = default;
Blas::Blas(Blas&&) noexcept = default;
Blas& Blas::operator=(Blas&&) noexcept = default;
Blas::~Blas() = default;

Expected<Blas> Blas::create() {
  Blas b;
  b.impl_ = std::make_unique<Impl>();
  cublasStatus_t s = cublasCreate(&b.impl_->handle);
  if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasCreate", s);
  BNA_RETURN_IF_ERROR(b.impl_->workspace.allocate(kWorkspace));
  s = cublasSetWorkspace(b.impl_->handle, b.impl_->workspace.get(), kWorkspace);
  if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasSetWorkspace", s);
  return b;
}

size_t Blas::workspace_bytes() const { return impl_ ? kWorkspace : 0; }

Status Blas::linear(const uint16_t* x, const uint16_t* w, void* y, bool y_f32, int64_t n, int64_t in, int64_t out,
                    float beta) const {
  constexpr int64_t kMax = 0x7fffffff;
  if (!impl_) return internal_error("cublas linear: Blas was not created");
  if (n < 1 || in < 1 || out < 1 || n > kMax || in > kMax || out > kMax)
    return invalid_argument("cublas linear: n=" + std::to_string(n) + " in=" + std::to_string(in) + " out=" +
                            std::to_string(out) + ", expected each in [1, 2^31)");
  // Column-major view: Y^T [out, n] = W [out, in] (stored as W^T col-major, so op T) x X^T [in, n].
  const float alpha = 1.0f;
  const cublasStatus_t s =
      cublasGemmEx(impl_->handle, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(n),
                   static_cast<int>(in), &alpha, w, CUDA_R_16BF, static_cast<int>(in), x, CUDA_R_16BF,
                   static_cast<int>(in), &beta, y, y_f32 ? CUDA_R_32F : CUDA_R_16BF, static_cast<int>(out),
                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasGemmEx", s);
  return Status::ok();
}

Status Blas::gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t* A,
                  const uint16_t* B, float beta, void* C, bool c_f32) const {
  constexpr int64_t kMax = 0x7fffffff;
  if (!impl_) return internal_error("cublas gemm: Blas was not created");
  if (M < 1 || N < 1 || K < 1 || M > kMax || N > kMax || K > kMax)
    return invalid_argument("cublas gemm: M=" + std::to_string(M) + " N=" + std::to_string(N) + " K=" +
                            std::to_string(K) + ", expected each in [1, 2^31)");
  // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS computes [N, M] from
  // B (first operand) and A, each transposed exactly when the row-major one is not.
  const int lda = static_cast<int>(trans_a ? M : K), ldb = static_cast<int>(trans_b ? K : N);
  const cublasStatus_t s = cublasGemmEx(
      impl_->handle, trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(N),
      static_cast<int>(M), static_cast<int>(K), &alpha, B, CUDA_R_16BF, ldb, A, CUDA_R_16BF, lda, &beta, C,
      c_f32 ? CUDA_R_32F : CUDA_R_16BF, static_cast<int>(N), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasGemmEx", s);
  return Status::ok();
}

}  // namespace bna::nn::cuda
