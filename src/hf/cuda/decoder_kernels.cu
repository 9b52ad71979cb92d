// The decoder's element-wise CUDA kernels (API and semantics: decoder_kernels.hpp). Memory-bound
// helpers around the cuBLAS projections: none of them is on the critical path at long context
// (attention and the GEMMs are), so they favour plain, checkable code over tuning.
#include <cuda_bf16.h>

#include <algorithm>

#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "hf/cuda/decoder_kernels.hpp"

namespace bna::hf::cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float bf2f(uint16_t u) { return __uint_as_float(static_cast<uint32_t>(u) << 16); }
__device__ __forceinline__ uint16_t f2bf(float f) {
  return __bfloat16_as_ushort(__float2bfloat16_rn(f));
}

unsigned blocks_for(int64_t count, int per_thread = 1) {
  const int64_t b = (count + int64_t{kThreads} * per_thread - 1) / (int64_t{kThreads} * per_thread);
  return static_cast<unsigned>(std::min<int64_t>(b, 65535 * 8));
}

// Block-wide sum, fixed tree order. All threads of the block must call it.
__device__ float block_sum(float v) {
  __shared__ float part[kThreads / 32];
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  float s = 0.0f;
  for (int w = 0; w < kThreads / 32; ++w) s += part[w];
  return s;
}

__global__ void embed_kernel(const int32_t* ids, const uint16_t* table, const uint16_t* pos_table, int64_t p0, float* x,
                             int64_t C) {
  const int64_t t = blockIdx.x;
  const uint16_t* row = table + static_cast<int64_t>(ids[t]) * C;
  const uint16_t* prow = pos_table != nullptr ? pos_table + (p0 + t) * C : nullptr;
  for (int64_t i = threadIdx.x; i < C; i += blockDim.x)
    x[t * C + i] = bf2f(row[i]) + (prow != nullptr ? bf2f(prow[i]) : 0.0f);
}

__global__ void rms_norm_kernel(const float* x, const float* w, uint16_t* y, int64_t C, float eps) {
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * C;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) ss += xr[i] * xr[i];
  const float rstd = rsqrtf(block_sum(ss) / static_cast<float>(C) + eps);
  uint16_t* yr = y + static_cast<int64_t>(blockIdx.x) * C;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) yr[i] = f2bf(w[i] * (xr[i] * rstd));
}

__global__ void layer_norm_kernel(const float* x, const float* w, const float* b, uint16_t* y, int64_t C, float eps) {
  const float* xr = x + static_cast<int64_t>(blockIdx.x) * C;
  float s = 0.0f;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) s += xr[i];
  const float mean = block_sum(s) / static_cast<float>(C);
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) {
    const float d = xr[i] - mean;
    ss += d * d;
  }
  const float rstd = rsqrtf(block_sum(ss) / static_cast<float>(C) + eps);
  uint16_t* yr = y + static_cast<int64_t>(blockIdx.x) * C;
  for (int64_t i = threadIdx.x; i < C; i += kThreads)
    yr[i] = f2bf((xr[i] - mean) * rstd * w[i] + (b != nullptr ? b[i] : 0.0f));
}

__global__ void add_kernel(float* x, const float* t, const float* bias, int64_t count, int64_t C) {
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads)
    x[e] += t[e] + (bias != nullptr ? bias[e % C] : 0.0f);
}

__global__ void add_norm_kernel(float* x, const float* t, const float* bias, const float* w, int64_t C, float eps) {
  const int64_t r = blockIdx.x;
  const float* tr = t + r * C;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < C; i += kThreads) {
    const float v = tr[i] + (bias != nullptr ? bias[i] : 0.0f);
    ss += v * v;
  }
  const float rstd = rsqrtf(block_sum(ss) / static_cast<float>(C) + eps);
  for (int64_t i = threadIdx.x; i < C; i += kThreads) {
    const float v = tr[i] + (bias != nullptr ? bias[i] : 0.0f);
    x[r * C + i] += w[i] * (v * rstd);
  }
}

// One warp per (token, head) of the Hq + 2 Hkv heads; the head vector lives in shared memory so
// RoPE can pair any two of its dims.
constexpr int kQkvWarps = 4;
constexpr int kMaxDh = 256;

