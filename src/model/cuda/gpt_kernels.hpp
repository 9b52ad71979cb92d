// Host launch API of the reference GPT's CUDA training kernels (gpt_kernels.cu), used by
// model::CudaGpt (cuda_gpt.cpp). No CUDA header: DEVICE pointers, bf16 as uint16_t bits, default
// stream. Shapes: n = B*T rows, C channels, V classes, H heads of dh. Semantics are those of the CPU
// kernels in include/bna/nn.hpp (LayerNorm eps 1e-5 with the biased variance, GELU tanh), except
// that parameter gradients of the embedding and LayerNorm are summed with atomics (run-to-run order
// may differ in the last bit) and GEMM inputs are rounded to bf16.
#pragma once

#include <cstdint>

#include "bna/status.hpp"

namespace bna::model::cuda {

// x f32 [n, C] = wte[ids[i]] + wpe[i mod T].
Status embedding_fwd(const int32_t* ids, const float* wte, const float* wpe, float* x, int64_t n, int64_t T,
                     int64_t C);
// dwte[ids[i]] += dx[i], dwpe[i mod T] += dx[i].
Status embedding_bwd(const int32_t* ids, const float* dx, float* dwte, float* dwpe, int64_t n, int64_t T, int64_t C);

// y bf16 [n, C] = (x - mean) * rstd * gamma + beta; mean, rstd f32 [n] saved.
Status layernorm_fwd(const float* x, const float* gamma, const float* beta, uint16_t* y, float* mean, float* rstd,
                     int64_t n, int64_t C);
// dx_acc f32 [n, C] += dL/dx from dy f32 [n, C], and dx_bf16 (unless null) = the new dx_acc in bf16
// (the next GEMMs' input); dgamma, dbeta f32 [C] += (one atomic per column per block).
// (layernorm_kernels.cu; GELU runs in the cuBLASLt epilogues, nn/cuda/blas.hpp.)
Status layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx_acc, uint16_t* dx_bf16, float* dgamma, float* dbeta, int64_t n, int64_t C);

// Layout kernels (layout_kernels.cu) move 16-byte chunks (dh % 8 == 0); for the attention paths that
// read contiguous tensors only.
// qkv bf16 [B*T, (Hq+2Hkv) dh] -> q bf16 [B, Hq, T, dh], k, v bf16 [B, Hkv, T, dh].
Status split_qkv(const uint16_t* qkv, uint16_t* q, uint16_t* k, uint16_t* v, int64_t B, int64_t T, int64_t Hq,
                 int64_t Hkv, int64_t dh);
// dq, dk, dv bf16 (as split_qkv's outputs) -> dqkv bf16 [B*T, (Hq+2Hkv) dh].
Status merge_qkv(const uint16_t* dq, const uint16_t* dk, const uint16_t* dv, uint16_t* dqkv, int64_t B, int64_t T,
                 int64_t Hq, int64_t Hkv, int64_t dh);
// o bf16 [B, H, T, dh] -> y bf16 [B*T, H*dh].
Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t B, int64_t H, int64_t T, int64_t dh);
// y f32 [B*T, H*dh] -> o bf16 [B, H, T, dh].
Status tokens_to_heads(const float* y, uint16_t* o, int64_t B, int64_t H, int64_t T, int64_t dh);

// dst bf16 = src f32, n elements.
Status to_bf16(const float* src, uint16_t* dst, int64_t n);

// Logits bf16 [n, ld] (ld >= V, ld % 8 == 0: the head GEMM runs on a vocabulary padded to a multiple
// of 64; columns >= V are ignored). lse f32 [n] = logsumexp of the row's V logits (f32 math, one
// online pass), losses [n] = lse - logits[target] (0 for target < 0), and in the same launch (unless
// dlogits is null) dlogits bf16 [n, ld] = (exp(logits - lse) - onehot(target)) * scale; 0 for
// columns >= V and rows with target < 0.
Status cross_entropy(const uint16_t* logits, const int32_t* targets, float* losses, float* lse, uint16_t* dlogits,
                     float scale, int64_t n, int64_t V, int64_t ld);

// sum_sq f64 (one element, accumulated with atomics) += sum of g^2 over n elements.
Status sum_squares(const float* g, int64_t n, double* sum_sq);

// PyTorch AdamW on the n elements of every parameter tensor in one launch (include/bna/train.hpp): g
// is scaled by grad_scale first (clipping); decayed tensors: w *= 1 - lr*wd; m, v moments;
// w -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). Also writes the bf16 copy of w (w_bf16 may be
// null). offsets: DEVICE int64 [tensors + 1] (tensor i = [offsets[i], offsets[i+1])), decay: DEVICE
// uint8 [tensors]; tensors <= 1024.
struct AdamWArgs {
  float* w = nullptr;
  uint16_t* w_bf16 = nullptr;
  const float* g = nullptr;
  float* m = nullptr;
  float* v = nullptr;
  int64_t n = 0;
  const int64_t* offsets = nullptr;
  const uint8_t* decay = nullptr;
  int tensors = 0;
  float lr = 0, beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0, grad_scale = 1;
  float bc1 = 1, bc2 = 1;  // 1 - beta^t
};
Status adamw(const AdamWArgs& a);

}  // namespace bna::model::cuda
