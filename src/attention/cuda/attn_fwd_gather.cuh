// Row-list forward on CUDA cores: one warp per query row (b, hq, i) walks an explicit list of key
// entries, used for the gather path (neigh_idx [Hkv, T, D], -1 padded) and for permute-window union
// mode (entry (c, off) = perm_c[inv_c[i] + off], several cycles at once).
// Decisions a reader must know:
//  - Each lane owns dh/32 consecutive elements of q, the accumulator and every K/V row it reads
//    (8-byte loads at dh = 128), so a K row costs one coalesced 256-byte warp load and the score one
//    5-step shuffle reduction. Keys are taken 4 at a time: 4 independent loads and reductions in
//    flight, one online-softmax update per group (f32; P is NOT rounded to the dtype here).
//  - Lane e reads entry e of a 32-entry chunk; the valid keys (entry >= 0, key <= i) are found with a
//    ballot and broadcast by shuffle. Rows are multisets: a repeated entry is one softmax term per copy.
//  - Empty rows (no valid entry) write out = 0 and lse = -inf.
#pragma once

#include "attention/cuda/attn_fwd.cuh"

namespace bna::cuda::detail {

struct GatherParams {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  uint16_t* o;
  float* lse;
  int T, Hq, Hkv, group;
  int64_t rows;  // B * Hq * T
  float scale_log2;
  // gather
  const int32_t* neigh;  // [Hkv, T, D]
  int D;
  // permute-window union
  const int32_t* perm;  // [Hkv, ncyc, T]
  const int32_t* inv;   // [Hkv, ncyc, T]
  int ncyc, w, circular;
};

constexpr int kGatherWarps = 4;

template <bool BF16>
__device__ __forceinline__ float to_f32(uint16_t x) {
  if constexpr (BF16) return __uint_as_float(static_cast<unsigned>(x) << 16);
  else return __half2float(__ushort_as_half(x));
}

// EPL consecutive dtype elements at p (EPL = 2 or 4) as floats.
template <int EPL, bool BF16>
__device__ __forceinline__ void load_row_part(const uint16_t* p, float (&x)[EPL]) {
  if constexpr (EPL == 4) {
    const uint2 u = __ldg(reinterpret_cast<const uint2*>(p));
    x[0] = to_f32<BF16>(u.x & 0xffffu); x[1] = to_f32<BF16>(u.x >> 16);
    x[2] = to_f32<BF16>(u.y & 0xffffu); x[3] = to_f32<BF16>(u.y >> 16);
  } else {
    const unsigned u = __ldg(reinterpret_cast<const unsigned*>(p));
    x[0] = to_f32<BF16>(u & 0xffffu); x[1] = to_f32<BF16>(u >> 16);
  }
}

template <int DH, bool BF16, bool UNION>
__global__ void __launch_bounds__(kGatherWarps * 32) attn_fwd_gather_kernel(const GatherParams p) {
  constexpr int EPL = DH / 32;
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kGatherWarps + (threadIdx.x >> 5);
  if (row >= p.rows) return;  // whole warps only
  const int T = p.T;
  const int i = static_cast<int>(row % T);
  const int64_t bh = row / T;
  const int b = static_cast<int>(bh / p.Hq), hq = static_cast<int>(bh % p.Hq), hkv = hq / p.group;
  const uint16_t* kg = p.k + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH + lane * EPL;
  const uint16_t* vg = p.v + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH + lane * EPL;

  float q[EPL];
  load_row_part<EPL, BF16>(p.q + row * DH + lane * EPL, q);
#pragma unroll
  for (int e = 0; e < EPL; ++e) q[e] *= p.scale_log2;  // scores in log2 units
  float acc[EPL];
#pragma unroll
  for (int e = 0; e < EPL; ++e) acc[e] = 0.0f;
  float m = -INFINITY, l = 0.0f;

  int n_ent;
  const int32_t* nrow = nullptr;
  if constexpr (UNION) n_ent = p.ncyc * (2 * p.w + 1);
  else {
    n_ent = p.D;
    nrow = p.neigh + (static_cast<int64_t>(hkv) * T + i) * p.D;
  }
  auto entry = [&](int e) -> int {
    if constexpr (UNION) {
      const int span = 2 * p.w + 1;
      const int c = e / span, off = e % span - p.w;
      const int64_t base = (static_cast<int64_t>(hkv) * p.ncyc + c) * T;
      int r = p.inv[base + i] + off;
      if (p.circular) r = ((r % T) + T) % T;
      else if (r < 0 || r >= T) return -1;
      const int key = p.perm[base + r];
      return key <= i ? key : -1;
    } else {
      const int key = nrow[e];
      return key >= 0 && key <= i ? key : -1;
    }
  };

  for (int e0 = 0; e0 < n_ent; e0 += 32) {
    const int my = e0 + lane < n_ent ? entry(e0 + lane) : -1;
    unsigned valid = __ballot_sync(0xffffffffu, my >= 0);
    while (valid != 0u) {
      int key[4];  // `valid` is warp-uniform (a ballot), so every lane takes the same branches
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        key[g] = -1;
        if (valid != 0u) {
          const int src = __ffs(valid) - 1;
          valid &= valid - 1u;
          key[g] = __shfl_sync(0xffffffffu, my, src);
        }
      }
      float kx[4][EPL], vx[4][EPL], s[4];
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        const int64_t off = static_cast<int64_t>(key[g] >= 0 ? key[g] : 0) * DH;
        load_row_part<EPL, BF16>(kg + off, kx[g]);
        load_row_part<EPL, BF16>(vg + off, vx[g]);
      }
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        float d = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) d = fmaf(q[e], kx[g][e], d);
        s[g] = d;
      }
#pragma unroll
      for (int sh = 16; sh >= 1; sh >>= 1) {
#pragma unroll
        for (int g = 0; g < 4; ++g) s[g] += __shfl_xor_sync(0xffffffffu, s[g], sh);
      }
      float mx = m;
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        if (key[g] < 0) s[g] = -INFINITY;
        mx = fmaxf(mx, s[g]);
      }
      // key[0] is always valid here, so mx is finite.
      const float alpha = fast_exp2(m - mx);  // m = -inf -> 0
      m = mx;
      l *= alpha;
#pragma unroll
      for (int e = 0; e < EPL; ++e) acc[e] *= alpha;
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        const float pg = fast_exp2(s[g] - mx);
        l += pg;
#pragma unroll
        for (int e = 0; e < EPL; ++e) acc[e] = fmaf(pg, vx[g][e], acc[e]);
      }
    }
  }

  const float inv = l > 0.0f ? 1.0f / l : 0.0f;
  uint16_t* orow = p.o + row * DH + lane * EPL;
  if constexpr (EPL == 4) {
    uint2 u;
    u.x = pack2<BF16>(acc[0] * inv, acc[1] * inv);
    u.y = pack2<BF16>(acc[2] * inv, acc[3] * inv);
    *reinterpret_cast<uint2*>(orow) = u;
  } else {
    *reinterpret_cast<unsigned*>(orow) = pack2<BF16>(acc[0] * inv, acc[1] * inv);
  }
  if (lane == 0) p.lse[row] = l > 0.0f ? m * 0.69314718055994531f + logf(l) : -INFINITY;
}

}  // namespace bna::cuda::detail
