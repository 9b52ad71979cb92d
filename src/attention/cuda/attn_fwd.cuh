// Flash-attention-2 style forward kernel for H100 (sm_90a, mma.sync m16n8k16), shared by the dense
// causal and the streams launchers.
//
// One CTA = 4 warps = one tile of kBr = 64 query rows of one (batch, query head); each warp owns 16
// rows. The CTA walks a sequence of 64-key tiles; each tile is staged in shared memory by cp.async
// (two stages: tile t+1 loads while tile t computes), S = Q K^T and O += P V run on tensor cores with
// ldmatrix fragments, and one online softmax (fp32, in registers) runs over the whole sequence.
// Decisions a reader must know:
//  - A tile is described only by how its 64 rows map to key positions (KeyMap below): dense and band
//    tiles are contiguous, landmark tiles read K[m*S] directly with stride S (no compaction copy),
//    extras tiles gather per-query keys. The streams are disjoint, so visiting all their tiles with
//    one softmax state is exactly softmax over their union (design-notes §2).
//  - Extras: tile c holds key extra[h, q0+r, c] in row r, so query row r sees only row r of that
//    tile. Each warp multiplies its 16 queries by its own 16 gathered rows (2 n-tiles), a 16x16
//    diagonal; that is 1/4 of a full tile's tensor-core work per extras column, and no gather of
//    [T, D, dh] is ever materialised.
//  - Shared-memory rows are XOR-swizzled in 16-byte chunks (chunk ^ (row & 7)) so ldmatrix reads of
//    8 rows at one logical chunk hit 8 distinct bank groups.
//  - Out-of-range rows are zero-filled by cp.async (src-size 0), so masked keys never bring NaN/Inf
//    garbage into P V; fully masked rows use a 0 reference max so exp2 never sees (-inf) - (-inf).
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace bna::cuda::detail {

constexpr int kBr = 64;       // query rows per CTA
constexpr int kBc = 64;       // keys per tile
constexpr int kThreads = 128; // 4 warps
constexpr int kFwdBr = 128;   // forward query rows per CTA: 4 warps x 2 m-tiles of 16 rows
// Persistent forward grid (next item's loads overlap the current epilogue). Off: its loop state
// costs ~40 registers, which the 2-m-tile kernel does not have (it spilled at 255).
constexpr bool kFwdPersistent = false;
// Process a 64-key tile as two 32-key softmax steps at dh = 128 (fewer live S registers).
constexpr bool kFwdSplitTile = false;

enum class Mode { kDense, kStreams };

// KV / query views of a forward launch, each its own instantiation so the plain kernel keeps its
// code (run-time branches for these cost the streams forward 2-8% and dense 4-5%, H100):
// plain = Tq == Tk, contiguous K/V; offset = q_offset (chunked prefill); paged = offset + page table.
constexpr int kViewPlain = 0, kViewOffset = 1, kViewPaged = 2;

struct FwdParams {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  uint16_t* o;
  float* lse;
  int T;              // keys (absolute positions 0 .. T-1)
  int q_off;          // absolute position of query row 0: q, o and lse hold T - q_off rows per head
  int q_tile0;        // first query tile of the launched kernel (q_off / its rows per tile)
  int kv_rows;         // rows between KV heads in k, v and extra (>= T)
  // Paged K/V (pages != nullptr): key j of batch b is row j & pmask of the page
  // pages[b * page_stride + (j >> pshift)], a page being [2][Hkv][P][DH] (K half, then V half
  // page_v elements further); k and v are unused.
  const uint16_t* const* pages;
  int pshift, pmask, page_stride;
  int64_t page_v;
  int Hq, Hkv, group;  // group = Hq / Hkv
  int BH;              // B * Hq
  int n_qtiles;
  int n_items;         // n_qtiles * BH work items; the grid is persistent (item += gridDim.x)
  float scale_log2;    // scale * log2(e): scores live in log2 units
  // streams
  int W, S, C;
  const int32_t* extra;  // [Hkv, T, C] or nullptr
  // Element strides (batch, head, row) of q (and dq), k / v (and dk, dv), o (and dout), set by the
  // host for every call (contiguous: {H * rows * DH, rows * DH, DH}, rows = kv_rows for k / v).
  // The plain view reads q and writes o through them; k / v use them in every non-paged view.
  int64_t qs_b, qs_h, qs_t, ks_b, ks_h, ks_t, os_b, os_h, os_t;
};

template <int DH>
constexpr int smem_bytes() { return (kFwdBr + 4 * kBc) * DH * 2; }  // Q + 2 stages of K and V

// Element offset of 16-byte chunk `chunk` of row `row` in a swizzled [rows][DH] tile.
template <int DH>
__device__ __forceinline__ int swz(int row, int chunk) {
  return row * DH + ((chunk ^ (row & 7)) << 3);
}

__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool pred) {
  const unsigned s = static_cast<unsigned>(__cvta_generic_to_shared(smem));
  const int n = pred ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(n));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldsm_x4(unsigned (&r)[4], const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}
