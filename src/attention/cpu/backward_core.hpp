// Shared engine of the CPU attention backward kernels (internal to backward_*.cpp).
// Each path only enumerates the allowed keys of a row; the engine recomputes P from q, k and the
// forward LSE and accumulates flash-style gradients:
//   s = scale*q.k + bias[type] + add,  p = exp(s - lse),  dp = dout.v,  D = dout.out,
//   ds = p*(dp - D),  dq = scale*sum ds*k,  dk += scale*ds*q,  dv += p*dout,  d_bias[type] += ds.
// Decisions a reader must know:
//  * A row is a list of segments. A row with ONE segment is a single softmax over a multiset (a
//    repeated key counts once per copy) and uses the forward's lse and out. A row with SEVERAL
//    segments is a weighted sum of independent softmaxes (permute-window kAverage): each segment's
//    LSE is recomputed here, because the forward stores only one lse per row, and D_c = sum p*dp
//    over the segment replaces dout.out (the per-segment outputs are not stored either).
//  * Parallel scheme: KV heads in sequence; within a head, query positions are split over threads
//    (static interleaved chunks, so results are deterministic for a given thread count). The row of
//    a KV head is built once and serves its G query heads. dq rows have one owner; dk/dv go to
//    per-thread [Tk, dh] partials that are summed at the end of each head: O(Tk*dh) per thread.
//  * Type 0 (PAD) marks untyped keys (dense, block-sparse): no bias is added and no d_bias collected.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "attention/cpu/kernels.hpp"
#include "bna/status.hpp"

namespace bna::cpu::bwd_detail {

struct RowEntry {
  int32_t j;     // key index in [0, Tk)
  uint8_t type;  // edge code, 0 = untyped
  float add;     // extra score term (e.g. log multiplicity); 0 for plain rows
};

// Keys of one row, grouped into softmax segments. Filled by a path's row function.
struct RowSegments {
  std::vector<RowEntry> entries;
  std::vector<int64_t> seg_end;    // end offset of each segment in entries
  std::vector<float> seg_weight;   // weight of each segment's output in the row output

