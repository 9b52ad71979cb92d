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

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

constexpr int kWarps = kThreads / 32;

// One warp per row.
__global__ void layernorm_fwd_kernel(const float* x, const float* g, const float* b, uint16_t* y, float* mean,
                                     float* rstd, int64_t n, int C) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= n) return;
  const float* xr = x + r * C;
  float s = 0.0f;
  for (int c = lane; c < C; c += 32) s += xr[c];
  const float m = warp_sum(s) / static_cast<float>(C);
  float q = 0.0f;
  for (int c = lane; c < C; c += 32) q += (xr[c] - m) * (xr[c] - m);
  const float rs = rsqrtf(warp_sum(q) / static_cast<float>(C) + 1e-5f);
  for (int c = lane; c < C; c += 32) y[r * C + c] = f2bf((xr[c] - m) * rs * g[c] + b[c]);
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

// One warp per row (rows strided over the grid); dgamma / dbeta gathered in shared memory per block,
// then one global atomic per column per block.
__global__ void layernorm_bwd_kernel(const float* x, const float* g, const float* mean, const float* rstd,
                                     const float* dy, float* dx, float* dg, float* db, int64_t n, int C) {
  extern __shared__ float sgb[];  // [2][C]
  for (int c = threadIdx.x; c < 2 * C; c += kThreads) sgb[c] = 0.0f;
  __syncthreads();
  const int lane = threadIdx.x & 31;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < n;
       r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float m = mean[r], rs = rstd[r];
    const float* xr = x + r * C;
    const float* dyr = dy + r * C;
    float s1 = 0.0f, s2 = 0.0f;
    for (int c = lane; c < C; c += 32) {
      const float dn = dyr[c] * g[c];
      s1 += dn;
      s2 += dn * (xr[c] - m) * rs;
    }
    s1 = warp_sum(s1) / static_cast<float>(C);
    s2 = warp_sum(s2) / static_cast<float>(C);
    for (int c = lane; c < C; c += 32) {
      const float xh = (xr[c] - m) * rs, d = dyr[c];
      dx[r * C + c] += rs * (d * g[c] - s1 - xh * s2);
      atomicAdd(&sgb[c], d * xh);
      atomicAdd(&sgb[C + c], d);
    }
  }
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += kThreads) {
    atomicAdd(&dg[c], sgb[c]);
    atomicAdd(&db[c], sgb[C + c]);
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
__global__ void gelu_bwd_kernel(const float* x, const uint16_t* dy, uint16_t* dx, int64_t n) {
  GRID_STRIDE(e, n) dx[e] = f2bf(__uint_as_float(static_cast<uint32_t>(dy[e]) << 16) * gelu_grad(x[e]));
}

// Layout kernels: one thread per 8 consecutive dims (16 bytes of bf16) of one (token, head).
// Index math in 32 bits (every count here is < 2^31 / 8), offsets in 64.
__global__ void split_qkv_kernel(const uint4* qkv, uint4* q, uint4* k, uint4* v, int T, int Hq, int Hkv, int dh8,
                                 int count) {
  const int row8 = (Hq + 2 * Hkv) * dh8;
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / row8, col = e - bt * row8, h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    const uint4 val = qkv[e];
    if (h < Hq) q[((static_cast<int64_t>(b) * Hq + h) * T + t) * dh8 + d] = val;
    else if (h < Hq + Hkv) k[((static_cast<int64_t>(b) * Hkv + h - Hq) * T + t) * dh8 + d] = val;
    else v[((static_cast<int64_t>(b) * Hkv + h - Hq - Hkv) * T + t) * dh8 + d] = val;
  }
}

__global__ void merge_qkv_kernel(const uint4* dq, const uint4* dk, const uint4* dv, uint4* dqkv, int T, int Hq,
                                 int Hkv, int dh8, int count) {
  const int row8 = (Hq + 2 * Hkv) * dh8;
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / row8, col = e - bt * row8, h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    uint4 val;
    if (h < Hq) val = dq[((static_cast<int64_t>(b) * Hq + h) * T + t) * dh8 + d];
    else if (h < Hq + Hkv) val = dk[((static_cast<int64_t>(b) * Hkv + h - Hq) * T + t) * dh8 + d];
    else val = dv[((static_cast<int64_t>(b) * Hkv + h - Hq - Hkv) * T + t) * dh8 + d];
    dqkv[e] = val;
  }
}

// e runs over the token-major layout [B*T, H, dh8].
__global__ void heads_to_tokens_kernel(const uint4* o, uint4* y, int T, int H, int dh8, int count) {
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / (H * dh8), col = e - bt * (H * dh8), h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    y[e] = o[((static_cast<int64_t>(b) * H + h) * T + t) * dh8 + d];
  }
}