__global__ void qkv_rope_kernel(const QkvArgs a) {
  __shared__ float buf[kQkvWarps][kMaxDh];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int64_t heads = a.Hq + 2 * a.Hkv;
  const int64_t item = static_cast<int64_t>(blockIdx.x) * kQkvWarps + warp;
  if (item >= a.n * heads) return;
  const int64_t t = item / heads, h = item % heads;
  const int dh = static_cast<int>(a.dh);
  const int64_t col0 = h * a.dh;
  const float* src = a.qkv + t * heads * a.dh + col0;
  float* v = buf[warp];
  float ss = 0.0f;
  for (int j = lane; j < dh; j += 32) {
    const float e = src[j] + (a.bias != nullptr ? a.bias[col0 + j] : 0.0f);
    v[j] = e;
    ss += e * e;
  }
  const bool is_q = h < a.Hq, is_k = !is_q && h < a.Hq + a.Hkv;
  const float* nw = is_q ? a.q_norm : (is_k ? a.k_norm : nullptr);
  if (nw != nullptr) {
    for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float rstd = rsqrtf(ss / static_cast<float>(dh) + a.eps);
    __syncwarp();
    for (int j = lane; j < dh; j += 32) v[j] = nw[j] * (v[j] * rstd);
  }
  __syncwarp();
  if ((is_q || is_k) && a.rotary_dim > 0) {
    const int half = static_cast<int>(a.rotary_dim / 2);
    const float pos = static_cast<float>(a.p0 + t);
    float r1[kMaxDh / 64], r2[kMaxDh / 64];
    int k = 0;
    for (int i = lane; i < half; i += 32, ++k) {
      const int ia = a.interleaved ? 2 * i : i, ib = a.interleaved ? 2 * i + 1 : i + half;
      const float ang = a.inv_freq[i] * pos;  // fp32 product, as the CPU model and transformers
      const float cs = static_cast<float>(cos(static_cast<double>(ang)));
      const float sn = static_cast<float>(sin(static_cast<double>(ang)));
      r1[k] = v[ia] * cs - v[ib] * sn;
      r2[k] = v[ib] * cs + v[ia] * sn;
    }
    __syncwarp();
    k = 0;
    for (int i = lane; i < half; i += 32, ++k) {
      v[a.interleaved ? 2 * i : i] = r1[k];
      v[a.interleaved ? 2 * i + 1 : i + half] = r2[k];
    }
    __syncwarp();
  }
  uint16_t* dst;
  const int64_t row = a.ring > 0 ? (a.p0 + t) % a.ring : a.p0 + t;
  if (is_q) dst = a.q + (h * a.n + t) * a.dh;
  else if (a.pages != nullptr)  // page [2][Hkv][P][dh]: K head h - Hq, V head h - Hq - Hkv after the K rows
    dst = a.pages[row / a.page] + ((h - a.Hq) * a.page + row % a.page) * a.dh;
  else if (is_k) dst = a.k_cache + ((h - a.Hq) * a.cap + row) * a.dh;
  else dst = a.v_cache + ((h - a.Hq - a.Hkv) * a.cap + row) * a.dh;
  for (int j = lane; j < dh; j += 32) dst[j] = f2bf(v[j]);
}

// 8 bf16 (16 bytes) per thread.
__global__ void heads_to_tokens_kernel(const uint4* o, uint4* y, int64_t H, int64_t n, int64_t dh8) {
  const int64_t count = H * n * dh8;
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const int64_t j = e % dh8, t = (e / dh8) % n, h = e / (dh8 * n);
    y[(t * H + h) * dh8 + j] = o[e];
  }
}

__global__ void swiglu_kernel(const uint16_t* gu, uint16_t* y, int64_t n, int64_t I) {
  const int64_t count = n * I;
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const int64_t t = e / I, i = e % I;
    const float g = bf2f(gu[t * 2 * I + i]), u = bf2f(gu[t * 2 * I + I + i]);
    y[e] = f2bf(g / (1.0f + __expf(-g)) * u);
  }
}

