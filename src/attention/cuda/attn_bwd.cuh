// Flash-attention-2 style backward kernels for H100 (sm_90a, mma.sync m16n8k16), dense causal and
// streams, sharing the forward's tile vocabulary (attn_fwd.cuh).
//
// Four launches (attn_bwd_launch.cuh); 2 and 3 run side by side on two streams, 4 after both:
//   1. memset of the f32 dK/dV accumulators (workspace) and bwd_dot_kernel: D[row] = dO[row] . O[row].
//   2. bwd_dq_kernel: query-tile-major, the forward's tile schedule (landmarks, band, extras). Per tile
//      it recomputes P = exp2(scale*log2e*QK^T - lse*log2e), dP = dO V^T, dS = P (dP - D), and
//      accumulates dQ += dS K in registers; dQ is written once in the input dtype (no atomics). For
//      extras tiles it also scatters dK[j] += scale dS q, dV[j] += P dO into the f32 accumulators
//      (only 1-2 keys per row, so atomics are cheap and no transpose of the extras table is needed).
//   3. bwd_dkdv_kernel: key-tile-major, the same math transposed: a warp owns 16 keys, the CTA walks
//      query tiles, dK += dS^T Q and dV += P^T dO stay in registers, then one f32 atomic add per
//      element into the accumulators. Work items: landmark tiles (64 landmarks m*S, queries
//      i > m*S + W) split into chunks of kQChunk query tiles, then band tiles (64 contiguous keys,
//      queries j <= i <= j + W; dense is the band with W = T), also chunked. Chunking bounds the work
//      per CTA (landmark 0 is attended by every later query) and keeps the grid balanced.
//   4. bwd_convert_kernel: f32 accumulators -> dK, dV in the input dtype.
//   Exclusive case (BwdParams::direct: one query head per KV head, no landmark items, no extras and
//   one query chunk per key tile, e.g. dense at T <= 2048): every key has exactly one work item, so
//   bwd_dkdv_kernel writes dK, dV in the input dtype and the memset and step 4 are skipped.
// Rounding points (what the tests' low-precision reference repeats): P and dS are rounded to the
// input dtype before the tensor-core products (P^T dO, dS K, dS^T Q); extras use f32 P and dS.
#pragma once

#include "attention/cuda/attn_fwd.cuh"

namespace bna::cuda::detail {

constexpr int kQChunk = 32;  // query tiles per dK/dV work item

struct BwdParams {
  FwdParams f;           // q, k, v, o (forward output), lse, shapes, W, S, C, extra
  const uint16_t* dout;  // [B, Hq, T, dh]
  uint16_t* dq;          // [B, Hq, T, dh]
  const float* D;        // [B*Hq*T] rowsum(dO * O)
  float* dk_acc;         // [B, Hkv, T, dh] f32, zeroed before the kernels
  float* dv_acc;
  float scale;           // softmax scale (natural units)
  int n_land;            // landmarks used by any row: m*S < T-1-W
  int Wb;                // band width of the dK/dV band items (W for streams, T for dense)
  int n_lt, n_lch;       // landmark tiles, query chunks per landmark tile
  int n_kt, n_bch;       // key tiles, query chunks per band key tile
  bool direct;           // exclusive items: dkdv writes dk_out, dv_out (input dtype) instead of atomics
  uint16_t* dk_out;      // [B, Hkv, T, dh]
  uint16_t* dv_out;
};

template <int DH>
constexpr int bwd_smem_bytes() { return 6 * 64 * DH * 2; }  // 2 resident tiles + 2 stages x 2 tiles

// CTAs per SM the register allocation must allow (__launch_bounds__). At dh 64 the compiler's own
// choice (dkdv 244 registers, dq 168) leaves 2 and 3 CTAs per SM; capping at 168 and 128 registers
// (3 and 4 CTAs; a few dozen bytes of spills) made the dense backward 16% faster at B=16, T=1024 and
// 12% at T=8192 on an H100 (docs/kernels.md). At dh 128 shared memory allows 2 CTAs and the default
// was fastest.
template <int DH>
constexpr int bwd_min_blocks(bool dq) { return DH == 64 ? (dq ? 4 : 3) : 1; }

// ---- 1. D = rowsum(dO * O) -----------------------------------------------------------------------
// Rows are (b * Hq + h) * T + i; o and dout share the o strides (FwdParams).
template <int DH, bool BF16>
__global__ void bwd_dot_kernel(const uint16_t* __restrict__ o, const uint16_t* __restrict__ dout,
                               float* __restrict__ D, int64_t rows, int T, int Hq, int64_t sb, int64_t sh,
                               int64_t st) {
  constexpr int LPR = DH / 8;  // lanes per row, 8 elements (16 bytes) each
  const int64_t t = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int64_t row = t / LPR;
  const int c = static_cast<int>(t % LPR);
  float acc = 0.0f;
  if (row < rows) {
    const int64_t bh = row / T, i = row % T;
    const int64_t off = (bh / Hq) * sb + (bh % Hq) * sh + i * st + c * 8;
    const uint4 a = *reinterpret_cast<const uint4*>(o + off);
    const uint4 b = *reinterpret_cast<const uint4*>(dout + off);
    const unsigned* pa = reinterpret_cast<const unsigned*>(&a);
    const unsigned* pb = reinterpret_cast<const unsigned*>(&b);
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      float2 fa, fb;
      if constexpr (BF16) {
        fa = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&pa[x]));
        fb = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&pb[x]));
      } else {
        fa = __half22float2(*reinterpret_cast<const __half2*>(&pa[x]));
        fb = __half22float2(*reinterpret_cast<const __half2*>(&pb[x]));
      }
      acc += fa.x * fb.x + fa.y * fb.y;
    }
  }
