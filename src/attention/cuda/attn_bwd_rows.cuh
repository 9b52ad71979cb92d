// Backward on CUDA cores for the graph paths: gather (neigh_idx rows), permute-window (every mode:
// one cycle, union, average) and block-sparse (BSR rows expanded block by block), in two passes with
// no atomics, both in the forward's row-list layout (attn_fwd_gather.cuh: one warp per row, each lane
// owning dh/32 consecutive elements, keys or queries taken 4 at a time):
//   A. rows_dq_kernel, one warp per query row (b, hq, i): dQ in registers, written once; and the
//      row's softmax statistics (lse in log2 units, D) per segment into the workspace.
//   B. keys_dkdv_kernel, one warp per key row (b, hkv, j): walks the queries whose rows list j (the
//      transposed graph: the permute band is symmetric in cycle order; gather and block-sparse take a
//      transposed list built at plan time) over the G query heads of the KV head; dK and dV stay in
//      registers and are written once in the dtype.
// Decisions a reader must know:
//  - A row is one or more softmax segments. Gather, block-sparse, one cycle and union are one segment
//    whose lse is the forward's and D = rowsum(dO * O) is computed from the forward's output.
//    Average mode (out = mean over cycles of each cycle's softmax output) has one segment per cycle:
//    the forward's single lse cannot give the per-cycle softmaxes, so pass A first recomputes each
//    cycle's lse_c and D_c = (1/C) sum_j p_j (dO . v_j) = dO_c . o_c with dO_c = dO / C.
//  - Rows are multisets: a repeated entry is one term per copy in both passes (the transposed list
//    repeats the query; the permute band visits each (cycle, offset)).
//  - f32 throughout (P and dS are not rounded to the dtype), matching the forward's row-list kernels.
//    Each pair's scores are computed twice (once per pass), the price of no atomics (a first version
//    sent 2 dh f32 atomics per pair through L2 and ran 2-4x slower; docs/kernels.md).
#pragma once

#include "attention/cuda/attn_fwd_gather.cuh"

