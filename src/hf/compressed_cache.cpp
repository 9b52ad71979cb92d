// Two-pool compressed-butterfly cache of one HF model layer and attention over it (contract and
// decisions in compressed_cache.hpp). The runtime's compressed kernel needs K/V [Hkv, Tk, dh] with
// every row up to the last query, which the pools do not keep, so the same row loop is written here
// over (chunk rows | ring rows | summaries) pointers; dot and axpy are the runtime's own
// (attention/cpu/backward_core.hpp) so the f32 results are bit-identical.
#include "hf/compressed_cache.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attention/cpu/backward_core.hpp"
#include "bna/butterfly.hpp"

namespace bna::hf::detail {

Expected<topo::BlockSparseLayout> compressed_routing(const CompressedOptions& o, int64_t capacity, int64_t ordinal) {
  topo::ButterflyOptions bo;
  bo.layer = ordinal;
  bo.rule = o.rule;
  bo.partner_count = o.partner_count;
  bo.local_blocks = o.local_blocks;
  bo.sink_count = o.sink_count;
  return topo::butterfly_block_layout(capacity, o.block, 1, bo);
}

size_t routing_bytes(const topo::BlockSparseLayout& r) {
  return (r.indptr.size() + r.indices.size()) * sizeof(int32_t) + r.head_base.size() * sizeof(int64_t);
}

CompressedPools make_pools(int64_t Hkv, int64_t dh, int64_t capacity, const CompressedOptions& o) {
  CompressedPools P;
  P.Hkv = Hkv;
  P.dh = dh;
  P.L = o.tail;
  P.Bs = o.block;
  P.R = std::min(std::max(o.tail, o.block), capacity);  // a ring of the whole capacity never wraps
  P.n_summaries = std::max<int64_t>(0, capacity - o.tail) / o.block;
  P.ring_k.assign(static_cast<size_t>(Hkv * P.R * dh), 0.0f);
  P.ring_v.assign(P.ring_k.size(), 0.0f);
  P.sum_k.assign(static_cast<size_t>(Hkv * P.n_summaries * dh), 0.0f);
  P.sum_v.assign(P.sum_k.size(), 0.0f);
  return P;
}

namespace {

// Below this many multiply-adds a loop runs on the calling thread (decode steps, tiny chunks).
constexpr int64_t kParallelMin = int64_t{1} << 16;

// Mean of block j of head h, rows read through row(h, t) -> {k, v}: f32 sums in token order, then one
// multiply by 1/Bs (cpu::summarise_blocks).
template <class RowFn>
void summarise(CompressedPools& P, int64_t j0, int64_t j1, RowFn&& row) {
  const int64_t Hkv = P.Hkv, dh = P.dh, Bs = P.Bs;
  const float inv = 1.0f / static_cast<float>(Bs);
  const int64_t items = (j1 - j0) * Hkv;
  // Serial when small (a decode step completes at most one block): a thread team costs more than it saves.
#pragma omp parallel for schedule(static) if (items * Bs * dh > kParallelMin)
  for (int64_t item = 0; item < items; ++item) {
    const int64_t j = j0 + item / Hkv, h = item % Hkv;
    float* ks = P.sum_k.data() + (h * P.n_summaries + j) * dh;
    float* vs = P.sum_v.data() + (h * P.n_summaries + j) * dh;
    std::fill(ks, ks + dh, 0.0f);
    std::fill(vs, vs + dh, 0.0f);
    for (int64_t t = j * Bs; t < (j + 1) * Bs; ++t) {
      const auto [kr, vr] = row(h, t);
      cpu::bwd_detail::axpy(ks, 1.0f, kr, dh);
      cpu::bwd_detail::axpy(vs, 1.0f, vr, dh);
    }
    for (int64_t d = 0; d < dh; ++d) ks[d] *= inv, vs[d] *= inv;
  }
}

struct RowPtrs {
  const float* k;
  const float* v;
};

}  // namespace

void pools_from_full(CompressedPools& P, const float* k, const float* v, int64_t cap, int64_t pos) {
  const int64_t dh = P.dh;
  auto row = [&](int64_t h, int64_t t) { return RowPtrs{k + (h * cap + t) * dh, v + (h * cap + t) * dh}; };
  summarise(P, 0, std::min(pos / P.Bs, P.n_summaries), row);
  for (int64_t h = 0; h < P.Hkv; ++h)
    for (int64_t t = std::max<int64_t>(0, pos - P.R); t < pos; ++t) {
      std::copy_n(k + (h * cap + t) * dh, dh, P.ring_k.data() + (h * P.R + t % P.R) * dh);
      std::copy_n(v + (h * cap + t) * dh, dh, P.ring_v.data() + (h * P.R + t % P.R) * dh);
    }
}

Status compressed_attend(CompressedPools& P, const topo::BlockSparseLayout& routing, const float* q, const float* k,
                         const float* v, int64_t p0, int64_t n, int64_t G, float scale, float* o) {
  const int64_t Hkv = P.Hkv, dh = P.dh, L = P.L, Bs = P.Bs, R = P.R, Tk = p0 + n;
  if (n <= 0) return Status::ok();
  if ((Tk - 1) / Bs >= routing.n_blocks || routing.block_size != Bs) {
    return invalid_argument("compressed cache: routing has " + std::to_string(routing.n_blocks) + " blocks of Bs=" +
                            std::to_string(routing.block_size) + ", position " + std::to_string(Tk - 1) +
                            " needs block " + std::to_string((Tk - 1) / Bs) + " of Bs=" + std::to_string(Bs));
  }
  // Raw row t < Tk of head h: the chunk's own rows, else the ring (which still holds [p0 - R, p0)).
  auto row = [&](int64_t h, int64_t t) {
    if (t >= p0) return RowPtrs{k + ((t - p0) * Hkv + h) * dh, v + ((t - p0) * Hkv + h) * dh};
    return RowPtrs{P.ring_k.data() + (h * R + t % R) * dh, P.ring_v.data() + (h * R + t % R) * dh};
  };
  // 1. Means of the blocks completed by this chunk (only those a query of this capacity can use).
  const int64_t j0 = std::min(p0 / Bs, P.n_summaries), j1 = std::min(Tk / Bs, P.n_summaries);
  if (j1 > j0) summarise(P, j0, j1, row);

  // 2. One softmax per (KV head, query) row over raw [c, pos] then routed summaries (j + 1) * Bs <= c.
  int64_t deg = 0;
  for (int64_t b = 0; b < routing.n_blocks; ++b) deg = std::max<int64_t>(deg, routing.row_end(0, b) - routing.row_begin(0, b));
  const int64_t max_keys = std::min(L, Tk) + deg;
  const int threads = std::max(1, omp_get_max_threads());
  std::vector<const float*> ptrs(static_cast<size_t>(threads) * 2 * static_cast<size_t>(max_keys));
  std::vector<float> scores(static_cast<size_t>(threads) * static_cast<size_t>(max_keys));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t rows = Hkv * n;
#pragma omp parallel for schedule(dynamic, 8) if (rows * max_keys * G * dh > kParallelMin)
  for (int64_t item = 0; item < rows; ++item) {
    const int64_t hk = item / n, i = item % n;
    const int64_t pos = p0 + i;
    const int64_t c = std::max<int64_t>(0, pos - L + 1);
    const size_t tid = static_cast<size_t>(omp_get_thread_num());
    const float** kr = ptrs.data() + tid * 2 * static_cast<size_t>(max_keys);
    const float** vr = kr + max_keys;
    float* sc = scores.data() + tid * static_cast<size_t>(max_keys);
    int64_t nk = 0;
    for (int64_t j = c; j <= pos; ++j, ++nk) {
      const RowPtrs r = row(hk, j);
      kr[nk] = r.k;
      vr[nk] = r.v;
    }
    const int64_t qb = pos / Bs;
    for (const int32_t* b = routing.row_begin(0, qb); b != routing.row_end(0, qb); ++b) {
      if ((int64_t{*b} + 1) * Bs > c) continue;  // implies *b < n_summaries (c <= capacity - L)
      kr[nk] = P.sum_k.data() + (hk * P.n_summaries + *b) * dh;
      vr[nk] = P.sum_v.data() + (hk * P.n_summaries + *b) * dh;
      ++nk;
    }
    for (int64_t g = 0; g < G; ++g) {
      const int64_t r = (hk * G + g) * n + i;
      const float* qr = q + r * dh;
      float* orow = o + r * dh;
      float m = kNegInf;
      for (int64_t x = 0; x < nk; ++x) {
        sc[x] = scale * cpu::bwd_detail::dot(qr, kr[x], dh);
        m = std::max(m, sc[x]);
      }
      std::fill(orow, orow + dh, 0.0f);
      float l = 0.0f;
      for (int64_t x = 0; x < nk; ++x) {
        const float e = std::exp(sc[x] - m);
        l += e;
        cpu::bwd_detail::axpy(orow, e, vr[x], dh);
      }
      const float inv = 1.0f / l;  // nk >= 1: the raw window holds pos itself
      for (int64_t d = 0; d < dh; ++d) orow[d] *= inv;
    }
  }

  // 3. The chunk's last min(n, R) rows into the ring (older slots of [p0 - R, p0) were read above).
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t t = std::max(p0, Tk - R); t < Tk; ++t) {
      std::copy_n(k + ((t - p0) * Hkv + h) * dh, dh, P.ring_k.data() + (h * R + t % R) * dh);
      std::copy_n(v + ((t - p0) * Hkv + h) * dh, dh, P.ring_v.data() + (h * R + t % R) * dh);
    }
  return Status::ok();
}

}  // namespace bna::hf::detail
