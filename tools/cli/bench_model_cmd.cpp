// bna bench model [--preset qwen-tiny|qwen-0.5b-like|qwen-1b-like] [--layers N --hidden N --heads N
//                 --kv-heads N --head-dim N --intermediate N --vocab N] [--context T ...] [--decode-tokens N]
//                 [--prefill-chunk N]
//                 [--attention dense|butterfly|compressed ...] [--window W --landmark-stride S --cycles C]
//                 [--compressed-tail L --compressed-block Bs] [--kv-page N] [--repeats N] [--backend cpu|cuda] [--json]
//                 [--out FILE]
// A llama-bench-like table of hf::bench_model: prefill tokens/s, time to first token, decode
// tokens/s, peak RSS, retained KV and graph bytes, dense against Butterfly (the default records) and
// compressed butterfly (--attention compressed; records name their kind), on a Qwen-like config with
// random weights built in memory (--backend cuda: on the GPU in bf16, hf::CudaModel, timed by the same
// loop with one warm-up run per record; the record's device_bytes is the model's whole device footprint). --json prints one document (machine, threads, commit from
// $BNA_COMMIT, build type, config, records); --out writes it atomically to FILE as well.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/io.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct BenchModelFlags {
  std::string preset = "qwen-tiny", out, note, backend = "cpu";
  int64_t layers = 0, hidden = 0, heads = 0, kv_heads = 0, head_dim = 0, intermediate = 0, vocab = 0;
  std::vector<int64_t> contexts;
  int64_t decode_tokens = 32, chunk = 0, window = 64, landmark_stride = 64, cycles = 1;
  int64_t compressed_tail = 1024, compressed_block = 64, kv_page = 0;
  std::vector<std::string> attention = {"dense", "butterfly"};
  int repeats = 1;
  uint64_t seed = 0;
  bool json = false;
};

std::string cpu_model_name() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

