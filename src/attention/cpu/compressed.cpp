// Compressed butterfly forward and block summaries (contract in compressed.hpp).
// One row at a time per (KV head, query position): the row's keys (raw tail, then routed summaries)
// are gathered as pointers once into per-thread scratch and serve the G query heads of the group;
// softmax in f32 with the max taken first (two passes over the <= tail + degree scores), so the
// result of a row depends only on the row, never on how rows are grouped into calls (chunked prefill
// and decode are bit-identical to one-shot prefill).
#include "attention/cpu/compressed.hpp"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attention/cpu/backward_core.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {

void summarise_blocks(const float* k, const float* v, int64_t Hkv, int64_t Tk, int64_t dh, int64_t Bs, int64_t j0,
                      int64_t j1, float* sk, float* sv) {
  BNA_ASSERT(j1 * Bs <= Tk);
  const float inv = 1.0f / static_cast<float>(Bs);
  parallel_for(0, (j1 - j0) * Hkv, [&](int64_t item) {
    const int64_t j = j0 + item / Hkv, h = item % Hkv;
    float* ks = sk + (j * Hkv + h) * dh;
    float* vs = sv + (j * Hkv + h) * dh;
    std::fill(ks, ks + dh, 0.0f);
    std::fill(vs, vs + dh, 0.0f);
    for (int64_t t = j * Bs; t < (j + 1) * Bs; ++t) {
      bwd_detail::axpy(ks, 1.0f, k + (h * Tk + t) * dh, dh);
      bwd_detail::axpy(vs, 1.0f, v + (h * Tk + t) * dh, dh);
    }
    for (int64_t d = 0; d < dh; ++d) ks[d] *= inv, vs[d] *= inv;
  });
}

Status extend_summaries(CompressedSummaries& s, const float* k, const float* v, int64_t Hkv, int64_t Tk,
                        int64_t dh, int64_t Bs) {
  if (Bs < 1) return invalid_argument("compressed: block size Bs=" + std::to_string(Bs) + ", expected Bs >= 1");
  if (Tk < 0) return invalid_argument("compressed: Tk=" + std::to_string(Tk) + ", expected Tk >= 0");
  if (s.Bs == 0) {
    s.Hkv = Hkv; s.dh = dh; s.Bs = Bs; s.n_blocks = 0;
    s.k.clear(); s.v.clear();
  }
  if (s.Bs != Bs || s.Hkv != Hkv || s.dh != dh)
    return invalid_argument("compressed: summaries built for Bs=" + std::to_string(s.Bs) + " Hkv=" +
                            std::to_string(s.Hkv) + " dh=" + std::to_string(s.dh) + ", called with Bs=" +
                            std::to_string(Bs) + " Hkv=" + std::to_string(Hkv) + " dh=" + std::to_string(dh));
  const int64_t n_new = Tk / Bs;
  if (n_new <= s.n_blocks) return Status::ok();
  s.k.resize(static_cast<size_t>(n_new * Hkv * dh));
  s.v.resize(s.k.size());
  summarise_blocks(k, v, Hkv, Tk, dh, Bs, s.n_blocks, n_new, s.k.data(), s.v.data());
  s.n_blocks = n_new;
  return Status::ok();
}

size_t compressed_scratch_floats_per_thread(int64_t max_keys) {
  // Two pointer lists (k, v) of max_keys entries (2 floats each) + max_keys scores, 16-float aligned.
  const size_t n = static_cast<size_t>(std::max<int64_t>(max_keys, 1));
  return (5 * n + 15) & ~size_t(15);
}

int64_t compressed_max_keys(const topo::BlockSparseLayout& routing, int64_t tail, int64_t Tk) {
  int64_t deg = 0;
  for (int64_t h = 0; h < routing.H; ++h)
    for (int64_t b = 0; b < routing.n_blocks; ++b)
      deg = std::max<int64_t>(deg, routing.row_end(h, b) - routing.row_begin(h, b));
  return std::min(tail, Tk) + deg;
}