#pragma unroll
  for (int off = LPR / 2; off > 0; off >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, off);
  if (row < rows && c == 0) D[row] = acc;
}

// ---- 4. f32 accumulators -> dtype ------------------------------------------------------------------
// src is contiguous [B, Hkv, T, dh]; dst takes the k strides (sb, sh, st).
template <bool BF16>
__global__ void bwd_convert_kernel(const float* __restrict__ src, uint16_t* __restrict__ dst, int64_t n4, int dh4,
                                   int T, int Hkv, int64_t sb, int64_t sh, int64_t st) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n4) return;
  const float4 x = reinterpret_cast<const float4*>(src)[i];
  uint2 r;
  r.x = pack2<BF16>(x.x, x.y);
  r.y = pack2<BF16>(x.z, x.w);
  const int64_t row = i / dh4, bh = row / T;
  const int64_t off = (bh / Hkv) * sb + (bh % Hkv) * sh + (row % T) * st + (i % dh4) * 4;
  *reinterpret_cast<uint2*>(dst + off) = r;
}

// Loads a 64-row tile of a [T, DH] matrix with rows `st` elements apart (rows >= T zero-filled) into
// swizzled shared memory.
template <int DH>
__device__ __forceinline__ void load_rows(uint16_t* dst, const uint16_t* src, int row0, int T, int tid, int64_t st) {
  constexpr int CH = DH / 8;
  for (int id = tid; id < 64 * CH; id += kThreads) {
    const int r = id / CH, c = id % CH;
    const bool ok = row0 + r < T;
    cp_async16(dst + swz<DH>(r, c), ok ? src + static_cast<int64_t>(row0 + r) * st + c * 8 : src, ok);
  }
}

// ---- 2. dQ (query-tile-major) ----------------------------------------------------------------------
template <int DH, bool BF16, Mode M>
__global__ void __launch_bounds__(kThreads, bwd_min_blocks<DH>(true)) bwd_dq_kernel(const BwdParams bp) {
  constexpr int CH = DH / 8;
  const FwdParams& p = bp.f;
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sQ = smem;
  uint16_t* sdO = sQ + 64 * DH;
  uint16_t* sK = sdO + 64 * DH;      // [2][64][DH]
  uint16_t* sV = sK + 2 * 64 * DH;   // [2][64][DH]
  __shared__ int sExt[2][kBc];
  __shared__ float sDs[kBr], sP[kBr];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int bid = blockIdx.x;
  const int qtile = p.n_qtiles - 1 - bid % p.n_qtiles;
  const int bh = bid / p.n_qtiles;
  const int b = bh / p.Hq, hq = bh % p.Hq, hkv = hq / p.group;
  const int T = p.T;
  const int64_t qoff = static_cast<int64_t>(b) * p.qs_b + static_cast<int64_t>(hq) * p.qs_h;
  const int64_t ooff = static_cast<int64_t>(b) * p.os_b + static_cast<int64_t>(hq) * p.os_h;
  const int64_t kvoff = static_cast<int64_t>(b) * p.ks_b + static_cast<int64_t>(hkv) * p.ks_h;
  const uint16_t* qg = p.q + qoff;
  const uint16_t* dog = bp.dout + ooff;
  const uint16_t* kg = p.k + kvoff;
  const uint16_t* vg = p.v + kvoff;
  const int32_t* ext = p.extra != nullptr ? p.extra + static_cast<int64_t>(hkv) * T * p.C : nullptr;

  Schedule<M> sch;
  sch.init(p, qtile);
  const int q0 = sch.q0;

  load_rows<DH>(sQ, qg, q0, T, tid, p.qs_t);
  load_rows<DH>(sdO, dog, q0, T, tid, p.os_t);
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
        key = ok ? m * p.S : 0;
      } else {
        const int i = q0 + r;
        key = i < T ? ext[static_cast<int64_t>(i) * p.C + d.base] : -1;
        ok = key >= 0 && key < T;
      }
      const int64_t off = ok ? static_cast<int64_t>(key) * p.ks_t + c * 8 : 0;
      cp_async16(dk + swz<DH>(r, c), kg + off, ok);
      cp_async16(dv + swz<DH>(r, c), vg + off, ok);
    }
  };

  load_tile(0, 0);
  cp_async_commit();

  float dq[DH / 8][4];
