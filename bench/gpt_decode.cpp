// KV-cache decode speed of the reference GPT (model::Gpt::decode) on the CPU, per attention spec and
// cache position. Plain main. For each position p: a fresh cache is prefilled with p tokens in one
// decode() call (not timed), then `steps` single-token decode() calls follow; each is timed and the
// report gives the median (and min / max) per token as tokens/s, and the median attention time per
// token (Gpt::attention_ms, all layers). Position p therefore means "a cache of p .. p + steps - 1
// tokens". The model has seq_len = max position + steps. Usage:
//   bna_gpt_decode [--layers 6] [--d-model 384] [--heads 6] [--kv-heads 0] [--positions 256,1024,4096]
//                  [--steps 32] [--attn SPEC]... [--json]
// Without --attn: dense, graph:w=64,s=64,c=1 (planner's path), the same graph with path=gather, and
// block:bs=64,rule=xor,p=1,local=1,sink=1.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/model.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int64_t layers = 6, C = 384, heads = 6, kv_heads = 0, steps = 32;
  std::vector<int64_t> positions = {256, 1024, 4096};
  std::vector<std::string> specs;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") { json = true; continue; }
    if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value (or is unknown)\n", a.c_str()); return 2; }
    const std::string v = argv[++i];
    if (a == "--layers") layers = std::stoll(v);
    else if (a == "--d-model") C = std::stoll(v);
    else if (a == "--heads") heads = std::stoll(v);
    else if (a == "--kv-heads") kv_heads = std::stoll(v);
    else if (a == "--steps") steps = std::stoll(v);
    else if (a == "--attn") specs.push_back(v);
    else if (a == "--positions") {
      positions.clear();
      std::stringstream ss(v);
      for (std::string t; std::getline(ss, t, ',');) positions.push_back(std::stoll(t));
    } else { std::fprintf(stderr, "error: unknown flag %s\n", a.c_str()); return 2; }
  }
  if (specs.empty())
    specs = {"dense", "graph:w=64,s=64,c=1,strategy=random", "graph:w=64,s=64,c=1,strategy=random,path=gather",
             "block:bs=64,rule=xor,p=1,local=1,sink=1"};
  if (positions.empty() || steps < 1 || *std::min_element(positions.begin(), positions.end()) < 1) {
    std::fprintf(stderr, "error: --positions must list positions >= 1 and --steps must be >= 1\n");
    return 2;
  }
  const int64_t max_pos = *std::max_element(positions.begin(), positions.end());
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  if (!json)
    std::printf("GPT L=%lld C=%lld Hq=%lld Hkv=%lld seq_len=%lld threads=%d, %lld timed steps per position\n",
                (long long)layers, (long long)C, (long long)heads, (long long)(kv_heads ? kv_heads : heads),
                (long long)(max_pos + steps), bna::num_threads(), (long long)steps);
  for (const std::string& spec_text : specs) {
    bna::model::GptConfig cfg;
    cfg.vocab_size = 256; cfg.seq_len = max_pos + steps; cfg.n_layers = layers; cfg.n_heads = heads;
    cfg.n_kv_heads = kv_heads; cfg.d_model = C; cfg.seed = 1;
    auto spec = bna::model::parse_attn_spec(spec_text);
    if (!spec) { std::fprintf(stderr, "error: %s\n", spec.status().message().c_str()); return 2; }
    cfg.attn = {*spec};
    auto m = bna::model::Gpt::create(cfg);
    if (!m) { std::fprintf(stderr, "error: %s\n", m.status().message().c_str()); return 2; }
    bna::Rng r(7);
    std::vector<int32_t> toks(static_cast<size_t>(cfg.seq_len));
    for (auto& t : toks) t = static_cast<int32_t>(r.uniform_below(256));
    std::vector<float> lg(256);
    for (int64_t p : positions) {
      auto cache = m->new_cache();
      if (!m->decode(cache, toks.data(), p, lg.data()).is_ok()) { std::fprintf(stderr, "error: prefill failed\n"); return 1; }
      std::vector<double> s, attn_ms;
      for (int64_t k = 0; k < steps; ++k) {
        const double a0 = m->attention_ms();
        const auto t0 = Clock::now();
        if (!m->decode(cache, toks.data() + p + k, 1, lg.data()).is_ok()) { std::fprintf(stderr, "error: decode failed\n"); return 1; }
        s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
        attn_ms.push_back(m->attention_ms() - a0);
      }
      std::sort(s.begin(), s.end());
      std::sort(attn_ms.begin(), attn_ms.end());
      const double med = s[s.size() / 2], attn_med = attn_ms[attn_ms.size() / 2];
      if (json) {
        nlohmann::ordered_json j;
        j["attn"] = spec_text; j["path"] = m->attention_path(0); j["position"] = p; j["layers"] = layers; j["d_model"] = C;
        j["heads"] = heads; j["kv_heads"] = kv_heads ? kv_heads : heads; j["threads"] = bna::num_threads();
        j["ms_median"] = med * 1e3; j["ms_min"] = s.front() * 1e3; j["ms_max"] = s.back() * 1e3;
        j["tokens_per_s"] = 1.0 / med; j["attention_ms_median"] = attn_med;
        out.push_back(j);
      } else {
        std::printf("%-50s p=%-6lld %8.1f tok/s  (%.2f ms, min %.2f, max %.2f; attention %.3f ms)\n", spec_text.c_str(),
                    (long long)p, 1.0 / med, med * 1e3, s.front() * 1e3, s.back() * 1e3, attn_med);
        std::fflush(stdout);
      }
    }
  }
  if (json) std::printf("%s\n", out.dump(1).c_str());
  return 0;
}