// One thread per (head, block, dim).
__global__ void block_means_kernel(const BlockMeanArgs a) {
  const int64_t count = a.Hkv * (a.j1 - a.j0) * a.dh;
  const float inv = 1.0f / static_cast<float>(a.Bs);
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const int64_t d = e % a.dh, j = a.j0 + (e / a.dh) % (a.j1 - a.j0), h = e / (a.dh * (a.j1 - a.j0));
    float acc = 0.0f;
    for (int64_t t = 0; t < a.Bs; ++t) {
      const int64_t r = j * a.Bs + t;
      acc += bf2f(a.src[(h * a.src_rows + (a.ring > 0 ? r % a.ring : r)) * a.dh + d]);
    }
    a.dst[(h * a.dst_rows + j) * a.dh + d] = f2bf(acc * inv);
  }
}

// 8 bf16 per thread.
__global__ void fill_ring_kernel(const uint4* src, uint4* dst, int64_t Hkv, int64_t dh8, int64_t src_rows,
                                 int64_t ring, int64_t r0, int64_t r1) {
  const int64_t count = Hkv * (r1 - r0) * dh8;
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const int64_t d = e % dh8, r = r0 + (e / dh8) % (r1 - r0), h = e / (dh8 * (r1 - r0));
    dst[(h * ring + r % ring) * dh8 + d] = src[(h * src_rows + r) * dh8 + d];
  }
}

__global__ void gather_compressed_kernel(const GatherArgs a) {
  const int64_t dh8 = a.dh / 8, rows = a.nr + a.n_raw, count = a.Hkv * rows * dh8;
  const uint4* sum = reinterpret_cast<const uint4*>(a.sum);
  const uint4* ring = reinterpret_cast<const uint4*>(a.ring);
  uint4* dst = reinterpret_cast<uint4*>(a.dst);
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const int64_t d = e % dh8, r = (e / dh8) % rows, h = e / (dh8 * rows);
    dst[(h * a.dst_rows + r) * dh8 + d] =
        r < a.nr ? sum[(h * a.sum_rows + a.blocks[r]) * dh8 + d]
                 : ring[(h * a.ring_rows + (a.c + r - a.nr) % a.ring_rows) * dh8 + d];
  }
}

__global__ void bias_gelu_kernel(const float* u, const float* bias, uint16_t* y, int64_t count, int64_t I) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f;
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    const float v = u[e] + (bias != nullptr ? bias[e % I] : 0.0f);
    y[e] = f2bf(0.5f * v * (1.0f + tanhf(kSqrt2OverPi * (v + 0.044715f * v * v * v))));
  }
}

// One block of 1024 threads: strided scan, then a shared-memory tree; ties keep the lower index.
constexpr int kArgmaxThreads = 1024;
__global__ void argmax_kernel(const float* x, int64_t n, int32_t* out) {
  __shared__ float sv[kArgmaxThreads];
  __shared__ int64_t si[kArgmaxThreads];
  float best = -INFINITY;
  int64_t bi = -1;
  for (int64_t e = threadIdx.x; e < n; e += kArgmaxThreads) {
    const float v = x[e];
    if (v > best || (bi < 0 && !(v != v))) {  // first number seen, or strictly larger (NaN never)
      best = v;
      bi = e;
    }
  }
  sv[threadIdx.x] = best;
  si[threadIdx.x] = bi;
  __syncthreads();
  for (int w = kArgmaxThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      const float v2 = sv[threadIdx.x + w];
      const int64_t i2 = si[threadIdx.x + w];
      if (i2 >= 0 && (si[threadIdx.x] < 0 || v2 > sv[threadIdx.x] || (v2 == sv[threadIdx.x] && i2 < si[threadIdx.x]))) {
        sv[threadIdx.x] = v2;
        si[threadIdx.x] = i2;
      }
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) *out = static_cast<int32_t>(si[0] < 0 ? 0 : si[0]);
}

__device__ __forceinline__ uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

