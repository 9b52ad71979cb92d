// bna eval: validation loss, perplexity and (tasks) exact-match accuracy of a checkpoint, on the data it
// was trained with (stored in the checkpoint) or on another text / token file / task.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "bna/train.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct EvalFlags {
  std::string ckpt, text, tokens, task;
  int64_t batches = 16, batch = 8;
  uint64_t seed = 0;
  bool seed_set = false, json = false;
};

int run_eval(const EvalFlags& f) {
  train::Checkpoint info;
  auto m = train::load_model(f.ckpt, &info);
  if (!m) return fail(m.status(), "give a checkpoint written by bna train");
  train::DataSpec ds;
  auto it = info.metadata.find("data");
  if (it != info.metadata.end()) {
    auto d = train::data_spec_from_json(it->second);
    if (!d) return fail(d.status());
    ds = *d;
  }
  if (!f.task.empty()) {
    auto k = data::parse_task(f.task);
    if (!k) return fail(k.status());
    ds.kind = "task"; ds.task.kind = *k;
  } else if (!f.text.empty()) {
    ds.kind = "text"; ds.path = f.text;
  } else if (!f.tokens.empty()) {
    ds.kind = "tokens"; ds.path = f.tokens;
  } else if (it == info.metadata.end()) {
    return fail_usage("eval: the checkpoint does not name its data", "pass --task, --text or --tokens");
  }
  if (ds.kind == "text") {
    if (auto t = info.metadata.find("tokenizer"); t != info.metadata.end() && t->second.rfind("char:", 0) == 0)
      ds.tokenizer = "char";
  }
  uint64_t seed = 0;
  if (auto s = info.metadata.find("data.seed"); s != info.metadata.end()) seed = std::stoull(s->second);
  if (f.seed_set) seed = f.seed;
  auto streams = train::open_data(ds, f.batch, m->config().seq_len, seed);
  if (!streams) return fail(streams.status());
  if (streams->vocab_size > m->config().vocab_size)
    return fail_usage("eval: data has vocabulary " + std::to_string(streams->vocab_size) + " but the model's is " +
                      std::to_string(m->config().vocab_size));
  auto r = train::evaluate(*m, streams->eval_fn, f.batches, streams->is_task);
  if (!r) return fail(r.status());
  if (f.json) {
    nlohmann::ordered_json j;
    j["step"] = info.step;
    j["val_loss"] = r->loss;
    j["ppl"] = r->ppl;
    j["tokens"] = r->tokens;
    if (streams->is_task) {
      j["accuracy"] = r->accuracy();
      j["examples"] = r->score.examples;
      j["token_accuracy"] = r->score.tokens ? double(r->score.correct) / r->score.tokens : 0.0;
    }
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("checkpoint step %lld | val loss %.4f | ppl %.3f | %lld scored tokens", static_cast<long long>(info.step),
                r->loss, r->ppl, static_cast<long long>(r->tokens));
    if (streams->is_task)
      std::printf(" | exact match %lld/%lld = %.3f", static_cast<long long>(r->score.exact),
                  static_cast<long long>(r->score.examples), r->accuracy());
    std::printf("\n");
  }
  return 0;
}

void setup(CLI::App& root) {
  auto f = std::make_shared<EvalFlags>();
  auto* sub = root.add_subcommand("eval", "validation loss, perplexity and task accuracy of a GPT checkpoint");
  sub->add_option("--ckpt", f->ckpt, "checkpoint (ckpt.safetensors from bna train)")->required();
  sub->add_option("--task", f->task, "evaluate on a synthetic task instead: passkey, recall, copy");
  sub->add_option("--text", f->text, "evaluate on the last 10% of this text file");
  sub->add_option("--tokens", f->tokens, "evaluate on the last 10% of this token file");
  sub->add_option("--batches", f->batches, "batches to evaluate")->capture_default_str();
  sub->add_option("--batch", f->batch, "sequences per batch")->capture_default_str();
  sub->add_option("--seed", f->seed, "data seed (default: the training run's; eval uses its own stream)")
      ->each([f](const std::string&) { f->seed_set = true; });
  sub->add_flag("--json", f->json, "print one JSON line");
  sub->callback([f] { run_eval(*f); });
}

BNA_CLI_COMMAND(setup);

}  // namespace
}  // namespace bna::cli