namespace bna::cuda::detail {

enum class RowSrc { kGather, kPermute, kBlocks };

struct BwdRowsParams {
  GatherParams g;  // q, k, v, o (forward output), lse, shapes, scale_log2; neigh/D; perm/inv/ncyc/w/circular
  const uint16_t* dout;
  uint16_t* dq;
  uint16_t* dk;  // [B, Hkv, T, dh], written by pass B
  uint16_t* dv;
  float2* stats;  // [B*Hq*T, nseg]: (lse in log2 units, D) per row and segment; written by pass A
  int nseg;       // ncyc in average mode, else 1
  float scale;    // natural units
  int average;    // permute-window: one softmax per cycle (ncyc > 1)
  // block-sparse: indptr [Hkv, N + 1] (absolute offsets into indices) and the transpose
  // t_indptr [Hkv, N + 1] into t_indices (the query blocks listing each key block)
  const int32_t* indptr;
  const int32_t* indices;
  const int32_t* t_indptr;
  const int32_t* t_indices;
  int Bs, N;
  // gather transpose: t_rowptr [Hkv, T + 1] (absolute) into t_rows (query i per occurrence of key j)
  const int64_t* t_rowptr;
  const int32_t* t_rows;
};

// Entry e of row i of KV head hkv as a key, or -1 when it is padding, out of range or after i.
template <RowSrc SRC>
struct RowEntries {
  const BwdRowsParams* p;
  int i, hkv;
  const int32_t* nrow;  // gather row / block list of the query block
  int n;                // entries in the row
  __device__ void init(const BwdRowsParams& pp, int row_i, int kv_head) {
    p = &pp;
    i = row_i;
    hkv = kv_head;
    const int T = pp.g.T;
    if constexpr (SRC == RowSrc::kGather) {
      nrow = pp.g.neigh + (static_cast<int64_t>(hkv) * T + i) * pp.g.D;
      n = pp.g.D;
    } else if constexpr (SRC == RowSrc::kPermute) {
      nrow = nullptr;
      n = pp.g.ncyc * (2 * pp.g.w + 1);
    } else {
      const int at = hkv * (pp.N + 1) + i / pp.Bs;
      nrow = pp.indices + pp.indptr[at];
      n = (pp.indptr[at + 1] - pp.indptr[at]) * pp.Bs;
    }
  }
  __device__ int at(int e) const {
    const int T = p->g.T;
    if constexpr (SRC == RowSrc::kGather) {
      const int k = nrow[e];
      return k >= 0 && k <= i ? k : -1;
    } else if constexpr (SRC == RowSrc::kPermute) {
      const int span = 2 * p->g.w + 1;
      const int c = e / span, off = e % span - p->g.w;
      const int64_t base = (static_cast<int64_t>(hkv) * p->g.ncyc + c) * T;
      int r = p->g.inv[base + i] + off;
      if (p->g.circular) r = ((r % T) + T) % T;
      else if (r < 0 || r >= T) return -1;
      const int k = p->g.perm[base + r];
      return k <= i ? k : -1;
    } else {
      const int k = nrow[e / p->Bs] * p->Bs + e % p->Bs;
      return k < T && k <= i ? k : -1;
    }
  }
};

// Entry e of the transposed row of key j of KV head hkv: a query i whose row lists j (i >= j), or
// -1. The permute band is symmetric in cycle order: cycle c, offset o gives the query at rank
// inv_c[j] - o, exactly once per (cycle, offset) as in the forward. seg(e): the entry's segment.
template <RowSrc SRC>
struct KeyEntries {
  const BwdRowsParams* p;
  int j, hkv;
  const int32_t* list;  // gather: queries; block-sparse: query blocks
  int n;
  __device__ void init(const BwdRowsParams& pp, int key, int kv_head) {
    p = &pp;
    j = key;
    hkv = kv_head;
    const int T = pp.g.T;
    if constexpr (SRC == RowSrc::kGather) {
      const int64_t b0 = pp.t_rowptr[static_cast<int64_t>(hkv) * (T + 1) + j];
      list = pp.t_rows + b0;
      n = static_cast<int>(pp.t_rowptr[static_cast<int64_t>(hkv) * (T + 1) + j + 1] - b0);
    } else if constexpr (SRC == RowSrc::kPermute) {
      list = nullptr;
      n = pp.g.ncyc * (2 * pp.g.w + 1);
    } else {
      const int at = hkv * (pp.N + 1) + j / pp.Bs;
      list = pp.t_indices + pp.t_indptr[at];
      n = (pp.t_indptr[at + 1] - pp.t_indptr[at]) * pp.Bs;
    }
  }
  __device__ int at(int e) const {
    const int T = p->g.T;
    if constexpr (SRC == RowSrc::kGather) {
      return list[e];  // built with i >= j
    } else if constexpr (SRC == RowSrc::kPermute) {
      const int span = 2 * p->g.w + 1;
      const int c = e / span, off = e % span - p->g.w;
      const int64_t base = (static_cast<int64_t>(hkv) * p->g.ncyc + c) * T;
      int r = p->g.inv[base + j] - off;
      if (p->g.circular) r = ((r % T) + T) % T;
      else if (r < 0 || r >= T) return -1;
      const int q = p->g.perm[base + r];
      return q >= j ? q : -1;
    } else {
      const int q = list[e / p->Bs] * p->Bs + e % p->Bs;
      return q < T && q >= j ? q : -1;
    }
  }
  __device__ int seg(int e) const {
    if constexpr (SRC == RowSrc::kPermute) return p->average ? e / (2 * p->g.w + 1) : 0;
    else return 0;
  }
};

// Calls fn(idx[4], ent[4]) for the valid entries (at(e) >= 0) of [e0, e1), up to 4 at a time
// (idx[g] = -1 pads the last group; idx[0] is always valid). Warp-uniform.
template <class Entries, class Fn>
__device__ __forceinline__ void for_each_group(const Entries& ent, int e0, int e1, int lane, Fn&& fn) {
  for (int c0 = e0; c0 < e1; c0 += 32) {
    const int my = c0 + lane < e1 ? ent.at(c0 + lane) : -1;
    unsigned valid = __ballot_sync(0xffffffffu, my >= 0);
    while (valid != 0u) {
      int idx[4], eid[4];
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        idx[g] = -1;
        eid[g] = 0;
        if (valid != 0u) {
          const int src = __ffs(valid) - 1;
          valid &= valid - 1u;
          idx[g] = __shfl_sync(0xffffffffu, my, src);
          eid[g] = c0 + src;
        }
      }
      fn(idx, eid);
    }
  }
}

template <int N>
__device__ __forceinline__ void warp_sum(float (&x)[N]) {
#pragma unroll
  for (int sh = 16; sh >= 1; sh >>= 1) {
#pragma unroll
    for (int g = 0; g < N; ++g) x[g] += __shfl_xor_sync(0xffffffffu, x[g], sh);
  }
}

