// Neural-network building blocks of the reference GPT: f32, row-major, hand-written forward and
// backward (no autograd). Shapes use `n` rows (n = B*T tokens) and channel counts `C`, `in`, `out`, `V`.
// Decisions a reader must know:
//   * Linear weights use PyTorch's layout W [out, in]; y = x W^T (+ b). One SGEMM each way.
//   * Every backward ACCUMULATES parameter gradients (dW, db, dgamma, dbeta, dtable += ...) so several
//     micro-batches sum into one buffer; input gradients are OVERWRITTEN unless the name says `_acc`.
//   * GELU is the tanh approximation 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2, llm.c,
//     torch `approximate="tanh"`), not the exact erf form the original Python model used.
//   * LayerNorm uses eps = 1e-5 and the biased variance (PyTorch's definition).
// Threading: SGEMM is OpenBLAS's; row-wise kernels split rows over OpenMP threads. Every kernel is
// deterministic for a fixed thread count (no atomics; reductions over rows run in a fixed order).
#pragma once

#include <cstdint>

namespace bna::nn {

// C[M, N] = alpha * op(A) op(B) + beta * C, row-major; op(A) is A^T when trans_a (A stored [K, M]),
// op(B) is B^T when trans_b (B stored [N, K]). lda/ldb/ldc are row strides in elements.
void sgemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
           int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);

// y [n, out] = x [n, in] W^T + b; w [out, in]; b [out] or nullptr.
void linear_fwd(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t in, int64_t out);
// Given dy [n, out]: dx [n, in] = dy W (overwritten; skipped when dx == nullptr),
// dw [out, in] += dy^T x, db [out] += sum_rows dy (skipped when db == nullptr).
void linear_bwd(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db, int64_t n,
                int64_t in, int64_t out);

inline constexpr float kLayerNormEps = 1e-5f;
// y [n, C] = (x - mean) * rstd * gamma + beta per row; mean, rstd [n] saved for the backward.
void layernorm_fwd(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                   int64_t n, int64_t C);
// dx_acc [n, C] += dL/dx (accumulated: LayerNorm sits on the residual stream), dgamma, dbeta [C] +=.
void layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                   float* dx_acc, float* dgamma, float* dbeta, int64_t n, int64_t C);

// y = gelu_tanh(x), n elements.
void gelu_fwd(const float* x, float* y, int64_t n);
// dx = dy * gelu_tanh'(x) (overwritten; dx may alias dy).
void gelu_bwd(const float* x, const float* dy, float* dx, int64_t n);
// Scalar forms, for tests and references.
double gelu_tanh(double x);
double gelu_tanh_grad(double x);

// out [n, C] = table[ids[i]] (+ pos_table[i mod T] when pos_table != nullptr, i.e. positions 0..T-1 of
// each of the n / T sequences; T must divide n). ids must lie in [0, rows of table) (caller checks).
void embedding_fwd(const int32_t* ids, const float* table, const float* pos_table, float* out, int64_t n,
                   int64_t T, int64_t C);
// dtable [rows, C] += scatter of dout by ids; dpos [T, C] += sum over sequences (when non-null).
// Runs over channels in parallel, tokens in order, so the sums are deterministic.
void embedding_bwd(const int32_t* ids, const float* dout, float* dtable, float* dpos, int64_t n, int64_t T,
                   int64_t C);

// Softmax cross-entropy over V classes for n rows. losses [n] = logsumexp(logits) - logits[target];
// probs [n, V] = softmax(logits) (may alias logits). Targets < 0 are ignored (loss 0, no gradient).
// Returns the number of counted rows. target >= V is a programmer error (caller checks).
int64_t softmax_cross_entropy_fwd(const float* logits, const int32_t* targets, float* probs, float* losses,
                                  int64_t n, int64_t V);
// dlogits [n, V] = (probs - onehot(target)) * dloss[row] (overwritten; may alias probs); rows with a
// negative target get 0.
void softmax_cross_entropy_bwd(const float* probs, const int32_t* targets, const float* dloss, float* dlogits,
                               int64_t n, int64_t V);

}  // namespace bna::nn
