// Split-K decode forward (contract in decode.hpp). Pass 1, parallel over (KV head, query, split):
// scores of the split's keys for the G query heads of the group (two passes: max, then exp and
// P·V), written as partial (m, l, acc). Pass 2, parallel over (query head, query): LSE merge.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "attention/cpu/backward_core.hpp"
#include "attention/cpu/decode.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

int64_t decode_num_splits(int64_t rows, int64_t max_keys, int threads) {
  const int64_t want = (2 * static_cast<int64_t>(std::max(1, threads)) + rows - 1) / std::max<int64_t>(rows, 1);
  const int64_t cap = std::max<int64_t>(1, max_keys / 32);
  return std::clamp<int64_t>(want, 1, cap);
}

size_t decode_partial_floats(int64_t Hq, int64_t Tq, int64_t dh, int64_t n_splits) {
  return static_cast<size_t>(Hq * Tq * n_splits * (dh + 2));
}

size_t decode_scratch_floats_per_thread(int64_t G, int64_t max_keys, int64_t n_splits) {
  const int64_t chunk = (max_keys + n_splits - 1) / n_splits;
  return (static_cast<size_t>(G * std::max<int64_t>(chunk, 1)) + 15) & ~size_t(15);
}

void decode_fwd(const Problem& p, const DecodeRows& rows, int64_t n_splits, float* partials, const FwdScratch& ws) {
  const int64_t G = p.Hq / p.Hkv, dh = p.dh, Tq = p.Tq, ns = n_splits;
  const int64_t pstride = dh + 2;  // partial: m, l, acc[dh]
  const int64_t chunk_max = (rows.max_keys + ns - 1) / ns;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const float* bias = p.edge_bias;
  parallel_for_dynamic(0, p.Hkv * Tq * ns, 1, [&](int64_t item) {
    const int64_t hk = item / (Tq * ns), i = (item / ns) % Tq, s = item % ns;
    const int64_t len = rows.len[hk * Tq + i];
    const int32_t* idx = rows.idx + (hk * Tq + i) * rows.max_keys;
    const uint8_t* ty = rows.type + (hk * Tq + i) * rows.max_keys;
    // Split s covers keys [b, e) of the row: equal shares of this row's own length.
    const int64_t b = std::min(len, s * chunk_max), e = std::min(len, (s + 1) * chunk_max);
    const int64_t n = e - b;
    float* sc = ws.base + ws.per_thread * static_cast<size_t>(omp_get_thread_num());
    const float* K = p.k + hk * p.Tk * dh;
    const float* V = p.v + hk * p.Tk * dh;
    for (int64_t g = 0; g < G; ++g) {
      const int64_t hq = hk * G + g;
      const float* q = p.q + (hq * Tq + i) * dh;
      float* part = partials + ((hq * Tq + i) * ns + s) * pstride;
      float m = kNegInf;
      float* sg = sc + g * chunk_max;
      for (int64_t x = 0; x < n; ++x) {
        float v = p.scale * bwd_detail::dot(q, K + int64_t{idx[b + x]} * dh, dh);
        if (bias) v += bias[ty[b + x]];
        sg[x] = v;
        m = std::max(m, v);
      }
      part[0] = m;
      float* acc = part + 2;
      std::fill(acc, acc + dh, 0.0f);
      float l = 0.0f;
      if (n > 0) {
        for (int64_t x = 0; x < n; ++x) {
          const float w = std::exp(sg[x] - m);
          l += w;
          bwd_detail::axpy(acc, w, V + int64_t{idx[b + x]} * dh, dh);
        }
      }
      part[1] = l;
    }
  });
  parallel_for(0, p.Hq * Tq, [&](int64_t r) {
    const float* part = partials + r * ns * pstride;
    float m = kNegInf;
    for (int64_t s = 0; s < ns; ++s)
      if (part[s * pstride + 1] > 0.0f) m = std::max(m, part[s * pstride]);
    float* o = p.o + r * dh;
    std::fill(o, o + dh, 0.0f);
    if (m == kNegInf) {  // empty row
      p.lse[r] = kNegInf;
      return;
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
  });
}

}  // namespace bna::cpu
