// bna run --model DIR --prompt-file F [--backend cpu|cuda] [--attention dense|butterfly|compressed]
//         [--max-new-tokens N] [--prefill-chunk N] [--window W --landmark-stride S --cycles C]
//         [--compressed-tail L --compressed-block Bs ...] [--kv-page N] [--temperature T --top-k K --top-p P --seed N]
// Loads a Hugging Face model directory (config.json, safetensors, tokenizer.json), prefills the prompt
// and decodes, printing the continuation and timings. --backend cpu (default) runs hf::Model in f32;
// --backend cuda runs hf::CudaModel in bf16 on the GPU (GPT-2/Qwen2/Qwen3/Llama/GLM-4, head_dim 64 or 128)
// with the same hf::generate (--prefill-chunk N prefills in chunks on both backends). No GPU, a
// build without CUDA, or a model the GPU backend does not cover: exit 2. All work happens in
// bna::hf / bna::tok.
#include <chrono>
#include <cstdio>

#include "bna/attention.hpp"
#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/io.hpp"
#include "bna/tokenizer.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct RunFlags {
  std::string model, prompt_file, attention = "dense", backend = "cpu";
  int64_t max_new = 32, chunk = 0, window = 64, landmark_stride = 64, cycles = 1;
  std::vector<int64_t> dense_layers;
  int64_t tail = 1024, block = 64, partner_count = 1, local_blocks = 1, sink_count = 1;
  int64_t kv_page = 0;
  std::string partner_rule = "causal_shift";
  float temperature = 0.0f, top_p = 1.0f;
  int64_t top_k = 0;
  uint64_t seed = 0;
};

// Generates with the loaded model (hf::Model or hf::CudaModel) and prints the text and timings.
template <class M>
int generate_and_print(M& m, const RunFlags& f, const hf::AttentionOptions& ao, const tok::Tokenizer& tk,
                       const std::string& prompt, std::chrono::steady_clock::time_point t0) {
  using clock = std::chrono::steady_clock;
  if (Status st = m.set_attention(ao); !st.is_ok()) return fail(st);
  auto ids = tk.try_encode(prompt);
  if (!ids) return fail(ids.status());
  if (ids->empty()) return fail_usage("the prompt file '" + f.prompt_file + "' encodes to no tokens");
  const auto t1 = clock::now();
  hf::SamplingOptions so{.temperature = f.temperature, .top_k = f.top_k, .top_p = f.top_p, .seed = f.seed};
  hf::GenerateStats gs;
  auto out = hf::generate(m, *ids, f.max_new, so, f.chunk, &gs);
  if (!out) return fail(out.status(), m.config().family == hf::Family::kGpt2
                                          ? "GPT-2's context is limited to n_positions tokens"
                                          : "");
  const auto t2 = clock::now();
  std::printf("%s%s\n", prompt.c_str(), tk.decode(*out).c_str());
  const double load_s = std::chrono::duration<double>(t1 - t0).count();
  const double gen_s = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr, "model %s (%s), backend %s, attention %s, prompt %zu tokens, generated %zu tokens, "
               "load %.2f s, generate %.2f s, KV cache %.1f KiB, graph %.1f KiB\n",
               m.config().architecture.c_str(), hf::family_name(m.config().family), f.backend.c_str(),
               f.attention.c_str(), ids->size(), out->size(), load_s, gen_s, m.kv_bytes() / 1024.0,
               m.graph_bytes() / 1024.0);
  std::fprintf(stderr, "prefill %.1f tok/s, time to first token %.3f s, decode %.1f tok/s (%lld steps)\n",
               gs.prefill_s > 0 ? double(ids->size()) / gs.prefill_s : 0.0, gs.first_token_s,
               gs.decode_s > 0 ? double(gs.decode_steps) / gs.decode_s : 0.0, (long long)gs.decode_steps);
  return 0;
}