__device__ __forceinline__ void ldsm_x4_t(unsigned (&r)[4], const void* p) {
  const unsigned a = static_cast<unsigned>(__cvta_generic_to_shared(p));
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(a));
}

template <bool BF16>
__device__ __forceinline__ void mma16816(float (&d)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  if constexpr (BF16) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
        "{%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
}

// 2^x by the SFU (ex2.approx.ftz: ~2 ulp, flushes subnormal results; 2^-inf = +0). exp2f without
// --use_fast_math adds range-scaling instructions around the same SFU op on every score element.
__device__ __forceinline__ float fast_exp2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

template <bool BF16>
__device__ __forceinline__ unsigned pack2(float lo, float hi) {
  if constexpr (BF16) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&h);
  } else {
    __half2 h = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<unsigned*>(&h);
  }
}

enum class TileKind { kContig, kLandmark, kExtra };

// Which keys tile t holds, for one query tile.
struct TileDesc {
  TileKind kind;
  int base;  // kContig: key of row 0; kLandmark: landmark index of row 0; kExtra: column c
  bool masked;
  int sub;   // kExtra: which 16-row m-tile of each warp the tile serves (0 when BR = 64)
};

// The tile sequence of one query tile [q0, q_last] of BR rows (64: backward, 128: forward).
// Extras: BR/64 tiles per column; tile (c, sub) row 16*w + x holds the key of query
// q0 + (BR/4)*w + 16*sub + x, i.e. of m-tile `sub` of warp w.
template <Mode M, int BR = kBr>
struct Schedule {
  int q0, q_last;
  int n_land, n_land_tiles;  // landmarks m with m*S < q_last - W
  int band_lo, n_band_tiles;
  int n_ext_tiles;
  int total;

  __device__ void init(const FwdParams& p, int qtile) {
    q0 = qtile * BR;
    q_last = min(q0 + BR - 1, p.T - 1);
    if constexpr (M == Mode::kDense) {
      n_land = n_land_tiles = n_ext_tiles = 0;
      band_lo = 0;
      n_band_tiles = (q_last + kBc) / kBc;
    } else {
      const int lim = q_last - p.W;  // landmark j allowed for some row iff j < lim
      n_land = (p.S > 0 && lim > 0) ? (lim - 1) / p.S + 1 : 0;
      n_land_tiles = (n_land + kBc - 1) / kBc;
      band_lo = max(0, q0 - p.W);
      n_band_tiles = (q_last - band_lo + 1 + kBc - 1) / kBc;
      n_ext_tiles = p.extra != nullptr ? p.C * (BR / 64) : 0;
    }
    total = n_land_tiles + n_band_tiles + n_ext_tiles;
  }

  __device__ TileDesc tile(const FwdParams& p, int t) const {
    if (t < n_land_tiles) {
      const int m0 = t * kBc;
      // Every row i >= q0 allows landmark j iff j < i - W: unmasked when the tile's last one is < q0 - W.
      const bool masked = static_cast<long long>(m0 + kBc - 1) * p.S >= q0 - p.W;
      return {TileKind::kLandmark, m0, masked, 0};
    }
    t -= n_land_tiles;
    if (t < n_band_tiles) {
      const int kb = band_lo + t * kBc;
      if constexpr (M == Mode::kDense) return {TileKind::kContig, kb, kb + kBc - 1 > q0, 0};
      return {TileKind::kContig, kb, true, 0};
    }
    t -= n_band_tiles;
    return {TileKind::kExtra, t / (BR / 64), true, t % (BR / 64)};
  }
};

