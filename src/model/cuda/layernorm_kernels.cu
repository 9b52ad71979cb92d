// LayerNorm forward and backward of the reference GPT's CUDA training step (API: gpt_kernels.hpp).
// One warp per row. Rows of C <= 1024 keep their 32 * KC values in registers (lane l holds columns
// l, l + 32, ...: coalesced), so x and dy are read once; wider rows take the plain loop.
// The backward sums dgamma / dbeta per lane in registers over all rows a warp takes, then once per
// block through shared memory and one global atomic per column: no per-element atomics.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "model/cuda/gpt_kernels.hpp"

namespace bna::model::cuda {
namespace {

constexpr int kThreads = 256, kWarps = kThreads / 32, kMaxC = 6144;

__device__ __forceinline__ uint16_t f2bf(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <int KC>
__global__ void __launch_bounds__(kThreads) ln_fwd_reg_kernel(const float* x, const float* g, const float* b,
                                                              uint16_t* y, float* mean, float* rstd, int64_t n, int C) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= n) return;
  const float* xr = x + r * C;
  float v[KC];
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < KC; ++k) {
    const int c = lane + 32 * k;
    v[k] = c < C ? xr[c] : 0.0f;
    s += v[k];
  }
  const float m = warp_sum(s) / static_cast<float>(C);
  float q = 0.0f;
#pragma unroll
  for (int k = 0; k < KC; ++k)
    if (lane + 32 * k < C) q += (v[k] - m) * (v[k] - m);
  const float rs = rsqrtf(warp_sum(q) / static_cast<float>(C) + 1e-5f);
#pragma unroll
  for (int k = 0; k < KC; ++k) {
    const int c = lane + 32 * k;
    if (c < C) y[r * C + c] = f2bf((v[k] - m) * rs * g[c] + b[c]);
  }
  if (lane == 0) {
    mean[r] = m;
    rstd[r] = rs;
  }
}

__global__ void ln_fwd_loop_kernel(const float* x, const float* g, const float* b, uint16_t* y, float* mean,
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

// Adds the block's per-column sums (sgb [2][C], zeroed) into dg, db.
__device__ void flush_gamma_beta(float* sgb, float* dg, float* db, int C) {
  __syncthreads();
  for (int c = threadIdx.x; c < C; c += kThreads) {
    atomicAdd(&dg[c], sgb[c]);
    atomicAdd(&db[c], sgb[C + c]);
  }
}

// Every load of a row (x, dy and the dx being accumulated) is issued before the first store, and all
// pointers are __restrict__: a load after a store to dx / dx_bf would otherwise wait for it (one
// memory round trip per column).
template <int KC>
__global__ void __launch_bounds__(kThreads) ln_bwd_reg_kernel(const float* __restrict__ x, const float* __restrict__ g,
                                                              const float* __restrict__ mean,
                                                              const float* __restrict__ rstd,
                                                              const float* __restrict__ dy, float* __restrict__ dx,
                                                              uint16_t* __restrict__ dx_bf, float* __restrict__ dg,
                                                              float* __restrict__ db, int64_t n, int C) {
  extern __shared__ float sgb[];  // [2][C]
  for (int c = threadIdx.x; c < 2 * C; c += kThreads) sgb[c] = 0.0f;
  const int lane = threadIdx.x & 31;
  float ag[KC], ab[KC];
#pragma unroll
  for (int k = 0; k < KC; ++k) ag[k] = ab[k] = 0.0f;
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < n;
       r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float m = mean[r], rs = rstd[r];
    float xh[KC], d[KC], o[KC];
    float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
    for (int k = 0; k < KC; ++k) {
      const int c = lane + 32 * k;
      const bool in = c < C;
      xh[k] = in ? (x[r * C + c] - m) * rs : 0.0f;
      d[k] = in ? dy[r * C + c] : 0.0f;
      o[k] = in ? dx[r * C + c] : 0.0f;
      const float dn = d[k] * (in ? g[c] : 0.0f);
      s1 += dn;
      s2 += dn * xh[k];
    }
    s1 = warp_sum(s1) / static_cast<float>(C);
    s2 = warp_sum(s2) / static_cast<float>(C);
#pragma unroll
    for (int k = 0; k < KC; ++k) {
      const int c = lane + 32 * k;
      if (c >= C) continue;
      o[k] += rs * (d[k] * g[c] - s1 - xh[k] * s2);
      ag[k] += d[k] * xh[k];
      ab[k] += d[k];
    }
#pragma unroll
    for (int k = 0; k < KC; ++k) {
      const int c = lane + 32 * k;
      if (c >= C) continue;
      dx[r * C + c] = o[k];
      if (dx_bf != nullptr) dx_bf[r * C + c] = f2bf(o[k]);
    }
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < KC; ++k) {
    const int c = lane + 32 * k;
    if (c < C) {
      atomicAdd(&sgb[c], ag[k]);
      atomicAdd(&sgb[C + c], ab[k]);
    }
  }
  flush_gamma_beta(sgb, dg, db, C);
}