template <int EPL, bool BF16>
__device__ __forceinline__ void store_row_part(uint16_t* dst, const float (&x)[EPL]) {
  if constexpr (EPL == 4) {
    uint2 u;
    u.x = pack2<BF16>(x[0], x[1]);
    u.y = pack2<BF16>(x[2], x[3]);
    *reinterpret_cast<uint2*>(dst) = u;
  } else {
    *reinterpret_cast<unsigned*>(dst) = pack2<BF16>(x[0], x[1]);
  }
}

// ---- A. dQ and the row statistics, one warp per query row --------------------------------------
template <int DH, bool BF16, RowSrc SRC>
__global__ void __launch_bounds__(kGatherWarps * 32) rows_dq_kernel(const BwdRowsParams p) {
  constexpr int EPL = DH / 32;
  const GatherParams& gp = p.g;
  const int lane = threadIdx.x & 31;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kGatherWarps + (threadIdx.x >> 5);
  if (row >= gp.rows) return;  // whole warps only
  const int T = gp.T;
  const int i = static_cast<int>(row % T);
  const int64_t bh = row / T;
  const int b = static_cast<int>(bh / gp.Hq), hq = static_cast<int>(bh % gp.Hq), hkv = hq / gp.group;
  const int64_t kv0 = (static_cast<int64_t>(b) * gp.Hkv + hkv) * T * DH + lane * EPL;
  const uint16_t* kg = gp.k + kv0;
  const uint16_t* vg = gp.v + kv0;

  float q[EPL], dO[EPL], dq[EPL];
  load_row_part<EPL, BF16>(gp.q + row * DH + lane * EPL, q);
  load_row_part<EPL, BF16>(p.dout + row * DH + lane * EPL, dO);
#pragma unroll
  for (int e = 0; e < EPL; ++e) dq[e] = 0.0f;

  RowEntries<SRC> ent;
  ent.init(p, i, hkv);
  const bool average = SRC == RowSrc::kPermute && p.average != 0;
  const int seg_len = average ? 2 * gp.w + 1 : ent.n;
  const float wseg = average ? 1.0f / static_cast<float>(gp.ncyc) : 1.0f;

  float kx[4][EPL], s[4], dpv[4];
  auto load_group = [&](const int (&key)[4]) {
    float vx[4][EPL];
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      const int64_t off = static_cast<int64_t>(key[g] >= 0 ? key[g] : 0) * DH;
      load_row_part<EPL, BF16>(kg + off, kx[g]);
      load_row_part<EPL, BF16>(vg + off, vx[g]);
    }
#pragma unroll
    for (int g = 0; g < 4; ++g) {
      float a = 0.0f, d = 0.0f;
#pragma unroll
      for (int e = 0; e < EPL; ++e) {
        a = fmaf(q[e], kx[g][e], a);
        d = fmaf(dO[e], vx[g][e], d);
      }
      s[g] = a;
      dpv[g] = d;
    }
    warp_sum(s);
    warp_sum(dpv);
#pragma unroll
    for (int g = 0; g < 4; ++g) s[g] = key[g] >= 0 ? s[g] * gp.scale_log2 : -INFINITY;  // log2 units
  };

  for (int seg = 0; seg < p.nseg; ++seg) {
    const int e0 = seg * seg_len, e1 = e0 + seg_len;
    float lse2, D;
    if (!average) {
      lse2 = gp.lse[row] * 1.4426950408889634f;
      float o[EPL];
      load_row_part<EPL, BF16>(gp.o + row * DH + lane * EPL, o);
      float d[1] = {0.0f};
#pragma unroll
      for (int e = 0; e < EPL; ++e) d[0] = fmaf(dO[e], o[e], d[0]);
      warp_sum(d);
      D = d[0];
    } else {
      // This cycle's lse and sum_j p_j (dO . v_j), online.
      float m = -INFINITY, l = 0.0f, t = 0.0f;
      for_each_group(ent, e0, e1, lane, [&](const int (&key)[4], const int (&)[4]) {
        load_group(key);
        float mx = m;
#pragma unroll
        for (int g = 0; g < 4; ++g) mx = fmaxf(mx, s[g]);
        const float alpha = fast_exp2(m - mx);  // m = -inf -> 0; key[0] valid, so mx is finite
        l *= alpha;
        t *= alpha;
#pragma unroll
        for (int g = 0; g < 4; ++g) {
          const float pg = fast_exp2(s[g] - mx);
          l += pg;
          t = fmaf(pg, dpv[g], t);
        }
        m = mx;
      });
      lse2 = l > 0.0f ? m + __log2f(l) : -INFINITY;  // an empty cycle band contributes nothing
      D = l > 0.0f ? wseg * t / l : 0.0f;
    }
    if (lane == 0) p.stats[row * p.nseg + seg] = make_float2(lse2, D);
    if (lse2 == -INFINITY) continue;  // empty row or segment: no key
    for_each_group(ent, e0, e1, lane, [&](const int (&key)[4], const int (&)[4]) {
      load_group(key);
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        if (key[g] < 0) continue;
        const float ds = fast_exp2(s[g] - lse2) * (wseg * dpv[g] - D) * p.scale;
#pragma unroll
        for (int e = 0; e < EPL; ++e) dq[e] = fmaf(ds, kx[g][e], dq[e]);
      }
    });
  }
  store_row_part<EPL, BF16>(p.dq + row * DH + lane * EPL, dq);
}

