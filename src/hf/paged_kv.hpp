// Paged KV cache of the HF model's dense layers (AttentionOptions::kv_page > 0), and causal attention
// that reads the pages in place.
//
// Decisions a reader must know:
// * Layout. One pool per model hands out pages of P = kv_page tokens; a page is ONE allocation,
//   K [Hkv, P, dh] then V [Hkv, P, dh], f32, 64-byte aligned. Each paged layer keeps a page table
//   (page ids): token t of the layer lives in page table[t / P], slot t % P, so head h's K row is
//   k(id) + (h * P + t % P) * dh. Pages are taken when the first token of a page is appended and
//   returned by reset() / a switch of options, so a cache of capacity 128k holding 1k tokens holds
//   ceil(1k / P) pages per layer, not 128k rows.
// * Attention never copies the prefix into a contiguous buffer. It is the runtime's dense causal
//   forward (src/attention/cpu/dense_fwd.cpp: the QTile engine of micro_tile.hpp, keys in chunks of
//   kKc = 64 at absolute positions 0, 64, 128, ..., the diagonal chunk per 16-query group) with the
//   chunk's K/V row pointers looked up in the page table instead of computed from one base. Every
//   query lane runs the same f32 operations in the same order as in dense_fwd, so the output equals
//   the contiguous cache's bit for bit (tested on the model's logits); only the pointer source differs.
// * The G = Hq / Hkv query heads of a KV head share its tiles (lanes ordered position-major, head
//   minor), so a decode step reads each key once per KV head, not once per query head. A lane's
//   arithmetic does not depend on its tile neighbours (keys the lane may not see are masked to -inf,
//   which adds exact zeros), so this packing keeps the bit equality above.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

namespace bna::hf::detail {

class KvPagePool {
 public:
  KvPagePool() = default;
  // Pages of `page_tokens` (>= 1) tokens for Hkv KV heads of dimension dh.
  KvPagePool(int64_t Hkv, int64_t dh, int64_t page_tokens);

  int64_t page_tokens() const { return P_; }
  int64_t kv_heads() const { return Hkv_; }
  int64_t head_dim() const { return dh_; }
  // A page for new tokens (contents unset: slots are written before they are read). Reuses the id of
  // a released page.
  int32_t acquire();
  void release(int32_t id);  // frees the page's memory
  void release_all();        // frees every page (reset())
  int64_t pages_in_use() const { return in_use_; }
  size_t bytes() const { return static_cast<size_t>(in_use_) * page_floats() * sizeof(float); }
  size_t page_floats() const { return static_cast<size_t>(2 * Hkv_ * P_ * dh_); }
  float* k(int32_t id) const { return pages_[id].get(); }                   // [Hkv, P, dh]
  float* v(int32_t id) const { return pages_[id].get() + Hkv_ * P_ * dh_; }  // [Hkv, P, dh]
  // Per-thread QTile scratch of paged_attend, kept between calls (a decode step would otherwise
  // allocate it per layer).
  float* scratch(size_t floats);

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };
  int64_t Hkv_ = 0, dh_ = 0, P_ = 0;
  std::vector<std::unique_ptr<float[], FreeDeleter>> pages_;  // null = free id
  std::vector<int32_t> free_ids_;
  int64_t in_use_ = 0;
  std::vector<float> scratch_;
};

// table[i]: the page of tokens [i * P, (i + 1) * P) of one layer.
using PageTable = std::vector<int32_t>;

// Appends tokens p0 .. p0 + n - 1, k and v [n, Hkv, dh] (the projection layout), taking pages as
// needed. The table must hold exactly ceil(p0 / P) pages (tokens [0, p0)).
void paged_append(KvPagePool& pool, PageTable& table, const float* k, const float* v, int64_t p0, int64_t n);
// Returns the pages past the first `tokens` tokens (a failed forward; a table beyond the cache).
void paged_truncate(KvPagePool& pool, PageTable& table, int64_t tokens);
// Copies tokens [0, pos) between a contiguous k, v [Hkv, stride, dh] and a layer's pages (switches of
// options with tokens cached). paged_from_full wants an empty table.
void paged_from_full(KvPagePool& pool, PageTable& table, const float* k, const float* v, int64_t stride, int64_t pos);
void paged_to_full(const KvPagePool& pool, const PageTable& table, float* k, float* v, int64_t stride, int64_t pos);

// Causal attention of the n queries at positions p0 .. p0 + n - 1 to the layer's cached tokens
// [0, p0 + n) (the chunk's own K/V already appended). q, o [Hq, n, dh] f32 with Hq = G * Hkv; lse
// [Hq, n] or nullptr; scale as the runtime's (1/sqrt(dh)). Threads: the project's pool over
// (KV head, query tile), longest tiles first. No errors: shapes are the model's.
void paged_attend(KvPagePool& pool, const PageTable& table, const float* q, int64_t p0, int64_t n, int64_t G,
                  float scale, float* o, float* lse);

}  // namespace bna::hf::detail
