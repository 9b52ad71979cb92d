// Tensor-core forward for graphs whose keys come in 64-row tiles that are not a contiguous band of the
// query tile: block-sparse (BSR rows of key blocks) and permute-window (a band of ranks in a cycle's
// order). Same tile machinery as attn_fwd_m16.cuh (64 query rows per CTA, 4 warps x 16 rows, Q in
// registers, K/V double-buffered by cp.async into XOR-swizzled shared rows, mma.sync m16n8k16, online
// softmax in f32 in log2 units, P rounded to the dtype before P V).
// Decisions a reader must know:
//  - A tile is described by the key POSITION of each of its 64 rows (sKpos, -1 = none, zero-filled)
//    and the query positions by sQpos; the mask is kpos >= 0 && kpos <= qpos (causality on original
//    positions), plus |rank_k - rank_q| <= w for permute-window. Block-sparse tiles that lie wholly
//    below the query tile and inside their block run unmasked.
//  - Block-sparse: a query tile is one 64-row slice of ONE query block (Bs > 64: ceil(Bs/64) slices;
//    Bs < 64: the tile holds Bs rows), so every row of a tile shares one BSR row; each key block is
//    visited in ceil(Bs/64) tiles of contiguous keys.
//  - Permute-window: the query tile is 64 consecutive ranks r0.. of cycle `cyc`; Q rows are read
//    through perm and outputs stored through perm (no permuted copy of Q/K/V exists); key tiles are the
//    ranks [r0 - w, q_last + w] (clipped to [0, T) unless circular, where they wrap mod T). Several
//    cycles in average mode: one launch per cycle accumulating f32 (o_c, lse_c) into a workspace, and
//    a finishing kernel (mean and log-mean-exp).
#pragma once

#include "attention/cuda/attn_fwd.cuh"

