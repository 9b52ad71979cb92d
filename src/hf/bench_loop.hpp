// The one timing loop behind bench_model (src/hf/bench_model.cpp, hf::Model) and bench_model_cuda
// (src/hf/cuda/bench_model_cuda.cpp, hf::CudaModel). The backends differ only by a small hooks type
// (the prompt's forward, untimed warm-up runs, what a record adds before and after its runs).
//
// Decisions a reader must know:
// * Every attention kind is validated (set_attention) before any timing, so a bad option fails fast.
// * Each record starts by freeing the previous record's cache (reset(1)) and each run gets a fresh
//   cache of context + decode_tokens; the median of the timed runs is kept.
// * TTFT is the prompt's forward + the first greedy draw on the host. The decode time covers
//   decode_tokens forwards of one token, each with its greedy draw (hooks.decode_greedy: the host's
//   sample on the CPU, the device's argmax with 4 bytes copied back on CUDA).
// * The model's attention options are restored afterwards, on an emptied cache (a compressed cache
//   cannot turn back into a full one mid-sequence).
#pragma once

#include <algorithm>
#include <chrono>
#include <span>
#include <string>
#include <vector>

#include "bna/hf.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::hf::detail {

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Hooks (a class the caller writes; M is Model or CudaModel):
//   int warmup_runs() const;                             untimed runs per record before the timed ones
//   Expected<std::vector<float>> prefill(M&, std::span<const int32_t> ids);   the prompt's forward
//   Expected<int32_t> decode_greedy(M&, int32_t tok);    one token's forward and its greedy draw
//   void before_runs(ModelBenchRecord&);                 after the previous cache is freed
//   void after_runs(const M&, ModelBenchRecord&);        after the runs, the record's cache still held
// Fills every record's attention, context, prefill_s, prefill_tok_s, ttft_s, decode_tok_s, kv_bytes
// and graph_bytes, and the report's config, params and threads; the hooks add the rest. Errors:
// decode_tokens < 1, repeats < 1, no contexts or kinds, contexts < 2 or beyond max_positions, invalid
// attention options, model errors (all named). o.chunk is the caller's to check and use.
template <class M, class Hooks>
Expected<ModelBenchReport> bench_model_loop(M& m, const ModelBenchOptions& o, Hooks& hooks) {
  using clock = std::chrono::steady_clock;
  const Config& c = m.config();
  if (o.decode_tokens < 1 || o.repeats < 1 || o.contexts.empty() || o.kinds.empty()) {
    return invalid_argument("bench model: decode_tokens=" + std::to_string(o.decode_tokens) + " repeats=" +
                            std::to_string(o.repeats) + " contexts=" + std::to_string(o.contexts.size()) +
                            " kinds=" + std::to_string(o.kinds.size()) +
                            ", expected decode_tokens >= 1, repeats >= 1, at least one context and one attention kind");
  }
  for (int64_t T : o.contexts) {
    if (T < 2 || T + o.decode_tokens > c.max_positions) {
      return invalid_argument("bench model: context " + std::to_string(T) + " (+ " + std::to_string(o.decode_tokens) +
                              " decode tokens), expected >= 2 and <= max_positions=" + std::to_string(c.max_positions));
    }
  }
  const AttentionOptions saved = m.attention();
  AttentionOptions bf = o.butterfly, dense = o.butterfly, cmp = o.compressed;
  bf.kind = AttnKind::kButterfly;
  dense.kind = AttnKind::kDense;
  cmp.kind = AttnKind::kCompressed;
  std::vector<const AttentionOptions*> runs;
  for (AttnKind k : o.kinds) runs.push_back(k == AttnKind::kDense ? &dense : k == AttnKind::kButterfly ? &bf : &cmp);
  BNA_RETURN_IF_ERROR(m.reset(1));
  for (const AttentionOptions* a : runs) BNA_RETURN_IF_ERROR(m.set_attention(*a));  // validates before any timing
  ModelBenchReport rep;
  rep.config = c;
  rep.params = count_params(c);
  rep.threads = num_threads();
  Rng rng(o.seed);
  const int warmup = hooks.warmup_runs();
  for (int64_t T : o.contexts) {
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(c.vocab)));
    for (const AttentionOptions* a : runs) {
      BNA_RETURN_IF_ERROR(m.reset(1));  // frees the previous record's cache before the record's hooks
      BNA_RETURN_IF_ERROR(m.set_attention(*a));
      ModelBenchRecord r;
      r.attention = attn_kind_name(a->kind);
      r.context = T;
      hooks.before_runs(r);
      std::vector<double> pre, ttft, dec;
      for (int run = 0; run < warmup + o.repeats; ++run) {
        BNA_RETURN_IF_ERROR(m.reset(T + o.decode_tokens));
        const auto t0 = clock::now();
        BNA_ASSIGN_OR_RETURN(std::vector<float> logits, hooks.prefill(m, ids));
        const auto t1 = clock::now();
        SamplingOptions greedy;
        int32_t tok = sample(logits, greedy, nullptr);
        const auto t2 = clock::now();
        for (int64_t i = 0; i < o.decode_tokens; ++i) {
          BNA_ASSIGN_OR_RETURN(tok, hooks.decode_greedy(m, tok));
        }
        const auto t3 = clock::now();
        if (run < warmup) continue;
        pre.push_back(std::chrono::duration<double>(t1 - t0).count());
        ttft.push_back(std::chrono::duration<double>(t2 - t0).count());
        dec.push_back(std::chrono::duration<double>(t3 - t2).count());
      }
      r.prefill_s = median(pre);
      r.prefill_tok_s = double(T) / r.prefill_s;
      r.ttft_s = median(ttft);
      r.decode_tok_s = double(o.decode_tokens) / median(dec);
      r.kv_bytes = m.kv_bytes();
      r.graph_bytes = m.graph_bytes();
      hooks.after_runs(m, r);
      rep.records.push_back(std::move(r));
    }
  }
  BNA_RETURN_IF_ERROR(m.reset(1));
  BNA_RETURN_IF_ERROR(m.set_attention(saved));
  return rep;
}

}  // namespace bna::hf::detail
