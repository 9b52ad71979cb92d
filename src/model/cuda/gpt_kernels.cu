// The reference GPT's CUDA training kernels (API and semantics: gpt_kernels.hpp). Memory-bound
// helpers around the cuBLAS GEMMs and the attention kernels; written plainly (row per block,
// grid-stride loops), with f32 math throughout.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "model/cuda/gpt_kernels.hpp"

namespace bna::model::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t f2bf(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

unsigned grid_for(int64_t count) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((count + kThreads - 1) / kThreads, 132 * 64)));
}

#define GRID_STRIDE(e, count) \
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < (count); e += int64_t{gridDim.x} * kThreads)

// Block-wide sum (fixed tree order); every thread gets the result.
__device__ float block_sum(float v) {
  __shared__ float part[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) s += part[w];
  return s;
}

__global__ void embedding_fwd_kernel(const int32_t* ids, const float* wte, const float* wpe, float* x, int64_t n,
                                     int64_t T, int64_t C) {
  GRID_STRIDE(e, n * C) {
    const int64_t i = e / C, c = e % C;
    x[e] = wte[static_cast<int64_t>(ids[i]) * C + c] + wpe[(i % T) * C + c];
  }
}

__global__ void embedding_bwd_kernel(const int32_t* ids, const float* dx, float* dwte, float* dwpe, int64_t n,
                                     int64_t T, int64_t C) {
  GRID_STRIDE(e, n * C) {
    const int64_t i = e / C, c = e % C;
    atomicAdd(&dwte[static_cast<int64_t>(ids[i]) * C + c], dx[e]);
    atomicAdd(&dwpe[(i % T) * C + c], dx[e]);
  }
}

