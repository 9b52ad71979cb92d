// Compressed butterfly forward on the GPU (prefill, Tq == Tk), the CPU path's semantics
// (src/attention/cpu/compressed.hpp): query at position i attends the raw keys [c, i], c = max(0,
// i - tail + 1), plus the means of the routed complete blocks j with (j + 1) * Bs <= c, one softmax.
// Three launches:
//   1. compressed_summarise_kernel: f32 means of every complete block of K and V (token-order sums,
//      one multiply by 1/Bs, as summarise_blocks on the CPU) into the workspace [B, nblk, Hkv, dh];
//   2. streams_fwd with W = tail - 1 and no landmarks or extras: the raw keys are exactly that band,
//      on tensor cores; it writes out and lse;
//   3. compressed_merge_kernel, one warp per query row: starts from the band's result as one
//      pseudo-key (running max = its lse, sum 1, accumulator = its output) and adds the routed
//      summaries by the online-softmax rule in f32, then writes out and lse. The band's output is
//      rounded to the dtype once before the merge (an extra rounding point the tests repeat).
#include <algorithm>
#include <string>

#include "attention/cuda/attn_bwd_launch.cuh"
#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {
namespace detail {
namespace {

struct CompressedParams {
  const uint16_t* q;
  uint16_t* o;
  float* lse;
  const float* sk;  // [B, nblk, Hkv, dh]
  const float* sv;
  const int32_t* indptr;  // [routing_heads, N + 1], absolute
  const int32_t* indices;
  int T, Hq, Hkv, group, routing_heads, Bs, N, nblk, tail;
  int64_t rows;
  float scale_log2;
};

template <bool BF16>
__global__ void compressed_summarise_kernel(const uint16_t* __restrict__ k, const uint16_t* __restrict__ v,
                                            float* __restrict__ sk, float* __restrict__ sv, int T, int Hkv, int dh,
                                            int Bs, int nblk) {
  const int64_t item = blockIdx.x;  // (b, j, hkv)
  const int hkv = static_cast<int>(item % Hkv);
  const int64_t bj = item / Hkv;
  const int j = static_cast<int>(bj % nblk);
  const int64_t b = bj / nblk;
  const float inv = 1.0f / static_cast<float>(Bs);
  for (int d = threadIdx.x; d < dh; d += blockDim.x) {
    const int64_t src = ((b * Hkv + hkv) * T + static_cast<int64_t>(j) * Bs) * dh + d;
    float ak = 0.0f, av = 0.0f;
    for (int r = 0; r < Bs; ++r) {
      ak += to_f32<BF16>(k[src + static_cast<int64_t>(r) * dh]);
      av += to_f32<BF16>(v[src + static_cast<int64_t>(r) * dh]);
    }
    const int64_t dst = (item)*dh + d;  // item = (b * nblk + j) * Hkv + hkv
    sk[dst] = ak * inv;
    sv[dst] = av * inv;
  }
}

template <int EPL>
__device__ __forceinline__ void load_f32_part(const float* p, float (&x)[EPL]) {
  if constexpr (EPL == 4) {
    const float4 u = __ldg(reinterpret_cast<const float4*>(p));
    x[0] = u.x; x[1] = u.y; x[2] = u.z; x[3] = u.w;
  } else {
    const float2 u = __ldg(reinterpret_cast<const float2*>(p));
    x[0] = u.x; x[1] = u.y;
  }
}

template <int DH, bool BF16>
__global__ void __launch_bounds__(kGatherWarps * 32) compressed_merge_kernel(const CompressedParams p) {
  constexpr int EPL = DH / 32;
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kGatherWarps + (threadIdx.x >> 5);
  if (row >= p.rows) return;
  const int T = p.T;
  const int i = static_cast<int>(row % T);
  const int64_t bh = row / T;
  const int b = static_cast<int>(bh / p.Hq), hq = static_cast<int>(bh % p.Hq), hkv = hq / p.group;
  const int c = max(0, i - p.tail + 1);
  const int rh = p.routing_heads == 1 ? 0 : hkv;
  const int at = rh * (p.N + 1) + i / p.Bs;
  const int e0 = p.indptr[at], e1 = p.indptr[at + 1];

  float q[EPL], acc[EPL];
  load_row_part<EPL, BF16>(p.q + row * DH + lane * EPL, q);
#pragma unroll
  for (int e = 0; e < EPL; ++e) q[e] *= p.scale_log2;
  load_row_part<EPL, BF16>(p.o + row * DH + lane * EPL, acc);
  const float lse_raw = p.lse[row];
  float m = lse_raw * 1.4426950408889634f, l = 1.0f;  // the band as one pseudo-key
  if (lse_raw == -INFINITY) {
    m = -INFINITY;
    l = 0.0f;
#pragma unroll
    for (int e = 0; e < EPL; ++e) acc[e] = 0.0f;
  }
  const int64_t sbase = (static_cast<int64_t>(b) * p.nblk) * p.Hkv + hkv;
  for (int x0 = e0; x0 < e1; x0 += 32) {
    const int blk = x0 + lane < e1 ? p.indices[x0 + lane] : -1;
    const bool ok = blk >= 0 && static_cast<int64_t>(blk + 1) * p.Bs <= c;
    unsigned valid = __ballot_sync(0xffffffffu, ok);
    while (valid != 0u) {
      const int src = __ffs(valid) - 1;
      valid &= valid - 1u;
      const int j = __shfl_sync(0xffffffffu, blk, src);
      const int64_t off = (sbase + static_cast<int64_t>(j) * p.Hkv) * DH + lane * EPL;
      float kx[EPL], vx[EPL];
      load_f32_part<EPL>(p.sk + off, kx);
      load_f32_part<EPL>(p.sv + off, vx);
      float s = 0.0f;
#pragma unroll
      for (int e = 0; e < EPL; ++e) s = fmaf(q[e], kx[e], s);
#pragma unroll
      for (int sh = 16; sh >= 1; sh >>= 1) s += __shfl_xor_sync(0xffffffffu, s, sh);
      const float mx = fmaxf(m, s);
      const float alpha = fast_exp2(m - mx), pj = fast_exp2(s - mx);
      l = l * alpha + pj;
#pragma unroll
      for (int e = 0; e < EPL; ++e) acc[e] = fmaf(pj, vx[e], acc[e] * alpha);
      m = mx;
    }
  }
  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  float out[EPL];
#pragma unroll
  for (int e = 0; e < EPL; ++e) out[e] = acc[e] * inv;
  uint16_t* orow = p.o + row * DH + lane * EPL;
  if constexpr (EPL == 4) {
    uint2 u;
    u.x = pack2<BF16>(out[0], out[1]);
    u.y = pack2<BF16>(out[2], out[3]);
    *reinterpret_cast<uint2*>(orow) = u;
  } else {
    *reinterpret_cast<unsigned*>(orow) = pack2<BF16>(out[0], out[1]);
  }
  if (lane == 0) p.lse[row] = l > 0.0f ? (m + __log2f(l)) * 0.69314718055994531f : -INFINITY;
}

}  // namespace
}  // namespace detail

