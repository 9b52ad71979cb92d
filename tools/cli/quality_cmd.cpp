// bna quality --model DIR --text-file F [--backend cpu|cuda] [--attention butterfly|compressed]
//             [--window W --landmark-stride S --cycles C --dense-layers L...]
//             [--compressed-tail L --compressed-block Bs --partner-rule R]
//             [--top-k K --positions N --greedy-tokens N --prefill-chunk N --max-tokens N] [--kv-page N] [--json]
// Butterfly or compressed butterfly against dense on the same Hugging Face model and text
// (hf::compare_quality): true KL over the full vocabulary (mean, max), top-k overlap, top-1
// agreement, perplexity of both, greedy parity. --backend cuda runs the same comparison on
// hf::CudaModel (bf16), prefilling in chunks as on the CPU (compressed: one call, so each pass holds
// [T, V] f32 logits). No GPU or a build without CUDA: exit 2.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/io.hpp"
#include "bna/tokenizer.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct QualityFlags {
  std::string model, text_file, attention = "butterfly", partner_rule = "causal_shift", backend = "cpu";
  int64_t tail = 1024, block = 64;
  int64_t window = 64, landmark_stride = 64, cycles = 1, top_k = 10, positions = 256, greedy = 32, chunk = 256;
  int64_t max_tokens = 0, kv_page = 0;
  std::vector<int64_t> dense_layers;
  uint64_t seed = 0;
  bool json = false;
  CLI::Option* chunk_opt = nullptr;  // --prefill-chunk, to tell an explicit value from the default
};

// Compares on the loaded model (hf::Model or hf::CudaModel) and prints the summary or the JSON.
template <class M>
int compare_and_print(M& m, const QualityFlags& f, const tok::Tokenizer& tk, const std::string& text,
                      const hf::QualityOptions& qo) {
  const hf::AttnKind kind = qo.butterfly.kind;
  auto ids = tk.try_encode(text);
  if (!ids) return fail(ids.status());
  if (f.max_tokens > 0 && static_cast<int64_t>(ids->size()) > f.max_tokens) ids->resize(f.max_tokens);
  auto r = hf::compare_quality(m, *ids, qo);
  if (!r) return fail(r.status(), "the text must have >= 2 tokens and fit the model's positions");
  if (f.json) {
    nlohmann::json j;
    j["model"] = f.model;
    j["architecture"] = m.config().architecture;
    j["backend"] = f.backend;
    j["attention"] = f.attention;
    j["butterfly"] = {{"window", f.window}, {"landmark_stride", f.landmark_stride}, {"cycles", f.cycles},
                      {"dense_layers", f.dense_layers}, {"seed", f.seed}};
    if (kind == hf::AttnKind::kCompressed)
      j["compressed"] = {{"tail", f.tail}, {"block", f.block}, {"partner_rule", f.partner_rule},
                         {"dense_layers", f.dense_layers}};
    j["kv_page"] = f.kv_page;
    j["tokens"] = r->tokens;
    j["first_position"] = r->first_position;
    j["kl_mean"] = r->kl_mean;
    j["kl_max"] = r->kl_max;
    j["kl_argmax"] = r->kl_argmax;
    j["kl"] = r->kl;
    j["top_k"] = f.top_k;
    j["top_k_overlap_mean"] = r->top_k_overlap_mean;
    j["top1_agreement"] = r->top1_agreement;
    j["ppl_dense"] = r->ppl_dense;
    j["ppl_butterfly"] = r->ppl_butterfly;
    j["greedy_tokens"] = f.greedy;
    j["greedy_dense"] = r->greedy_dense;
    j["greedy_butterfly"] = r->greedy_butterfly;
    j["first_divergence"] = r->first_divergence;
    j["greedy_parity"] = r->greedy_parity;
    std::cout << j.dump(2) << "\n";
    return 0;
  }
  if (kind == hf::AttnKind::kCompressed) {
    std::printf("model %s (%s), %lld tokens, compressed L=%lld Bs=%lld rule %s\n", f.model.c_str(),
                m.config().architecture.c_str(), (long long)r->tokens, (long long)f.tail, (long long)f.block,
                f.partner_rule.c_str());
  } else {
    std::printf("model %s (%s), %lld tokens, Butterfly W=%lld S=%lld cycles=%lld\n", f.model.c_str(),
                m.config().architecture.c_str(), (long long)r->tokens, (long long)f.window,
                (long long)f.landmark_stride, (long long)f.cycles);
  }
  std::printf("KL(dense||%s) over positions %lld..%lld: mean %.6g nats, max %.6g at %lld\n",
              f.attention.c_str(), (long long)r->first_position, (long long)(r->tokens - 1), r->kl_mean, r->kl_max, (long long)r->kl_argmax);
  std::printf("top-%lld overlap %.4f, top-1 agreement %.4f\n", (long long)f.top_k, r->top_k_overlap_mean,
              r->top1_agreement);
  std::printf("perplexity dense %.4f, %s %.4f\n", r->ppl_dense, f.attention.c_str(), r->ppl_butterfly);
  std::printf("greedy parity %.4f over %lld tokens (first divergence %lld)\n", r->greedy_parity, (long long)f.greedy,
              (long long)r->first_divergence);
  return 0;
}

