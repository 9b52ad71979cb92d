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
//   The loop is src/hf/bench_loop.hpp, shared with bench_model_cuda; this file adds the prefill
//   chunk and the VmHWM reset / read around each record.
#include <fstream>
#include <string>

#include "bna/hf.hpp"
#include "hf/bench_loop.hpp"

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
  if (o.chunk < 0)
    return invalid_argument("bench model: chunk=" + std::to_string(o.chunk) + ", expected >= 0 (0 = one call)");
  struct CpuHooks {
    int64_t chunk;
    int warmup_runs() const { return 0; }
    Expected<std::vector<float>> prefill(Model& m, std::span<const int32_t> ids) { return m.forward(ids, false, chunk); }
    Expected<int32_t> decode_greedy(Model& m, int32_t tok) {
      BNA_ASSIGN_OR_RETURN(std::vector<float> logits, m.forward(std::span<const int32_t>(&tok, 1)));
      return sample(logits, SamplingOptions{}, nullptr);
    }
    void before_runs(ModelBenchRecord& r) { r.peak_rss_reset = reset_vm_hwm(); }
    void after_runs(const Model&, ModelBenchRecord& r) { r.peak_rss_bytes = read_vm_hwm(); }
  } hooks{o.chunk};
  return detail::bench_model_loop(m, o, hooks);
}

}  // namespace bna::hf
