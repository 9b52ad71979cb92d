// bna train: train the reference GPT on a synthetic task, a text file or a token file, with attention
// chosen per layer; checkpoints and metrics.jsonl go to --out, --resume continues a killed run.
// --backend cuda runs the steps on the GPU (model::CudaGpt; log lines add MFU); checkpoints are the
// same format on both backends.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "bna/threads.hpp"
#include "bna/train.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct TrainFlags {
  std::string task, text, tokens, tokenizer = "byte";
  int64_t digits = 5, pairs = 8, queries = 4, copy_len = 16;
  int64_t T = 256, layers = 2, heads = 4, kv_heads = 0, d_model = 64;
  std::vector<std::string> attn = {"dense"};
  int64_t steps = 200, batch = 8, accum = 1, warmup = 20, log_every = 10, eval_every = 0, eval_batches = 8;
  int64_t ckpt_every = 0, threads = 0;
  float lr = 1e-3f, lr_min = 1e-4f, wd = 0.1f, beta2 = 0.95f;
  double clip = 1.0;
  uint64_t seed = 1337;
  std::string out, backend = "cpu";
  bool resume = false, json = false;
};

int run_train(const TrainFlags& f) {
  const int sources = !f.task.empty() + !f.text.empty() + !f.tokens.empty();
  if (sources != 1) return fail_usage("train: give exactly one of --task, --text, --tokens", "e.g. bna train --task passkey --T 256");
  if (f.backend != "cpu" && f.backend != "cuda") return fail_usage("train: --backend " + f.backend + ", expected cpu or cuda");
  if (f.threads > 0) set_num_threads(static_cast<int>(f.threads));
  train::DataSpec ds;
  if (!f.task.empty()) {
    auto k = data::parse_task(f.task);
    if (!k) return fail(k.status());
    ds.kind = "task";
    ds.task.kind = *k; ds.task.T = f.T; ds.task.digits = f.digits; ds.task.pairs = f.pairs;
    ds.task.queries = f.queries; ds.task.copy_len = f.copy_len;
  } else if (!f.text.empty()) {
    ds.kind = "text"; ds.path = f.text; ds.tokenizer = f.tokenizer;
  } else {
    ds.kind = "tokens"; ds.path = f.tokens;
  }
  auto streams = train::open_data(ds, f.batch, f.T, f.seed);
  if (!streams) return fail(streams.status());
  model::GptConfig cfg;
  cfg.vocab_size = streams->vocab_size; cfg.seq_len = f.T; cfg.n_layers = f.layers; cfg.n_heads = f.heads;
  cfg.n_kv_heads = f.kv_heads; cfg.d_model = f.d_model; cfg.seed = f.seed;
  for (const auto& a : f.attn) {
    auto s = model::parse_attn_spec(a);
    if (!s) return fail(s.status(), "e.g. --attn dense --attn graph:w=64,s=64,c=1 --attn block:bs=64");
    cfg.attn.push_back(*s);
  }
  auto m = model::Gpt::create(cfg);
  if (!m) return fail(m.status());
  train::TrainOptions o;
  o.steps = f.steps; o.accum = f.accum;
  o.schedule.lr = f.lr; o.schedule.lr_min = f.lr_min; o.schedule.warmup = f.warmup;
  o.adamw.weight_decay = f.wd; o.adamw.beta2 = f.beta2;
  o.grad_clip = f.clip; o.log_every = f.log_every; o.eval_every = f.eval_every; o.eval_batches = f.eval_batches;
  o.score_task = streams->is_task; o.ckpt_every = f.ckpt_every; o.out_dir = f.out; o.resume = f.resume;
  o.cuda = f.backend == "cuda";
  o.metadata["data"] = train::data_spec_to_json(ds);
  o.metadata["data.batch"] = std::to_string(f.batch);
  o.metadata["data.seed"] = std::to_string(f.seed);
  if (!streams->tokenizer_state.empty()) o.metadata["tokenizer"] = streams->tokenizer_state;
  if (f.resume && f.out.empty()) return fail_usage("train: --resume needs --out DIR (where the checkpoint is)");
  std::printf("bna train: %lld parameters, layers %lld, d_model %lld, heads %lld, T %lld, batch %lld x %lld, data %s\n",
              static_cast<long long>(m->num_params()), static_cast<long long>(f.layers), static_cast<long long>(f.d_model),
              static_cast<long long>(f.heads), static_cast<long long>(f.T), static_cast<long long>(f.batch),
              static_cast<long long>(f.accum), ds.kind.c_str());
  for (int64_t l = 0; l < f.layers; ++l)
    std::printf("  layer %lld attention %s\n", static_cast<long long>(l), model::attn_spec_string(m->config().attn[l]).c_str());
  auto on_log = [&](const train::LogRecord& r) {
    std::printf("step %5lld/%lld | loss %.4f | lr %.2e | norm %.3f | %.0f tok/s", static_cast<long long>(r.step),
                static_cast<long long>(r.steps), r.loss, r.lr, r.grad_norm, r.tokens_per_s);
    if (r.mfu > 0) std::printf(" | MFU %.1f%%", 100 * r.mfu);
    if (r.eval) {
      std::printf(" | val loss %.4f ppl %.2f", r.eval->loss, r.eval->ppl);
      if (r.eval->score.examples > 0) std::printf(" acc %.3f", r.eval->accuracy());
    }
    std::printf("\n");
    std::fflush(stdout);
  };
  auto res = train::train(*m, streams->train_fn, streams->eval_fn, o, on_log);
  if (!res && o.cuda && res.status().code() != StatusCode::kInvalidArgument) return fail_cuda_load(res.status());
  if (!res) return fail(res.status(), res.status().code() == StatusCode::kInvalidArgument && f.resume
                                          ? "resume with the same model flags as the original run" : "");
  for (int64_t l = 0; !o.cuda && l < f.layers; ++l)  // the CPU's plans (a GPU run plans on the device)
    std::printf("  layer %lld attention path %s\n", static_cast<long long>(l), m->attention_path(l).c_str());
  if (f.json) {
    nlohmann::ordered_json j;
    j["steps"] = res->end_step;
    j["final_loss"] = res->losses.empty() ? 0.0 : res->losses.back();
    j["tokens_per_s"] = res->tokens_per_s;
    j["attention_ms"] = m->attention_ms();
    if (res->final_eval) {
      j["val_loss"] = res->final_eval->loss;
      if (res->final_eval->score.examples) j["accuracy"] = res->final_eval->accuracy();
    }
    std::printf("%s\n", j.dump().c_str());
  }
  if (!f.out.empty()) std::printf("saved %s/ckpt.safetensors and %s/metrics.jsonl\n", f.out.c_str(), f.out.c_str());
  return 0;
}

