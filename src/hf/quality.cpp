// Quality of Butterfly or compressed butterfly against dense attention on the same model
// (include/bna/hf.hpp): the true KL
// divergence over the full vocabulary, top-k overlap, top-1 agreement, perplexity and greedy-decode
// parity.
//
// Decisions a reader must know:
// * KL is a real KL: both distributions are full-vocabulary log-softmaxes computed in float64 from
//   the f32 logits (not a sum over a shared top-k, which can go negative; see
//   shared/reference/original-integrations.md section 8, item 7).
// * Greedy parity is the agreeing PREFIX (first divergence), not a position-aligned count: after the
//   first different token the two continuations condition on different text.
// * Memory: the text is prefilled in chunks; only the dense logits of the compared positions are
//   kept ([positions, V] f32), the perplexity uses one target log-prob per position. A CudaModel runs
//   the same code, with one-call prefill only for compressed layers (then it holds [T, V] per pass).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"

namespace bna::hf {
namespace {

// log-softmax in float64 of f32 logits.
void log_softmax64(std::span<const float> x, std::vector<double>& out) {
  out.resize(x.size());
  double mx = -INFINITY;
  for (float v : x) mx = std::max(mx, static_cast<double>(v));
  double sum = 0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
  const double lz = mx + std::log(sum);
  for (size_t i = 0; i < x.size(); ++i) out[i] = static_cast<double>(x[i]) - lz;
}

Status check_finite(std::span<const float> x, const char* what) {
  for (size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x[i])) {
      return invalid_argument(std::string("kl: ") + what + " logit " + std::to_string(i) + " is " +
                              std::to_string(x[i]) + ", expected a finite value");
    }
  }
  return Status::ok();
}

std::vector<int32_t> top_k_ids(std::span<const float> x, int64_t k) {
  std::vector<int32_t> idx(x.size());
  std::iota(idx.begin(), idx.end(), 0);
  std::partial_sort(idx.begin(), idx.begin() + k, idx.end(), [&](int32_t a, int32_t b) {
    return x[a] > x[b] || (x[a] == x[b] && a < b);
  });
  idx.resize(static_cast<size_t>(k));
  std::sort(idx.begin(), idx.end());
  return idx;
}

int32_t argmax(std::span<const float> x) {
  return static_cast<int32_t>(std::max_element(x.begin(), x.end()) - x.begin());  // first (lowest id) max
}

// One pass over the text: per chunk, the NLL of the next token, and the logits of the compared
// positions handed to `on_row(position, logits)`. Then greedy decode of n_greedy tokens.
struct Pass {
  double nll_sum = 0;
  std::vector<int32_t> greedy;
};

template <class M, class OnRow>
Expected<Pass> run_pass(M& m, std::span<const int32_t> ids, int64_t first, int64_t chunk, int64_t n_greedy,
                        OnRow&& on_row) {
  const int64_t T = static_cast<int64_t>(ids.size());
  BNA_RETURN_IF_ERROR(m.reset(T + n_greedy));
  Pass p;
  std::vector<double> ls;
  std::vector<float> last;
  const int64_t V = m.config().vocab;
  for (int64_t s = 0; s < T; s += chunk) {
    const int64_t e = std::min(T, s + chunk);
    BNA_ASSIGN_OR_RETURN(std::vector<float> lg, m.forward(ids.subspan(s, e - s), true));
    for (int64_t t = s; t < e; ++t) {
      const std::span<const float> row(lg.data() + (t - s) * V, static_cast<size_t>(V));
      BNA_RETURN_IF_ERROR(check_finite(row, "model"));
      if (t + 1 < T) {
        log_softmax64(row, ls);
        p.nll_sum -= ls[ids[t + 1]];
      }
      if (t >= first) BNA_RETURN_IF_ERROR(on_row(t, row));
    }
    if (e == T) last.assign(lg.end() - V, lg.end());
  }
  for (int64_t i = 0; i < n_greedy; ++i) {
    const int32_t tok = argmax(last);
    p.greedy.push_back(tok);
    if (i + 1 == n_greedy) break;
    BNA_ASSIGN_OR_RETURN(last, m.forward(std::span<const int32_t>(&tok, 1)));
  }
  return p;
}

}  // namespace

Expected<double> kl_divergence(std::span<const float> p, std::span<const float> q) {
  if (p.empty() || p.size() != q.size()) {
    return invalid_argument("kl: logits of sizes " + std::to_string(p.size()) + " and " + std::to_string(q.size()) +
                            ", expected equal non-zero sizes");
  }
  BNA_RETURN_IF_ERROR(check_finite(p, "P"));
  BNA_RETURN_IF_ERROR(check_finite(q, "Q"));
  std::vector<double> lp, lq;
  log_softmax64(p, lp);
  log_softmax64(q, lq);
  // P_i = exp(lp_i) may underflow to 0; the term is then 0 * finite = 0, never NaN.
  double kl = 0;
  for (size_t i = 0; i < lp.size(); ++i) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  return kl;
}

int64_t top_k_overlap(std::span<const float> a, std::span<const float> b, int64_t k) {
  k = std::clamp<int64_t>(k, 0, static_cast<int64_t>(std::min(a.size(), b.size())));
  if (k == 0) return 0;
  const std::vector<int32_t> ta = top_k_ids(a, k), tb = top_k_ids(b, k);
  std::vector<int32_t> both;
  std::set_intersection(ta.begin(), ta.end(), tb.begin(), tb.end(), std::back_inserter(both));
  return static_cast<int64_t>(both.size());
}