__global__ void tokens_to_heads_kernel(const float4* y, uint4* o, int T, int H, int dh8, int count) {
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / (H * dh8), col = e - bt * (H * dh8), h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    const float4 a = y[2 * static_cast<int64_t>(e)], c = y[2 * static_cast<int64_t>(e) + 1];
    uint4 r;
    r.x = static_cast<uint32_t>(f2bf(a.x)) | (static_cast<uint32_t>(f2bf(a.y)) << 16);
    r.y = static_cast<uint32_t>(f2bf(a.z)) | (static_cast<uint32_t>(f2bf(a.w)) << 16);
    r.z = static_cast<uint32_t>(f2bf(c.x)) | (static_cast<uint32_t>(f2bf(c.y)) << 16);
    r.w = static_cast<uint32_t>(f2bf(c.z)) | (static_cast<uint32_t>(f2bf(c.w)) << 16);
    o[((static_cast<int64_t>(b) * H + h) * T + t) * dh8 + d] = r;
  }
}

__global__ void to_bf16_kernel(const float* s, uint16_t* d, int64_t n) {
  GRID_STRIDE(e, n) d[e] = f2bf(s[e]);
}

// One block per row, one pass: online (max, sum of exp) per thread, then merged across the block.
__device__ void row_lse(const float* lr, int64_t V, float* m_out, float* s_out) {
  float m = -INFINITY, s = 0.0f;
  for (int64_t c = threadIdx.x; c < V; c += kThreads) {
    const float x = lr[c];
    if (x > m) {
      s = s * __expf(m - x) + 1.0f;
      m = x;
    } else {
      s += __expf(x - m);
    }
  }
  __shared__ float sm[kThreads], ss[kThreads];
  sm[threadIdx.x] = m;
  ss[threadIdx.x] = s;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      const float m1 = sm[threadIdx.x], m2 = sm[threadIdx.x + w];
      const float mm = fmaxf(m1, m2);
      const float a = m1 == -INFINITY ? 0.0f : ss[threadIdx.x] * __expf(m1 - mm);
      const float b = m2 == -INFINITY ? 0.0f : ss[threadIdx.x + w] * __expf(m2 - mm);
      sm[threadIdx.x] = mm;
      ss[threadIdx.x] = a + b;
    }
    __syncthreads();
  }
  *m_out = sm[0];
  *s_out = ss[0];
}

__global__ void ce_fwd_kernel(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t V,
                              int64_t ld) {
  const int64_t r = blockIdx.x;
  const float* lr = logits + r * ld;
  float m, s;
  row_lse(lr, V, &m, &s);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    lse[r] = l;
    const int32_t t = targets[r];
    losses[r] = t < 0 ? 0.0f : l - lr[t];
  }
}

__global__ void ce_bwd_kernel(const float* logits, const int32_t* targets, const float* lse, uint16_t* dl, float scale,
                              int64_t V, int64_t ld) {
  const int64_t r = blockIdx.x;
  const float* lr = logits + r * ld;
  uint16_t* dr = dl + r * ld;
  const int32_t t = targets[r];
  const float l = lse[r];
  for (int64_t c = threadIdx.x; c < ld; c += kThreads)
    dr[c] = (t < 0 || c >= V) ? 0 : f2bf((__expf(lr[c] - l) - (c == t ? 1.0f : 0.0f)) * scale);
}

__global__ void sum_squares_kernel(const float* g, int64_t n, double* out) {
  double s = 0.0;
  GRID_STRIDE(e, n) s += static_cast<double>(g[e]) * g[e];
  for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
  if ((threadIdx.x & 31) == 0) atomicAdd(out, s);
}

