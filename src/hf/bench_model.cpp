// Model speed, dense against Butterfly and compressed butterfly (include/bna/hf.hpp): prefill
// tokens/s, time to first token, decode tokens/s, peak RSS and retained KV / graph bytes, on
// Qwen-like configs with random weights (speed does not need trained weights).
//
// Decisions a reader must know:
// * Peak memory is the process's VmHWM from /proc/self/status. Before each record it is reset by
//   writing "5" to /proc/self/clear_refs (Linux >= 4.0); where that fails the record says so
//   (peak_rss_reset = false) and the number is the process peak so far.
// * Retained KV is what the cache holds (capacity = context + decode tokens). Butterfly keeps every
//   K/V row (it reads fewer, it does not store fewer); only its graph state is extra. Compressed
//   layers hold only their two pools (raw ring + block means), so their KV bytes are bounded.
// * Each record's prefill and decode are timed on a fresh cache; with repeats > 1 the median is kept.
#include <algorithm>
#include <chrono>
#include <fstream>
#include <string>

#include "bna/hf.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::hf {
namespace {

int64_t read_vm_hwm() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
  }
  return 0;
}

bool reset_vm_hwm() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}


}  // namespace

int64_t count_params(const Config& c) {
  const int64_t C = c.hidden, dh = c.head_dim, I = c.intermediate;
  int64_t per_layer = C * c.n_heads * dh * 2 + C * c.n_kv_heads * dh * 2 + 2 * C + (c.gelu_mlp ? 2 : 3) * C * I;
  if (c.qkv_bias) per_layer += (c.n_heads + 2 * c.n_kv_heads) * dh;
  return c.layers * per_layer + 2 * c.vocab * C + C;
}

Expected<Config> preset_config(const std::string& name) {
  Config c;
  c.family = Family::kQwen2;
  c.architecture = "Qwen2ForCausalLM";
  c.qkv_bias = true;
  c.rope_theta = 1e6;
  c.norm_eps = 1e-6f;
  c.max_positions = 131072;
  if (name == "qwen-tiny") {
    c.vocab = 4096; c.hidden = 256; c.layers = 4; c.n_heads = 4; c.n_kv_heads = 2; c.head_dim = 64;
    c.intermediate = 704;
  } else if (name == "qwen-0.5b-like") {
    c.vocab = 151936; c.hidden = 896; c.layers = 24; c.n_heads = 14; c.n_kv_heads = 2; c.head_dim = 64;
    c.intermediate = 4864;
  } else if (name == "qwen-1b-like") {
    // Qwen3-1.7B's attention shape (hidden 2048, 16 heads / 8 KV, dh 128) with 16 layers: 1.43B params
    // with the untied head, so long-context attention and the KV cache weigh as in the 1-2B class.
    c.vocab = 151936; c.hidden = 2048; c.layers = 16; c.n_heads = 16; c.n_kv_heads = 8; c.head_dim = 128;
    c.intermediate = 6144;
    c.max_positions = 262144;  // room for 128k contexts plus decode tokens
  } else {
    return invalid_argument("bench model: preset '" + name + "', expected one of qwen-tiny, qwen-0.5b-like, qwen-1b-like");
  }
  c.rotary_dim = c.head_dim;
  return c;
}

Expected<ModelBenchReport> bench_model(Model& m, const ModelBenchOptions& o) {
  using clock = std::chrono::steady_clock;
  const Config& c = m.config();
  if (o.decode_tokens < 1 || o.repeats < 1 || o.chunk < 0 || o.contexts.empty() || o.kinds.empty()) {
    return invalid_argument("bench model: decode_tokens=" + std::to_string(o.decode_tokens) + " repeats=" +
                            std::to_string(o.repeats) + " chunk=" + std::to_string(o.chunk) + " contexts=" +
                            std::to_string(o.contexts.size()) + " kinds=" + std::to_string(o.kinds.size()) +
                            ", expected decode_tokens >= 1, repeats >= 1, chunk >= 0, at least one context and "
                            "one attention kind");
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
  for (int64_t T : o.contexts) {
    std::vector<int32_t> ids(static_cast<size_t>(T));
    for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(c.vocab)));
    for (const AttentionOptions* a : runs) {
      BNA_RETURN_IF_ERROR(m.reset(1));  // drop the previous record's cache before the peak is reset
      BNA_RETURN_IF_ERROR(m.set_attention(*a));
      ModelBenchRecord r;
      r.attention = attn_kind_name(a->kind);
      r.context = T;
      r.peak_rss_reset = reset_vm_hwm();
      std::vector<double> pre, ttft, dec;
      for (int rep_i = 0; rep_i < o.repeats; ++rep_i) {
        BNA_RETURN_IF_ERROR(m.reset(T + o.decode_tokens));
        const auto t0 = clock::now();
        BNA_ASSIGN_OR_RETURN(std::vector<float> logits, m.forward(ids, false, o.chunk));
        const auto t1 = clock::now();
        SamplingOptions greedy;
        int32_t tok = sample(logits, greedy, nullptr);
        const auto t2 = clock::now();
        for (int64_t i = 0; i < o.decode_tokens; ++i) {
          BNA_ASSIGN_OR_RETURN(logits, m.forward(std::span<const int32_t>(&tok, 1)));
          tok = sample(logits, greedy, nullptr);
        }
        const auto t3 = clock::now();
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
      r.peak_rss_bytes = read_vm_hwm();
      rep.records.push_back(std::move(r));
    }
  }
  BNA_RETURN_IF_ERROR(m.reset(1));  // a compressed cache cannot turn back into a full one mid-sequence
  BNA_RETURN_IF_ERROR(m.set_attention(saved));
  return rep;
}

}  // namespace bna::hf