int run_model(const RunFlags& f) {
  if (f.backend != "cpu" && f.backend != "cuda")
    return fail_usage("--backend " + f.backend + ", expected cpu or cuda");
  const bool gpu = f.backend == "cuda";
  auto kind = hf::parse_attn_kind(f.attention);
  if (!kind) return fail(kind.status(), "use --attention dense, butterfly or compressed");
  auto rule = topo::parse_partner_rule(f.partner_rule);
  if (!rule) return fail(rule.status());
  if (f.max_new < 0) return fail_usage("--max-new-tokens " + std::to_string(f.max_new) + ", expected >= 0");
  if (f.kv_page < 0)
    return fail_usage("--kv-page " + std::to_string(f.kv_page) + ", expected >= 0", "0 keeps one contiguous KV buffer per layer");
  auto prompt = io::read_file(f.prompt_file);
  if (!prompt) return fail(prompt.status());
  auto tk = tok::load_tokenizer_json(f.model + "/tokenizer.json");
  if (!tk) return fail(tk.status(), "the model directory needs a byte-level BPE tokenizer.json");
  hf::AttentionOptions ao;
  ao.kind = *kind;
  ao.window = f.window;
  ao.landmark_stride = f.landmark_stride;
  ao.num_cycles = f.cycles;
  ao.dense_layers = f.dense_layers;
  ao.seed = f.seed;
  ao.kv_page = f.kv_page;
  ao.compressed.tail = f.tail;
  ao.compressed.block = f.block;
  ao.compressed.rule = *rule;
  ao.compressed.partner_count = f.partner_count;
  ao.compressed.local_blocks = f.local_blocks;
  ao.compressed.sink_count = f.sink_count;
  const auto t0 = std::chrono::steady_clock::now();
  if (gpu) {
    auto m = hf::CudaModel::load(f.model);
    if (!m) return fail_cuda_load(m.status());
    return generate_and_print(*m, f, ao, **tk, *prompt, t0);
  }
  auto m = hf::Model::load(f.model);
  if (!m) return fail(m.status(), std::string("supported architectures: ") + hf::supported_architectures());
  return generate_and_print(*m, f, ao, **tk, *prompt, t0);
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new RunFlags();  // lives for the process
  auto* sub = root.add_subcommand("run", "run a Hugging Face model directory on a prompt (CPU fp32, or --backend cuda)");
  sub->add_option("--model", f->model, "model directory (config.json, *.safetensors, tokenizer.json)")->required();
  sub->add_option("--prompt-file", f->prompt_file, "UTF-8 prompt file")->required();
  sub->add_option("--backend", f->backend, "cpu (f32) | cuda (bf16 on the GPU)")->capture_default_str();
  sub->add_option("--attention", f->attention, "dense | butterfly | compressed")->capture_default_str();
  sub->add_option("--max-new-tokens", f->max_new, "tokens to generate")->capture_default_str();
  sub->add_option("--prefill-chunk", f->chunk, "prefill chunk in tokens (0 = whole prompt)")->capture_default_str();
  sub->add_option("--window", f->window, "butterfly window W")->capture_default_str();
  sub->add_option("--landmark-stride", f->landmark_stride, "butterfly landmark stride S (0 = none)")->capture_default_str();
  sub->add_option("--cycles", f->cycles, "butterfly cycles per KV head")->capture_default_str();
  sub->add_option("--dense-layers", f->dense_layers, "layers kept dense under --attention butterfly|compressed");
  sub->add_option("--compressed-tail", f->tail, "compressed: raw tail L attended exactly")->capture_default_str();
  sub->add_option("--compressed-block", f->block, "compressed: block size Bs of the summaries")->capture_default_str();
  sub->add_option("--partner-rule", f->partner_rule, "compressed routing: xor | causal_shift | bit_reversal | benes | "
                  "fixed_stride | random")->capture_default_str();
  sub->add_option("--partner-count", f->partner_count, "compressed routing: partners per block")->capture_default_str();
  sub->add_option("--local-blocks", f->local_blocks, "compressed routing: previous blocks b-1..b-n")->capture_default_str();
  sub->add_option("--sink-count", f->sink_count, "compressed routing: sink blocks 0..n-1")->capture_default_str();
  sub->add_option("--kv-page", f->kv_page, "dense layers: KV pages of N tokens, allocated as the cache fills "
                  "(0 = one contiguous buffer per layer)")->capture_default_str();
  sub->add_option("--temperature", f->temperature, "0 = greedy")->capture_default_str();
  sub->add_option("--top-k", f->top_k, "0 = off")->capture_default_str();
  sub->add_option("--top-p", f->top_p, "1 = off")->capture_default_str();
  sub->add_option("--seed", f->seed, "sampling and graph seed")->capture_default_str();
  sub->callback([f] { run_model(*f); });
});

}  // namespace
}  // namespace bna::cli