void setup(CLI::App& root) {
  auto f = std::make_shared<TrainFlags>();
  auto* sub = root.add_subcommand("train", "train the reference GPT (task, text or token file) on the CPU");
  sub->add_option("--task", f->task, "synthetic task: passkey, recall, copy");
  sub->add_option("--text", f->text, "UTF-8 text file (split 90/10 into train/validation)");
  sub->add_option("--tokens", f->tokens, "token file (.bin, docs/formats.md)");
  sub->add_option("--tokenizer", f->tokenizer, "text tokenizer: byte, char, or json:PATH (a Hugging Face tokenizer.json, e.g. GPT-2 BPE)")->capture_default_str();
  sub->add_option("--digits", f->digits, "passkey digits")->capture_default_str();
  sub->add_option("--pairs", f->pairs, "recall: key-value pairs")->capture_default_str();
  sub->add_option("--queries", f->queries, "recall: queries")->capture_default_str();
  sub->add_option("--copy-len", f->copy_len, "copy: segment length")->capture_default_str();
  sub->add_option("--T", f->T, "sequence length (the model's seq_len)")->capture_default_str();
  sub->add_option("--layers", f->layers, "transformer layers")->capture_default_str();
  sub->add_option("--heads", f->heads, "query heads")->capture_default_str();
  sub->add_option("--kv-heads", f->kv_heads, "KV heads (0 = heads)")->capture_default_str();
  sub->add_option("--d-model", f->d_model, "model width C")->capture_default_str();
  sub->add_option("--attn", f->attn, "attention spec, once for all layers or once per layer: dense | graph:w=64,s=64,c=1[,strategy=random,path=streams] | block:bs=64,rule=xor,p=1,local=1,sink=1")
      ->capture_default_str();
  sub->add_option("--steps", f->steps, "optimizer steps")->capture_default_str();
  sub->add_option("--batch", f->batch, "sequences per micro-batch")->capture_default_str();
  sub->add_option("--accum", f->accum, "micro-batches per step")->capture_default_str();
  sub->add_option("--lr", f->lr, "peak learning rate")->capture_default_str();
  sub->add_option("--lr-min", f->lr_min, "final learning rate (cosine)")->capture_default_str();
  sub->add_option("--warmup", f->warmup, "linear warmup steps")->capture_default_str();
  sub->add_option("--wd", f->wd, "AdamW weight decay (matrices only)")->capture_default_str();
  sub->add_option("--beta2", f->beta2, "AdamW beta2")->capture_default_str();
  sub->add_option("--clip", f->clip, "gradient clipping by global norm (<= 0: off)")->capture_default_str();
  sub->add_option("--seed", f->seed, "seed: init, graphs, data order")->capture_default_str();
  sub->add_option("--log-every", f->log_every, "steps between log lines")->capture_default_str();
  sub->add_option("--eval-every", f->eval_every, "steps between evaluations (0 = at the end)")->capture_default_str();
  sub->add_option("--eval-batches", f->eval_batches, "batches per evaluation")->capture_default_str();
  sub->add_option("--ckpt-every", f->ckpt_every, "steps between checkpoints (0 = at the end)")->capture_default_str();
  sub->add_option("--threads", f->threads, "OpenMP threads (0 = all cores)")->capture_default_str();
  sub->add_option("--out", f->out, "output directory (ckpt.safetensors, metrics.jsonl)");
  sub->add_option("--backend", f->backend, "cpu | cuda (the GPU: bf16 mixed precision, model::CudaGpt)")->capture_default_str();
  sub->add_flag("--resume", f->resume, "continue from --out/ckpt.safetensors if it exists");
  sub->add_flag("--json", f->json, "print a JSON summary line at the end");
  sub->callback([f] { run_train(*f); });
}

BNA_CLI_COMMAND(setup);

}  // namespace
}  // namespace bna::cli