namespace bna::cuda::detail {

struct TileParams {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  uint16_t* o;
  float* lse;
  float* acc_o;    // permute-window average over cycles: f32 [B, Hq, T, dh], or nullptr
  float* acc_lse;  // f32 [B, Hq, T]
  int acc_first;   // 1: this launch writes the accumulators, 0: adds to them
  int T, Hq, Hkv, group, BH, n_qtiles;
  float scale_log2;
  // block-sparse
  int Bs, n_sub, N;
  const int32_t* indptr;   // [Hkv, N + 1] absolute offsets into indices
  const int32_t* indices;
  // permute-window
  const int32_t* perm;  // [Hkv, ncyc, T]
  int ncyc, cyc, w, circular;
};

template <int DH>
constexpr int smem_bytes_tiles() { return (kBr + 4 * kBc) * DH * 2; }

template <int DH, bool BF16, bool PW>
__global__ void __launch_bounds__(kThreads) attn_fwd_tiles_kernel(const TileParams p) {
  constexpr int CH = DH / 8;
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + kBr * DH;
  uint16_t* sV = sK + 2 * kBc * DH;
  __shared__ int sQpos[kBr];
  __shared__ __align__(16) int sKpos[2][kBc];  // read as int2 pairs

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int T = p.T;
  // Query tiles innermost, heaviest (latest) first, so resident CTAs share one head's K/V in L2.
  const int item = blockIdx.x;
  const int qt = p.n_qtiles - 1 - item % p.n_qtiles;
  const int bh = item / p.n_qtiles;
  const int b = bh / p.Hq, hq = bh % p.Hq, hkv = hq / p.group;
  const uint16_t* qg = p.q + static_cast<int64_t>(bh) * T * DH;
  const uint16_t* kg = p.k + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH;
  const uint16_t* vg = p.v + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH;

  // ---- the tile sequence of this query tile ----
  int q0 = 0, q_end = 0;      // block-sparse: query positions [q0, q_end); permute-window: ranks
  int ent0 = 0, n_tiles = 0;  // block-sparse: first BSR entry
  int klo = 0, khi = 0;       // permute-window: raw key ranks [klo, khi]
  const int32_t* perm = nullptr;
  if constexpr (!PW) {
    const int blk = qt / p.n_sub, sub = qt % p.n_sub;
    q0 = blk * p.Bs + sub * kBr;
    q_end = min(min(q0 + kBr, blk * p.Bs + p.Bs), T);
    if (q0 >= T) return;  // a slice past the end of a short last block (uniform over the CTA)
    const int* row = p.indptr + static_cast<int64_t>(hkv) * (p.N + 1) + blk;
    ent0 = row[0];
    int ent1 = row[1];
    // Entries are ascending: drop key blocks wholly in the future of every row of the tile.
    while (ent1 > ent0 && static_cast<int64_t>(p.indices[ent1 - 1]) * p.Bs > q_end - 1) --ent1;
    n_tiles = (ent1 - ent0) * p.n_sub;
  } else {
    perm = p.perm + (static_cast<int64_t>(hkv) * p.ncyc + p.cyc) * T;
    q0 = qt * kBr;
    q_end = min(q0 + kBr, T);
    klo = q0 - p.w;
    khi = q_end - 1 + p.w;
    if (!p.circular) klo = max(klo, 0), khi = min(khi, T - 1);
    n_tiles = (khi - klo + 1 + kBc - 1) / kBc;
  }

  // Key position of row r of tile t, or -1.
  auto key_of = [&](int t, int r) -> int {
    if constexpr (!PW) {
      const int kb = p.indices[ent0 + t / p.n_sub];
      const int k0 = kb * p.Bs + (t % p.n_sub) * kBc;
      const int kend = min(kb * p.Bs + p.Bs, T);
      return k0 + r < kend ? k0 + r : -1;
    } else {
      const int raw = klo + t * kBc + r;
      if (raw > khi) return -1;
      const int rk = p.circular ? ((raw % T) + T) % T : raw;
      return perm[rk];
    }
  };

  if (tid < kBr) {
    int pos;
    if constexpr (!PW) pos = q0 + tid < q_end ? q0 + tid : -1;
    else pos = q0 + tid < q_end ? perm[q0 + tid] : -1;
    sQpos[tid] = pos;
  }
  __syncthreads();
  for (int id = tid; id < kBr * CH; id += kThreads) {
    const int r = id / CH, c = id % CH;
    const int pos = sQpos[r];
    cp_async16(sQ + swz<DH>(r, c), pos >= 0 ? qg + static_cast<int64_t>(pos) * DH + c * 8 : qg, pos >= 0);
  }
  auto load_tile = [&](int t, int stage) {
    uint16_t* dk = sK + stage * kBc * DH;
    uint16_t* dv = sV + stage * kBc * DH;
    if (tid < kBc) sKpos[stage][tid] = key_of(t, tid);
    for (int id = tid; id < kBc * CH; id += kThreads) {
      const int r = id / CH, c = id % CH;
      const int key = key_of(t, r);
      const int64_t off = key >= 0 ? static_cast<int64_t>(key) * DH + c * 8 : 0;
      cp_async16(dk + swz<DH>(r, c), kg + off, key >= 0);
      cp_async16(dv + swz<DH>(r, c), vg + off, key >= 0);
    }
  };
  if (n_tiles > 0) load_tile(0, 0);
  cp_async_commit();

  unsigned qf[DH / 16][4];
  float o[DH / 8][4];
#pragma unroll
  for (int d = 0; d < DH / 8; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY}, l_run[2] = {0.0f, 0.0f};
  const int rloc = warp * 16 + (lane >> 2);  // this thread's local rows: rloc and rloc + 8
  const int qpos[2] = {sQpos[rloc], sQpos[rloc + 8]};
  const int col0 = 2 * (lane & 3);

  for (int t = 0; t < n_tiles; ++t) {
    const int stage = t & 1;
    if (t + 1 < n_tiles) load_tile(t + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (t == 0) {
#pragma unroll
      for (int kk = 0; kk < DH / 16; ++kk)
        ldsm_x4(qf[kk], sQ + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
    }
    const uint16_t* tk = sK + stage * kBc * DH;
    const uint16_t* tv = sV + stage * kBc * DH;
    float s[kBc / 8][4];
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < kBc / 16; ++np) {
        unsigned r[4];
        const int row = np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldsm_x4(r, tk + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(s[2 * np], qf[kk], r[0], r[1]);
        mma16816<BF16>(s[2 * np + 1], qf[kk], r[2], r[3]);
      }
    }
    bool full;  // every (row, key) of the tile allowed
    if constexpr (!PW) {
      const int kb = p.indices[ent0 + t / p.n_sub];
      const int k0 = kb * p.Bs + (t % p.n_sub) * kBc;
      full = k0 + kBc <= min(kb * p.Bs + p.Bs, T) && k0 + kBc - 1 <= q0 && q_end - q0 == kBr;
    } else {
      full = false;
    }
    const int kraw0 = klo + t * kBc;  // permute-window: raw rank of tile row 0
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
      const int2 kp = *reinterpret_cast<const int2*>(&sKpos[stage][n * 8 + col0]);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[n][e] * p.scale_log2;
        if (!full) {
          const int kpos = (e & 1) ? kp.y : kp.x;
          bool ok = kpos >= 0 && kpos <= qpos[e >> 1];
          if constexpr (PW) {
            const int dr = (kraw0 + n * 8 + col0 + (e & 1)) - (q0 + rloc + ((e >> 1) << 3));
            ok = ok && dr <= p.w && dr >= -p.w;
          }
          if (!ok) x = -INFINITY;
        }
        s[n][e] = x;
        mx[e >> 1] = fmaxf(mx[e >> 1], x);
      }
    }
    float alpha[2], mref[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
      const float m_new = fmaxf(m_run[h], mx[h]);
      mref[h] = m_new == -INFINITY ? 0.0f : m_new;  // fully masked so far: no (-inf) - (-inf)
      alpha[h] = fast_exp2(m_run[h] - mref[h]);
      m_run[h] = m_new;
      l_run[h] *= alpha[h];
    }
#pragma unroll
    for (int n = 0; n < kBc / 8; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = fast_exp2(s[n][e] - mref[e >> 1]);
        s[n][e] = pe;
        l_run[e >> 1] += pe;
      }
    }
#pragma unroll
    for (int d = 0; d < DH / 8; ++d) {
      o[d][0] *= alpha[0]; o[d][1] *= alpha[0];
      o[d][2] *= alpha[1]; o[d][3] *= alpha[1];
    }
#pragma unroll
    for (int kk = 0; kk < kBc / 16; ++kk) {
      const unsigned a[4] = {pack2<BF16>(s[2 * kk][0], s[2 * kk][1]), pack2<BF16>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < DH / 16; ++dp) {
        unsigned r[4];
        const int row = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        ldsm_x4_t(r, tv + swz<DH>(row, dp * 2 + (lane >> 4)));
        mma16816<BF16>(o[2 * dp], a, r[0], r[1]);
        mma16816<BF16>(o[2 * dp + 1], a, r[2], r[3]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  // ---- epilogue: normalise; write out/lse at the query's position (or accumulate f32) ----
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = l_run[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int pos = qpos[h];
    if (pos < 0) continue;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    const float lc = l > 0.0f ? m_run[h] * 0.69314718055994531f + logf(l) : -INFINITY;
    const int64_t row = static_cast<int64_t>(bh) * T + pos;
    if (p.acc_o == nullptr) {
      uint16_t* orow = p.o + row * DH + col0;
#pragma unroll
      for (int d = 0; d < DH / 8; ++d)
        *reinterpret_cast<unsigned*>(orow + d * 8) = pack2<BF16>(o[d][2 * h] * inv, o[d][2 * h + 1] * inv);
      if ((lane & 3) == 0) p.lse[row] = lc;
    } else {
      float* arow = p.acc_o + row * DH + col0;
#pragma unroll
      for (int d = 0; d < DH / 8; ++d) {
        float2 v = make_float2(o[d][2 * h] * inv, o[d][2 * h + 1] * inv);
        if (!p.acc_first) {
          const float2 old = *reinterpret_cast<const float2*>(arow + d * 8);
          v.x += old.x;
          v.y += old.y;
        }
        *reinterpret_cast<float2*>(arow + d * 8) = v;
      }
      if ((lane & 3) == 0) {
        float nl = lc;
        if (!p.acc_first) {
          const float ol = p.acc_lse[row];
          const float mm = fmaxf(ol, lc);
          nl = mm == -INFINITY ? -INFINITY : mm + logf(expf(ol - mm) + expf(lc - mm));
        }
        p.acc_lse[row] = nl;
      }
    }
  }
}

// Average mode, after the last cycle: out = acc_o / n (rounded once), lse = acc_lse - log n.
template <bool BF16>
__global__ void pw_average_finish_kernel(const float* __restrict__ acc_o, const float* __restrict__ acc_lse,
                                         uint16_t* __restrict__ out, float* __restrict__ lse, int64_t rows, int dh,
                                         float inv_n, float log_n) {
  const int64_t pairs = rows * dh / 2;
  for (int64_t x = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; x < pairs;
       x += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float2 v = reinterpret_cast<const float2*>(acc_o)[x];
    reinterpret_cast<unsigned*>(out)[x] = pack2<BF16>(v.x * inv_n, v.y * inv_n);
    if (x < rows) {
      const float l = acc_lse[x];
      lse[x] = l == -INFINITY ? -INFINITY : l - log_n;
    }
  }
}

}  // namespace bna::cuda::detail
