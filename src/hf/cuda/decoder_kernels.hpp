// Host launch API of the decoder's element-wise CUDA kernels (src/hf/cuda/decoder_kernels.cu), used
// by the CUDA model (cuda_model.cpp). No CUDA header: device pointers are void*/float*/int32_t*,
// bf16 tensors are uint16_t bits, the stream is a cudaStream_t as void* (nullptr = default stream).
// Shapes use the model's names: n tokens, C hidden, dh head dim, Hq / Hkv heads, cap cache rows.
// Every launcher checks its launch and returns Status (kInternal naming the CUDA error).
#pragma once

#include <cstdint>

#include "bna/status.hpp"

namespace bna::hf::cuda {

// x f32 [n, C] = table bf16 [V, C] rows ids[0..n) (ids: DEVICE int32, already range-checked), plus
// row p0 + t of pos_table bf16 [P, C] for token t when pos_table is not null (GPT-2's learned
// positions; the caller keeps p0 + n <= P). The sum is one f32 add, as the CPU model.
Status embed(const int32_t* ids, const uint16_t* table, const uint16_t* pos_table, int64_t p0, float* x, int64_t n,
             int64_t C, void* stream);

// y bf16 [n, C] = w * x * rsqrt(mean(x^2) + eps), x f32 [n, C], w f32 [C]. Sums in f32 per thread,
// then a block tree (fixed order: the result does not depend on the launch).
Status rms_norm(const float* x, const float* w, uint16_t* y, int64_t n, int64_t C, float eps, void* stream);

// y bf16 [n, C] = (x - mean(x)) * rsqrt(var(x) + eps) * w + b (LayerNorm, GPT-2), x f32 [n, C], w and
// b f32 [C] (b may be null). Two block passes in f32: the mean, then the biased variance about it
// (not E[x^2] - mean^2, which cancels when |mean| >> std).
Status layer_norm(const float* x, const float* w, const float* b, uint16_t* y, int64_t n, int64_t C, float eps,
                  void* stream);

// x f32 [n, C] += r, where r = t (f32 [n, C]) + bias (f32 [C] or null), RMS-normalised with w (f32 [C])
// when w is not null (GLM-4's post-attention / post-MLP norm).
Status add_residual(float* x, const float* t, const float* bias, const float* w, int64_t n, int64_t C, float eps,
                    void* stream);

// The attention input step. qkv f32 [n, (Hq + 2 Hkv) dh] (q | k | v per token, the fused projection's
// output) gets the bias (f32 [(Hq + 2 Hkv) dh] or null), the per-head q/k RMS norms (f32 [dh] each or
// null), then RoPE at positions p0 + t on the first rotary_dim dims (pairs (i, i + rotary_dim/2), or
// (2i, 2i+1) when interleaved; angle = fp32 inv_freq[i] * fp32 position, cos/sin in double as the CPU
// model). Writes q bf16 [Hq, n, dh] and k, v bf16 into the cache [Hkv, cap, dh] at rows p0 .. p0+n-1.
// inv_freq: DEVICE f32 [rotary_dim / 2], or null with rotary_dim = 0 (no RoPE).
struct QkvArgs {
  const float* qkv = nullptr;
  const float* bias = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  const float* inv_freq = nullptr;
  uint16_t* q = nullptr;
  uint16_t* k_cache = nullptr;
  uint16_t* v_cache = nullptr;
  int64_t n = 0, Hq = 0, Hkv = 0, dh = 0, cap = 0, p0 = 0, rotary_dim = 0;
  int64_t ring = 0;  // > 0: the cache is a ring of that many rows; token p goes to row p mod ring
  // Paged cache (pages != null; k_cache / v_cache unused): token p goes to row p % page of the page
  // pages[p / page] (DEVICE table of device pointers), laid out [2][Hkv][page][dh] (K, then V);
  // cap still bounds p0 + n (the table's reach).
  uint16_t* const* pages = nullptr;
  int64_t page = 0;
  bool interleaved = false;
  float eps = 1e-6f;
};
Status qkv_rope(const QkvArgs& a, void* stream);

// ---- compressed butterfly pools (hf_cuda.hpp) ----------------------------------------------------
// Block means: dst bf16 [Hkv, dst_rows, dh] row j = mean of K rows j*Bs .. j*Bs+Bs-1 of src bf16
// [Hkv, src_rows, dh] (f32 sum in token order, times 1/Bs, then rounded), for j in [j0, j1). Token
// r lives in src row r, or r mod ring when ring > 0.
struct BlockMeanArgs {
  const uint16_t* src = nullptr;
  uint16_t* dst = nullptr;
  int64_t Hkv = 0, dh = 0, src_rows = 0, ring = 0, dst_rows = 0, Bs = 0, j0 = 0, j1 = 0;
};
Status block_means(const BlockMeanArgs& a, void* stream);

// Copies tokens [r0, r1) of src bf16 [Hkv, src_rows, dh] (row r) into the ring dst [Hkv, ring, dh]
// (row r mod ring).
Status fill_ring(const uint16_t* src, uint16_t* dst, int64_t Hkv, int64_t dh, int64_t src_rows, int64_t ring,
                 int64_t r0, int64_t r1, void* stream);

// The key rows one decode query of a compressed layer attends, gathered into dst bf16
// [Hkv, dst_rows, dh]: rows [0, nr) = summaries sum[blocks[i]] (sum [Hkv, sum_rows, dh]), rows
// [nr, nr + n_raw) = ring rows (c + t) mod ring. blocks: DEVICE int32 [nr].
struct GatherArgs {
  const uint16_t* sum = nullptr;
  const uint16_t* ring = nullptr;
  const int32_t* blocks = nullptr;
  uint16_t* dst = nullptr;
  int64_t Hkv = 0, dh = 0, sum_rows = 0, ring_rows = 0, dst_rows = 0, nr = 0, c = 0, n_raw = 0;
};
Status gather_compressed(const GatherArgs& a, void* stream);

// o bf16 [H, n, dh] -> y bf16 [n, H * dh] (the attention output in token-major order).
Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t H, int64_t n, int64_t dh, void* stream);

// gu bf16 [n, 2I] (gate | up) -> y bf16 [n, I] = silu(gate) * up, in f32.
Status swiglu(const uint16_t* gu, uint16_t* y, int64_t n, int64_t I, void* stream);

// u f32 [n, I] (the c_fc GEMM output) -> y bf16 [n, I] = gelu_tanh(u + bias), bias f32 [I] or null:
// 0.5 v (1 + tanh(sqrt(2/pi) (v + 0.044715 v^3))), GPT-2's "gelu_new", in f32 as the CPU model.
Status bias_gelu(const float* u, const float* bias, uint16_t* y, int64_t n, int64_t I, void* stream);

// out (DEVICE int32, one element) = the index of the largest of x[0..n) (f32), the lowest index on
// ties, NaN never chosen over a number: the host's greedy draw (hf::sample at temperature 0).
Status argmax(const float* x, int64_t n, int32_t* out, void* stream);

// dst bf16 [count] = N(0, stddev) from a counter-based generator keyed by (seed, index): the same
// values for the same seed on any launch geometry. stddev = 0 fills `value` instead.
Status fill_bf16(uint16_t* dst, int64_t count, uint64_t seed, float stddev, float value, void* stream);
// dst f32 [count] = value.
Status fill_f32(float* dst, int64_t count, float value, void* stream);

}  // namespace bna::hf::cuda
