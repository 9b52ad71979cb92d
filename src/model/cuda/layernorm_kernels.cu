// LayerNorm forward and backward of the reference GPT's CUDA training step (API: gpt_kernels.hpp).
// One warp per row. Rows of C <= 1024 (C % 4 == 0) keep their values in registers, lane l holding
// columns 4l .. 4l + 3, + 128, ... (16-byte loads, coalesced), so x and dy are read once; other rows
// take the plain loop.
// The backward sums dgamma / dbeta per lane in registers over all rows a warp takes, then once per
// block through shared memory and one global atomic per column: no per-element atomics.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "model/cuda/gpt_kernels.hpp"
#include "model/cuda/kernel_common.cuh"

namespace bna::model::cuda {
namespace {

using common::f2bf;
using common::kThreads;
using common::launched;
constexpr int kWarps = kThreads / 32, kMaxC = 6144;

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float4 ld4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ __forceinline__ uint2 bf4(float a, float b, float c, float d) {
  return make_uint2(static_cast<uint32_t>(f2bf(a)) | (static_cast<uint32_t>(f2bf(b)) << 16),
                    static_cast<uint32_t>(f2bf(c)) | (static_cast<uint32_t>(f2bf(d)) << 16));
}

template <int KV>
__global__ void __launch_bounds__(kThreads) ln_fwd_reg_kernel(const float* __restrict__ x, const float* __restrict__ g,
                                                              const float* __restrict__ b, uint16_t* __restrict__ y,
                                                              float* __restrict__ mean, float* __restrict__ rstd,
                                                              int64_t n, int C) {
  const int lane = threadIdx.x & 31;
  const int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5);
  if (r >= n) return;
  const float* xr = x + r * C;
  float4 v[KV];
  float s = 0.0f;
#pragma unroll
  for (int k = 0; k < KV; ++k) {
    const int c = 4 * lane + 128 * k;
    v[k] = c < C ? ld4(xr + c) : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    s += (v[k].x + v[k].y) + (v[k].z + v[k].w);
  }
  const float m = warp_sum(s) / static_cast<float>(C);
  float q = 0.0f;
#pragma unroll
  for (int k = 0; k < KV; ++k)
    if (4 * lane + 128 * k < C)
      q += (v[k].x - m) * (v[k].x - m) + (v[k].y - m) * (v[k].y - m) + (v[k].z - m) * (v[k].z - m) +
           (v[k].w - m) * (v[k].w - m);
  const float rs = rsqrtf(warp_sum(q) / static_cast<float>(C) + 1e-5f);
#pragma unroll
  for (int k = 0; k < KV; ++k) {
    const int c = 4 * lane + 128 * k;
    if (c >= C) continue;
    const float4 gg = ld4(g + c), bb = ld4(b + c);
    *reinterpret_cast<uint2*>(y + r * C + c) =
        bf4((v[k].x - m) * rs * gg.x + bb.x, (v[k].y - m) * rs * gg.y + bb.y, (v[k].z - m) * rs * gg.z + bb.z,
            (v[k].w - m) * rs * gg.w + bb.w);
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
template <int KV>
__global__ void __launch_bounds__(kThreads) ln_bwd_reg_kernel(const float* __restrict__ x, const float* __restrict__ g,
                                                              const float* __restrict__ mean,
                                                              const float* __restrict__ rstd,
                                                              const float* __restrict__ dy, float* __restrict__ dx,
                                                              uint16_t* __restrict__ dx_bf, float* __restrict__ dg,
                                                              float* __restrict__ db, int64_t n, int C) {
  extern __shared__ float sgb[];  // [2][C]
  for (int c = threadIdx.x; c < 2 * C; c += kThreads) sgb[c] = 0.0f;
  const int lane = threadIdx.x & 31;
  float4 ag[KV], ab[KV];
#pragma unroll
  for (int k = 0; k < KV; ++k) ag[k] = ab[k] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kWarps + (threadIdx.x >> 5); r < n;
       r += static_cast<int64_t>(gridDim.x) * kWarps) {
    const float m = mean[r], rs = rstd[r];
    float4 xh[KV], d[KV], o[KV];
    float s1 = 0.0f, s2 = 0.0f;
#pragma unroll
    for (int k = 0; k < KV; ++k) {
      const int c = 4 * lane + 128 * k;
      const float4 z = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      const bool in = c < C;
      const float4 xv = in ? ld4(x + r * C + c) : z, gg = in ? ld4(g + c) : z;
      d[k] = in ? ld4(dy + r * C + c) : z;
      o[k] = in ? ld4(dx + r * C + c) : z;
      xh[k] = make_float4((xv.x - m) * rs, (xv.y - m) * rs, (xv.z - m) * rs, (xv.w - m) * rs);
      s1 += d[k].x * gg.x + d[k].y * gg.y + d[k].z * gg.z + d[k].w * gg.w;
      s2 += d[k].x * gg.x * xh[k].x + d[k].y * gg.y * xh[k].y + d[k].z * gg.z * xh[k].z + d[k].w * gg.w * xh[k].w;
    }
    s1 = warp_sum(s1) / static_cast<float>(C);
    s2 = warp_sum(s2) / static_cast<float>(C);
#pragma unroll
    for (int k = 0; k < KV; ++k) {
      const int c = 4 * lane + 128 * k;
      if (c >= C) continue;
      const float4 gg = ld4(g + c);
      o[k].x += rs * (d[k].x * gg.x - s1 - xh[k].x * s2);
      o[k].y += rs * (d[k].y * gg.y - s1 - xh[k].y * s2);
      o[k].z += rs * (d[k].z * gg.z - s1 - xh[k].z * s2);
      o[k].w += rs * (d[k].w * gg.w - s1 - xh[k].w * s2);
      ag[k].x += d[k].x * xh[k].x;
      ag[k].y += d[k].y * xh[k].y;
      ag[k].z += d[k].z * xh[k].z;
      ag[k].w += d[k].w * xh[k].w;
      ab[k].x += d[k].x;
      ab[k].y += d[k].y;
      ab[k].z += d[k].z;
      ab[k].w += d[k].w;
    }
#pragma unroll
    for (int k = 0; k < KV; ++k) {
      const int c = 4 * lane + 128 * k;
      if (c >= C) continue;
      *reinterpret_cast<float4*>(dx + r * C + c) = o[k];
      if (dx_bf != nullptr) *reinterpret_cast<uint2*>(dx_bf + r * C + c) = bf4(o[k].x, o[k].y, o[k].z, o[k].w);
    }
  }
  __syncthreads();
#pragma unroll
  for (int k = 0; k < KV; ++k) {
    const int c = 4 * lane + 128 * k;
    if (c >= C) continue;
    const float a4[4] = {ag[k].x, ag[k].y, ag[k].z, ag[k].w}, b4[4] = {ab[k].x, ab[k].y, ab[k].z, ab[k].w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      atomicAdd(&sgb[c + j], a4[j]);
      atomicAdd(&sgb[C + c + j], b4[j]);
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

Status check_c(const char* who, int64_t C) {
  if (C < 1 || C > kMaxC)
    return invalid_argument(std::string(who) + ": C=" + std::to_string(C) + ", expected 1.." + std::to_string(kMaxC));
  return Status::ok();
}

using FwdKernel = void (*)(const float*, const float*, const float*, uint16_t*, float*, float*, int64_t, int);
using BwdKernel = void (*)(const float*, const float*, const float*, const float*, const float*, float*, uint16_t*,
                           float*, float*, int64_t, int);

// KV (float4 per lane) for the register kernels: the smallest of {1, 2, 4, 6, 8} with 128 * KV >= C,
// for C % 4 == 0 and 16-byte aligned buffers (rows of C % 4 == 0 floats stay aligned; the bf16 ones
// need 8 bytes, given by the same test); 0 (the loop kernels) otherwise or past 1024.
int kv_for(int64_t C, std::initializer_list<const void*> ptrs) {
  if (C % 4 != 0) return 0;
  for (const void* p : ptrs)
    if (p != nullptr && (reinterpret_cast<uintptr_t>(p) & 15u) != 0) return 0;
  for (int kv : {1, 2, 4, 6, 8})
    if (C <= 128 * kv) return kv;
  return 0;
}
FwdKernel fwd_kernel(int kv) {
  switch (kv) {
    case 1: return ln_fwd_reg_kernel<1>;
    case 2: return ln_fwd_reg_kernel<2>;
    case 4: return ln_fwd_reg_kernel<4>;
    case 6: return ln_fwd_reg_kernel<6>;
    case 8: return ln_fwd_reg_kernel<8>;
    default: return ln_fwd_loop_kernel;
  }
}
BwdKernel bwd_kernel(int kv) {
  switch (kv) {
    case 1: return ln_bwd_reg_kernel<1>;
    case 2: return ln_bwd_reg_kernel<2>;
    case 4: return ln_bwd_reg_kernel<4>;
    case 6: return ln_bwd_reg_kernel<6>;
    case 8: return ln_bwd_reg_kernel<8>;
    default: return ln_bwd_loop_kernel;
  }
}

}  // namespace

Status layernorm_fwd(const float* x, const float* gamma, const float* beta, uint16_t* y, float* mean, float* rstd,
                     int64_t n, int64_t C) {
  BNA_RETURN_IF_ERROR(check_c("layernorm_fwd", C));
  fwd_kernel(kv_for(C, {x, gamma, beta, y}))<<<static_cast<unsigned>((n + kWarps - 1) / kWarps), kThreads>>>(x, gamma, beta, y, mean,
                                                                                        rstd, n, static_cast<int>(C));
  return launched();
}

Status layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                     float* dx_acc, uint16_t* dx_bf16, float* dgamma, float* dbeta, int64_t n, int64_t C) {
  BNA_RETURN_IF_ERROR(check_c("layernorm_bwd", C));
  // Two blocks per multiprocessor of an H100 (132): each warp takes n / 2112 rows.
  const int64_t blocks = std::min<int64_t>((n + kWarps - 1) / kWarps, 132 * 2);
  bwd_kernel(kv_for(C, {x, gamma, dy, dx_acc, dx_bf16}))<<<static_cast<unsigned>(blocks), kThreads, static_cast<size_t>(2 * C) * 4>>>(
      x, gamma, mean, rstd, dy, dx_acc, dx_bf16, dgamma, dbeta, n, static_cast<int>(C));
  return launched();
}

}  // namespace bna::model::cuda