__global__ void layernorm_fwd_kernel(const float* x, const float* g, const float* b, uint16_t* y, float* mean,
                                     float* rstd, int64_t C) {
  const int64_t r = blockIdx.x;
  const float* xr = x + r * C;
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) s += xr[c];
  const float m = block_sum(s) / static_cast<float>(C);
  float q = 0.0f;
  for (int64_t c = threadIdx.x; c < C; c += kThreads) q += (xr[c] - m) * (xr[c] - m);
  const float rs = rsqrtf(block_sum(q) / static_cast<float>(C) + 1e-5f);
  for (int64_t c = threadIdx.x; c < C; c += kThreads) y[r * C + c] = f2bf((xr[c] - m) * rs * g[c] + b[c]);
  if (threadIdx.x == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// 32 rows per block: dx rows one after another; dgamma / dbeta partials in registers (C <= 8192,
// columns threadIdx.x + k*256), one atomic per column at the end.
constexpr int kLnRows = 32;
constexpr int kLnCols = 32;  // columns per thread: C <= 256 * 32

__global__ void layernorm_bwd_kernel(const float* x, const float* g, const float* mean, const float* rstd,
                                     const float* dy, float* dx, float* dg, float* db, int64_t n, int64_t C) {
  float ag[kLnCols], ab[kLnCols];
  for (int k = 0; k < kLnCols; ++k) ag[k] = ab[k] = 0.0f;
  const int64_t r0 = static_cast<int64_t>(blockIdx.x) * kLnRows, r1 = min(n, r0 + kLnRows);
  for (int64_t r = r0; r < r1; ++r) {
    const float m = mean[r], rs = rstd[r];
    const float* xr = x + r * C;
    const float* dyr = dy + r * C;
    float s1 = 0.0f, s2 = 0.0f;
    for (int64_t c = threadIdx.x; c < C; c += kThreads) {
      const float dn = dyr[c] * g[c];
      s1 += dn;
      s2 += dn * (xr[c] - m) * rs;
    }
    s1 = block_sum(s1) / static_cast<float>(C);
    s2 = block_sum(s2) / static_cast<float>(C);
    int k = 0;
    for (int64_t c = threadIdx.x; c < C; c += kThreads, ++k) {
      const float xh = (xr[c] - m) * rs;
      dx[r * C + c] += rs * (dyr[c] * g[c] - s1 - xh * s2);
      ag[k] += dyr[c] * xh;
      ab[k] += dyr[c];
    }
  }
  int k = 0;
  for (int64_t c = threadIdx.x; c < C; c += kThreads, ++k) {
    atomicAdd(&dg[c], ag[k]);
    atomicAdd(&db[c], ab[k]);
  }
}

__device__ __forceinline__ float gelu(float x) {
  const float k = 0.7978845608028654f;
  return 0.5f * x * (1.0f + tanhf(k * (x + 0.044715f * x * x * x)));
}
__device__ __forceinline__ float gelu_grad(float x) {
  const float k = 0.7978845608028654f;
  const float u = k * (x + 0.044715f * x * x * x);
  const float t = tanhf(u);
  return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k * (1.0f + 3.0f * 0.044715f * x * x);
}

__global__ void gelu_fwd_kernel(const float* x, uint16_t* y, int64_t n) {
  GRID_STRIDE(e, n) y[e] = f2bf(gelu(x[e]));
}
__global__ void gelu_bwd_kernel(const float* x, const float* dy, uint16_t* dx, int64_t n) {
  GRID_STRIDE(e, n) dx[e] = f2bf(dy[e] * gelu_grad(x[e]));
}

__global__ void split_qkv_kernel(const float* qkv, uint16_t* q, uint16_t* k, uint16_t* v, int64_t B, int64_t T,
                                 int64_t Hq, int64_t Hkv, int64_t dh) {
  const int64_t row = (Hq + 2 * Hkv) * dh;
  GRID_STRIDE(e, B * T * row) {
    const int64_t bt = e / row, col = e % row, b = bt / T, t = bt % T, h = col / dh, d = col % dh;
    const uint16_t val = f2bf(qkv[e]);
    if (h < Hq) q[((b * Hq + h) * T + t) * dh + d] = val;
    else if (h < Hq + Hkv) k[((b * Hkv + h - Hq) * T + t) * dh + d] = val;
    else v[((b * Hkv + h - Hq - Hkv) * T + t) * dh + d] = val;
  }
}

__global__ void merge_qkv_kernel(const uint16_t* dq, const uint16_t* dk, const uint16_t* dv, uint16_t* dqkv,
                                 int64_t B, int64_t T, int64_t Hq, int64_t Hkv, int64_t dh) {
  const int64_t row = (Hq + 2 * Hkv) * dh;
  GRID_STRIDE(e, B * T * row) {
    const int64_t bt = e / row, col = e % row, b = bt / T, t = bt % T, h = col / dh, d = col % dh;
    uint16_t val;
    if (h < Hq) val = dq[((b * Hq + h) * T + t) * dh + d];
    else if (h < Hq + Hkv) val = dk[((b * Hkv + h - Hq) * T + t) * dh + d];
    else val = dv[((b * Hkv + h - Hq - Hkv) * T + t) * dh + d];
    dqkv[e] = val;
  }
}

__global__ void heads_to_tokens_kernel(const uint16_t* o, uint16_t* y, int64_t B, int64_t H, int64_t T, int64_t dh) {
  GRID_STRIDE(e, B * H * T * dh) {
    const int64_t d = e % dh, t = (e / dh) % T, h = (e / (dh * T)) % H, b = e / (dh * T * H);
    y[((b * T + t) * H + h) * dh + d] = o[e];
  }
}

__global__ void tokens_to_heads_kernel(const float* y, uint16_t* o, int64_t B, int64_t H, int64_t T, int64_t dh) {
  GRID_STRIDE(e, B * H * T * dh) {
    const int64_t d = e % dh, t = (e / dh) % T, h = (e / (dh * T)) % H, b = e / (dh * T * H);
    o[e] = f2bf(y[((b * T + t) * H + h) * dh + d]);
  }
}

__global__ void to_bf16_kernel(const float* s, uint16_t* d, int64_t n) {
  GRID_STRIDE(e, n) d[e] = f2bf(s[e]);
}

// One block per row: max, then sum of exp, in f32.
__global__ void ce_fwd_kernel(const float* logits, const int32_t* targets, float* losses, int64_t V) {
  const int64_t r = blockIdx.x;
  const float* lr = logits + r * V;
  __shared__ float smax[kThreads / 32];
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < V; c += kThreads) m = fmaxf(m, lr[c]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) smax[threadIdx.x >> 5] = m;
  __syncthreads();
  m = smax[0];
  for (int w = 1; w < kThreads / 32; ++w) m = fmaxf(m, smax[w]);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < V; c += kThreads) s += __expf(lr[c] - m);
  s = block_sum(s);
  if (threadIdx.x == 0) {
    const int32_t t = targets[r];
    losses[r] = t < 0 ? 0.0f : (m + logf(s)) - lr[t];
  }
}

