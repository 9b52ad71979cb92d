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
constexpr int kThreads = 128; // 4 warps x 16 query rows

enum class Mode { kDense, kStreams };

struct FwdParams {
  const uint16_t* q;
  const uint16_t* k;
  const uint16_t* v;
  uint16_t* o;
  float* lse;
  int T;
  int Hq, Hkv, group;  // group = Hq / Hkv
  int BH;              // B * Hq
  int n_qtiles;
  float scale_log2;    // scale * log2(e): scores live in log2 units
  // streams
  int W, S, C;
  const int32_t* extra;  // [Hkv, T, C] or nullptr
};

template <int DH>
constexpr int smem_bytes() { return (kBr + 4 * kBc) * DH * 2; }  // Q + 2 stages of K and V

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
};

// The tile sequence of one query tile [q0, q_last].
template <Mode M>
struct Schedule {
  int q0, q_last;
  int n_land, n_land_tiles;  // landmarks m with m*S < q_last - W
  int band_lo, n_band_tiles;
  int n_ext_tiles;
  int total;

  __device__ void init(const FwdParams& p, int qtile) {
    q0 = qtile * kBr;
    q_last = min(q0 + kBr - 1, p.T - 1);
    if constexpr (M == Mode::kDense) {
      n_land = n_land_tiles = n_ext_tiles = 0;
      band_lo = 0;
      n_band_tiles = qtile + 1;
    } else {
      const int lim = q_last - p.W;  // landmark j allowed for some row iff j < lim
      n_land = (p.S > 0 && lim > 0) ? (lim - 1) / p.S + 1 : 0;
      n_land_tiles = (n_land + kBc - 1) / kBc;
      band_lo = max(0, q0 - p.W);
      n_band_tiles = (q_last - band_lo + 1 + kBc - 1) / kBc;
      n_ext_tiles = p.extra != nullptr ? p.C : 0;
    }
    total = n_land_tiles + n_band_tiles + n_ext_tiles;
  }

  __device__ TileDesc tile(const FwdParams& p, int t) const {
    if (t < n_land_tiles) {
      const int m0 = t * kBc;
      // Every row i >= q0 allows landmark j iff j < i - W: unmasked when the tile's last one is < q0 - W.
      const bool masked = static_cast<long long>(m0 + kBc - 1) * p.S >= q0 - p.W;
      return {TileKind::kLandmark, m0, masked};
    }
    t -= n_land_tiles;
    if (t < n_band_tiles) {
      const int kb = band_lo + t * kBc;
      if constexpr (M == Mode::kDense) return {TileKind::kContig, kb, t == n_band_tiles - 1};
      return {TileKind::kContig, kb, true};
    }
    return {TileKind::kExtra, t - n_band_tiles, true};
  }
};

