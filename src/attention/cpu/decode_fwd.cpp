// Split-K decode forward (contract in decode.hpp). Pass 1, parallel over (KV head, query, split):
// the split's keys attended by the G query heads of the group with the shared gather primitives
// (TileAttn for G >= 4, attend_row below: K/V prefetch, vector exp), written as a normalised partial
// (lse_s, o_s); the merge weights them by e^(lse_s - max lse). Pass 2 over (query head, query): LSE merge (serial when tiny:
// on a loaded machine waking a thread team costs more than merging a few rows). Pass 1 is serial too
// when the whole call is small (kDecodeThreadedWork); the split count, and so the bits, stay the same.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/cpu/backward_core.hpp"
#include "attention/cpu/decode.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "attention/cpu/tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

int64_t decode_num_splits(int64_t rows, int64_t max_keys, int threads) {
  const int64_t want = (2 * static_cast<int64_t>(std::max(1, threads)) + rows - 1) / std::max<int64_t>(rows, 1);
  const int64_t cap = std::max<int64_t>(1, max_keys / 32);
  return std::clamp<int64_t>(want, 1, cap);
}

bool decode_fwd_threaded(int64_t rows, int64_t G, int64_t max_keys, int64_t dh, int64_t threaded_work) {
  return rows * G * max_keys * dh >= threaded_work;
}

size_t decode_partial_floats(int64_t Hq, int64_t Tq, int64_t dh, int64_t n_splits) {
  return static_cast<size_t>(Hq * Tq * n_splits * (dh + 2));
}

size_t decode_scratch_floats_per_thread(int64_t dh, int64_t max_keys, int64_t n_splits) {
  return fwd_scratch_floats_per_thread(dh, (max_keys + n_splits - 1) / n_splits);
}

void decode_fwd(const Problem& p, const DecodeRows& rows, int64_t n_splits, float* partials, const FwdScratch& ws,
                int64_t threaded_work) {
  const int64_t G = p.Hq / p.Hkv, dh = p.dh, Tq = p.Tq, ns = n_splits;
  const int64_t pstride = dh + 2;  // partial: lse, weight (1 = non-empty), o[dh]
  const int64_t chunk_max = std::max<int64_t>(1, (rows.max_keys + ns - 1) / ns);
  const float* bias = p.edge_bias;
  const int64_t items = p.Hkv * Tq * ns;
  // One item, or a call whose whole work is small (an HF Butterfly decode step: one KV head, a few
  // hundred keys), runs on the calling thread: on a loaded machine waking a thread team costs a
  // scheduler tick, far more than the step. The items and n_splits are the same either way, so the
  // output bits do not depend on which branch ran.
  const bool threaded = items > 1 && decode_fwd_threaded(p.Hkv * Tq, G, rows.max_keys, dh, threaded_work);
#pragma omp parallel for schedule(dynamic, 1) if (threaded)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t hk = item / (Tq * ns), i = (item / ns) % Tq, s = item % ns;
    const int64_t pos = p.q_offset + i;
    const int64_t len = rows.len[hk * Tq + i];
    const int32_t* idx = rows.idx + (hk * Tq + i) * rows.max_keys;
    const uint8_t* ty = rows.type + (hk * Tq + i) * rows.max_keys;
    const int64_t b = std::min(len, s * chunk_max), e = std::min(len, (s + 1) * chunk_max);
    const int64_t n = e - b;  // split s covers keys [b, e) of the row
    TileAttn ta(ws.base + ws.per_thread * static_cast<size_t>(omp_get_thread_num()), dh, p.scale);
    int64_t* kpos = ta.extra_i64();
    uint8_t* ktype = reinterpret_cast<uint8_t*>(kpos + chunk_max);
    float* kb = reinterpret_cast<float*>(kpos + chunk_max + (chunk_max + 7) / 8);
    float* sbuf = kb + chunk_max;
    for (int64_t x = 0; x < n; ++x) {
      kpos[x] = idx[b + x];
      ktype[x] = ty[b + x];
      if (bias) kb[x] = bias[ty[b + x]];
    }
    const float* K = p.k + hk * p.Tk * dh;
    const float* V = p.v + hk * p.Tk * dh;
    auto part_of = [&](int64_t g) { return partials + (((hk * G + g) * Tq + i) * ns + s) * pstride; };
    if (G < 4) {  // a 4-row tile would be mostly padding
      for (int64_t g = 0; g < G; ++g) {
        float* part = part_of(g);
        attend_row(p.q + ((hk * G + g) * Tq + i) * dh, K, V, kpos, bias ? kb : nullptr, n, p.scale, dh, sbuf, part + 2,
                   part);
      }
    } else {
      for (int64_t g0 = 0; g0 < G; g0 += kBq) {
        const int nq = static_cast<int>(G - g0 < kBq ? G - g0 : kBq);
        const float* q[kBq];
        int64_t qp[kBq];
        float* o[kBq];
        float* lse[kBq];
        for (int r = 0; r < nq; ++r) {
          float* part = part_of(g0 + r);
          q[r] = p.q + ((hk * G + g0 + r) * Tq + i) * dh;
          o[r] = part + 2;
          lse[r] = part;
          qp[r] = pos;
        }
        ta.begin(nq, q, qp);
        if (bias) {
          ta.keys(K, V, kpos, n, [&](int64_t j0, int m, float* S, int ld) {
            for (int r = 0; r < nq; ++r)
              for (int j = 0; j < m; ++j) S[r * ld + j] += kb[j0 + j];
          });
        } else {
          ta.keys(K, V, kpos, n, [](int64_t, int, float*, int) {});
        }
        ta.finish(o, lse);
      }
    }
    for (int64_t g = 0; g < G; ++g) {
      float* part = part_of(g);
      part[1] = part[0] > -std::numeric_limits<float>::infinity() ? 1.0f : 0.0f;
    }
  }
  const int64_t nrows = p.Hq * Tq;
#pragma omp parallel for schedule(static) if (nrows * ns * dh > (1 << 16))
  for (int64_t r = 0; r < nrows; ++r) {
    const float* part = partials + r * ns * pstride;
    float m = kNegInf;
    for (int64_t s = 0; s < ns; ++s)
      if (part[s * pstride + 1] > 0.0f) m = std::max(m, part[s * pstride]);
    float* o = p.o + r * dh;
    std::fill(o, o + dh, 0.0f);
    if (m == kNegInf) {  // empty row
      p.lse[r] = kNegInf;
      continue;
    }
    float l = 0.0f;
    for (int64_t s = 0; s < ns; ++s) {
      const float* ps = part + s * pstride;
      if (!(ps[1] > 0.0f)) continue;
      const float w = std::exp(ps[0] - m);
      l += w * ps[1];
      bwd_detail::axpy(o, w, ps + 2, dh);
    }
    const float inv = 1.0f / l;
    for (int64_t d = 0; d < dh; ++d) o[d] *= inv;
    p.lse[r] = m + std::log(l);
  }
}

}  // namespace bna::cpu
