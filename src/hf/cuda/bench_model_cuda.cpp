// bench_model_cuda (include/bna/hf_cuda.hpp): dense and Butterfly prefill / decode of a CudaModel.
// Each forward copies its logits to the host, so the wall clock of a call covers its GPU work; the
// greedy draw runs on the host, as `bna run` does, and is inside the decode time.
#include <algorithm>
#include <chrono>

#include "attention/cuda/launch.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::hf {

Expected<ModelBenchReport> bench_model_cuda(CudaModel& m, const ModelBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  const Config& c = m.config();
  if (o.decode_tokens < 1 || o.repeats < 1 || o.contexts.empty())
    return invalid_argument("bench model: decode_tokens=" + std::to_string(o.decode_tokens) + " repeats=" +
                            std::to_string(o.repeats) + " contexts=" + std::to_string(o.contexts.size()) +
                            ", expected decode_tokens >= 1, repeats >= 1 and at least one context");
  if (o.chunk != 0)
    return unimplemented("bench model: chunk=" + std::to_string(o.chunk) +
                         "; the CUDA backend prefills in one call (chunk 0)");
  for (int64_t T : o.contexts)
    if (T < 2 || T + o.decode_tokens > c.max_positions)
      return invalid_argument("bench model: context " + std::to_string(T) + " (+ " + std::to_string(o.decode_tokens) +
                              " decode tokens), expected >= 2 and <= max_positions=" + std::to_string(c.max_positions));
  if (o.kinds.empty()) return invalid_argument("bench model: kinds=0, expected at least one attention kind");
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
  rep.device = bna::cuda::device_name();
  Rng rng(o.seed);
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  for (int64_t T : o.contexts) {
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(c.vocab)));
    for (const AttentionOptions* a : runs) {
      BNA_RETURN_IF_ERROR(m.reset(1));  // frees the previous record's cache first
      BNA_RETURN_IF_ERROR(m.set_attention(*a));
      ModelBenchRecord r;
      r.attention = attn_kind_name(a->kind);
      r.context = T;
      std::vector<double> pre, ttft, dec;
      for (int i = 0; i <= o.repeats; ++i) {  // run 0 warms up (cuBLAS heuristics, buffer growth)
        BNA_RETURN_IF_ERROR(m.reset(T + o.decode_tokens));
        const auto t0 = clock::now();
        BNA_ASSIGN_OR_RETURN(std::vector<float> logits, m.forward(ids));
        const auto t1 = clock::now();
        SamplingOptions greedy;
        int32_t tok = sample(logits, greedy, nullptr);
        const auto t2 = clock::now();
        for (int64_t k = 0; k < o.decode_tokens; ++k) {
          BNA_ASSIGN_OR_RETURN(logits, m.forward(std::span<const int32_t>(&tok, 1)));
          tok = sample(logits, greedy, nullptr);
        }
        const auto t3 = clock::now();
        if (i == 0) continue;
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
      r.device_bytes = m.device_bytes();
      rep.records.push_back(std::move(r));
    }
  }
  BNA_RETURN_IF_ERROR(m.reset(1));
  BNA_RETURN_IF_ERROR(m.set_attention(saved));
  return rep;
}

}  // namespace bna::hf
