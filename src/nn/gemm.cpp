// SGEMM and linear layers over OpenBLAS cblas (row-major). OpenBLAS threads the GEMM itself; the bias
// gradient is a column reduction split over channel chunks, rows summed in order (deterministic).
#include <cblas.h>

#include <algorithm>

#include "bna/nn.hpp"
#include "bna/threads.hpp"
#include "nn/par.hpp"

namespace bna::nn {

void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {  // BLAS leaves C untouched only for beta = 1; make the empty product explicit.
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
              static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

void linear_fwd(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t in, int64_t out) {
  if (b != nullptr) {
    detail::par_rows(n, out, [&](int64_t i) { std::copy(b, b + out, y + i * out); });
    sgemm(false, true, n, out, in, 1.0f, x, in, w, in, 1.0f, y, out);
  } else {
    sgemm(false, true, n, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
  }
}

void linear_bwd(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t n,
                int64_t in, int64_t out) {
  if (dx != nullptr) sgemm(false, false, n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
  if (dw != nullptr) sgemm(true, false, out, in, n, 1.0f, dy, out, x, in, 1.0f, dw, in);
  if (db != nullptr) {
    constexpr int64_t kChunk = 64;
    const int64_t chunks = (out + kChunk - 1) / kChunk;
    detail::par_rows(chunks, n * kChunk, [&](int64_t c) {
      const int64_t o0 = c * kChunk, o1 = std::min(out, o0 + kChunk);
      float acc[kChunk] = {};
      for (int64_t i = 0; i < n; ++i)
        for (int64_t o = o0; o < o1; ++o) acc[o - o0] += dy[i * out + o];
      for (int64_t o = o0; o < o1; ++o) db[o] += acc[o - o0];
    });
  }
}

}  // namespace bna::nn