// Query row of extras-tile row r (see Schedule).
template <int BR>
__device__ __forceinline__ int extra_row_query(int r, int sub) {
  return (r >> 4) * (BR / 4) + 16 * sub + (r & 15);
}

// One work item of the persistent forward grids: query tile `qtile` (heaviest first) of head
// bh = b * Hq + hq, with the global bases of its Q rows, its KV head's K/V and its extras.
struct FwdItem {
  int bh, hkv, qtile;
  const uint16_t* qg;  // query row of absolute position i: qg + i * qs_t (plain), qg + (i - q_off) * DH (offset)
  const uint16_t* kg;  // key j at kg + j * ks_t; paged: a valid dummy source (page 0)
  const uint16_t* vg;
  const int32_t* ext;
  const uint16_t* const* pt;  // paged: this batch's page table, else nullptr
  int64_t hoff;               // paged: this KV head's rows inside a page (hkv * P * DH)
};
template <int DH, int VIEW>
__device__ __forceinline__ FwdItem make_fwd_item(const FwdParams& p, int it) {
  const int T = p.T;
  FwdItem x;
  x.bh = it / p.n_qtiles;  // b * Hq + hq
  const int b = x.bh / p.Hq, hq = x.bh % p.Hq;
  x.hkv = hq / p.group;
  if constexpr (VIEW == kViewPlain) {
    x.qtile = p.n_qtiles - 1 - it % p.n_qtiles;
    x.qg = p.q + static_cast<int64_t>(b) * p.qs_b + static_cast<int64_t>(hq) * p.qs_h;
  } else {
    x.qtile = p.q_tile0 + p.n_qtiles - 1 - it % p.n_qtiles;
    x.qg = p.q + (static_cast<int64_t>(x.bh) * (T - p.q_off)) * DH;
  }
  if constexpr (VIEW == kViewPaged) {
    x.pt = p.pages + static_cast<int64_t>(b) * p.page_stride;
    x.hoff = static_cast<int64_t>(x.hkv) * (p.pmask + 1) * DH;
    x.kg = x.pt[0] + x.hoff;
    x.vg = x.kg + p.page_v;
  } else {
    x.pt = nullptr;
    x.hoff = 0;
    x.kg = p.k + static_cast<int64_t>(b) * p.ks_b + static_cast<int64_t>(x.hkv) * p.ks_h;
    x.vg = p.v + static_cast<int64_t>(b) * p.ks_b + static_cast<int64_t>(x.hkv) * p.ks_h;
  }
  x.ext = p.extra != nullptr ? p.extra + static_cast<int64_t>(x.hkv) * p.kv_rows * p.C : nullptr;
  return x;
}

// Source of 16-byte chunk c of key `key`'s K and V rows (ok = false: a valid dummy, zero-filled by
// cp.async), contiguous or through the page table.
template <int DH, int VIEW>
__device__ __forceinline__ void kv_chunk(const FwdParams& p, const FwdItem& x, int key, int c, bool ok,
                                         const uint16_t*& kr, const uint16_t*& vr) {
  if constexpr (VIEW == kViewPaged) {
    kr = x.kg;
    vr = x.vg;
    if (ok) {
      kr = x.pt[key >> p.pshift] + x.hoff + static_cast<int64_t>(key & p.pmask) * DH + c * 8;
      vr = kr + p.page_v;
    }
  } else {
    const int64_t off = ok ? static_cast<int64_t>(key) * p.ks_t + c * 8 : 0;
    kr = x.kg + off;
    vr = x.vg + off;
  }
}

// Query row i (absolute) is loaded iff q_off <= i < T (rows before q_off belong to an earlier call:
// zero-filled here, never written).
template <int DH, int VIEW>
__device__ __forceinline__ void load_q_chunk(const FwdParams& p, const FwdItem& x, uint16_t* dst, int i, int c) {
  if constexpr (VIEW == kViewPlain) {
    const bool ok = i < p.T;
    cp_async16(dst, ok ? x.qg + static_cast<int64_t>(i) * p.qs_t + c * 8 : x.qg, ok);
  } else {
    const bool ok = i >= p.q_off && i < p.T;
    cp_async16(dst, ok ? x.qg + static_cast<int64_t>(i - p.q_off) * DH + c * 8 : x.qg, ok);
  }
}

