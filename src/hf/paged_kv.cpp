// Paged KV pool and page-wise causal attention of the HF model's dense layers (contract and
// decisions in paged_kv.hpp). The attention is the runtime's dense causal forward (dense_fwd.cpp,
// qtile_causal_range in micro_tile.hpp) with the key/value row pointers of each 64-key chunk taken
// from the page table; the QTile engine and the GQA-packed tile layout (gqa_pack.hpp, one pack of G
// heads per KV head) are reused unchanged, so the f32 arithmetic is the runtime's.
#include "hf/paged_kv.hpp"

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <new>

#include "attention/cpu/gqa_pack.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/status.hpp"
#include "bna/threads.hpp"

namespace bna::hf::detail {

KvPagePool::KvPagePool(int64_t Hkv, int64_t dh, int64_t page_tokens) : Hkv_(Hkv), dh_(dh), P_(page_tokens) {
  BNA_ASSERT(Hkv >= 1 && dh >= 1 && page_tokens >= 1);
}

int32_t KvPagePool::acquire() {
  // 64-byte aligned (a K/V row of dh = 64 is one 256-byte run of cache lines); aligned_alloc wants a
  // size that is a multiple of the alignment.
  const size_t bytes = (page_floats() * sizeof(float) + 63) & ~size_t(63);
  float* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (p == nullptr) throw std::bad_alloc();
  int32_t id;
  if (!free_ids_.empty()) {
    id = free_ids_.back();
    free_ids_.pop_back();
    pages_[id].reset(p);
  } else {
    id = static_cast<int32_t>(pages_.size());
    pages_.emplace_back(p);
  }
  ++in_use_;
  return id;
}

void KvPagePool::release(int32_t id) {
  BNA_ASSERT(id >= 0 && static_cast<size_t>(id) < pages_.size() && pages_[id] != nullptr);
  pages_[id].reset();
  free_ids_.push_back(id);
  --in_use_;
}

void KvPagePool::release_all() {
  pages_.clear();
  free_ids_.clear();
  in_use_ = 0;
}

float* KvPagePool::scratch(size_t floats) {
  if (scratch_.size() < floats + 16) scratch_.resize(floats + 16);
  const uintptr_t p = reinterpret_cast<uintptr_t>(scratch_.data());
  return scratch_.data() + ((64 - p % 64) % 64) / sizeof(float);
}

void paged_append(KvPagePool& pool, PageTable& table, const float* k, const float* v, int64_t p0, int64_t n) {
  const int64_t P = pool.page_tokens(), Hkv = pool.kv_heads(), dh = pool.head_dim();
  BNA_ASSERT(static_cast<int64_t>(table.size()) == (p0 + P - 1) / P);
  for (int64_t t = p0; t < p0 + n; ++t) {
    const int64_t slot = t % P;
    if (slot == 0) table.push_back(pool.acquire());
    const int32_t id = table[t / P];
    for (int64_t h = 0; h < Hkv; ++h) {
      std::memcpy(pool.k(id) + (h * P + slot) * dh, k + ((t - p0) * Hkv + h) * dh, dh * sizeof(float));
      std::memcpy(pool.v(id) + (h * P + slot) * dh, v + ((t - p0) * Hkv + h) * dh, dh * sizeof(float));
    }
  }
}

void paged_truncate(KvPagePool& pool, PageTable& table, int64_t tokens) {
  if (table.empty()) return;  // also a layer that was never paged (a pool of no page size)
  const size_t keep = static_cast<size_t>((tokens + pool.page_tokens() - 1) / pool.page_tokens());
  while (table.size() > keep) {
    pool.release(table.back());
    table.pop_back();
  }
}

void paged_from_full(KvPagePool& pool, PageTable& table, const float* k, const float* v, int64_t stride, int64_t pos) {
  BNA_ASSERT(table.empty());
  const int64_t P = pool.page_tokens(), Hkv = pool.kv_heads(), dh = pool.head_dim();
  for (int64_t t0 = 0; t0 < pos; t0 += P) {
    const int32_t id = pool.acquire();
    table.push_back(id);
    const int64_t m = std::min(P, pos - t0);
    for (int64_t h = 0; h < Hkv; ++h) {
      std::memcpy(pool.k(id) + h * P * dh, k + (h * stride + t0) * dh, m * dh * sizeof(float));
      std::memcpy(pool.v(id) + h * P * dh, v + (h * stride + t0) * dh, m * dh * sizeof(float));
    }
  }
}

void paged_to_full(const KvPagePool& pool, const PageTable& table, float* k, float* v, int64_t stride, int64_t pos) {
  const int64_t P = pool.page_tokens(), Hkv = pool.kv_heads(), dh = pool.head_dim();
  BNA_ASSERT(static_cast<int64_t>(table.size()) * P >= pos);
  for (int64_t t0 = 0; t0 < pos; t0 += P) {
    const int32_t id = table[t0 / P];
    const int64_t m = std::min(P, pos - t0);
    for (int64_t h = 0; h < Hkv; ++h) {
      std::memcpy(k + (h * stride + t0) * dh, pool.k(id) + h * P * dh, m * dh * sizeof(float));
      std::memcpy(v + (h * stride + t0) * dh, pool.v(id) + h * P * dh, m * dh * sizeof(float));
    }
  }
}

namespace {

using cpu::kKc;
using cpu::kQt;

// qtile_causal_range (micro_tile.hpp) over the pages of KV head hk: the same chunks at absolute key
// positions c0 = 0, 64, ..., the same past / diagonal split and the same masks; only the row pointers
// come from the page table. The tile's query positions must be non-decreasing.
void causal_pages(cpu::QTile& qt, const KvPagePool& pool, const PageTable& table, int64_t hk, int64_t Tk) {
  const int64_t P = pool.page_tokens(), dh = pool.head_dim();
  const int nq = qt.nq();
  const int64_t pmin = qt.qpos(0), pmax = qt.qpos(nq - 1);
  const int64_t k1 = std::min(Tk, pmax + 1);
  const float* kp[kKc];
  const float* vp[kKc];
  auto none = [](cpu::QScores&) {};
  for (int64_t c0 = 0; c0 < k1; c0 += kKc) {
    const int n = static_cast<int>(std::min<int64_t>(kKc, k1 - c0));
    int64_t page = c0 / P, slot = c0 % P;
    for (int j = 0; j < n; ++j) {
      const int32_t id = table[page];
      kp[j] = pool.k(id) + (hk * P + slot) * dh;
      vp[j] = pool.v(id) + (hk * P + slot) * dh;
      if (++slot == P) slot = 0, ++page;
    }
    if (c0 + n - 1 <= pmin) {
      qt.chunk(kp, vp, n, 0, nq, none);
      continue;
    }
    for (int g = 0; g < nq; g += 16) {
      const int64_t gmax = qt.qpos(g + 15 < nq ? g + 15 : nq - 1);
      const int ng = static_cast<int>(std::min<int64_t>(n, gmax - c0 + 1));
      if (ng <= 0) continue;
      const bool need_mask = c0 + ng - 1 > qt.qpos(g);
      qt.chunk(kp, vp, ng, g, g + 16, [&](cpu::QScores& sc) {
        if (!need_mask) return;
        for (int j = 0; j < sc.n; ++j) sc.keep_diff(j, static_cast<int32_t>(c0 + j), 0, INT_MAX);
      });
    }
  }
}

}  // namespace

void paged_attend(KvPagePool& pool, const PageTable& table, const float* q, int64_t p0, int64_t n, int64_t G,
                  float scale, float* o, float* lse) {
  const int64_t Hkv = pool.kv_heads(), dh = pool.head_dim(), Tk = p0 + n;
  if (n <= 0) return;
  BNA_ASSERT(static_cast<int64_t>(table.size()) * pool.page_tokens() >= Tk);
  // The runtime's GQA-packed tiles (gqa_pack.hpp) with one pack of all G heads per KV head: lane
  // r = t * G + g (query position t, query head hk * G + g), kQt lanes per tile, longest tiles first;
  // a single tile (one KV head, a decode step) runs on the calling thread (for_each_tile).
  cpu::Problem pr;
  pr.q = q;
  pr.o = o;
  pr.lse = lse;
  pr.Hq = Hkv * G;
  pr.Hkv = Hkv;
  pr.Tq = n;
  pr.Tk = Tk;
  pr.dh = dh;
  pr.q_offset = p0;
  pr.scale = scale;
  pr.gqa_pack = G;
  const cpu::TileWork work(pr);
  const size_t per_thread = cpu::qtile_scratch_floats(dh, 0);
  float* base = pool.scratch(per_thread * static_cast<size_t>(omp_get_max_threads()));
  cpu::for_each_tile(work.items(), [&](int64_t item) {
    cpu::WorkTile w = work.tile(item);
    if (w.rows.nq == 0) return;
    cpu::QTile qt(base + per_thread * static_cast<size_t>(omp_get_thread_num()), dh, scale);
    qt.begin(w.rows.nq, w.rows.q, w.rows.pos);
    causal_pages(qt, pool, table, w.hk, Tk);
    qt.finish(w.rows.o, w.rows.lse);
  });
}

}  // namespace bna::hf::detail