__global__ void ce_bwd_kernel(const float* logits, const int32_t* targets, uint16_t* dl, float scale, int64_t V) {
  const int64_t r = blockIdx.x;
  const float* lr = logits + r * V;
  uint16_t* dr = dl + r * V;
  const int32_t t = targets[r];
  if (t < 0) {
    for (int64_t c = threadIdx.x; c < V; c += kThreads) dr[c] = 0;
    return;
  }
  __shared__ float smax[kThreads / 32];
  float m = -INFINITY;
  for (int64_t c = threadIdx.x; c < V; c += kThreads) m = fmaxf(m, lr[c]);
  for (int o = 16; o > 0; o >>= 1) m = fmaxf(m, __shfl_xor_sync(0xffffffffu, m, o));
  if ((threadIdx.x & 31) == 0) smax[threadIdx.x >> 5] = m;
  __syncthreads();
  m = smax[0];
  for (int w = 1; w < kThreads / 32; ++w) m = fmaxf(m, smax[w]);
  float s = 0.0f;
  for (int64_t c = threadIdx.x; c < V; c += kThreads) s += __expf(lr[c] - m);
  const float inv = 1.0f / block_sum(s);
  for (int64_t c = threadIdx.x; c < V; c += kThreads)
    dr[c] = f2bf((__expf(lr[c] - m) * inv - (c == t ? 1.0f : 0.0f)) * scale);
}

__global__ void sum_squares_kernel(const float* g, int64_t n, double* out) {
  double s = 0.0;
  GRID_STRIDE(e, n) s += static_cast<double>(g[e]) * g[e];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, s);
}

__global__ void adamw_kernel(const AdamWArgs a) {
  const float decay = 1.0f - a.lr * a.weight_decay;
  const float step = a.lr / a.bc1, inv_sqrt_bc2 = rsqrtf(a.bc2);
  GRID_STRIDE(e, a.n) {
    const float g = a.g[e] * a.grad_scale;
    const float m = a.beta1 * a.m[e] + (1.0f - a.beta1) * g;
    const float v = a.beta2 * a.v[e] + (1.0f - a.beta2) * g * g;
    a.m[e] = m;
    a.v[e] = v;
    const float w = a.w[e] * decay - step * m / (sqrtf(v) * inv_sqrt_bc2 + a.eps);
    a.w[e] = w;
    if (a.w_bf16 != nullptr) a.w_bf16[e] = f2bf(w);
  }
}