template <int DH, bool BF16, Mode M>
__global__ void __launch_bounds__(kThreads) attn_fwd_kernel(const FwdParams p) {
  constexpr int CH = DH / 8;  // 16-byte chunks per row
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sQ = smem;
  uint16_t* sK = sQ + kBr * DH;      // [2][kBc][DH]
  uint16_t* sV = sK + 2 * kBc * DH;  // [2][kBc][DH]
  __shared__ int sExt[2][kBc];       // key positions of an extras tile, -1 = none

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  // Query tiles innermost, heaviest first (most landmark / causal tiles): the CTAs resident at one
  // time belong to one or two heads and stream the same K/V rows, so those reads hit L2. (Heads
  // innermost made dense T=64k memory-bound: every resident CTA read a different head's K/V.)
  const int bid = blockIdx.x;
  const int qtile = p.n_qtiles - 1 - bid % p.n_qtiles;
  const int bh = bid / p.n_qtiles;  // b * Hq + hq
  const int b = bh / p.Hq, hq = bh % p.Hq, hkv = hq / p.group;
  const int T = p.T;

  const uint16_t* qg = p.q + (static_cast<int64_t>(bh) * T) * DH;
  const uint16_t* kg = p.k + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH;
  const uint16_t* vg = p.v + (static_cast<int64_t>(b) * p.Hkv + hkv) * T * DH;
  const int32_t* ext = p.extra != nullptr ? p.extra + static_cast<int64_t>(hkv) * T * p.C : nullptr;

  Schedule<M> sch;
  sch.init(p, qtile);
  const int q0 = sch.q0;

  // ---- loads ----
  for (int id = tid; id < kBr * CH; id += kThreads) {
    const int r = id / CH, c = id % CH;
    const bool ok = q0 + r < T;
    cp_async16(sQ + swz<DH>(r, c), ok ? qg + static_cast<int64_t>(q0 + r) * DH + c * 8 : qg, ok);
  }
  auto load_tile = [&](int t, int stage) {
    const TileDesc d = sch.tile(p, t);
    uint16_t* dk = sK + stage * kBc * DH;
    uint16_t* dv = sV + stage * kBc * DH;
    if (d.kind == TileKind::kExtra && tid < kBc) {
      const int i = q0 + tid;
      const int e = i < T ? ext[static_cast<int64_t>(i) * p.C + d.base] : -1;
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
        ok = m < sch.n_land;
        key = ok ? m * p.S : 0;  // m*S < T only for real landmarks
      } else {
        const int i = q0 + r;
        key = i < T ? ext[static_cast<int64_t>(i) * p.C + d.base] : -1;
        ok = key >= 0 && key < T;
      }
      const int64_t off = ok ? static_cast<int64_t>(key) * DH + c * 8 : 0;
      cp_async16(dk + swz<DH>(r, c), kg + off, ok);
      cp_async16(dv + swz<DH>(r, c), vg + off, ok);
    }
  };

  load_tile(0, 0);
  cp_async_commit();

  unsigned qf[DH / 16][4];
  float o[DH / 8][4];
#pragma unroll
  for (int i = 0; i < DH / 8; ++i) o[i][0] = o[i][1] = o[i][2] = o[i][3] = 0.0f;
  float m_run[2] = {-INFINITY, -INFINITY};
  float l_run[2] = {0.0f, 0.0f};
  const int row_lo = q0 + warp * 16 + (lane >> 2);  // this thread's rows: row_lo and row_lo + 8

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
      alpha[h] = exp2f(m_run[h] - mref[h]);  // m_run = -inf -> 0
      m_run[h] = m_new;
      l_run[h] *= alpha[h];
    }
#pragma unroll
    for (int n = 0; n < NT; ++n) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = exp2f(s[n][e] - mref[e >> 1]);
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

  for (int t = 0; t < sch.total; ++t) {
    const int stage = t & 1;
    if (t + 1 < sch.total) load_tile(t + 1, stage ^ 1);
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
  cp_async_wait<0>();

  // ---- epilogue: normalise, write out and lse ----
  uint16_t* og = p.o + (static_cast<int64_t>(bh) * T) * DH;
  float* lg = p.lse + static_cast<int64_t>(bh) * T;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float l = l_run[h];
    l += __shfl_xor_sync(0xffffffffu, l, 1);
    l += __shfl_xor_sync(0xffffffffu, l, 2);
    const int i = row_lo + h * 8;
    if (i >= T) continue;
    const float inv = l > 0.0f ? 1.0f / l : 0.0f;
    uint16_t* orow = og + static_cast<int64_t>(i) * DH + 2 * (lane & 3);
#pragma unroll
    for (int d = 0; d < DH / 8; ++d)
      *reinterpret_cast<unsigned*>(orow + d * 8) = pack2<BF16>(o[d][2 * h] * inv, o[d][2 * h + 1] * inv);
    if ((lane & 3) == 0) lg[i] = l > 0.0f ? m_run[h] * 0.69314718055994531f + logf(l) : -INFINITY;
  }
}

}  // namespace bna::cuda::detail
