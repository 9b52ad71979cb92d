// Split-K decode kernels (few queries against a long KV cache), dense and streams.
//
// Decode is a bandwidth problem (design-notes §5): every attended key and value is read once. The
// candidate keys of one KV head (the union over its G*Tq query rows) are numbered 0..n_cand-1:
//   streams: [landmarks m*S < maxpos - W] [band max(0, minpos - W) .. maxpos] [Tq x C extras]
//   dense:   [0 .. maxpos]
// and cut into equal chunks, one CTA per (chunk, b*Hkv + hkv). Inside a CTA each warp takes keys in
// turn; a key row is read by DH/8 lanes with 16-byte loads (2 keys per warp step at dh=128, 4 at 64),
// and those lanes keep, for kRowsPerPass query rows, an online-softmax state (max, sum in log2 units)
// and an f32 accumulator slice. Whether row r may use candidate c is decided per pair (band and
// landmark limits depend on the row's position; an extra belongs to one query position only).
// At the end the lane groups and warps are merged through shared memory and the chunk's partial
// (o unnormalised, max, sum) goes to the workspace; decode_combine_kernel merges the chunks with the
// LSE rule (an empty chunk has sum 0 and never produces NaN) and writes out and lse.
// Rows beyond kRowsPerPass (1 or 4) are handled by further passes over the chunk (K/V again from L2).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

namespace bna::cuda::detail {

constexpr int kDecThreads = 128;

struct DecParams {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  uint16_t* o;
  float* lse;
  int Hq, Hkv, G, Tq, Tk;
  int kv_rows;  // rows between KV heads in k, v and extra (>= Tk)
  // Paged K/V (pages != nullptr, launch.hpp AttnArgs::kv_pages): key j of batch b is row j & pmask
  // of page pages[b * page_stride + (j >> pshift)], [2][Hkv][P][DH]; k and v unused.
  const uint16_t* const* pages;
  int pshift, pmask, page_stride;
  int64_t page_v;
  int R;                // G * Tq rows per KV head (row r: query head hkv*G + r / Tq, query r % Tq)
  float scale_log2;
  bool dense;
  int W, S, C;
  const int32_t* extra;  // [Hkv, Tk, C] or nullptr
  int n_land, band_lo, n_band, n_cand;
  int chunk, n_chunks;
  float* part_o;  // [n_chunks, B*Hkv, R, DH]
  float* part_m;  // [n_chunks, B*Hkv, R]
  float* part_l;
};

__device__ __forceinline__ float2 to_f2(unsigned u, bool bf16) {
  if (bf16) return __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u));
  return __half22float2(*reinterpret_cast<const __half2*>(&u));
}