namespace {

// compare_quality for Model and CudaModel: `prefill_chunk` replaces o.chunk (0 = the whole text).
template <class M>
Expected<QualityReport> compare_quality_impl(M& m, std::span<const int32_t> ids, const QualityOptions& o,
                                             int64_t prefill_chunk) {
  const int64_t T = static_cast<int64_t>(ids.size()), V = m.config().vocab;
  if (T < 2) return invalid_argument("quality: the text has " + std::to_string(T) + " tokens, expected >= 2");
  if (o.top_k < 1 || o.positions < 0 || o.greedy_tokens < 0 || prefill_chunk < 0) {
    return invalid_argument("quality: top_k=" + std::to_string(o.top_k) + " positions=" + std::to_string(o.positions) +
                            " greedy_tokens=" + std::to_string(o.greedy_tokens) + " chunk=" +
                            std::to_string(prefill_chunk) + ", expected top_k >= 1 and the others >= 0");
  }
  const AttentionOptions saved = m.attention();
  AttentionOptions dense_opt = o.butterfly, bf_opt = o.butterfly;
  dense_opt.kind = AttnKind::kDense;
  if (bf_opt.kind == AttnKind::kDense) bf_opt.kind = AttnKind::kButterfly;  // the sparse side
  // Compressed layers drop raw rows, so the cache is emptied before every change of options.
  BNA_RETURN_IF_ERROR(m.reset(m.capacity()));
  BNA_RETURN_IF_ERROR(m.set_attention(bf_opt));  // validates the Butterfly options before any work
  const int64_t first = o.positions == 0 ? 0 : std::max<int64_t>(0, T - o.positions);
  const int64_t chunk = prefill_chunk == 0 ? T : prefill_chunk;
  QualityReport r;
  r.tokens = T;
  r.first_position = first;

  std::vector<float> dense_rows(static_cast<size_t>((T - first) * V));
  BNA_RETURN_IF_ERROR(m.set_attention(dense_opt));
  auto keep = [&](int64_t t, std::span<const float> row) {
    std::copy(row.begin(), row.end(), dense_rows.begin() + (t - first) * V);
    return Status::ok();
  };
  int64_t overlap = 0, top1 = 0;
  auto compare = [&](int64_t t, std::span<const float> row) -> Status {
    const std::span<const float> d(dense_rows.data() + (t - first) * V, static_cast<size_t>(V));
    BNA_ASSIGN_OR_RETURN(double kl, kl_divergence(d, row));
    r.kl.push_back(kl);
    overlap += top_k_overlap(d, row, o.top_k);
    top1 += argmax(d) == argmax(row);
    return Status::ok();
  };
  Status st = Status::ok();
  Pass dense, bf;
  if (auto p = run_pass(m, ids, first, chunk, o.greedy_tokens, keep); p) dense = std::move(*p);
  else st = p.status();
  if (st.is_ok()) st = m.set_attention(bf_opt);
  if (st.is_ok()) {
    if (auto p = run_pass(m, ids, first, chunk, o.greedy_tokens, compare); p) bf = std::move(*p);
    else st = p.status();
  }
  // Restore the caller's attention options and leave an empty cache, whatever happened.
  const Status cleared = m.reset(m.capacity());
  const Status restore = m.set_attention(saved);
  BNA_RETURN_IF_ERROR(st);
  BNA_RETURN_IF_ERROR(restore);
  BNA_RETURN_IF_ERROR(cleared);

  const int64_t n = static_cast<int64_t>(r.kl.size());
  for (int64_t i = 0; i < n; ++i) {
    r.kl_mean += r.kl[i];
    if (i == 0 || r.kl[i] > r.kl_max) {
      r.kl_max = r.kl[i];
      r.kl_argmax = first + i;
    }
  }
  r.kl_mean /= std::max<int64_t>(n, 1);
  r.top_k_overlap_mean = double(overlap) / double(std::max<int64_t>(n, 1) * std::min<int64_t>(o.top_k, V));
  r.top1_agreement = double(top1) / double(std::max<int64_t>(n, 1));
  r.ppl_dense = std::exp(dense.nll_sum / double(T - 1));
  r.ppl_butterfly = std::exp(bf.nll_sum / double(T - 1));
  r.greedy_dense = std::move(dense.greedy);
  r.greedy_butterfly = std::move(bf.greedy);
  int64_t agree = 0;
  while (agree < o.greedy_tokens && r.greedy_dense[agree] == r.greedy_butterfly[agree]) ++agree;
  r.first_divergence = agree < o.greedy_tokens ? agree : -1;
  r.greedy_parity = o.greedy_tokens > 0 ? double(agree) / double(o.greedy_tokens) : 1.0;
  return r;
}

}  // namespace

Expected<QualityReport> compare_quality(Model& m, std::span<const int32_t> ids, const QualityOptions& o) {
  return compare_quality_impl(m, ids, o, o.chunk);
}

// The CUDA backend prefills in chunks too, except compressed layers (one call at position 0, then one
// token per call): with them each pass is one call over the whole text.
Expected<QualityReport> compare_quality(CudaModel& m, std::span<const int32_t> ids, const QualityOptions& o) {
  return compare_quality_impl(m, ids, o, o.butterfly.kind == AttnKind::kCompressed ? 0 : o.chunk);
}

}  // namespace bna::hf
