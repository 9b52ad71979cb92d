// cuBLAS wrapper of the CUDA decoder (blas.hpp).
#include "nn/cuda/blas.hpp"

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>

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

// One cuBLASLt case: descriptors, layouts and the heuristic's algorithm, made once per shape.
struct LtPlan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo{};
  void release() {
    for (cublasLtMatrixLayout_t l : {a, b, c})
      if (l != nullptr) cublasLtMatrixLayoutDestroy(l);
    if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
  }
};
// (trans_a, trans_b, M, N, K, d_f32, epilogue, alignment of A, B, C/D, aux)
using LtKey = std::tuple<bool, bool, int64_t, int64_t, int64_t, bool, int, uint32_t>;

// The largest power of two <= 256 dividing the address (cuBLASLt picks algorithms by alignment).
uint32_t align_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t r = 256;
  while (r > 1 && (a % r) != 0) r >>= 1;
  return r;
}
uint32_t align_code(const Blas::Matmul& m) {
  const void* c = m.C != nullptr ? m.C : m.D;
  const uint32_t cd = std::min(align_of(c), align_of(m.D));
  const uint32_t x = m.aux != nullptr ? align_of(m.aux) : 256;
  return align_of(m.A) | (align_of(m.B) << 9) | (cd << 18) | (static_cast<uint32_t>(x == 256) << 27);
}

struct Blas::Impl {
  cublasHandle_t handle = nullptr;
  cublasLtHandle_t lt = nullptr;
  bna::cuda::DeviceBuffer workspace;
  std::map<LtKey, LtPlan> lt_plans;
  ~Impl() {
    for (auto& [key, plan] : lt_plans) plan.release();
    if (lt != nullptr) cublasLtDestroy(lt);
    if (handle != nullptr) cublasDestroy(handle);
  }
  Expected<const LtPlan*> lt_plan(const Blas::Matmul& m);
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
  s = cublasLtCreate(&b.impl_->lt);
  if (s != CUBLAS_STATUS_SUCCESS) return blas_error("cublasLtCreate", s);
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

namespace {
#define BNA_LT_TRY(call)                                          \
  do {                                                            \
    const cublasStatus_t st_ = (call);                            \
    if (st_ != CUBLAS_STATUS_SUCCESS) return blas_error(#call, st_); \
  } while (0)
}  // namespace

// Row-major D [M, N] = op(A) op(B) is column-major D^T [N, M] = op(B)^T op(A)^T (as gemm()): cuBLASLt's
// first operand is our B, its second our A; aux shares D's layout (ld N).
Expected<const LtPlan*> Blas::Impl::lt_plan(const Blas::Matmul& m) {
  const uint32_t code = align_code(m);
  const LtKey key{m.trans_a, m.trans_b, m.M, m.N, m.K, m.d_f32, static_cast<int>(m.epilogue), code};
  auto it = lt_plans.find(key);
  if (it != lt_plans.end()) return &it->second;
  LtPlan p;
  auto made = [&]() -> Status {
    BNA_LT_TRY(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    const cublasOperation_t op_first = m.trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    const cublasOperation_t op_second = m.trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first)));
    BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second)));
    cublasLtEpilogue_t epi = CUBLASLT_EPILOGUE_DEFAULT;
    if (m.epilogue == Epilogue::kGeluAux) epi = CUBLASLT_EPILOGUE_GELU_AUX;
    if (m.epilogue == Epilogue::kDGelu) epi = CUBLASLT_EPILOGUE_DGELU;
    BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof(epi)));
    if (m.epilogue != Epilogue::kNone) {
      const int64_t ld = m.N;
      const int32_t aux_type = CUDA_R_16BF;
      BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, &ld, sizeof(ld)));
      BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_DATA_TYPE, &aux_type,
                                                sizeof(aux_type)));
      BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &m.aux,
                                                sizeof(m.aux)));
    }
    const uint64_t ldb = static_cast<uint64_t>(m.trans_b ? m.K : m.N), lda = static_cast<uint64_t>(m.trans_a ? m.M : m.K);
    BNA_LT_TRY(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, m.trans_b ? m.K : m.N, m.trans_b ? m.N : m.K, ldb));
    BNA_LT_TRY(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, m.trans_a ? m.M : m.K, m.trans_a ? m.K : m.M, lda));
    BNA_LT_TRY(cublasLtMatrixLayoutCreate(&p.c, m.d_f32 ? CUDA_R_32F : CUDA_R_16BF, m.N, m.M, m.N));
    cublasLtMatmulPreference_t pref = nullptr;
    BNA_LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
    const uint64_t ws = kWorkspace;
    cublasStatus_t st =
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws));
    const void* c = m.C != nullptr ? m.C : m.D;
    const uint32_t al_first = align_of(m.B), al_second = align_of(m.A), al_cd = std::min(align_of(c), align_of(m.D));
    for (auto [attr, v] : {std::pair{CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, al_first},
                           {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, al_second},
                           {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, al_cd},
                           {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, al_cd}})
      if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatmulPreferenceSetAttribute(pref, attr, &v, sizeof(v));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    if (st == CUBLAS_STATUS_SUCCESS)
      st = cublasLtMatmulAlgoGetHeuristic(lt, p.desc, p.a, p.b, p.c, p.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS) return blas_error("cublasLtMatmulAlgoGetHeuristic", st);
    if (found == 0)
      return unimplemented("cublasLt matmul: no algorithm for M=" + std::to_string(m.M) + " N=" + std::to_string(m.N) +
                           " K=" + std::to_string(m.K) + " epilogue=" + std::to_string(static_cast<int>(m.epilogue)));
    p.algo = result.algo;
    return Status::ok();
  };
  const Status st = made();
  if (!st.is_ok()) {
    p.release();
    return st;
  }
  return &lt_plans.emplace(key, p).first->second;
}

Status Blas::matmul(const Matmul& m) const {
  constexpr int64_t kMax = 0x7fffffff;
  if (m.M < 1 || m.N < 1 || m.K < 1 || m.M > kMax || m.N > kMax || m.K > kMax)
    return invalid_argument("cublasLt matmul: M=" + std::to_string(m.M) + " N=" + std::to_string(m.N) + " K=" +
                            std::to_string(m.K) + ", expected each in [1, 2^31)");
  if (m.A == nullptr || m.B == nullptr || m.D == nullptr) return invalid_argument("cublasLt matmul: null A, B or D");
  if (m.epilogue != Epilogue::kNone) {
    if (m.d_f32 || m.aux == nullptr || m.N % 8 != 0 || align_of(m.aux) < 16)
      return invalid_argument("cublasLt matmul: an epilogue needs bf16 D, a 16-byte aligned aux buffer and N % 8 == 0 (N=" +
                              std::to_string(m.N) + ")");
  }
  if (!impl_) return internal_error("cublasLt matmul: Blas was not created");
  BNA_ASSIGN_OR_RETURN(const LtPlan* p, impl_->lt_plan(m));
  if (m.epilogue != Epilogue::kNone)
    BNA_LT_TRY(cublasLtMatmulDescSetAttribute(p->desc, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, &m.aux,
                                              sizeof(m.aux)));
  const void* c = m.C != nullptr ? m.C : m.D;
  BNA_LT_TRY(cublasLtMatmul(impl_->lt, p->desc, &m.alpha, m.B, p->a, m.A, p->b, &m.beta, c, p->c, m.D, p->c, &p->algo,
                            impl_->workspace.get(), kWorkspace, nullptr));
  return Status::ok();
}

}  // namespace bna::nn::cuda