Status compressed_fwd(const Problem& p, const topo::BlockSparseLayout& routing, int64_t tail, const SummaryView& s,
                      const FwdScratch* ws) {
  if (tail < 1) return invalid_argument("compressed: tail=" + std::to_string(tail) + ", expected tail >= 1");
  if (p.Hkv < 1 || p.Hq % p.Hkv != 0)
    return invalid_argument("compressed: Hq=" + std::to_string(p.Hq) + " not a multiple of Hkv=" + std::to_string(p.Hkv));
  if (routing.block_size != s.Bs)
    return invalid_argument("compressed: routing block_size=" + std::to_string(routing.block_size) +
                            " but summaries use Bs=" + std::to_string(s.Bs));
  if (routing.H != p.Hkv && routing.H != 1)
    return invalid_argument("compressed: routing H=" + std::to_string(routing.H) + ", expected 1 or Hkv=" +
                            std::to_string(p.Hkv));
  if (s.Hkv != p.Hkv || s.dh != p.dh)
    return invalid_argument("compressed: summaries Hkv=" + std::to_string(s.Hkv) + " dh=" + std::to_string(s.dh) +
                            ", expected Hkv=" + std::to_string(p.Hkv) + " dh=" + std::to_string(p.dh));
  if (p.Tq == 0) return Status::ok();
  const int64_t Bs = s.Bs;
  const int64_t last = p.q_offset + p.Tq - 1;
  if (last >= p.Tk)
    return invalid_argument("compressed: last query position " + std::to_string(last) + " >= Tk=" + std::to_string(p.Tk));
  if (last / Bs >= routing.n_blocks)
    return invalid_argument("compressed: routing has " + std::to_string(routing.n_blocks) +
                            " blocks, query position " + std::to_string(last) + " needs block " + std::to_string(last / Bs));
  const int64_t c_last = std::max<int64_t>(0, last - tail + 1);
  if (s.n_blocks < c_last / Bs)
    return invalid_argument("compressed: summaries cover " + std::to_string(s.n_blocks) + " blocks, expected >= " +
                            std::to_string(c_last / Bs) + " (call extend_summaries first)");

  const int64_t max_keys = compressed_max_keys(routing, tail, p.Tk);
  const size_t per_thread = compressed_scratch_floats_per_thread(max_keys);
  std::vector<float> owned;
  FwdScratch local;
  if (ws == nullptr) {
    owned.resize(per_thread * static_cast<size_t>(omp_get_max_threads()) + 16);
    float* base = owned.data();
    while (reinterpret_cast<uintptr_t>(base) % 64 != 0) ++base;
    local = {base, per_thread};
    ws = &local;
  }
  BNA_ASSERT(ws->per_thread >= per_thread);

  const int64_t G = p.Hq / p.Hkv, dh = p.dh;
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  parallel_for_dynamic(0, p.Hkv * p.Tq, 8, [&](int64_t item) {
    const int64_t hk = item / p.Tq, i = item % p.Tq;
    const int64_t pos = p.q_offset + i;
    const int64_t c = std::max<int64_t>(0, pos - tail + 1);
    float* scratch = ws->base + ws->per_thread * static_cast<size_t>(omp_get_thread_num());
    const float** kr = reinterpret_cast<const float**>(scratch);
    const float** vr = kr + max_keys;
    float* sc = reinterpret_cast<float*>(vr + max_keys);
    int64_t n = 0;
    for (int64_t j = c; j <= pos; ++j, ++n) {
      kr[n] = p.k + (hk * p.Tk + j) * dh;
      vr[n] = p.v + (hk * p.Tk + j) * dh;
    }
    const int64_t rh = routing.H == 1 ? 0 : hk;
    const int64_t qb = pos / Bs;
    for (const int32_t* b = routing.row_begin(rh, qb); b != routing.row_end(rh, qb); ++b) {
      if ((int64_t{*b} + 1) * Bs > c) continue;
      kr[n] = s.k + (int64_t{*b} * p.Hkv + hk) * dh;
      vr[n] = s.v + (int64_t{*b} * p.Hkv + hk) * dh;
      ++n;
    }
    for (int64_t g = 0; g < G; ++g) {
      const int64_t row = (hk * G + g) * p.Tq + i;
      const float* q = p.q + row * dh;
      float* o = p.o + row * dh;
      float m = kNegInf;
      for (int64_t x = 0; x < n; ++x) {
        sc[x] = p.scale * bwd_detail::dot(q, kr[x], dh);
        m = std::max(m, sc[x]);
      }
      std::fill(o, o + dh, 0.0f);
      float l = 0.0f;
      for (int64_t x = 0; x < n; ++x) {
        const float e = std::exp(sc[x] - m);
        l += e;
        bwd_detail::axpy(o, e, vr[x], dh);
      }
      const float inv = 1.0f / l;  // n >= 1: the raw window always holds pos itself
      for (int64_t d = 0; d < dh; ++d) o[d] *= inv;
      p.lse[row] = m + std::log(l);
    }
  });
  return Status::ok();
}

}  // namespace bna::cpu