// ---- B. dK and dV, one warp per key row (b, hkv, j) over the G query heads ---------------------
template <int DH, bool BF16, RowSrc SRC>
__global__ void __launch_bounds__(kGatherWarps * 32) keys_dkdv_kernel(const BwdRowsParams p) {
  constexpr int EPL = DH / 32;
  const GatherParams& gp = p.g;
  const int lane = threadIdx.x & 31;
  const int T = gp.T;
  const int64_t krow = static_cast<int64_t>(blockIdx.x) * kGatherWarps + (threadIdx.x >> 5);
  const int64_t nkrows = gp.rows / gp.group;  // B * Hkv * T
  if (krow >= nkrows) return;
  const int j = static_cast<int>(krow % T);
  const int64_t bkv = krow / T;
  const int b = static_cast<int>(bkv / gp.Hkv), hkv = static_cast<int>(bkv % gp.Hkv);
  float k[EPL], v[EPL], dk[EPL], dv[EPL];
  load_row_part<EPL, BF16>(gp.k + krow * DH + lane * EPL, k);
  load_row_part<EPL, BF16>(gp.v + krow * DH + lane * EPL, v);
#pragma unroll
  for (int e = 0; e < EPL; ++e) dk[e] = dv[e] = 0.0f;
  const float wseg = SRC == RowSrc::kPermute && p.average != 0 ? 1.0f / static_cast<float>(gp.ncyc) : 1.0f;

  KeyEntries<SRC> ent;
  ent.init(p, j, hkv);
  for (int gq = 0; gq < gp.group; ++gq) {
    const int64_t qrow0 = (static_cast<int64_t>(b) * gp.Hq + hkv * gp.group + gq) * T;  // row of query 0
    for_each_group(ent, 0, ent.n, lane, [&](const int (&qi)[4], const int (&eid)[4]) {
      float qx[4][EPL], ox[4][EPL], s[4], dpv[4];
      float2 st[4];
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        const int64_t r = qrow0 + (qi[g] >= 0 ? qi[g] : 0);
        load_row_part<EPL, BF16>(gp.q + r * DH + lane * EPL, qx[g]);
        load_row_part<EPL, BF16>(p.dout + r * DH + lane * EPL, ox[g]);
        st[g] = p.stats[r * p.nseg + ent.seg(eid[g])];
      }
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        float a = 0.0f, d = 0.0f;
#pragma unroll
        for (int e = 0; e < EPL; ++e) {
          a = fmaf(qx[g][e], k[e], a);
          d = fmaf(ox[g][e], v[e], d);
        }
        s[g] = a;
        dpv[g] = d;
      }
      warp_sum(s);
      warp_sum(dpv);
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        if (qi[g] < 0 || st[g].x == -INFINITY) continue;
        const float pg = fast_exp2(s[g] * gp.scale_log2 - st[g].x);
        const float ds = pg * (wseg * dpv[g] - st[g].y) * p.scale;
        const float pw = pg * wseg;
#pragma unroll
        for (int e = 0; e < EPL; ++e) {
          dk[e] = fmaf(ds, qx[g][e], dk[e]);
          dv[e] = fmaf(pw, ox[g][e], dv[e]);
        }
      }
    });
  }
  store_row_part<EPL, BF16>(p.dk + krow * DH + lane * EPL, dk);
  store_row_part<EPL, BF16>(p.dv + krow * DH + lane * EPL, dv);
}

}  // namespace bna::cuda::detail