// Output rows of head bh = b * Hq + hq: row r (relative to q_off) at og + r * ost. The plain view
// writes through the o strides; the others hold T - q_off contiguous rows per head.
template <int DH, int VIEW>
__device__ __forceinline__ void out_rows(const FwdParams& p, int bh, uint16_t*& og, int64_t& ost) {
  if constexpr (VIEW == kViewPlain) {
    og = p.o + static_cast<int64_t>(bh / p.Hq) * p.os_b + static_cast<int64_t>(bh % p.Hq) * p.os_h;
    ost = p.os_t;
  } else {
    og = p.o + (static_cast<int64_t>(bh) * (p.T - p.q_off)) * DH;
    ost = DH;
  }
}

// Query rows before this (q_off; 0 for the plain view, known at compile time).
template <int VIEW>
__device__ __forceinline__ int first_row(const FwdParams& p) {
  if constexpr (VIEW == kViewPlain) return 0;
  else return p.q_off;
}

template <int DH, bool BF16, Mode M, int VIEW>
__global__ void __launch_bounds__(kThreads) attn_fwd_kernel(const FwdParams p) {
  constexpr int CH = DH / 8;  // 16-byte chunks per row
  constexpr int BR = kFwdBr;  // 128 query rows: 4 warps x 2 m-tiles of 16 rows
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + BR * DH;       // [2][kBc][DH]
  uint16_t* sV = sK + 2 * kBc * DH;  // [2][kBc][DH]
  __shared__ int sExt[2][kBc];       // key positions of an extras tile, -1 = none

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int T = p.T;
  // Work item `it`: query tiles innermost, heaviest first (most landmark / causal tiles), so the
  // CTAs resident at one time belong to one or two heads and stream the same K/V rows, which then
  // hit L2 (heads innermost made dense T=64k memory-bound). The grid is persistent: a CTA takes
  // items blockIdx.x, +gridDim.x, ...; the next item's first K/V tile is loaded during the current
  // item's last tile and its Q during the epilogue.
  using Item = FwdItem;
  auto make_item = [&](int it) { return make_fwd_item<DH, VIEW>(p, it); };
  int item = blockIdx.x;
  if (item >= p.n_items) return;
  Item cur = make_item(item);
  Schedule<M, BR> sch;
  sch.init(p, cur.qtile);

  // ---- loads ----
  auto load_q = [&](const Item& it, int q0) {
    for (int id = tid; id < BR * CH; id += kThreads) {
      const int r = id / CH, c = id % CH;
      load_q_chunk<DH, VIEW>(p, it, sQ + swz<DH>(r, c), q0 + r, c);
    }
  };
  auto load_tile = [&](const Item& it, const Schedule<M, BR>& sc, int t, int stage) {
    const TileDesc d = sc.tile(p, t);
    const int q0 = sc.q0;
    uint16_t* dk = sK + stage * kBc * DH;
    uint16_t* dv = sV + stage * kBc * DH;
    if (d.kind == TileKind::kExtra && tid < kBc) {
      const int i = q0 + extra_row_query<BR>(tid, d.sub);
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
        const int i = q0 + extra_row_query<BR>(r, d.sub);
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

  float o[2][DH / 8][4];
  float m_run[2][2], l_run[2][2];  // [m-tile][row half]
  int q0 = sch.q0;
  // This thread's rows: rowb + 16*mt + 8*h for m-tile mt and half h.
  int rowb = q0 + warp * 32 + (lane >> 2);

  // One tile for the m-tiles in MSEL (0 or 1: that one only, against shared rows koff..koff+16*NT/2;
  // 2: both, against rows 0..kBc): S = Q K^T, mask, online-softmax update, O += P V. Each K/V
  // fragment loaded by ldmatrix feeds both m-tiles, which halves shared-memory traffic per MMA.
  auto process = [&](auto nt_tag, auto msel_tag, int stage, int koff, auto allowed) {
    constexpr int NT = decltype(nt_tag)::value;
    constexpr int MSEL = decltype(msel_tag)::value;
    constexpr int M0 = MSEL == 1 ? 1 : 0;
    constexpr int M1 = MSEL == 0 ? 1 : 2;  // m-tiles [M0, M1)
    const uint16_t* tk = sK + stage * kBc * DH;
    const uint16_t* tv = sV + stage * kBc * DH;
    float s[2][NT][4];
#pragma unroll
    for (int mt = M0; mt < M1; ++mt)
#pragma unroll
      for (int n = 0; n < NT; ++n) s[mt][n][0] = s[mt][n][1] = s[mt][n][2] = s[mt][n][3] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
      unsigned qa[2][4];
#pragma unroll
      for (int mt = M0; mt < M1; ++mt)
        ldsm_x4(qa[mt], sQ + swz<DH>(warp * 32 + mt * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned r[4];
        const int row = koff + np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldsm_x4(r, tk + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
#pragma unroll
        for (int mt = M0; mt < M1; ++mt) {
          mma16816<BF16>(s[mt][2 * np], qa[mt], r[0], r[1]);
          mma16816<BF16>(s[mt][2 * np + 1], qa[mt], r[2], r[3]);
        }
      }
    }
#pragma unroll
    for (int mt = M0; mt < M1; ++mt) {
      float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float x = s[mt][n][e] * p.scale_log2;
          if (!allowed(mt, n, e)) x = -INFINITY;
          s[mt][n][e] = x;
          mx[e >> 1] = fmaxf(mx[e >> 1], x);
        }
      }
      float alpha[2], mref[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
        mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
        const float m_new = fmaxf(m_run[mt][h], mx[h]);
        mref[h] = m_new == -INFINITY ? 0.0f : m_new;
        alpha[h] = fast_exp2(m_run[mt][h] - mref[h]);  // m_run = -inf -> 0
        m_run[mt][h] = m_new;
        l_run[mt][h] *= alpha[h];
      }
#pragma unroll
      for (int n = 0; n < NT; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const float pe = fast_exp2(s[mt][n][e] - mref[e >> 1]);
          s[mt][n][e] = pe;
          l_run[mt][e >> 1] += pe;
        }
      }
#pragma unroll
      for (int d = 0; d < DH / 8; ++d) {
        o[mt][d][0] *= alpha[0]; o[mt][d][1] *= alpha[0];
        o[mt][d][2] *= alpha[1]; o[mt][d][3] *= alpha[1];
      }
    }
#pragma unroll
    for (int kk = 0; kk < NT / 2; ++kk) {
      unsigned a[2][4];
#pragma unroll
      for (int mt = M0; mt < M1; ++mt) {
        a[mt][0] = pack2<BF16>(s[mt][2 * kk][0], s[mt][2 * kk][1]);
        a[mt][1] = pack2<BF16>(s[mt][2 * kk][2], s[mt][2 * kk][3]);
        a[mt][2] = pack2<BF16>(s[mt][2 * kk + 1][0], s[mt][2 * kk + 1][1]);
        a[mt][3] = pack2<BF16>(s[mt][2 * kk + 1][2], s[mt][2 * kk + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < DH / 16; ++dp) {
        unsigned r[4];
        const int row = koff + kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        ldsm_x4_t(r, tv + swz<DH>(row, dp * 2 + (lane >> 4)));
#pragma unroll
        for (int mt = M0; mt < M1; ++mt) {
          mma16816<BF16>(o[mt][2 * dp], a[mt], r[0], r[1]);
          mma16816<BF16>(o[mt][2 * dp + 1], a[mt], r[2], r[3]);
        }
      }
    }
  };

  while (true) {
    const int next = item + static_cast<int>(gridDim.x);
    const bool has_next = kFwdPersistent && next < p.n_items;
    Item nxt{};
    Schedule<M, BR> nsch{};
    if (has_next) {
      nxt = make_item(next);
      nsch.init(p, nxt.qtile);
    }
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int i = 0; i < DH / 8; ++i) o[mt][i][0] = o[mt][i][1] = o[mt][i][2] = o[mt][i][3] = 0.0f;
      m_run[mt][0] = m_run[mt][1] = -INFINITY;
      l_run[mt][0] = l_run[mt][1] = 0.0f;
    }
    q0 = sch.q0;
    rowb = q0 + warp * 32 + (lane >> 2);
    bool prefetched = false;

    for (int t = 0; t < sch.total; ++t) {
      const int stage = (stage0 + t) & 1;
      if (t + 1 < sch.total) {
        load_tile(cur, sch, t + 1, stage ^ 1);
      } else if (has_next) {
        load_tile(nxt, nsch, 0, stage ^ 1);  // stage ^ 1 held tile t - 1, done (barrier below it)
        prefetched = true;
      }
      cp_async_commit();
      cp_async_wait<1>();
      __syncthreads();
      const TileDesc d = sch.tile(p, t);
      const int col0 = 2 * (lane & 3);
      using Both = std::integral_constant<int, 2>;
      // A full 64-key tile; at dh = 128 as two 32-key halves (each its own softmax step), which
      // keeps S at 32 registers next to the 128 of the two O accumulators (no spills).
      auto full_tile = [&](auto mk_allowed) {
        if constexpr (kFwdSplitTile && DH == 128) {
          process(std::integral_constant<int, 4>{}, Both{}, stage, 0, mk_allowed(0));
          process(std::integral_constant<int, 4>{}, Both{}, stage, 32, mk_allowed(32));
        } else {
          process(std::integral_constant<int, kBc / 8>{}, Both{}, stage, 0, mk_allowed(0));
        }
      };
      auto all = [](int) { return [](int, int, int) { return true; }; };
      if (d.kind == TileKind::kContig) {
        const int kb = d.base;
        if (!d.masked) {
          full_tile(all);
        } else {
          const int W = M == Mode::kDense ? T : p.W;
          full_tile([&](int off) {
            return [&, off](int mt, int n, int e) {
              const int i = rowb + mt * 16 + ((e >> 1) << 3);
              const int j = kb + off + n * 8 + col0 + (e & 1);
              return j <= i && j >= i - W;
            };
          });
        }
      } else if (d.kind == TileKind::kLandmark) {
        if (!d.masked) {
          full_tile(all);
        } else {
          const int m0 = d.base;
          full_tile([&](int off) {
            return [&, off](int mt, int n, int e) {
              const int i = rowb + mt * 16 + ((e >> 1) << 3);
              const int m = m0 + off + n * 8 + col0 + (e & 1);
              return m < sch.n_land && m * p.S < i - p.W;
            };
          });
        }
      } else {
        // Rows 16*warp .. +15 of this tile belong to m-tile d.sub of this warp, one per query.
        const int koff = warp * 16;
        auto diag = [&](int mt, int n, int e) {
          const int rloc = (lane >> 2) + ((e >> 1) << 3);
          const int cloc = n * 8 + col0 + (e & 1);
          const int j = sExt[stage][koff + cloc];
          return cloc == rloc && j >= 0 && j <= rowb + mt * 16 + ((e >> 1) << 3);
        };
        if (d.sub == 0) process(std::integral_constant<int, 2>{}, std::integral_constant<int, 0>{}, stage, koff, diag);
        else process(std::integral_constant<int, 2>{}, std::integral_constant<int, 1>{}, stage, koff, diag);
      }
      __syncthreads();
    }
    // sQ is free (barrier above): the next item's Q loads while this one's output is written.
    stage0 = (stage0 + sch.total) & 1;
    if (has_next) {
      load_q(nxt, nsch.q0);
      if (!prefetched) load_tile(nxt, nsch, 0, stage0);
      cp_async_commit();
    }

    // ---- epilogue: normalise, write out and lse ----
    // Output rows are relative to q_off (row i at i - q_off).
    const int qo = first_row<VIEW>(p);
    uint16_t* og;
    int64_t ost;
    out_rows<DH, VIEW>(p, cur.bh, og, ost);
    float* lg = p.lse + static_cast<int64_t>(cur.bh) * (T - qo);
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) {
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float l = l_run[mt][h];
        l += __shfl_xor_sync(0xffffffffu, l, 1);
        l += __shfl_xor_sync(0xffffffffu, l, 2);
        const int i = rowb + mt * 16 + h * 8;
        if (i >= T || (VIEW != kViewPlain && i < qo)) continue;
        const float inv = l > 0.0f ? 1.0f / l : 0.0f;
        uint16_t* orow = og + static_cast<int64_t>(i - qo) * ost + 2 * (lane & 3);
#pragma unroll
        for (int d = 0; d < DH / 8; ++d)
          *reinterpret_cast<unsigned*>(orow + d * 8) = pack2<BF16>(o[mt][d][2 * h] * inv, o[mt][d][2 * h + 1] * inv);
        if ((lane & 3) == 0) lg[i - qo] = l > 0.0f ? m_run[mt][h] * 0.69314718055994531f + logf(l) : -INFINITY;
      }
    }
    if (!has_next) break;
    item = next;
    cur = nxt;
    sch = nsch;
  }
  cp_async_wait<0>();
}

}  // namespace bna::cuda::detail