#pragma unroll
  for (int i = 0; i < DH / 8; ++i) dq[i][0] = dq[i][1] = dq[i][2] = dq[i][3] = 0.0f;
  const int row_lo = q0 + warp * 16 + (lane >> 2);
  float lse2[2], Drow[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int i = row_lo + 8 * h;
    const float l = i < T ? p.lse[static_cast<int64_t>(bh) * T + i] : -INFINITY;
    // An empty row (lse = -inf) or a padding row gets lse2 = +inf, so every P is exactly 0.
    lse2[h] = l > -INFINITY ? l * 1.4426950408889634f : INFINITY;
    Drow[h] = i < T ? bp.D[static_cast<int64_t>(bh) * T + i] : 0.0f;
  }

  // One tile: S = Q K^T, dP = dO V^T, dS = P (dP - D), dQ += dS K. Returns nothing; for extras
  // tiles the diagonal P and dS are left in sP / sDs for the scatter.
  auto process = [&](auto nt_tag, int stage, int koff, bool extras, auto allowed) {
    constexpr int NT = decltype(nt_tag)::value;
    const uint16_t* tk = sK + stage * kBc * DH;
    const uint16_t* tv = sV + stage * kBc * DH;
    float s[NT][4], dp[NT][4];
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
      unsigned qa[4], da[4];
      ldsm_x4(qa, sQ + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      ldsm_x4(da, sdO + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
      for (int np = 0; np < NT / 2; ++np) {
        unsigned r[4];
        const int row = koff + np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldsm_x4(r, tk + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(s[2 * np], qa, r[0], r[1]);
        mma16816<BF16>(s[2 * np + 1], qa, r[2], r[3]);
        ldsm_x4(r, tv + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(dp[2 * np], da, r[0], r[1]);
        mma16816<BF16>(dp[2 * np + 1], da, r[2], r[3]);
      }
    }
#pragma unroll
    for (int n = 0; n < NT; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float pe = allowed(n, e) ? fast_exp2(s[n][e] * p.scale_log2 - lse2[e >> 1]) : 0.0f;
        const float ds = pe * (dp[n][e] - Drow[e >> 1]);
        if (extras) {
          const int rloc = (lane >> 2) + ((e >> 1) << 3);
          const int cloc = n * 8 + 2 * (lane & 3) + (e & 1);
          if (cloc == rloc) { sDs[koff + rloc] = ds; sP[koff + rloc] = pe; }
        }
        s[n][e] = ds;
      }
#pragma unroll
    for (int kk = 0; kk < NT / 2; ++kk) {
      const unsigned a[4] = {pack2<BF16>(s[2 * kk][0], s[2 * kk][1]), pack2<BF16>(s[2 * kk][2], s[2 * kk][3]),
                             pack2<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                             pack2<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
      for (int dd = 0; dd < DH / 16; ++dd) {
        unsigned r[4];
        const int row = koff + kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        ldsm_x4_t(r, tk + swz<DH>(row, dd * 2 + (lane >> 4)));
        mma16816<BF16>(dq[2 * dd], a, r[0], r[1]);
        mma16816<BF16>(dq[2 * dd + 1], a, r[2], r[3]);
      }
    }
  };

  const int64_t acc_base = (static_cast<int64_t>(b) * p.Hkv + hkv) * T;
  for (int t = 0; t < sch.total; ++t) {
    const int stage = t & 1;
    if (t + 1 < sch.total) load_tile(t + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const TileDesc d = sch.tile(p, t);
    const int col0 = 2 * (lane & 3);
    if (d.kind == TileKind::kContig) {
      const int kb = d.base;
      const int W = M == Mode::kDense ? T : p.W;
      const bool full = !d.masked;
      process(std::integral_constant<int, kBc / 8>{}, stage, 0, false, [&](int n, int e) {
        const int i = row_lo + ((e >> 1) << 3);
        const int j = kb + n * 8 + col0 + (e & 1);
        return full || (j <= i && j >= i - W);
      });
    } else if (d.kind == TileKind::kLandmark) {
      const int m0 = d.base;
      const bool full = !d.masked;
      process(std::integral_constant<int, kBc / 8>{}, stage, 0, false, [&](int n, int e) {
        const int i = row_lo + ((e >> 1) << 3);
        const int m = m0 + n * 8 + col0 + (e & 1);
        return full || (m < sch.n_land && m * p.S < i - p.W);
      });
    } else {
      const int koff = warp * 16;
      process(std::integral_constant<int, 2>{}, stage, koff, true, [&](int n, int e) {
        const int rloc = (lane >> 2) + ((e >> 1) << 3);
        const int cloc = n * 8 + col0 + (e & 1);
        const int j = sExt[stage][koff + cloc];
        return cloc == rloc && j >= 0 && j <= row_lo + ((e >> 1) << 3);
      });
      __syncwarp();
      // Scatter: row r of this warp adds scale*dS*q_r to dK[j] and P*dO_r to dV[j].
      for (int r = 0; r < 16; ++r) {
        const int rr = koff + r;
        const int j = sExt[stage][rr];
        const float ds = sDs[rr], pe = sP[rr];
        if (j < 0 || pe == 0.0f) continue;
        float* dkr = bp.dk_acc + (acc_base + j) * DH;
        float* dvr = bp.dv_acc + (acc_base + j) * DH;
        for (int x = lane; x < DH; x += 32) {
          const uint16_t qv = sQ[swz<DH>(rr, x >> 3) + (x & 7)];
          const uint16_t ov = sdO[swz<DH>(rr, x >> 3) + (x & 7)];
          float qf, of;
          if constexpr (BF16) {
            qf = __bfloat162float(__ushort_as_bfloat16(qv));
            of = __bfloat162float(__ushort_as_bfloat16(ov));
          } else {
            qf = __half2float(__ushort_as_half(qv));
            of = __half2float(__ushort_as_half(ov));
          }
          atomicAdd(dkr + x, bp.scale * ds * qf);
          atomicAdd(dvr + x, pe * of);
        }
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  uint16_t* dqg = bp.dq + qoff;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int i = row_lo + h * 8;
    if (i >= T) continue;
    uint16_t* orow = dqg + static_cast<int64_t>(i) * p.qs_t + 2 * (lane & 3);
#pragma unroll
    for (int d = 0; d < DH / 8; ++d)
      *reinterpret_cast<unsigned*>(orow + d * 8) =
          pack2<BF16>(dq[d][2 * h] * bp.scale, dq[d][2 * h + 1] * bp.scale);
  }
}

// ---- 3. dK, dV (key-tile-major) --------------------------------------------------------------------
template <int DH, bool BF16, Mode M>
__global__ void __launch_bounds__(kThreads, bwd_min_blocks<DH>(false)) bwd_dkdv_kernel(const BwdParams bp) {
  const FwdParams& p = bp.f;
  extern __shared__ __align__(128) uint16_t smem[];
  uint16_t* sK = smem;
  uint16_t* sV = sK + 64 * DH;
  uint16_t* sQ = sV + 64 * DH;        // [2][64][DH]
  uint16_t* sdO = sQ + 2 * 64 * DH;   // [2][64][DH]
  __shared__ float sL[2][64], sD[2][64];

  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
  const int bh = blockIdx.y;
  const int b = bh / p.Hq, hq = bh % p.Hq, hkv = hq / p.group;
  const int T = p.T;

  // Work item: a landmark tile or a band key tile, and a range [qa, qb) of query tiles.
  int x = blockIdx.x;
  bool land;
  int base, qa, qb;
  if (x < bp.n_lt * bp.n_lch) {
    land = true;
    const int lt = x / bp.n_lch, ch = x % bp.n_lch;
    base = lt * 64;  // first landmark index (< n_land, so base * S < T)
    const long long first_q = static_cast<long long>(base) * p.S + p.W + 1;  // queries i > m*S + W
    qa = static_cast<int>(max(static_cast<long long>(ch) * kQChunk, first_q / kBr));
    qb = min((ch + 1) * kQChunk, p.n_qtiles);
  } else {
    land = false;
    x -= bp.n_lt * bp.n_lch;
    const int kt = x / bp.n_bch, ch = x % bp.n_bch;
    base = kt * 64;  // first key
    const int last_q = min(T - 1, base + 63 + bp.Wb);
    qa = kt + ch * kQChunk;
    qb = min(kt + (ch + 1) * kQChunk, last_q / kBr + 1);
  }
  if (qa >= qb) return;

  const int64_t kvoff = static_cast<int64_t>(b) * p.ks_b + static_cast<int64_t>(hkv) * p.ks_h;
  const int64_t qoff = static_cast<int64_t>(b) * p.qs_b + static_cast<int64_t>(hq) * p.qs_h;
  const int64_t ooff = static_cast<int64_t>(b) * p.os_b + static_cast<int64_t>(hq) * p.os_h;
  const uint16_t* kg = p.k + kvoff;
  const uint16_t* vg = p.v + kvoff;
  const uint16_t* qg = p.q + qoff;
  const uint16_t* dog = bp.dout + ooff;

  {  // K and V of the item's 64 keys
    constexpr int CH = DH / 8;
    for (int id = tid; id < 64 * CH; id += kThreads) {
      const int r = id / CH, c = id % CH;
      int key;
      bool ok;
      if (land) {
        ok = base + r < bp.n_land;
        key = ok ? (base + r) * p.S : 0;
      } else {
        key = base + r;
        ok = key < T;
      }
      const int64_t off = ok ? static_cast<int64_t>(key) * p.ks_t + c * 8 : 0;
      cp_async16(sK + swz<DH>(r, c), kg + off, ok);
      cp_async16(sV + swz<DH>(r, c), vg + off, ok);
    }
  }
  auto load_q = [&](int qt, int stage) {
    load_rows<DH>(sQ + stage * 64 * DH, qg, qt * kBr, T, tid, p.qs_t);
    load_rows<DH>(sdO + stage * 64 * DH, dog, qt * kBr, T, tid, p.os_t);
    if (tid < 64) {
      const int i = qt * kBr + tid;
      const float l = i < T ? p.lse[static_cast<int64_t>(bh) * T + i] : -INFINITY;
      sL[stage][tid] = l > -INFINITY ? l * 1.4426950408889634f : INFINITY;
      sD[stage][tid] = i < T ? bp.D[static_cast<int64_t>(bh) * T + i] : 0.0f;
    }
  };
  load_q(qa, 0);
  cp_async_commit();

  float dk[DH / 8][4], dv[DH / 8][4];
#pragma unroll
  for (int i = 0; i < DH / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[i][e] = dv[i][e] = 0.0f;
  const int krow = warp * 16 + (lane >> 2);  // this thread's key rows: krow and krow + 8
  const int col0 = 2 * (lane & 3);

  for (int qt = qa; qt < qb; ++qt) {
    const int stage = (qt - qa) & 1;
    if (qt + 1 < qb) load_q(qt + 1, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    const uint16_t* tq = sQ + stage * 64 * DH;
    const uint16_t* tdo = sdO + stage * 64 * DH;
    const int q0 = qt * kBr;
    bool full;
    if (land) {
      full = base + 63 < bp.n_land && static_cast<long long>(base + 63) * p.S < q0 - p.W;
    } else {
      full = q0 >= base + 63 && q0 + 63 - bp.Wb <= base;
    }
    auto allowed = [&](int n, int e) {
      if (full) return true;
      const int i = q0 + n * 8 + col0 + (e & 1);
      const int r = krow + ((e >> 1) << 3);
      if (land) {
        const int m = base + r;
        return m < bp.n_land && m * p.S < i - p.W;
      }
      const int j = base + r;
      return j <= i && j >= i - bp.Wb;
    };

    // S^T = K Q^T and dP^T = V dO^T for this warp's 16 keys x 64 queries.
    float s[8][4], dp[8][4];
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[n][e] = dp[n][e] = 0.0f;
#pragma unroll
    for (int kk = 0; kk < DH / 16; ++kk) {
      unsigned ka[4], va[4];
      ldsm_x4(ka, sK + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
      ldsm_x4(va, sV + swz<DH>(warp * 16 + (lane & 15), kk * 2 + (lane >> 4)));
#pragma unroll
      for (int np = 0; np < 4; ++np) {
        unsigned r[4];
        const int row = np * 16 + ((lane >> 4) << 3) + (lane & 7);
        ldsm_x4(r, tq + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(s[2 * np], ka, r[0], r[1]);
        mma16816<BF16>(s[2 * np + 1], ka, r[2], r[3]);
        ldsm_x4(r, tdo + swz<DH>(row, kk * 2 + ((lane >> 3) & 1)));
        mma16816<BF16>(dp[2 * np], va, r[0], r[1]);
        mma16816<BF16>(dp[2 * np + 1], va, r[2], r[3]);
      }
    }
    // P^T and dS^T (columns are queries: their lse and D come from shared memory).
#pragma unroll
    for (int n = 0; n < 8; ++n)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = n * 8 + col0 + (e & 1);
        const float pe = allowed(n, e) ? fast_exp2(s[n][e] * p.scale_log2 - sL[stage][c]) : 0.0f;
        s[n][e] = pe;
        dp[n][e] = pe * (dp[n][e] - sD[stage][c]);
      }
    // dV += P^T dO, dK += dS^T Q (k = the 64 queries).
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      const unsigned pa[4] = {pack2<BF16>(s[2 * kk][0], s[2 * kk][1]), pack2<BF16>(s[2 * kk][2], s[2 * kk][3]),
                              pack2<BF16>(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                              pack2<BF16>(s[2 * kk + 1][2], s[2 * kk + 1][3])};
      const unsigned da[4] = {pack2<BF16>(dp[2 * kk][0], dp[2 * kk][1]), pack2<BF16>(dp[2 * kk][2], dp[2 * kk][3]),
                              pack2<BF16>(dp[2 * kk + 1][0], dp[2 * kk + 1][1]),
                              pack2<BF16>(dp[2 * kk + 1][2], dp[2 * kk + 1][3])};
#pragma unroll
      for (int dd = 0; dd < DH / 16; ++dd) {
        unsigned r[4];
        const int row = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
        ldsm_x4_t(r, tdo + swz<DH>(row, dd * 2 + (lane >> 4)));
        mma16816<BF16>(dv[2 * dd], pa, r[0], r[1]);
        mma16816<BF16>(dv[2 * dd + 1], pa, r[2], r[3]);
        ldsm_x4_t(r, tq + swz<DH>(row, dd * 2 + (lane >> 4)));
        mma16816<BF16>(dk[2 * dd], da, r[0], r[1]);
        mma16816<BF16>(dk[2 * dd + 1], da, r[2], r[3]);
      }
    }
    __syncthreads();
  }
  cp_async_wait<0>();

  const int64_t acc_base = (static_cast<int64_t>(b) * p.Hkv + hkv) * T;
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = krow + 8 * h;
    int key;
    if (land) {
      if (base + r >= bp.n_land) continue;
      key = (base + r) * p.S;
    } else {
      key = base + r;
      if (key >= T) continue;
    }
    if (bp.direct) {
      uint16_t* dkr = bp.dk_out + kvoff + static_cast<int64_t>(key) * p.ks_t + col0;
      uint16_t* dvr = bp.dv_out + kvoff + static_cast<int64_t>(key) * p.ks_t + col0;
#pragma unroll
      for (int d = 0; d < DH / 8; ++d) {
        *reinterpret_cast<unsigned*>(dkr + d * 8) = pack2<BF16>(dk[d][2 * h] * bp.scale, dk[d][2 * h + 1] * bp.scale);
        *reinterpret_cast<unsigned*>(dvr + d * 8) = pack2<BF16>(dv[d][2 * h], dv[d][2 * h + 1]);
      }
      continue;
    }
    float* dkr = bp.dk_acc + (acc_base + key) * DH + col0;
    float* dvr = bp.dv_acc + (acc_base + key) * DH + col0;
#pragma unroll
    for (int d = 0; d < DH / 8; ++d) {
      atomicAdd(dkr + d * 8, dk[d][2 * h] * bp.scale);
      atomicAdd(dkr + d * 8 + 1, dk[d][2 * h + 1] * bp.scale);
      atomicAdd(dvr + d * 8, dv[d][2 * h]);
      atomicAdd(dvr + d * 8 + 1, dv[d][2 * h + 1]);
    }
  }
}

}  // namespace bna::cuda::detail
