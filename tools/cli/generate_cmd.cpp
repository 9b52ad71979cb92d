// bna generate: sample from a trained checkpoint with the KV cache (or full recomputation).
#include <cstdio>
#include <sstream>

#include "bna/train.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct GenerateFlags {
  std::string ckpt, prompt, prompt_ids;
  int64_t max_new = 100, top_k = 0;
  float temperature = 0.8f, top_p = 1.0f;
  uint64_t seed = 0;
  bool no_cache = false;
};

int run_generate(const GenerateFlags& f) {
  train::Checkpoint info;
  auto m = train::load_model(f.ckpt, &info);
  if (!m) return fail(m.status(), "give a checkpoint written by bna train (--out DIR/ckpt.safetensors)");
  std::unique_ptr<tok::Tokenizer> tk;
  if (auto it = info.metadata.find("tokenizer"); it != info.metadata.end()) {
    auto t = train::tokenizer_from_state(it->second);
    if (!t) return fail(t.status());
    tk = std::move(*t);
  }
  std::vector<int32_t> prompt;
  if (!f.prompt_ids.empty()) {
    std::stringstream ss(f.prompt_ids);
    for (std::string item; std::getline(ss, item, ',');) {
      try {
        prompt.push_back(static_cast<int32_t>(std::stol(item)));
      } catch (...) {
        return fail_usage("generate: --prompt-ids item '" + item + "' is not an integer", "e.g. --prompt-ids 9,17,18");
      }
    }
  } else {
    if (!tk) return fail_usage("generate: this checkpoint has no tokenizer (a task model)", "pass token ids with --prompt-ids");
    auto ids = tk->try_encode(f.prompt.empty() ? std::string("\n") : f.prompt);
    if (!ids) return fail(ids.status(), "the char tokenizer only knows the characters of its training text");
    prompt = std::move(*ids);
  }
  if (tk && tk->vocab_size() != m->config().vocab_size)
    return fail_usage("generate: tokenizer has " + std::to_string(tk->vocab_size()) + " ids but the model's vocab_size is " +
                      std::to_string(m->config().vocab_size));
  model::SampleOptions o{f.temperature, f.top_k, f.top_p, f.seed};
  auto out = model::generate(*m, prompt, f.max_new, o, !f.no_cache);
  if (!out) return fail(out.status(), out.status().code() == StatusCode::kOutOfRange ? "lower --max-new or shorten the prompt" : "");
  if (tk) {
    std::printf("%s\n", tk->decode(*out).c_str());
  } else {
    for (size_t i = 0; i < out->size(); ++i) std::printf("%s%d", i ? "," : "", (*out)[i]);
    std::printf("\n");
  }
  return 0;
}

void setup(CLI::App& root) {
  auto f = std::make_shared<GenerateFlags>();
  auto* sub = root.add_subcommand("generate", "sample text (or token ids) from a trained GPT checkpoint");
  sub->add_option("--ckpt", f->ckpt, "checkpoint (ckpt.safetensors from bna train)")->required();
  sub->add_option("--prompt", f->prompt, "prompt text (default: a newline)");
  sub->add_option("--prompt-ids", f->prompt_ids, "prompt as comma-separated token ids (task models)");
  sub->add_option("--max-new", f->max_new, "tokens to generate")->capture_default_str();
  sub->add_option("--temperature", f->temperature, "softmax temperature (<= 0: greedy)")->capture_default_str();
  sub->add_option("--top-k", f->top_k, "keep the k most likely tokens (0 = all)")->capture_default_str();
  sub->add_option("--top-p", f->top_p, "nucleus mass (1 = off)")->capture_default_str();
  sub->add_option("--seed", f->seed, "sampling seed")->capture_default_str();
  sub->add_flag("--no-cache", f->no_cache, "recompute the whole prefix every step instead of using the KV cache");
  sub->callback([f] { run_generate(*f); });
}

BNA_CLI_COMMAND(setup);

}  // namespace
}  // namespace bna::cli