__global__ void fill_bf16_kernel(uint16_t* dst, int64_t count, uint64_t seed, float stddev, float value) {
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads) {
    if (stddev == 0.0f) {
      dst[e] = f2bf(value);
      continue;
    }
    const uint64_t r = mix64(seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(e + 1));
    const float u1 = (static_cast<float>(r >> 40) + 1.0f) * 0x1.0p-24f;  // (0, 1]
    const float u2 = static_cast<float>((r >> 16) & 0xFFFFFFu) * 0x1.0p-24f;
    dst[e] = f2bf(stddev * sqrtf(-2.0f * __logf(u1)) * __cosf(6.2831853f * u2));
  }
}

__global__ void fill_f32_kernel(float* dst, int64_t count, float value) {
  for (int64_t e = blockIdx.x * int64_t{kThreads} + threadIdx.x; e < count; e += int64_t{gridDim.x} * kThreads)
    dst[e] = value;
}

Status bad(const char* who, const std::string& what) { return invalid_argument(std::string(who) + ": " + what); }

}  // namespace

Status embed(const int32_t* ids, const uint16_t* table, const uint16_t* pos_table, int64_t p0, float* x, int64_t n,
             int64_t C, void* stream) {
  if (n < 1 || n > 0x7fffffff || C < 1 || p0 < 0)
    return bad("embed", "n=" + std::to_string(n) + " C=" + std::to_string(C) + " p0=" + std::to_string(p0));
  embed_kernel<<<static_cast<unsigned>(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(ids, table, pos_table, p0,
                                                                                            x, C);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status rms_norm(const float* x, const float* w, uint16_t* y, int64_t n, int64_t C, float eps, void* stream) {
  if (n < 1 || n > 0x7fffffff || C < 1) return bad("rms_norm", "n=" + std::to_string(n) + " C=" + std::to_string(C));
  rms_norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, w, y, C, eps);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status layer_norm(const float* x, const float* w, const float* b, uint16_t* y, int64_t n, int64_t C, float eps,
                  void* stream) {
  if (n < 1 || n > 0x7fffffff || C < 1) return bad("layer_norm", "n=" + std::to_string(n) + " C=" + std::to_string(C));
  layer_norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, w, b, y, C, eps);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status add_residual(float* x, const float* t, const float* bias, const float* w, int64_t n, int64_t C, float eps,
                    void* stream) {
  if (n < 1 || n > 0x7fffffff || C < 1) return bad("add_residual", "n=" + std::to_string(n) + " C=" + std::to_string(C));
  auto s = static_cast<cudaStream_t>(stream);
  if (w != nullptr) add_norm_kernel<<<static_cast<unsigned>(n), kThreads, 0, s>>>(x, t, bias, w, C, eps);
  else add_kernel<<<blocks_for(n * C, 4), kThreads, 0, s>>>(x, t, bias, n * C, C);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status qkv_rope(const QkvArgs& a, void* stream) {
  if (a.dh < 2 || a.dh > kMaxDh || a.dh % 2 != 0 || a.rotary_dim < 0 || a.rotary_dim > a.dh || a.rotary_dim % 2 != 0 ||
      (a.rotary_dim > 0 && a.inv_freq == nullptr))
    return bad("qkv_rope", "dh=" + std::to_string(a.dh) + " rotary_dim=" + std::to_string(a.rotary_dim) +
                               ", expected even dh <= 256 and even rotary_dim <= dh (with inv_freq)");
  if (a.pages != nullptr && (a.page < 1 || a.ring != 0))
    return bad("qkv_rope", "page=" + std::to_string(a.page) + " ring=" + std::to_string(a.ring) +
                               ", expected a page of >= 1 rows and no ring with a page table");
  if (a.n < 1 || a.p0 < 0 || (a.ring == 0 && a.p0 + a.n > a.cap) || (a.ring > 0 && (a.ring != a.cap || a.n > a.ring)))
    return bad("qkv_rope", "n=" + std::to_string(a.n) + " at p0=" + std::to_string(a.p0) + " in a cache of " +
                               std::to_string(a.cap) + " rows (ring " + std::to_string(a.ring) + ")");
  const int64_t items = a.n * (a.Hq + 2 * a.Hkv);
  const int64_t grid = (items + kQkvWarps - 1) / kQkvWarps;
  if (grid > 0x7fffffff) return bad("qkv_rope", "n*(Hq+2Hkv)=" + std::to_string(items) + " too large");
  qkv_rope_kernel<<<static_cast<unsigned>(grid), kQkvWarps * 32, 0, static_cast<cudaStream_t>(stream)>>>(a);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status block_means(const BlockMeanArgs& a, void* stream) {
  if (a.Bs < 1 || a.j1 < a.j0 || a.j0 < 0 || a.j1 > a.dst_rows)
    return bad("block_means", "Bs=" + std::to_string(a.Bs) + " blocks [" + std::to_string(a.j0) + ", " +
                                  std::to_string(a.j1) + ") of " + std::to_string(a.dst_rows));
  if (a.j1 == a.j0) return Status::ok();
  block_means_kernel<<<blocks_for(a.Hkv * (a.j1 - a.j0) * a.dh), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(a);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status fill_ring(const uint16_t* src, uint16_t* dst, int64_t Hkv, int64_t dh, int64_t src_rows, int64_t ring,
                 int64_t r0, int64_t r1, void* stream) {
  if (dh % 8 != 0 || ring < 1 || r0 < 0 || r1 < r0 || r1 > src_rows || r1 - r0 > ring)
    return bad("fill_ring", "dh=" + std::to_string(dh) + " ring=" + std::to_string(ring) + " rows [" +
                                std::to_string(r0) + ", " + std::to_string(r1) + ") of " + std::to_string(src_rows));
  if (r1 == r0) return Status::ok();
  fill_ring_kernel<<<blocks_for(Hkv * (r1 - r0) * dh / 8), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint4*>(src), reinterpret_cast<uint4*>(dst), Hkv, dh / 8, src_rows, ring, r0, r1);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status gather_compressed(const GatherArgs& a, void* stream) {
  if (a.dh % 8 != 0 || a.nr < 0 || a.n_raw < 1 || a.n_raw > a.ring_rows || a.nr + a.n_raw > a.dst_rows)
    return bad("gather_compressed", "dh=" + std::to_string(a.dh) + " nr=" + std::to_string(a.nr) + " n_raw=" +
                                        std::to_string(a.n_raw) + " ring=" + std::to_string(a.ring_rows) +
                                        " dst_rows=" + std::to_string(a.dst_rows));
  gather_compressed_kernel<<<blocks_for(a.Hkv * (a.nr + a.n_raw) * a.dh / 8), kThreads, 0,
                             static_cast<cudaStream_t>(stream)>>>(a);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t H, int64_t n, int64_t dh, void* stream) {
  if (dh % 8 != 0) return bad("heads_to_tokens", "dh=" + std::to_string(dh) + ", expected a multiple of 8");
  heads_to_tokens_kernel<<<blocks_for(H * n * dh / 8, 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
      reinterpret_cast<const uint4*>(o), reinterpret_cast<uint4*>(y), H, n, dh / 8);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status swiglu(const uint16_t* gu, uint16_t* y, int64_t n, int64_t I, void* stream) {
  swiglu_kernel<<<blocks_for(n * I, 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(gu, y, n, I);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status bias_gelu(const float* u, const float* bias, uint16_t* y, int64_t n, int64_t I, void* stream) {
  if (n < 1 || I < 1) return bad("bias_gelu", "n=" + std::to_string(n) + " I=" + std::to_string(I));
  bias_gelu_kernel<<<blocks_for(n * I, 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(u, bias, y, n * I, I);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status argmax(const float* x, int64_t n, int32_t* out, void* stream) {
  if (n < 1 || n > 0x7fffffff) return bad("argmax", "n=" + std::to_string(n) + ", expected 1 <= n < 2^31");
  argmax_kernel<<<1, kArgmaxThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n, out);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status fill_bf16(uint16_t* dst, int64_t count, uint64_t seed, float stddev, float value, void* stream) {
  if (count <= 0) return Status::ok();
  fill_bf16_kernel<<<blocks_for(count, 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(dst, count, seed, stddev,
                                                                                           value);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status fill_f32(float* dst, int64_t count, float value, void* stream) {
  if (count <= 0) return Status::ok();
  fill_f32_kernel<<<blocks_for(count, 4), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(dst, count, value);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace bna::hf::cuda
