// Row-list backward on CUDA cores for the graph paths: gather (neigh_idx rows), permute-window (every
// mode: one cycle, union, average) and block-sparse (BSR rows expanded block by block). One warp per
// query row (b, hq, i), the forward's row-list layout (attn_fwd_gather.cuh): lane owns dh/32
// consecutive elements of q, dO, dQ and of every K/V row it reads; keys are taken 4 at a time.
// Decisions a reader must know:
//  - A row is one or more softmax segments. Gather, block-sparse, one cycle and union are one segment
//    whose lse is the forward's and D = rowsum(dO * O) is computed here from the forward's output.
//    Average mode (out = mean over cycles of each cycle's softmax output) has one segment per cycle:
//    the forward's single lse cannot give the per-cycle softmaxes, so a first pass over the segment
//    recomputes its lse_c and D_c = (1/C) sum_j p_j (dO . v_j) = dO_c . o_c with dO_c = dO / C.
//  - dQ stays in registers and is written once; dK/dV are scattered into f32 accumulators (workspace,
//    zeroed first) with float2/float4 atomics (sm_90), then converted by bwd_convert_kernel. Rows are
//    multisets: a repeated entry contributes one term per copy, as in the forward.
//  - f32 throughout (P and dS are not rounded to the dtype), matching the forward's row-list kernels.
//    Throughput is bounded by the atomics (2 dh per (row, key) pair); the tensor-core streams and
//    dense backward stay the training paths (docs/kernels.md has the measured numbers).
#pragma once

#include "attention/cuda/attn_fwd_gather.cuh"

namespace bna::cuda::detail {

enum class RowSrc { kGather, kPermute, kBlocks };

struct BwdRowsParams {
  GatherParams g;  // q, k, v, o (forward output), lse, shapes, scale_log2; neigh/D; perm/inv/ncyc/w/circular
  const uint16_t* dout;
  uint16_t* dq;
  float* dk_acc;  // [B, Hkv, T, dh] f32, zeroed
  float* dv_acc;
  float scale;  // natural units
  int average;  // permute-window: one softmax per cycle (ncyc > 1)
  const int32_t* indptr;  // block-sparse: [Hkv, N + 1] absolute offsets into indices
  const int32_t* indices;
  int Bs, N;
};

template <int EPL>
__device__ __forceinline__ void atomic_add_part(float* dst, const float (&x)[EPL]) {
  if constexpr (EPL == 4) atomicAdd(reinterpret_cast<float4*>(dst), make_float4(x[0], x[1], x[2], x[3]));
  else atomicAdd(reinterpret_cast<float2*>(dst), make_float2(x[0], x[1]));
}

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
      const int qb = i / pp.Bs;
      const int at = hkv * (pp.N + 1) + qb;
      nrow = pp.indices + pp.indptr[at];
      n = (pp.indptr[at + 1] - pp.indptr[at]) * pp.Bs;
    }
  }
  __device__ int key(int e) const {
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

// Calls fn(key[4]) for the valid keys of entries [e0, e1), up to 4 at a time (key[g] = -1 pads the
// last group; key[0] is always valid). Warp-uniform: every lane sees the same groups.
template <class Entries, class Fn>
__device__ __forceinline__ void for_each_key_group(const Entries& ent, int e0, int e1, int lane, Fn&& fn) {
  for (int c0 = e0; c0 < e1; c0 += 32) {
    const int my = c0 + lane < e1 ? ent.key(c0 + lane) : -1;
    unsigned valid = __ballot_sync(0xffffffffu, my >= 0);
    while (valid != 0u) {
      int key[4];
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        key[g] = -1;
        if (valid != 0u) {
          const int src = __ffs(valid) - 1;
          valid &= valid - 1u;
          key[g] = __shfl_sync(0xffffffffu, my, src);
        }
      }
      fn(key);
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

template <int DH, bool BF16, RowSrc SRC>
__global__ void __launch_bounds__(kGatherWarps * 32) attn_bwd_rows_kernel(const BwdRowsParams p) {
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
  float* dkg = p.dk_acc + kv0;
  float* dvg = p.dv_acc + kv0;

  float q[EPL], dO[EPL], dq[EPL];
  load_row_part<EPL, BF16>(gp.q + row * DH + lane * EPL, q);
  load_row_part<EPL, BF16>(p.dout + row * DH + lane * EPL, dO);
#pragma unroll
  for (int e = 0; e < EPL; ++e) dq[e] = 0.0f;

  RowEntries<SRC> ent;
  ent.init(p, i, hkv);
  const bool average = SRC == RowSrc::kPermute && p.average != 0;
  const int nseg = average ? gp.ncyc : 1;
  const int seg_len = average ? 2 * gp.w + 1 : ent.n;
  const float wseg = average ? 1.0f / static_cast<float>(gp.ncyc) : 1.0f;

  // Scores, dO . v and the loaded rows of one group of 4 keys.
  float kx[4][EPL], vx[4][EPL], s[4], dpv[4];
  auto load_group = [&](const int (&key)[4]) {
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

  for (int seg = 0; seg < nseg; ++seg) {
    const int e0 = seg * seg_len, e1 = e0 + seg_len;
    float lse2, D;
    if (!average) {
      lse2 = gp.lse[row] * 1.4426950408889634f;
      if (lse2 == -INFINITY) break;  // empty row: no key, zero gradients
      float o[EPL];
      load_row_part<EPL, BF16>(gp.o + row * DH + lane * EPL, o);
      float d[1] = {0.0f};
#pragma unroll
      for (int e = 0; e < EPL; ++e) d[0] = fmaf(dO[e], o[e], d[0]);
      warp_sum(d);
      D = d[0];
    } else {
      // Pass 1: this cycle's lse and sum_j p_j (dO . v_j), online.
      float m = -INFINITY, l = 0.0f, t = 0.0f;
      for_each_key_group(ent, e0, e1, lane, [&](const int (&key)[4]) {
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
      if (l == 0.0f) continue;  // an empty cycle band contributes nothing
      lse2 = m + __log2f(l);
      D = wseg * t / l;
    }
    // Pass 2: P, dS, and the three gradients.
    for_each_key_group(ent, e0, e1, lane, [&](const int (&key)[4]) {
      load_group(key);
#pragma unroll
      for (int g = 0; g < 4; ++g) {
        if (key[g] < 0) continue;
        const float pg = fast_exp2(s[g] - lse2);
        const float ds = pg * (wseg * dpv[g] - D) * p.scale;
        const float pv = pg * wseg;
        float gk[EPL], gv[EPL];
#pragma unroll
        for (int e = 0; e < EPL; ++e) {
          dq[e] = fmaf(ds, kx[g][e], dq[e]);
          gk[e] = ds * q[e];
          gv[e] = pv * dO[e];
        }
        const int64_t off = static_cast<int64_t>(key[g]) * DH;
        atomic_add_part<EPL>(dkg + off, gk);
        atomic_add_part<EPL>(dvg + off, gv);
      }
    });
  }

  uint16_t* dqrow = p.dq + row * DH + lane * EPL;
  if constexpr (EPL == 4) {
    uint2 u;
    u.x = pack2<BF16>(dq[0], dq[1]);
    u.y = pack2<BF16>(dq[2], dq[3]);
    *reinterpret_cast<uint2*>(dqrow) = u;
  } else {
    *reinterpret_cast<unsigned*>(dqrow) = pack2<BF16>(dq[0], dq[1]);
  }
}

}  // namespace bna::cuda::detail
