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
//       [--eval-examples 64] [--seed 0] [--warm-T 2048 --warm-steps 5000 --warm-batch 16] [--json]
// --warm-steps N > 0 stages the training: first N steps at T = --warm-T (batch --warm-batch, the
// curriculum over those steps, distances 64 .. warm-T: the recipe that learned passkey at T=2048 in
// docs/gpt.md), then --steps steps over --lengths with distances growing from warm-T to T.
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
  int64_t warm_T = 2048, warm_steps = 0, warm_batch = 16;
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
    else if (a == "--warm-T") warm_T = std::stoll(v);
    else if (a == "--warm-steps") warm_steps = std::stoll(v);
    else if (a == "--warm-batch") warm_batch = std::stoll(v);
    else return fail("unknown flag " + a);
  }
  std::vector<int64_t> lengths;
  for (const std::string& x : split(lengths_s, ',')) lengths.push_back(std::stoll(x));
  if (lengths.empty() || steps < 1 || tokens < 1 || curriculum < 0 || curriculum > 1 || eval_examples < 1)
    return fail("--lengths, --steps, --tokens, --eval-examples must be >= 1 and --curriculum in [0, 1]");
  if (warm_steps < 0 || (warm_steps > 0 && (warm_T <= dist0 || warm_batch < 1)))
    return fail("--warm-steps >= 0, and with it --warm-T > --dist0 and --warm-batch >= 1");
  const int64_t Tmax = std::max(*std::max_element(lengths.begin(), lengths.end()), warm_steps > 0 ? warm_T : 0);
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
  const int64_t total = warm_steps + steps;
  sched.warmup = std::min<int64_t>(100, total / 10);
  sched.steps = total;
  bna::train::AdamWOptions ao;
  bna::data::TaskOptions to;
  to.kind = bna::data::TaskKind::kPasskey;
  // Distance limit at step u of a phase of n steps whose curriculum grows from d0 to T (0 = anywhere).
  auto limit = [&](int64_t u, int64_t n, int64_t d0, int64_t T) -> int64_t {
    const double ramp = curriculum * static_cast<double>(n);
    if (curriculum <= 0 || static_cast<double>(u) >= ramp || d0 >= T) return 0;
    return std::min<int64_t>(T, d0 + static_cast<int64_t>((T - d0) * (static_cast<double>(u) / ramp)));
  };
  bna::data::Batch batch;
  double loss_tail = 0, warm_loss = 0;
  int64_t tail = 0, trained_tokens = 0, warm_tail = 0;
  const auto t0 = Clock::now();
  for (int64_t s = 1; s <= total; ++s) {
    const bool warm = s <= warm_steps;
    const int64_t u = warm ? s : s - warm_steps;
    const int64_t T = warm ? warm_T : lengths[static_cast<size_t>(u % static_cast<int64_t>(lengths.size()))];
    const int64_t B = warm ? warm_batch : std::max<int64_t>(1, tokens / T);
    to.T = T;
    to.max_distance = warm ? limit(u, warm_steps, dist0, T) : limit(u, steps, warm_steps > 0 ? warm_T : dist0, T);
    if (auto st = bna::data::task_batch(to, B, seed, static_cast<uint64_t>(s), batch); !st.is_ok()) return fail(st.message());
    if (!g->zero_grad().is_ok()) return 1;
    auto l = g->forward(batch.x.data(), batch.y.data(), B, T);
    if (!l || !g->backward().is_ok()) return fail("training step " + std::to_string(s) + " failed");
    if (!g->step(bna::train::lr_at(sched, s), ao, 1.0)) return 1;
    trained_tokens += B * T;
    if (warm && s > warm_steps - std::min<int64_t>(30, warm_steps)) { warm_loss += *l; ++warm_tail; }
    if (s > total - std::min<int64_t>(30, total)) { loss_tail += *l; ++tail; }
  }
  const double train_s = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!g->download_weights(*m).is_ok()) return 1;
  if (!json)
    std::printf("trained %s on lengths %s: %lld steps (+%lld warm), %.1f s, %.0f tok/s, final loss %.4f (%s)\n", train_attn.c_str(),
                lengths_s.c_str(), (long long)steps, (long long)warm_steps, train_s, double(trained_tokens) / train_s,
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
        j["device"] = bna::attn::cuda_device_name(); j["dtype"] = "bf16 mixed (f32 masters)"; j["train_attn"] = train_attn; j["lengths"] = lengths_s;
        j["steps"] = steps; j["tokens_per_step"] = tokens; j["lr"] = lr; j["curriculum"] = curriculum; j["dist0"] = dist0;
        j["layers"] = layers; j["d_model"] = C; j["heads"] = heads; j["seed"] = seed; j["train_s"] = train_s;
        j["final_train_loss"] = loss_tail / std::max<int64_t>(1, tail); j["warm_T"] = warm_steps > 0 ? warm_T : 0;
        j["warm_steps"] = warm_steps; j["warm_batch"] = warm_steps > 0 ? warm_batch : 0;
        j["warm_final_loss"] = warm_loss / std::max<int64_t>(1, warm_tail); j["eval_attn"] = ea; j["T"] = T;
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