size_t compressed_workspace_bytes(const AttnArgs& a, int64_t Bs) {
  if (Bs < 1) return 0;
  const size_t n = static_cast<size_t>(a.B * (a.T / Bs) * a.Hkv * a.dh);
  return 2 * detail::pad256(std::max<size_t>(n, 1) * 4);
}

Status compressed_fwd(const AttnArgs& a, const CompressedArgs& c, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("compressed_fwd", a));
  BNA_RETURN_IF_ERROR(detail::reject_cache_view("compressed_fwd", a));
  if (c.tail < 1) return invalid_argument("compressed_fwd: tail=" + std::to_string(c.tail) + ", expected tail >= 1");
  if (c.Bs < 1) return invalid_argument("compressed_fwd: Bs=" + std::to_string(c.Bs) + ", expected Bs >= 1");
  if (c.routing_heads != 1 && c.routing_heads != a.Hkv)
    return invalid_argument("compressed_fwd: routing_heads=" + std::to_string(c.routing_heads) + ", expected 1 or Hkv=" +
                            std::to_string(a.Hkv));
  const int64_t need_rows = (a.T - 1) / c.Bs + 1;
  if (c.N < need_rows)
    return invalid_argument("compressed_fwd: routing has N=" + std::to_string(c.N) + " block rows, expected >= ceil(T/Bs)=" +
                            std::to_string(need_rows));
  if (c.indptr == nullptr || c.indices == nullptr)
    return invalid_argument("compressed_fwd: indptr and indices must be non-null device int32 arrays");
  const size_t need = compressed_workspace_bytes(a, c.Bs);
  if (c.workspace == nullptr || c.workspace_bytes < need)
    return invalid_argument("compressed_fwd: workspace of " + std::to_string(c.workspace_bytes) + " bytes, expected >= " +
                            std::to_string(need) + " (compressed_workspace_bytes)");
  if ((reinterpret_cast<uintptr_t>(c.workspace) & 255u) != 0)
    return invalid_argument("compressed_fwd: workspace must be 256-byte aligned");
  auto s = static_cast<cudaStream_t>(stream);
  const int64_t nblk = a.T / c.Bs;
  float* sk = static_cast<float*>(c.workspace);
  float* sv = reinterpret_cast<float*>(static_cast<char*>(c.workspace) + need / 2);
  if (nblk > 0) {
    const int64_t items = a.B * nblk * a.Hkv;
    if (items > 0x7fffffff) return invalid_argument("compressed_fwd: B*(T/Bs)*Hkv=" + std::to_string(items) + ", expected < 2^31");
    const auto* k = static_cast<const uint16_t*>(a.k);
    const auto* v = static_cast<const uint16_t*>(a.v);
    const int threads = static_cast<int>(a.dh);
    if (a.dtype == DType::kBF16)
      detail::compressed_summarise_kernel<true><<<static_cast<unsigned>(items), threads, 0, s>>>(
          k, v, sk, sv, static_cast<int>(a.T), static_cast<int>(a.Hkv), static_cast<int>(a.dh), static_cast<int>(c.Bs),
          static_cast<int>(nblk));
    else
      detail::compressed_summarise_kernel<false><<<static_cast<unsigned>(items), threads, 0, s>>>(
          k, v, sk, sv, static_cast<int>(a.T), static_cast<int>(a.Hkv), static_cast<int>(a.dh), static_cast<int>(c.Bs),
          static_cast<int>(nblk));
    BNA_CUDA_TRY(cudaGetLastError());
  }
  BNA_RETURN_IF_ERROR(streams_fwd(a, std::min<int64_t>(c.tail - 1, a.T), 0, nullptr, 0, stream));
  detail::CompressedParams p{};
  p.q = static_cast<const uint16_t*>(a.q);
  p.o = static_cast<uint16_t*>(a.out);
  p.lse = a.lse;
  p.sk = sk;
  p.sv = sv;
  p.indptr = c.indptr;
  p.indices = c.indices;
  p.T = static_cast<int>(a.T);
  p.Hq = static_cast<int>(a.Hq);
  p.Hkv = static_cast<int>(a.Hkv);
  p.group = static_cast<int>(a.Hq / a.Hkv);
  p.routing_heads = static_cast<int>(c.routing_heads);
  p.Bs = static_cast<int>(std::min<int64_t>(c.Bs, int64_t{1} << 30));
  p.N = static_cast<int>(c.N);
  p.nblk = static_cast<int>(nblk);
  p.tail = static_cast<int>(std::min<int64_t>(c.tail, a.T + 1));
  p.rows = a.B * a.Hq * a.T;
  p.scale_log2 = detail::scale_log2_of(a);
  const int64_t grid = (p.rows + detail::kGatherWarps - 1) / detail::kGatherWarps;
  return detail::dispatch_dh_dtype(a, [&](auto dh, auto bf16) -> Status {
    detail::compressed_merge_kernel<decltype(dh)::value, decltype(bf16)::value>
        <<<static_cast<unsigned>(grid), detail::kGatherWarps * 32, 0, s>>>(p);
    BNA_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  });
}

}  // namespace bna::cuda