  void clear() { entries.clear(); seg_end.clear(); seg_weight.clear(); }
  void add(int32_t j, uint8_t type, float add = 0.0f) { entries.push_back({j, type, add}); }
  // Closes the segment made of the entries added since the previous close.
  void close_segment(float weight) {
    seg_end.push_back(static_cast<int64_t>(entries.size()));
    seg_weight.push_back(weight);
  }
};

inline float dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

inline void axpy(float* __restrict y, float a, const float* __restrict x, int64_t n) {
#pragma omp simd
  for (int64_t d = 0; d < n; ++d) y[d] += a * x[d];
}

// Runs the backward of every row. row_fn(hkv, pos, RowSegments&) appends the allowed keys of the row
// of KV head hkv at absolute position pos and closes its segment(s); keys must satisfy j <= pos and
// j < Tk (the path applies causality).
template <class RowFn>
void backward_rows(const GradProblem& gp, RowFn&& row_fn) {
  const Problem& p = gp.fwd;
  BNA_ASSERT(p.Hkv >= 1 && p.Hq % p.Hkv == 0 && p.dh >= 1);
  const int64_t G = p.Hq / p.Hkv, dh = p.dh, Tq = p.Tq, Tk = p.Tk;
  const float scale = p.scale;
  const float* bias = p.edge_bias;
  const int max_threads = omp_get_max_threads();
  const size_t part_stride = static_cast<size_t>(2 * Tk * dh);
  std::vector<float> partials(static_cast<size_t>(max_threads) * part_stride);
  std::vector<double> dbias_part(static_cast<size_t>(max_threads) * 5, 0.0);
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

#pragma omp parallel num_threads(max_threads)
  {
    const int t = omp_get_thread_num();
    const int nth = omp_get_num_threads();
    float* dkp = partials.data() + static_cast<size_t>(t) * part_stride;
    float* dvp = dkp + Tk * dh;
    double* dbt = dbias_part.data() + static_cast<size_t>(t) * 5;
    RowSegments rs;
    std::vector<float> acc(static_cast<size_t>(dh));
    std::vector<float> pbuf, dpbuf;

    for (int64_t hkv = 0; hkv < p.Hkv; ++hkv) {
      std::fill(dkp, dkp + part_stride, 0.0f);
      const float* kh = p.k + hkv * Tk * dh;
      const float* vh = p.v + hkv * Tk * dh;

#pragma omp for schedule(static, 4)
      for (int64_t i = 0; i < Tq; ++i) {
        rs.clear();
        row_fn(hkv, p.q_offset + i, rs);
        const size_t nseg = rs.seg_end.size();
        for (int64_t g = 0; g < G; ++g) {
          const int64_t hq = hkv * G + g;
          const int64_t row = hq * Tq + i;
          const float* qr = p.q + row * dh;
          const float* dor = gp.dout + row * dh;
          float* dqr = gp.dq + row * dh;
          std::fill(acc.begin(), acc.end(), 0.0f);

          if (nseg == 1) {
            // Single softmax: the forward's lse and out are exact inputs.
            const float lse = p.lse[row];
            if (!(lse > kNegInf) || rs.entries.empty()) {
              std::fill(dqr, dqr + dh, 0.0f);
              continue;
            }
            const float D = dot(dor, p.o + row * dh, dh);
            for (const RowEntry& e : rs.entries) {
              const float* kj = kh + int64_t{e.j} * dh;
              const float* vj = vh + int64_t{e.j} * dh;
              float s = scale * dot(qr, kj, dh) + e.add;
              if (bias != nullptr && e.type != 0) s += bias[e.type];
              const float pj = std::exp(s - lse);
              const float ds = pj * (dot(dor, vj, dh) - D);
              axpy(acc.data(), ds, kj, dh);
              axpy(dkp + int64_t{e.j} * dh, scale * ds, qr, dh);
              axpy(dvp + int64_t{e.j} * dh, pj, dor, dh);
              if (e.type != 0) dbt[e.type] += ds;
            }
          } else {
            // Weighted sum of independent softmaxes: recompute each segment's LSE and D.
            int64_t b = 0;
            for (size_t c = 0; c < nseg; ++c) {
              const int64_t end = rs.seg_end[c];
              const float w = rs.seg_weight[c];
              const int64_t n = end - b;
              if (n == 0) continue;
              pbuf.resize(static_cast<size_t>(n));
              dpbuf.resize(static_cast<size_t>(n));
              float m = kNegInf;
              for (int64_t x = 0; x < n; ++x) {
                const RowEntry& e = rs.entries[static_cast<size_t>(b + x)];
                float s = scale * dot(qr, kh + int64_t{e.j} * dh, dh) + e.add;
                if (bias != nullptr && e.type != 0) s += bias[e.type];
                pbuf[x] = s;
                m = s > m ? s : m;
              }
              float l = 0.0f;
              for (int64_t x = 0; x < n; ++x) l += std::exp(pbuf[x] - m);
              const float lse_c = m + std::log(l);
              float D = 0.0f;
              for (int64_t x = 0; x < n; ++x) {
                const RowEntry& e = rs.entries[static_cast<size_t>(b + x)];
                pbuf[x] = std::exp(pbuf[x] - lse_c);
                dpbuf[x] = w * dot(dor, vh + int64_t{e.j} * dh, dh);
                D += pbuf[x] * dpbuf[x];
              }
              for (int64_t x = 0; x < n; ++x) {
                const RowEntry& e = rs.entries[static_cast<size_t>(b + x)];
                const float* kj = kh + int64_t{e.j} * dh;
                const float ds = pbuf[x] * (dpbuf[x] - D);
                axpy(acc.data(), ds, kj, dh);
                axpy(dkp + int64_t{e.j} * dh, scale * ds, qr, dh);
                axpy(dvp + int64_t{e.j} * dh, pbuf[x] * w, dor, dh);
                if (e.type != 0) dbt[e.type] += ds;
              }
              b = end;
            }
          }
          for (int64_t d = 0; d < dh; ++d) dqr[d] = scale * acc[d];
        }
      }
      // Implicit barrier above: every partial of this head is complete.
      float* dkh = gp.dk + hkv * Tk * dh;
      float* dvh = gp.dv + hkv * Tk * dh;
#pragma omp for schedule(static)
      for (int64_t x = 0; x < Tk * dh; ++x) {
        float sk = 0.0f, sv = 0.0f;
        for (int u = 0; u < nth; ++u) {
          const float* pu = partials.data() + static_cast<size_t>(u) * part_stride;
          sk += pu[x];
          sv += pu[Tk * dh + x];
        }
        dkh[x] = sk;
        dvh[x] = sv;
      }
      // Implicit barrier: partials are free to be cleared for the next head.
    }
  }
  if (gp.d_edge_bias != nullptr) {
    for (int c = 0; c < 5; ++c) {
      double s = 0.0;
      for (int u = 0; u < max_threads; ++u) s += dbias_part[static_cast<size_t>(u) * 5 + c];
      gp.d_edge_bias[c] = static_cast<float>(s);
    }
  }
}

}  // namespace bna::cpu::bwd_detail
