// Passkey retrieval at several context lengths on ONE model trained with our GPT code (issue #7's
// "passkey at 4k to 64k on a model trained with the GPT issue's code"): model::CudaGpt trains with
// --train-attn over sequences whose length cycles through --lengths (the batch keeps about --tokens
// tokens per step), with the distance curriculum of bna_gpt_ablation_cuda (the KEY's largest distance
// before QUERY grows from --dist0 to T over the first --curriculum of the steps). The trained weights
// are then evaluated, unchanged, with every attention in --eval-attn at every length: exact match and
// answer-digit accuracy on held-out examples (teacher-forced, data::score_batch). Learned positions
// are trained up to the longest length. Plain main; one JSON line per (attention, length) with --json.
//   bna_gpt_passkey_lengths_cuda [--lengths 4096,16384,65536] [--tokens 65536] [--steps 4000]
//       [--train-attn graph:w=64,s=64,c=0] [--eval-attn dense;graph:w=64,s=64,c=0;...]
//       [--layers 4] [--d-model 256] [--heads 4] [--lr 1e-3] [--curriculum 0.5] [--dist0 64]
//       [--eval-examples 64] [--seed 0] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "bna/data.hpp"
#include "bna/model_cuda.hpp"
#include "bna/train.hpp"

using Clock = std::chrono::steady_clock;

namespace {
std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, sep);)
    if (!x.empty()) out.push_back(x);
  return out;
}
int fail(const std::string& m) {
  std::fprintf(stderr, "error: %s\n", m.c_str());
  return 2;
}
}  // namespace