// Every parameter in one launch: element e belongs to the tensor whose [offsets[i], offsets[i+1])
// holds it (binary search in a shared copy of the table); decay[i] says whether it is decayed.
constexpr int kMaxTensors = 1024;
__global__ void adamw_kernel(const AdamWArgs a) {
  __shared__ int64_t off[kMaxTensors + 1];
  for (int i = threadIdx.x; i <= a.tensors; i += kThreads) off[i] = a.offsets[i];
  __syncthreads();
  const float step = a.lr / a.bc1, inv_sqrt_bc2 = rsqrtf(a.bc2);
  GRID_STRIDE(e, a.n) {
    int lo = 0, hi = a.tensors - 1;
    while (lo < hi) {
      const int mid = (lo + hi + 1) / 2;
      if (off[mid] <= e) lo = mid;
      else hi = mid - 1;
    }
    const float decay = a.decay[lo] ? 1.0f - a.lr * a.weight_decay : 1.0f;
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
  if (C < 1 || C > 6144) return invalid_argument("layernorm_fwd: C=" + std::to_string(C) + ", expected 1..6144");
  layernorm_fwd_kernel<<<static_cast<unsigned>((n + kWarps - 1) / kWarps), kThreads>>>(x, gamma, beta, y, mean, rstd,
                                                                                     n, static_cast<int>(C));
  return launched();
}
Status layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx_acc, float* dgamma, float* dbeta, int64_t n, int64_t C) {
  if (C < 1 || C > 6144) return invalid_argument("layernorm_bwd: C=" + std::to_string(C) + ", expected 1..6144");
  const int64_t blocks = std::min<int64_t>((n + kWarps - 1) / kWarps, 132 * 4);
  layernorm_bwd_kernel<<<static_cast<unsigned>(blocks), kThreads, static_cast<size_t>(2 * C) * 4>>>(
      x, gamma, mean, rstd, dy, dx_acc, dgamma, dbeta, n, static_cast<int>(C));
  return launched();
}
Status gelu_fwd(const float* x, uint16_t* y, int64_t n) {
  gelu_fwd_kernel<<<grid_for(n), kThreads>>>(x, y, n);
  return launched();
}
Status gelu_bwd(const float* x, const uint16_t* dy, uint16_t* dx, int64_t n) {
  gelu_bwd_kernel<<<grid_for(n), kThreads>>>(x, dy, dx, n);
  return launched();
}
Status layout_check(const char* who, int64_t count8, int64_t dh) {
  if (dh % 8 != 0 || count8 > 0x7fffffff)
    return invalid_argument(std::string(who) + ": dh=" + std::to_string(dh) + ", " + std::to_string(count8) +
                            " 16-byte chunks; expected dh % 8 == 0 and < 2^31 chunks");
  return Status::ok();
}
Status split_qkv(const uint16_t* qkv, uint16_t* q, uint16_t* k, uint16_t* v, int64_t B, int64_t T, int64_t Hq,
                 int64_t Hkv, int64_t dh) {
  const int64_t count = B * T * (Hq + 2 * Hkv) * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("split_qkv", count, dh));
  split_qkv_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(qkv), reinterpret_cast<uint4*>(q),
                                                  reinterpret_cast<uint4*>(k), reinterpret_cast<uint4*>(v),
                                                  static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(Hkv),
                                                  static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status merge_qkv(const uint16_t* dq, const uint16_t* dk, const uint16_t* dv, uint16_t* dqkv, int64_t B, int64_t T,
                 int64_t Hq, int64_t Hkv, int64_t dh) {
  const int64_t count = B * T * (Hq + 2 * Hkv) * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("merge_qkv", count, dh));
  merge_qkv_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(dq), reinterpret_cast<const uint4*>(dk),
                                                  reinterpret_cast<const uint4*>(dv), reinterpret_cast<uint4*>(dqkv),
                                                  static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(Hkv),
                                                  static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t B, int64_t H, int64_t T, int64_t dh) {
  const int64_t count = B * H * T * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("heads_to_tokens", count, dh));
  heads_to_tokens_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(o), reinterpret_cast<uint4*>(y),
                                                        static_cast<int>(T), static_cast<int>(H),
                                                        static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status tokens_to_heads(const float* y, uint16_t* o, int64_t B, int64_t H, int64_t T, int64_t dh) {
  const int64_t count = B * H * T * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("tokens_to_heads", count, dh));
  tokens_to_heads_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const float4*>(y), reinterpret_cast<uint4*>(o),
                                                        static_cast<int>(T), static_cast<int>(H),
                                                        static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status to_bf16(const float* src, uint16_t* dst, int64_t n) {
  to_bf16_kernel<<<grid_for(n), kThreads>>>(src, dst, n);
  return launched();
}
Status cross_entropy_fwd(const float* logits, const int32_t* targets, float* losses, float* lse, int64_t n, int64_t V,
                         int64_t ld) {
  ce_fwd_kernel<<<static_cast<unsigned>(n), kThreads>>>(logits, targets, losses, lse, V, ld);
  return launched();
}
Status cross_entropy_bwd(const float* logits, const int32_t* targets, const float* lse, uint16_t* dlogits, float scale,
                         int64_t n, int64_t V, int64_t ld) {
  ce_bwd_kernel<<<static_cast<unsigned>(n), kThreads>>>(logits, targets, lse, dlogits, scale, V, ld);
  return launched();
}
Status sum_squares(const float* g, int64_t n, double* sum_sq) {
  sum_squares_kernel<<<grid_for(n), kThreads>>>(g, n, sum_sq);
  return launched();
}
Status adamw(const AdamWArgs& a) {
  if (a.tensors < 1 || a.tensors > kMaxTensors || a.offsets == nullptr || a.decay == nullptr)
    return invalid_argument("adamw: tensors=" + std::to_string(a.tensors) + ", expected 1.." +
                            std::to_string(kMaxTensors) + " with offsets and decay flags");
  adamw_kernel<<<grid_for(a.n), kThreads>>>(a);
  return launched();
}

}  // namespace bna::model::cuda
