// Forward kernel v3 (kept for A/B timing, AttnArgs::fwd_variant = 1): one 16-row m-tile per warp,
// 64 query rows per CTA, Q in registers, persistent grid with the next item's Q and first tile
// loaded during the current item's last tile. See attn_fwd.cuh for the shared tile vocabulary.
#pragma once

#include "attention/cuda/attn_fwd.cuh"

namespace bna::cuda::detail {

template <int DH>
constexpr int smem_bytes_m16() { return (kBr + 4 * kBc) * DH * 2; }

template <int DH, bool BF16, Mode M, int VIEW>
__global__ void __launch_bounds__(kThreads) attn_fwd_m16_kernel(const FwdParams p) {
  constexpr int CH = DH / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + kBr * DH;      // [2][kBc][DH]
  uint16_t* sV = sK + 2 * kBc * DH;  // [2][kBc][DH]
  __shared__ int sExt[2][kBc];       // key positions of an extras tile, -1 = none

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int T = p.T;
  // Work item `it`: query tiles innermost, heaviest first (most landmark / causal tiles), so the
  // CTAs resident at one time belong to one or two heads and stream the same K/V rows, which then
  // hit L2 (heads innermost made dense T=64k memory-bound). The grid is persistent: a CTA takes
  // items blockIdx.x, +gridDim.x, ... and loads the next item's Q and first tile while it computes
  // the last tile of the current one, so no CTA sits idle in a prologue.
  using Item = FwdItem;
  auto make_item = [&](int it) { return make_fwd_item<DH, VIEW>(p, it); };
  int item = blockIdx.x;
  if (item >= p.n_items) return;
  Item cur = make_item(item);
  Schedule<M, kBr> sch;
  sch.init(p, cur.qtile);

  // ---- loads ----
  auto load_q = [&](const Item& it, int q0) {
    for (int id = tid; id < kBr * CH; id += kThreads) {
      const int r = id / CH, c = id % CH;
      load_q_chunk<DH, VIEW>(p, it, sQ + swz<DH>(r, c), q0 + r, c);
    }
  };
  auto load_tile = [&](const Item& it, const Schedule<M, kBr>& sc, int t, int stage) {
    const TileDesc d = sc.tile(p, t);
    const int q0 = sc.q0;
    uint16_t* dk = sK + stage * kBc * DH;
    uint16_t* dv = sV + stage * kBc * DH;
    if (d.kind == TileKind::kExtra && tid < kBc) {
      const int i = q0 + tid;
      const int e = i < T ? it.ext[static_cast<int64_t>(i) * p.C + d.base] : -1;
      sExt[stage][tid] = (e >= 0 && e < T) ? e : -1;
    }
    for (int id = tid; id < kBc * CH; id += kThreads) {
      const int r = id / CH, c = id % CH;
      int key;
      bool ok;
      if (d.kind == TileKind::kContig) {
        key = d.base + r;
        ok = key < T;
      } else if (d.kind == TileKind::kLandmark) {
        const int m = d.base + r;
        ok = m < sc.n_land;
        key = ok ? m * p.S : 0;  // m*S < T only for real landmarks
      } else {
        const int i = q0 + r;
        key = i < T ? it.ext[static_cast<int64_t>(i) * p.C + d.base] : -1;
        ok = key >= 0 && key < T;
      }
      const uint16_t* kr;
      const uint16_t* vr;
      kv_chunk<DH, VIEW>(p, it, key, c, ok, kr, vr);
      cp_async16(dk + swz<DH>(r, c), kr, ok);
      cp_async16(dv + swz<DH>(r, c), vr, ok);
    }
  };

  load_q(cur, sch.q0);
  load_tile(cur, sch, 0, 0);
  cp_async_commit();
  int stage0 = 0;  // stage of the current item's tile 0

  unsigned qf[DH / 16][4];
  float o[DH / 8][4];
  float m_run[2], l_run[2];
  int q0 = sch.q0;
  int row_lo = q0 + warp * 16 + (lane >> 2);  // this thread's rows: row_lo and row_lo + 8

  // One tile's S = Q K^T, mask, online-softmax update and O += P V. NT n-tiles of 8 keys starting
  // at shared row koff. allowed(nt, e) decides each score element.
  auto process = [&](auto nt_tag, int stage, int koff, auto allowed) {
    constexpr int NT = decltype(nt_tag)::value;
    const uint16_t* tk = sK + stage * kBc * DH;
    const uint16_t* tv = sV + stage * kBc * DH;
    float s[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned r[4];
        const int row = koff + np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldsm_x4(r, tk + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(s[2 * np], qf[kk], r[0], r[1]);
        mma16816<BF16>(s[2 * np + 1], qf[kk], r[2], r[3]);
      }
    }
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int n = 0; n < NT; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        float x = s[n][e] * p.scale_log2;
        if (!allowed(n, e)) x = -INFINITY;
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
      mref[h] = m_new == -INFINITY ? 0.0f : m_new;
      alpha[h] = fast_exp2(m_run[h] - mref[h]);  // m_run = -inf -> 0
      m_run[h] = m_new;
      l_run[h] *= alpha[h];
    }
#pragma unroll
    for (int n = 0; n < NT; ++n) {
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
    for (int kk = 0; kk < NT / 2; ++kk) {
      const unsigned a[4] = {pack2<BF16>(s[2 * kk][0], s[2 * kk][1]), pack2<BF16>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dp = 0; dp < DH / 16; ++dp) {
        unsigned r[4];
        const int row = koff + kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        ldsm_x4_t(r, tv + swz<DH>(row, dp * 2 + (lane >> 4)));
        mma16816<BF16>(o[2 * dp], a, r[0], r[1]);
        mma16816<BF16>(o[2 * dp + 1], a, r[2], r[3]);
      }
    }
  };

  while (true) {
    const int next = item + static_cast<int>(gridDim.x);
    const bool has_next = next < p.n_items;
    Item nxt{};
    Schedule<M, kBr> nsch{};
    if (has_next) {
      nxt = make_item(next);
      nsch.init(p, nxt.qtile);
    }
#pragma unroll
    for (int i = 0; i < DH / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
    m_run[0] = m_run[1] = -INFINITY;
    l_run[0] = l_run[1] = 0.0f;
    q0 = sch.q0;
    row_lo = q0 + warp * 16 + (lane >> 2);
    bool prefetched = false;

    for (int t = 0; t < sch.total; ++t) {
      const int stage = (stage0 + t) & 1;
      if (t + 1 < sch.total) {
        load_tile(cur, sch, t + 1, stage ^ 1);
      } else if (has_next && t > 0) {
        // sQ was read into registers at t = 0 (and a barrier followed): free for the next item.
        load_q(nxt, nsch.q0);
        load_tile(nxt, nsch, 0, stage ^ 1);
        prefetched = true;
      }
      cp_async_commit();
      cp_async_wait<1>();
      __syncthreads();
      if (t == 0) {
#pragma unroll
        for (int kk = 0; kk < DH / 16; ++kk)
          ldsm_x4(qf[kk], sQ + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      }
      const TileDesc d = sch.tile(p, t);
      const int col0 = 2 * (lane & 3);
      if (d.kind == TileKind::kContig) {
        const int kb = d.base;
        if (!d.masked) {
          process(std::integral_constant<int, kBc / 8>{}, stage, 0, [](int, int) { return true; });
        } else {
          const int W = M == Mode::kDense ? T : p.W;
          process(std::integral_constant<int, kBc / 8>{}, stage, 0, [&](int n, int e) {
            const int i = row_lo + ((e >> 1) << 3);
            const int j = kb + n * 8 + col0 + (e & 1);
            return j <= i && j >= i - W;
          });
        }
      } else if (d.kind == TileKind::kLandmark) {
        if (!d.masked) {
          process(std::integral_constant<int, kBc / 8>{}, stage, 0, [](int, int) { return true; });
        } else {
          const int m0 = d.base;
          process(std::integral_constant<int, kBc / 8>{}, stage, 0, [&](int n, int e) {
            const int i = row_lo + ((e >> 1) << 3);
            const int m = m0 + n * 8 + col0 + (e & 1);
            return m < sch.n_land && m * p.S < i - p.W;
          });
        }
      } else {
        // Gathered rows warp*16 .. +15 of this tile belong to this warp's 16 queries, one each.
        const int koff = warp * 16;
        process(std::integral_constant<int, 2>{}, stage, koff, [&](int n, int e) {
          const int rloc = (lane >> 2) + ((e >> 1) << 3);
          const int cloc = n * 8 + col0 + (e & 1);
          const int j = sExt[stage][koff + cloc];
          return cloc == rloc && j >= 0 && j <= row_lo + ((e >> 1) << 3);
        });
      }
      __syncthreads();
    }

    // ---- epilogue: normalise, write out and lse ----
    // Output rows are relative to q_off (row i at i - q_off).
    const int qo = first_row<VIEW>(p);
    uint16_t* og;
    int64_t ost;
    out_rows<DH, VIEW>(p, cur.bh, og, ost);
    float* lg = p.lse + static_cast<int64_t>(cur.bh) * (T - qo);
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float l = l_run[h];
      l += __shfl_xor_sync(0xffffffffu, l, 1);
      l += __shfl_xor_sync(0xffffffffu, l, 2);
      const int i = row_lo + h * 8;
      if (i >= T || (VIEW != kViewPlain && i < qo)) continue;
      const float inv = l > 0.0f ? 1.0f / l : 0.0f;
      uint16_t* orow = og + static_cast<int64_t>(i - qo) * ost + 2 * (lane & 3);
#pragma unroll
      for (int d = 0; d < DH / 8; ++d)
        *reinterpret_cast<unsigned*>(orow + d * 8) = pack2<BF16>(o[d][2 * h] * inv, o[d][2 * h + 1] * inv);
      if ((lane & 3) == 0) lg[i - qo] = l > 0.0f ? m_run[h] * 0.69314718055994531f + logf(l) : -INFINITY;
    }
    if (!has_next) break;
    stage0 = (stage0 + sch.total) & 1;
    if (!prefetched) {  // a one-tile item: its Q was still being read when the loads would have gone out
      load_q(nxt, nsch.q0);
      load_tile(nxt, nsch, 0, stage0);
      cp_async_commit();
    }
    item = next;
    cur = nxt;
    sch = nsch;
  }
  cp_async_wait<0>();
}

}  // namespace bna::cuda::detail