Status launched() {
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace

Status embedding_fwd(const int32_t* ids, const float* wte, const float* wpe, float* x, int64_t n, int64_t T,
                     int64_t C) {
  embedding_fwd_kernel<<<grid_for(n * C), kThreads>>>(ids, wte, wpe, x, n, T, C);
  return launched();
}
Status embedding_bwd(const int32_t* ids, const float* dx, float* dwte, float* dwpe, int64_t n, int64_t T, int64_t C) {
  embedding_bwd_kernel<<<grid_for(n * C), kThreads>>>(ids, dx, dwte, dwpe, n, T, C);
  return launched();
}
Status layernorm_fwd(const float* x, const float* gamma, const float* beta, uint16_t* y, float* mean, float* rstd,
                     int64_t n, int64_t C) {
  layernorm_fwd_kernel<<<static_cast<unsigned>(n), kThreads>>>(x, gamma, beta, y, mean, rstd, C);
  return launched();
}
Status layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx_acc, float* dgamma, float* dbeta, int64_t n, int64_t C) {
  if (C > int64_t{kThreads} * kLnCols)
    return invalid_argument("layernorm_bwd: C=" + std::to_string(C) + ", expected <= " + std::to_string(kThreads * kLnCols));
  layernorm_bwd_kernel<<<static_cast<unsigned>((n + kLnRows - 1) / kLnRows), kThreads>>>(x, gamma, mean, rstd, dy,
                                                                                        dx_acc, dgamma, dbeta, n, C);
  return launched();
}
Status gelu_fwd(const float* x, uint16_t* y, int64_t n) {
  gelu_fwd_kernel<<<grid_for(n), kThreads>>>(x, y, n);
  return launched();
}
Status gelu_bwd(const float* x, const float* dy, uint16_t* dx, int64_t n) {
  gelu_bwd_kernel<<<grid_for(n), kThreads>>>(x, dy, dx, n);
  return launched();
}
Status split_qkv(const float* qkv, uint16_t* q, uint16_t* k, uint16_t* v, int64_t B, int64_t T, int64_t Hq,
                 int64_t Hkv, int64_t dh) {
  split_qkv_kernel<<<grid_for(B * T * (Hq + 2 * Hkv) * dh), kThreads>>>(qkv, q, k, v, B, T, Hq, Hkv, dh);
  return launched();
}
Status merge_qkv(const uint16_t* dq, const uint16_t* dk, const uint16_t* dv, uint16_t* dqkv, int64_t B, int64_t T,
                 int64_t Hq, int64_t Hkv, int64_t dh) {
  merge_qkv_kernel<<<grid_for(B * T * (Hq + 2 * Hkv) * dh), kThreads>>>(dq, dk, dv, dqkv, B, T, Hq, Hkv, dh);
  return launched();
}
Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t B, int64_t H, int64_t T, int64_t dh) {
  heads_to_tokens_kernel<<<grid_for(B * H * T * dh), kThreads>>>(o, y, B, H, T, dh);
  return launched();
}
Status tokens_to_heads(const float* y, uint16_t* o, int64_t B, int64_t H, int64_t T, int64_t dh) {
  tokens_to_heads_kernel<<<grid_for(B * H * T * dh), kThreads>>>(y, o, B, H, T, dh);
  return launched();
}
Status to_bf16(const float* src, uint16_t* dst, int64_t n) {
  to_bf16_kernel<<<grid_for(n), kThreads>>>(src, dst, n);
  return launched();
}
Status cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, int64_t n, int64_t V) {
  ce_fwd_kernel<<<static_cast<unsigned>(n), kThreads>>>(logits, targets, losses, V);
  return launched();
}
Status cross_entropy_bwd(const float* logits, const int32_t* targets, uint16_t* dlogits, float scale, int64_t n,
                         int64_t V) {
  ce_bwd_kernel<<<static_cast<unsigned>(n), kThreads>>>(logits, targets, dlogits, scale, V);
  return launched();
}
Status sum_squares(const float* g, int64_t n, double* sum_sq) {
  sum_squares_kernel<<<grid_for(n), kThreads>>>(g, n, sum_sq);
  return launched();
}
Status adamw(const AdamWArgs& a) {
  adamw_kernel<<<grid_for(a.n), kThreads>>>(a);
  return launched();
}

}  // namespace bna::model::cuda