// kRowsPerPass query rows share each K/V load: 1 when a KV head serves one row (no GQA, Tq = 1),
// else 4 (more rows are further passes).
// PAGED: K/V through the page table (its own instantiation: a run-time branch cost dense decode ~6%).
template <int DH, bool BF16, int kRowsPerPass, bool PAGED>
__global__ void __launch_bounds__(kDecThreads) decode_partial_kernel(const DecParams p) {
  constexpr int LPK = DH / 8;        // lanes per key
  constexpr int KPW = 32 / LPK;      // keys per warp step
  constexpr int NW = kDecThreads / 32;
  constexpr int NSUB = NW * KPW;     // independent softmax states per row
  __shared__ float sq[kRowsPerPass][DH];
  __shared__ float s_m[NSUB][kRowsPerPass], s_l[NSUB][kRowsPerPass];
  __shared__ float s_o[NSUB][kRowsPerPass][DH];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int sub = lane / LPK, sl = lane % LPK;
  const int gsub = warp * KPW + sub;
  const int chunk_id = blockIdx.x, bkv = blockIdx.y;
  const int b = bkv / p.Hkv, hkv = bkv % p.Hkv;
  const int64_t kvbase = static_cast<int64_t>(bkv) * p.kv_rows * DH;
  const uint16_t* const* pt = PAGED ? p.pages + static_cast<int64_t>(b) * p.page_stride : nullptr;
  const int64_t hoff = PAGED ? static_cast<int64_t>(hkv) * (p.pmask + 1) * DH : 0;
  const int c_beg = chunk_id * p.chunk;
  const int c_end = min(p.n_cand, c_beg + p.chunk);
  const int minpos = p.Tk - p.Tq;
  const int32_t* ext = p.extra != nullptr ? p.extra + static_cast<int64_t>(hkv) * p.kv_rows * p.C : nullptr;

  for (int r0 = 0; r0 < p.R; r0 += kRowsPerPass) {
    __syncthreads();
    for (int x = tid; x < kRowsPerPass * DH; x += kDecThreads) {
      const int rr = x / DH, d = x % DH, r = r0 + rr;
      float val = 0.0f;
      if (r < p.R) {
        const int hq = hkv * p.G + r / p.Tq, t = r % p.Tq;
        const uint16_t u = p.q[((static_cast<int64_t>(b) * p.Hq + hq) * p.Tq + t) * DH + d];
        val = BF16 ? __bfloat162float(__ushort_as_bfloat16(u)) : __half2float(__ushort_as_half(u));
      }
      sq[rr][d] = val;
    }
    __syncthreads();
    float qr[kRowsPerPass][8];
#pragma unroll
    for (int rr = 0; rr < kRowsPerPass; ++rr)
#pragma unroll
      for (int e = 0; e < 8; ++e) qr[rr][e] = sq[rr][sl * 8 + e] * p.scale_log2;
    int pos[kRowsPerPass], tq[kRowsPerPass];
#pragma unroll
    for (int rr = 0; rr < kRowsPerPass; ++rr) {
      const int r = r0 + rr;
      tq[rr] = r < p.R ? r % p.Tq : -1;
      pos[rr] = r < p.R ? minpos + tq[rr] : -1;
    }
    float m[kRowsPerPass], l[kRowsPerPass], acc[kRowsPerPass][8];
#pragma unroll
    for (int rr = 0; rr < kRowsPerPass; ++rr) {
      m[rr] = -INFINITY;
      l[rr] = 0.0f;
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[rr][e] = 0.0f;
    }

    // Candidate c -> key, kind (0 dense, 1 landmark, 2 band, 3 extra) and owner query (extras);
    // the 16-byte K/V slices of the next candidate are loaded before the current one is used.
    struct Cand {
      int key, kind, owner;
      uint4 k, v;
    };
    auto fetch = [&](int c) {
      Cand x{-1, 0, -1, make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
      if (c >= c_end) return x;
      if (p.dense) {
        x.key = c;
      } else if (c < p.n_land) {
        x.key = c * p.S;
        x.kind = 1;
      } else if (c < p.n_land + p.n_band) {
        x.key = p.band_lo + (c - p.n_land);
        x.kind = 2;
      } else {
        const int e = c - p.n_land - p.n_band;
        x.owner = e / p.C;
        x.key = ext[static_cast<int64_t>(minpos + x.owner) * p.C + e % p.C];
        x.kind = 3;
      }
      if (x.key >= 0 && x.key < p.Tk) {
        if constexpr (PAGED) {
          const uint16_t* kr = pt[x.key >> p.pshift] + hoff + static_cast<int64_t>(x.key & p.pmask) * DH + sl * 8;
          x.k = *reinterpret_cast<const uint4*>(kr);
          x.v = *reinterpret_cast<const uint4*>(kr + p.page_v);
        } else {
          x.k = *reinterpret_cast<const uint4*>(p.k + kvbase + static_cast<int64_t>(x.key) * DH + sl * 8);
          x.v = *reinterpret_cast<const uint4*>(p.v + kvbase + static_cast<int64_t>(x.key) * DH + sl * 8);
        }
      } else {
        x.key = -1;
      }
      return x;
    };
    // All lanes of a warp run the same iterations (the shuffles below need the full warp).
    Cand cur = fetch(c_beg + warp * KPW + sub);
    for (int cb = c_beg + warp * KPW; cb < c_end; cb += NSUB) {
      const Cand nxt = fetch(cb + NSUB + sub);
      float kf[8], vf[8];
      {
        const unsigned* ku = reinterpret_cast<const unsigned*>(&cur.k);
        const unsigned* vu = reinterpret_cast<const unsigned*>(&cur.v);
#pragma unroll
        for (int x = 0; x < 4; ++x) {
          const float2 a = to_f2(ku[x], BF16), bb = to_f2(vu[x], BF16);
          kf[2 * x] = a.x; kf[2 * x + 1] = a.y;
          vf[2 * x] = bb.x; vf[2 * x + 1] = bb.y;
        }
      }
      const int key = cur.key;
#pragma unroll
      for (int rr = 0; rr < kRowsPerPass; ++rr) {
        float s = 0.0f;
#pragma unroll
        for (int e = 0; e < 8; ++e) s += qr[rr][e] * kf[e];
#pragma unroll
        for (int off = LPK / 2; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
        const int ps = pos[rr];
        bool ok = key >= 0 && ps >= 0 && key <= ps;
        if (cur.kind == 1) ok = ok && key < ps - p.W;
        else if (cur.kind == 2) ok = ok && key >= ps - p.W;
        else if (cur.kind == 3) ok = ok && cur.owner == tq[rr];
        if (ok) {
          const float mn = fmaxf(m[rr], s);
          const float alpha = exp2f(m[rr] - mn);  // m = -inf -> 0
          const float pe = exp2f(s - mn);
          l[rr] = l[rr] * alpha + pe;
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[rr][e] = acc[rr][e] * alpha + pe * vf[e];
          m[rr] = mn;
        }
      }
      cur = nxt;
    }
    // Merge the NSUB states of each row through shared memory.
#pragma unroll
    for (int rr = 0; rr < kRowsPerPass; ++rr) {
      if (sl == 0) { s_m[gsub][rr] = m[rr]; s_l[gsub][rr] = l[rr]; }
#pragma unroll
      for (int e = 0; e < 8; ++e) s_o[gsub][rr][sl * 8 + e] = acc[rr][e];
    }
    __syncthreads();
    for (int x = tid; x < kRowsPerPass * DH; x += kDecThreads) {
      const int rr = x / DH, d = x % DH, r = r0 + rr;
      if (r >= p.R) continue;
      float M = -INFINITY;
      for (int g = 0; g < NSUB; ++g) M = fmaxf(M, s_m[g][rr]);
      const float Mr = M == -INFINITY ? 0.0f : M;
      float L = 0.0f, O = 0.0f;
      for (int g = 0; g < NSUB; ++g) {
        const float w = exp2f(s_m[g][rr] - Mr);
        L += w * s_l[g][rr];
        O += w * s_o[g][rr][d];
      }
      const int64_t prow = (static_cast<int64_t>(chunk_id) * gridDim.y + bkv) * p.R + r;
      p.part_o[prow * DH + d] = O;
      if (d == 0) { p.part_m[prow] = M; p.part_l[prow] = L; }
    }
  }
}

template <int DH, bool BF16>
__global__ void decode_combine_kernel(const DecParams p, int BHkv) {
  // One warp per (bkv, r) row.
  const int64_t gw = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (gw >= static_cast<int64_t>(BHkv) * p.R) return;
  const int bkv = static_cast<int>(gw / p.R), r = static_cast<int>(gw % p.R);
  float M = -INFINITY;
  for (int c = 0; c < p.n_chunks; ++c) M = fmaxf(M, p.part_m[(static_cast<int64_t>(c) * BHkv + bkv) * p.R + r]);
  const float Mr = M == -INFINITY ? 0.0f : M;
  float L = 0.0f;
  float o[DH / 32];
#pragma unroll
  for (int e = 0; e < DH / 32; ++e) o[e] = 0.0f;
  for (int c = 0; c < p.n_chunks; ++c) {
    const int64_t prow = (static_cast<int64_t>(c) * BHkv + bkv) * p.R + r;
    const float w = exp2f(p.part_m[prow] - Mr);
    L += w * p.part_l[prow];
#pragma unroll
    for (int e = 0; e < DH / 32; ++e) o[e] += w * p.part_o[prow * DH + lane + 32 * e];
  }
  const float inv = L > 0.0f ? 1.0f / L : 0.0f;
  const int b = bkv / p.Hkv, hkv = bkv % p.Hkv;
  const int hq = hkv * p.G + r / p.Tq, t = r % p.Tq;
  const int64_t orow = (static_cast<int64_t>(b) * p.Hq + hq) * p.Tq + t;
#pragma unroll
  for (int e = 0; e < DH / 32; ++e) {
    const float val = o[e] * inv;
    p.o[orow * DH + lane + 32 * e] = BF16 ? __bfloat16_as_ushort(__float2bfloat16_rn(val))
                                          : __half_as_ushort(__float2half_rn(val));
  }
  if (lane == 0) p.lse[orow] = L > 0.0f ? (M + log2f(L)) * 0.69314718055994531f : -INFINITY;
}

}  // namespace bna::cuda::detail