int main(int argc, char** argv) {
  std::string lengths_s = "4096,16384,65536", train_attn = "graph:w=64,s=64,c=0";
  std::string eval_attn = "dense;graph:w=64,s=64,c=0;graph:w=64,s=64,c=1,strategy=random;graph:w=64,s=0,c=0";
  int64_t tokens = 65536, steps = 4000, layers = 4, C = 256, heads = 4, dist0 = 64, eval_examples = 64;
  double lr = 1e-3, curriculum = 0.5;
  uint64_t seed = 0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") { json = true; continue; }
    if (i + 1 >= argc) return fail(a + " needs a value (or is unknown)");
    const std::string v = argv[++i];
    if (a == "--lengths") lengths_s = v;
    else if (a == "--tokens") tokens = std::stoll(v);
    else if (a == "--steps") steps = std::stoll(v);
    else if (a == "--train-attn") train_attn = v;
    else if (a == "--eval-attn") eval_attn = v;
    else if (a == "--layers") layers = std::stoll(v);
    else if (a == "--d-model") C = std::stoll(v);
    else if (a == "--heads") heads = std::stoll(v);
    else if (a == "--lr") lr = std::stod(v);
    else if (a == "--curriculum") curriculum = std::stod(v);
    else if (a == "--dist0") dist0 = std::stoll(v);
    else if (a == "--eval-examples") eval_examples = std::stoll(v);
    else if (a == "--seed") seed = std::stoull(v);
    else return fail("unknown flag " + a);
  }
  std::vector<int64_t> lengths;
  for (const std::string& x : split(lengths_s, ',')) lengths.push_back(std::stoll(x));
  if (lengths.empty() || steps < 1 || tokens < 1 || curriculum < 0 || curriculum > 1 || eval_examples < 1)
    return fail("--lengths, --steps, --tokens, --eval-examples must be >= 1 and --curriculum in [0, 1]");
  const int64_t Tmax = *std::max_element(lengths.begin(), lengths.end());
  bna::model::GptConfig cfg;
  cfg.vocab_size = bna::data::kTaskVocab;
  cfg.seq_len = Tmax;
  cfg.n_layers = layers;
  cfg.n_heads = heads;
  cfg.d_model = C;
  cfg.seed = seed + 1;
  auto spec = bna::model::parse_attn_spec(train_attn);
  if (!spec) return fail(spec.status().message());
  cfg.attn = {*spec};
  auto m = bna::model::Gpt::create(cfg);
  if (!m) return fail(m.status().message());
  auto g = bna::model::CudaGpt::create(*m);
  if (!g) return fail(g.status().message());
  bna::train::Schedule sched;
  sched.lr = static_cast<float>(lr);
  sched.lr_min = static_cast<float>(lr / 10);
  sched.warmup = std::min<int64_t>(100, steps / 10);
  sched.steps = steps;
  bna::train::AdamWOptions ao;
  bna::data::TaskOptions to;
  to.kind = bna::data::TaskKind::kPasskey;
  const double ramp = curriculum * static_cast<double>(steps);
  bna::data::Batch batch;
  double loss_tail = 0;
  int64_t tail = 0, trained_tokens = 0;
  const auto t0 = Clock::now();
  for (int64_t s = 1; s <= steps; ++s) {
    const int64_t T = lengths[static_cast<size_t>(s % static_cast<int64_t>(lengths.size()))];
    const int64_t B = std::max<int64_t>(1, tokens / T);
    to.T = T;
    to.max_distance = (curriculum > 0 && static_cast<double>(s) < ramp)
                          ? std::min<int64_t>(T, dist0 + static_cast<int64_t>((T - dist0) * (static_cast<double>(s) / ramp)))
                          : 0;
    if (auto st = bna::data::task_batch(to, B, seed, static_cast<uint64_t>(s), batch); !st.is_ok()) return fail(st.message());
    if (!g->zero_grad().is_ok()) return 1;
    auto l = g->forward(batch.x.data(), batch.y.data(), B, T);
    if (!l || !g->backward().is_ok()) return fail("training step " + std::to_string(s) + " failed");
    if (!g->step(bna::train::lr_at(sched, s), ao, 1.0)) return 1;
    trained_tokens += B * T;
    if (s > steps - std::min<int64_t>(30, steps)) { loss_tail += *l; ++tail; }
  }
  const double train_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!g->download_weights(*m).is_ok()) return 1;
  if (!json)
    std::printf("trained %s on lengths %s: %lld steps, %.1f s, %.0f tok/s, final loss %.4f (%s)\n", train_attn.c_str(),
                lengths_s.c_str(), (long long)steps, train_s, double(trained_tokens) / train_s,
                loss_tail / std::max<int64_t>(1, tail), bna::attn::cuda_device_name().c_str());
  for (const std::string& ea : split(eval_attn, ';')) {
    bna::model::GptConfig ec = cfg;
    auto es = bna::model::parse_attn_spec(ea);
    if (!es) return fail(es.status().message());
    ec.attn = {*es};
    auto em = bna::model::Gpt::create(ec);
    if (!em) return fail(em.status().message());
    std::copy(m->weights(), m->weights() + m->num_params(), em->weights());  // same parameters, other attention
    auto eg = bna::model::CudaGpt::create(*em);
    if (!eg) return fail(eg.status().message());
    for (int64_t T : lengths) {
      to.T = T;
      to.max_distance = 0;
      bna::data::TaskScore score;
      std::vector<float> logits;
      const int64_t B = std::max<int64_t>(1, std::min(eval_examples, tokens / T));
      for (int64_t done = 0, e = 0; done < eval_examples; done += B, ++e) {
        if (!bna::data::task_batch(to, B, seed, 1000000 + static_cast<uint64_t>(e), batch).is_ok()) return 1;
        if (!eg->forward(batch.x.data(), nullptr, B, T) || !eg->logits(logits).is_ok()) return fail("eval forward failed");
        const bna::data::TaskScore sc = bna::data::score_batch(batch, logits.data(), ec.vocab_size);
        score.examples += sc.examples; score.exact += sc.exact; score.tokens += sc.tokens; score.correct += sc.correct;
      }
      const double acc = score.examples ? double(score.exact) / score.examples : 0.0;
      const double tok = score.tokens ? double(score.correct) / score.tokens : 0.0;
      if (json) {
        nlohmann::ordered_json j;
        j["device"] = bna::attn::cuda_device_name(); j["train_attn"] = train_attn; j["lengths"] = lengths_s;
        j["steps"] = steps; j["tokens_per_step"] = tokens; j["lr"] = lr; j["curriculum"] = curriculum; j["dist0"] = dist0;
        j["layers"] = layers; j["d_model"] = C; j["heads"] = heads; j["seed"] = seed; j["train_s"] = train_s;
        j["final_train_loss"] = loss_tail / std::max<int64_t>(1, tail); j["eval_attn"] = ea; j["T"] = T;
        j["examples"] = score.examples; j["exact_match"] = acc; j["answer_digit_acc"] = tok;
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("  eval %-40s T=%-6lld exact %.3f (%lld/%lld)  digits %.3f\n", ea.c_str(), (long long)T, acc,
                    (long long)score.exact, (long long)score.examples, tok);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