int run_quality(const QualityFlags& f) {
  if (f.backend != "cpu" && f.backend != "cuda")
    return fail_usage("--backend " + f.backend + ", expected cpu or cuda");
  const bool gpu = f.backend == "cuda";
  if (f.max_tokens < 0) return fail_usage("--max-tokens " + std::to_string(f.max_tokens) + ", expected >= 0");
  if (f.kv_page < 0)
    return fail_usage("--kv-page " + std::to_string(f.kv_page) + ", expected >= 0", "0 keeps one contiguous KV buffer per layer");
  auto kind = hf::parse_attn_kind(f.attention);
  if (!kind) return fail(kind.status(), "use --attention butterfly or --attention compressed");
  if (*kind == hf::AttnKind::kDense)
    return fail_usage("--attention dense: quality compares a sparse kind with dense", "use butterfly or compressed");
  auto rule = topo::parse_partner_rule(f.partner_rule);
  if (!rule) return fail(rule.status());
  auto text = io::read_file(f.text_file);
  if (!text) return fail(text.status());
  auto tk = tok::load_tokenizer_json(f.model + "/tokenizer.json");
  if (!tk) return fail(tk.status(), "the model directory needs a byte-level BPE tokenizer.json");
  hf::QualityOptions qo;
  qo.butterfly.kind = *kind;
  qo.butterfly.compressed.tail = f.tail;
  qo.butterfly.compressed.block = f.block;
  qo.butterfly.compressed.rule = *rule;
  qo.butterfly.dense_layers = f.dense_layers;
  qo.butterfly.window = f.window;
  qo.butterfly.landmark_stride = f.landmark_stride;
  qo.butterfly.num_cycles = f.cycles;
  qo.butterfly.seed = f.seed;
  qo.butterfly.kv_page = f.kv_page;  // the dense pass and the sparse side's dense layers
  qo.top_k = f.top_k;
  qo.positions = f.positions;
  qo.greedy_tokens = f.greedy;
  qo.chunk = f.chunk;
  if (gpu) {
    auto m = hf::CudaModel::load(f.model);
    if (!m) return fail_cuda_load(m.status());
    return compare_and_print(*m, f, **tk, *text, qo);
  }
  auto m = hf::Model::load(f.model);
  if (!m) return fail(m.status(), std::string("supported architectures: ") + hf::supported_architectures());
  return compare_and_print(*m, f, **tk, *text, qo);
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new QualityFlags();  // lives for the process
  auto* sub = root.add_subcommand("quality", "Butterfly or compressed vs dense on a Hugging Face model: KL, top-k, "
                                  "perplexity, greedy parity");
  sub->add_option("--attention", f->attention, "the kind compared with dense: butterfly | compressed")->capture_default_str();
  sub->add_option("--compressed-tail", f->tail, "compressed: raw tail L")->capture_default_str();
  sub->add_option("--compressed-block", f->block, "compressed: block size Bs")->capture_default_str();
  sub->add_option("--partner-rule", f->partner_rule, "compressed routing partner rule")->capture_default_str();
  sub->add_option("--model", f->model, "model directory (config.json, *.safetensors, tokenizer.json)")->required();
  sub->add_option("--text-file", f->text_file, "UTF-8 text")->required();
  sub->add_option("--backend", f->backend, "cpu (f32) | cuda (bf16 on the GPU, one-call prefill)")->capture_default_str();
  sub->add_option("--window", f->window, "butterfly window W")->capture_default_str();
  sub->add_option("--landmark-stride", f->landmark_stride, "butterfly landmark stride S (0 = none)")->capture_default_str();
  sub->add_option("--cycles", f->cycles, "butterfly cycles per KV head")->capture_default_str();
  sub->add_option("--dense-layers", f->dense_layers, "layers kept dense");
  sub->add_option("--seed", f->seed, "graph seed")->capture_default_str();
  sub->add_option("--top-k", f->top_k, "k of the top-k overlap")->capture_default_str();
  sub->add_option("--positions", f->positions, "last positions compared by KL / top-k (0 = all)")->capture_default_str();
  sub->add_option("--greedy-tokens", f->greedy, "greedy tokens decoded after the text")->capture_default_str();
  f->chunk_opt = sub->add_option("--prefill-chunk", f->chunk, "prefill chunk in tokens (0 = whole text)")
                     ->capture_default_str();
  sub->add_option("--max-tokens", f->max_tokens, "use only the first N tokens of the text (0 = all)")->capture_default_str();
  sub->add_option("--kv-page", f->kv_page, "dense layers: KV pages of N tokens (0 = one contiguous buffer per layer)")
      ->capture_default_str();
  sub->add_flag("--json", f->json, "one JSON document instead of the summary");
  sub->callback([f] { run_quality(*f); });
});

}  // namespace
}  // namespace bna::cli