__global__ void ln_bwd_loop_kernel(const float* x, const float* g, const float* mean, const float* rstd,
                                   const float* dy, float* dx, uint16_t* dx_bf, float* dg, float* db, int64_t n, int C) {
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
      const float o = dx[r * C + c] + rs * (d * g[c] - s1 - xh * s2);
      dx[r * C + c] = o;
      if (dx_bf != nullptr) dx_bf[r * C + c] = f2bf(o);
      atomicAdd(&sgb[c], d * xh);
      atomicAdd(&sgb[C + c], d);
    }
  }
  flush_gamma_beta(sgb, dg, db, C);
}

Status launched() {
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status check_c(const char* who, int64_t C) {
  if (C < 1 || C > kMaxC)
    return invalid_argument(std::string(who) + ": C=" + std::to_string(C) + ", expected 1.." + std::to_string(kMaxC));
  return Status::ok();
}

using FwdKernel = void (*)(const float*, const float*, const float*, uint16_t*, float*, float*, int64_t, int);
using BwdKernel = void (*)(const float*, const float*, const float*, const float*, const float*, float*, uint16_t*,
                           float*, float*, int64_t, int);

// KC for the register kernels: the smallest of {4, 8, 16, 24, 32} with 32 * KC >= C; 0 (the loop
// kernels) past 1024.
int kc_for(int64_t C) {
  for (int kc : {4, 8, 16, 24, 32})
    if (C <= 32 * kc) return kc;
  return 0;
}
FwdKernel fwd_kernel(int64_t C) {
  switch (kc_for(C)) {
    case 4: return ln_fwd_reg_kernel<4>;
    case 8: return ln_fwd_reg_kernel<8>;
    case 16: return ln_fwd_reg_kernel<16>;
    case 24: return ln_fwd_reg_kernel<24>;
    case 32: return ln_fwd_reg_kernel<32>;
    default: return ln_fwd_loop_kernel;
  }
}
BwdKernel bwd_kernel(int64_t C) {
  switch (kc_for(C)) {
    case 4: return ln_bwd_reg_kernel<4>;
    case 8: return ln_bwd_reg_kernel<8>;
    case 16: return ln_bwd_reg_kernel<16>;
    case 24: return ln_bwd_reg_kernel<24>;
    case 32: return ln_bwd_reg_kernel<32>;
    default: return ln_bwd_loop_kernel;
  }
}

}  // namespace

Status layernorm_fwd(const float* x, const float* gamma, const float* beta, uint16_t* y, float* mean, float* rstd,
                     int64_t n, int64_t C) {
  BNA_RETURN_IF_ERROR(check_c("layernorm_fwd", C));
  fwd_kernel(C)<<<static_cast<unsigned>((n + kWarps - 1) / kWarps), kThreads>>>(x, gamma, beta, y, mean,
                                                                                        rstd, n, static_cast<int>(C));
  return launched();
}

Status layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx_acc, uint16_t* dx_bf16, float* dgamma, float* dbeta, int64_t n, int64_t C) {
  BNA_RETURN_IF_ERROR(check_c("layernorm_bwd", C));
  // Two blocks per multiprocessor of an H100 (132): each warp takes n / 2112 rows.
  const int64_t blocks = std::min<int64_t>((n + kWarps - 1) / kWarps, 132 * 2);
  bwd_kernel(C)<<<static_cast<unsigned>(blocks), kThreads, static_cast<size_t>(2 * C) * 4>>>(
      x, gamma, mean, rstd, dy, dx_acc, dx_bf16, dgamma, dbeta, n, static_cast<int>(C));
  return launched();
}

}  // namespace bna::model::cuda