int run_bench_model(const BenchModelFlags& f) {
  auto cfg = hf::preset_config(f.preset);
  if (!cfg) return fail(cfg.status());
  hf::Config c = *cfg;
  // Flags override the preset's sizes (0 = keep).
  for (auto [flag, dst] : {std::pair{f.layers, &c.layers}, {f.hidden, &c.hidden}, {f.heads, &c.n_heads},
                           {f.kv_heads, &c.n_kv_heads}, {f.head_dim, &c.head_dim}, {f.intermediate, &c.intermediate},
                           {f.vocab, &c.vocab}}) {
    if (flag < 0) return fail_usage("a size flag is " + std::to_string(flag) + ", expected >= 1 (0 = the preset's)");
    if (flag > 0) *dst = flag;
  }
  c.rotary_dim = c.head_dim;
  if (f.backend != "cpu" && f.backend != "cuda") return fail_usage("--backend " + f.backend + ", expected cpu or cuda");
  if (f.kv_page < 0)
    return fail_usage("--kv-page " + std::to_string(f.kv_page) + ", expected >= 0", "0 keeps one contiguous KV buffer per layer");
  const bool gpu = f.backend == "cuda";
  hf::ModelBenchOptions o;
  if (!f.contexts.empty()) o.contexts = f.contexts;
  o.decode_tokens = f.decode_tokens;
  o.chunk = f.chunk;
  o.repeats = f.repeats;
  o.seed = f.seed;
  o.butterfly.kind = hf::AttnKind::kButterfly;
  o.butterfly.window = f.window;
  o.butterfly.landmark_stride = f.landmark_stride;
  o.butterfly.num_cycles = f.cycles;
  o.butterfly.seed = f.seed;
  o.butterfly.kv_page = f.kv_page;  // dense records and listed dense layers
  o.compressed.kv_page = f.kv_page;
  o.compressed.compressed.tail = f.compressed_tail;
  o.compressed.compressed.block = f.compressed_block;
  o.kinds.clear();
  for (const std::string& a : f.attention) {
    auto k = hf::parse_attn_kind(a);
    if (!k) return fail(k.status(), "use --attention dense, butterfly or compressed (repeatable)");
    o.kinds.push_back(*k);
  }
  Expected<hf::ModelBenchReport> rep = unavailable("bench model: not run");
  if (gpu) {
    auto m = hf::CudaModel::random(c, f.seed);
    if (!m) return fail_cuda_load(m.status());
    rep = hf::bench_model_cuda(*m, o);
  } else {
    auto m = hf::Model::random(c, f.seed);
    if (!m) return fail(m.status());
    rep = hf::bench_model(*m, o);
  }
  if (!rep) return fail(rep.status());
  const std::string machine = gpu ? rep->device : cpu_model_name();
  const hf::Config& k = rep->config;
  nlohmann::json j;
  j["machine"] = machine;
  j["threads"] = rep->threads;
  const char* commit = std::getenv("BNA_COMMIT");
  j["commit"] = commit ? commit : "unknown";
#ifdef NDEBUG
  j["build_type"] = "Release";
#else
  j["build_type"] = "Debug";
#endif
  j["dtype"] = gpu ? "bf16" : "f32";
  j["backend"] = f.backend;
  j["note"] = f.note;
  j["config"] = {{"preset", f.preset}, {"architecture", k.architecture}, {"layers", k.layers}, {"hidden", k.hidden},
                 {"heads", k.n_heads}, {"kv_heads", k.n_kv_heads}, {"head_dim", k.head_dim},
                 {"intermediate", k.intermediate}, {"vocab", k.vocab}, {"params", hf::count_params(k)}};
  j["butterfly"] = {{"window", f.window}, {"landmark_stride", f.landmark_stride}, {"cycles", f.cycles},
                    {"graph", "decode graph, random insertion"}};
  j["compressed"] = {{"tail", f.compressed_tail}, {"block", f.compressed_block},
                     {"routing", "butterfly block layout at the capacity, causal_shift, 1 partner, 1 local, 1 sink"}};
  j["decode_tokens"] = f.decode_tokens;
  j["prefill_chunk"] = f.chunk;
  j["kv_page"] = f.kv_page;
  j["repeats"] = f.repeats;
  j["records"] = nlohmann::json::array();
  for (const auto& r : rep->records) {
    j["records"].push_back({{"attention", r.attention}, {"context", r.context}, {"prefill_s", r.prefill_s},
                            {"prefill_tok_s", r.prefill_tok_s}, {"ttft_s", r.ttft_s}, {"decode_tok_s", r.decode_tok_s},
                            {"peak_rss_bytes", r.peak_rss_bytes}, {"peak_rss_reset", r.peak_rss_reset},
                            {"kv_bytes", r.kv_bytes}, {"graph_bytes", r.graph_bytes}, {"device_bytes", r.device_bytes},
                            {"kv_page", f.kv_page}});
  }
  if (!f.out.empty()) {
    if (Status st = io::write_file_atomic(f.out, j.dump(2) + "\n"); !st.is_ok()) return fail(st);
  }
  if (f.json) {
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  std::printf("machine: %s, %d threads, %s; %s: %lld layers, hidden %lld, heads %lld/%lld, dh %lld, I %lld, V %lld, "
              "%.1fM params; Butterfly W=%lld S=%lld cycles=%lld; compressed L=%lld Bs=%lld; kv_page %lld\n",
              machine.c_str(), rep->threads, gpu ? "bf16" : "f32", f.preset.c_str(), (long long)k.layers,
              (long long)k.hidden, (long long)k.n_heads, (long long)k.n_kv_heads, (long long)k.head_dim,
              (long long)k.intermediate, (long long)k.vocab, hf::count_params(k) / 1e6, (long long)f.window,
              (long long)f.landmark_stride, (long long)f.cycles, (long long)f.compressed_tail,
              (long long)f.compressed_block, (long long)f.kv_page);
  std::printf("| %-10s | %7s | %12s | %9s | %11s | %10s | %10s | %10s |\n", "attention", "context", "prefill t/s",
              "TTFT s", "decode t/s", gpu ? "device mem" : "peak RSS", "KV bytes", "graph B");
  std::printf("|------------|---------|--------------|-----------|-------------|------------|------------|------------|\n");
  for (const auto& r : rep->records) {
    std::printf("| %-10s | %7lld | %12.1f | %9.3f | %11.2f | %7.1f MiB | %6.1f MiB | %6.1f KiB |\n", r.attention.c_str(),
                (long long)r.context, r.prefill_tok_s, r.ttft_s, r.decode_tok_s,
                (gpu ? static_cast<double>(r.device_bytes) : static_cast<double>(r.peak_rss_bytes)) / 1048576.0,
                r.kv_bytes / 1048576.0, r.graph_bytes / 1024.0);
  }
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new BenchModelFlags();  // lives for the process
  auto* bench = ensure_subcommand(&root, "bench", "benchmarks");
  auto* sub = bench->add_subcommand("model", "prefill/decode speed and memory of a random Qwen-like model, dense vs Butterfly vs compressed");
  sub->add_option("--preset", f->preset, "qwen-tiny | qwen-0.5b-like | qwen-1b-like")->capture_default_str();
  sub->add_option("--backend", f->backend, "cpu | cuda (bf16 on the GPU)")->capture_default_str();
  sub->add_option("--layers", f->layers, "override the preset's layer count");
  sub->add_option("--hidden", f->hidden, "override hidden size");
  sub->add_option("--heads", f->heads, "override query heads");
  sub->add_option("--kv-heads", f->kv_heads, "override KV heads");
  sub->add_option("--head-dim", f->head_dim, "override head dim");
  sub->add_option("--intermediate", f->intermediate, "override MLP width");
  sub->add_option("--vocab", f->vocab, "override vocabulary size");
  sub->add_option("--context", f->contexts, "prompt lengths (repeatable; default 1024 2048)");
  sub->add_option("--decode-tokens", f->decode_tokens, "tokens decoded after the prefill")->capture_default_str();
  sub->add_option("--prefill-chunk", f->chunk, "prefill chunk (0 = one call)")->capture_default_str();
  sub->add_option("--window", f->window, "butterfly window W")->capture_default_str();
  sub->add_option("--landmark-stride", f->landmark_stride, "butterfly landmark stride S")->capture_default_str();
  sub->add_option("--cycles", f->cycles, "butterfly cycles per KV head")->capture_default_str();
  sub->add_option("--attention", f->attention, "record kinds, in order: dense | butterfly | compressed (repeatable)")
      ->capture_default_str();
  sub->add_option("--compressed-tail", f->compressed_tail, "compressed raw tail L")->capture_default_str();
  sub->add_option("--compressed-block", f->compressed_block, "compressed block size Bs")->capture_default_str();
  sub->add_option("--kv-page", f->kv_page, "dense layers: KV pages of N tokens (0 = one contiguous buffer per layer)")
      ->capture_default_str();
  sub->add_option("--repeats", f->repeats, "runs per record (median)")->capture_default_str();
  sub->add_option("--seed", f->seed, "weights, ids and graph seed")->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON document instead of the table");
  sub->add_option("--out", f->out, "also write the JSON document to this file (atomically)");
  sub->add_option("--note", f->note, "free text stored in the JSON");
  sub->callback([f] { run_bench_model(*f); });
});

}  // namespace
}  // namespace bna::cli
