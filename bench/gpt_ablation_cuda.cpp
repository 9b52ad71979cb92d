// Does the graph matter? The long-range task ablation of issue #6 on the GPU (model::CudaGpt): the
// same model, data, seed and steps, trained four times with only every layer's attention changed:
//   dense | window (w=W) | window + landmarks (w=W, s=S) | butterfly (w=W, s=S, 1 random cycle).
// Reports exact-match accuracy (data::score_batch, teacher-forced answers) on held-out batches, the
// final training loss and training tokens/s. Plain main; one JSON line per variant with --json.
//   bna_gpt_ablation_cuda [--task passkey|recall] [--T 2048] [--W 64] [--S 64] [--layers 4]
//                         [--d-model 256] [--heads 4] [--batch 16] [--steps 1000] [--lr 1e-3]
//                         [--eval-batches 8] [--seed 0] [--curriculum F --dist0 D] [--variants a,b] [--json]
// --curriculum F (passkey, recall): over the first F of the steps the largest distance from the
// KEY (recall: the first pair) to the (first) QUERY grows linearly from D (default 64) to T, then
// stays at T (data::TaskOptions::max_distance);
// evaluation is always over the whole range. --variants picks a subset by name.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "bna/data.hpp"
#include "bna/model_cuda.hpp"
#include "bna/train.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  std::string task = "passkey";
  int64_t T = 2048, W = 64, S = 64, layers = 4, C = 256, heads = 4, B = 16, steps = 1000, eval_batches = 8;
  double lr = 1e-3, curriculum = 0.0;
  int64_t dist0 = 64;
  std::string only;
  uint64_t seed = 0;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--json") { json = true; continue; }
    if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value (or is unknown)\n", a.c_str()); return 2; }
    const std::string v = argv[++i];
    if (a == "--task") task = v;
    else if (a == "--T") T = std::stoll(v);
    else if (a == "--W") W = std::stoll(v);
    else if (a == "--S") S = std::stoll(v);
    else if (a == "--layers") layers = std::stoll(v);
    else if (a == "--d-model") C = std::stoll(v);
    else if (a == "--heads") heads = std::stoll(v);
    else if (a == "--batch") B = std::stoll(v);
    else if (a == "--steps") steps = std::stoll(v);
    else if (a == "--lr") lr = std::stod(v);
    else if (a == "--eval-batches") eval_batches = std::stoll(v);
    else if (a == "--seed") seed = std::stoull(v);
    else if (a == "--curriculum") curriculum = std::stod(v);
    else if (a == "--dist0") dist0 = std::stoll(v);
    else if (a == "--variants") only = "," + v + ",";
    else { std::fprintf(stderr, "error: unknown flag %s\n", a.c_str()); return 2; }
  }
  bna::data::TaskOptions to;
  auto kind = bna::data::parse_task(task);
  if (!kind) { std::fprintf(stderr, "error: %s\n", kind.status().message().c_str()); return 2; }
  to.kind = *kind;
  to.T = T;
  if (auto st = bna::data::validate_task(to); !st.is_ok()) { std::fprintf(stderr, "error: %s\n", st.message().c_str()); return 2; }
  const std::string Ws = std::to_string(W), Ss = std::to_string(S);
  const std::vector<std::pair<std::string, std::string>> variants = {
      {"dense", "dense"},
      {"window", "graph:w=" + Ws + ",s=0,c=0"},
      {"window+landmarks", "graph:w=" + Ws + ",s=" + Ss + ",c=0"},
      {"butterfly", "graph:w=" + Ws + ",s=" + Ss + ",c=1,strategy=random"}};
  bna::train::Schedule sched;
  sched.lr = static_cast<float>(lr);
  sched.lr_min = static_cast<float>(lr / 10);
  sched.warmup = std::min<int64_t>(100, steps / 10);
  sched.steps = steps;
  bna::train::AdamWOptions ao;
  if (!json)
    std::printf("task %s T=%lld W=%lld S=%lld, %lld layers d_model %lld heads %lld, batch %lld, %lld steps, lr %.0e, on %s\n",
                task.c_str(), (long long)T, (long long)W, (long long)S, (long long)layers, (long long)C,
                (long long)heads, (long long)B, (long long)steps, lr, bna::attn::cuda_device_name().c_str());
  bna::data::TaskOptions first = to;
  first.max_distance = dist0;
  if (curriculum < 0 || curriculum > 1 || (curriculum > 0 && !bna::data::validate_task(first).is_ok())) {
    std::fprintf(stderr, "error: --curriculum %g --dist0 %lld, expected a fraction in [0, 1] and a dist0 the task takes "
                 "(passkey: > digits, recall: >= 2 * pairs; not copy)\n", curriculum, (long long)dist0);
    return 2;
  }
  // The training distance limit at step s (0 = anywhere).
  auto max_distance = [&](int64_t s) -> int64_t {
    const double ramp = curriculum * static_cast<double>(steps);
    if (curriculum <= 0 || static_cast<double>(s) >= ramp) return 0;
    return std::min<int64_t>(T, dist0 + static_cast<int64_t>((T - dist0) * (static_cast<double>(s) / ramp)));
  };
  for (const auto& [name, spec] : variants) {
    if (!only.empty() && only.find("," + name + ",") == std::string::npos) continue;
    bna::model::GptConfig cfg;
    cfg.vocab_size = bna::data::kTaskVocab;
    cfg.seq_len = T;
    cfg.n_layers = layers;
    cfg.n_heads = heads;
    cfg.d_model = C;
    cfg.seed = seed + 1;  // the same initial weights for every variant
    auto sp = bna::model::parse_attn_spec(spec);
    if (!sp) { std::fprintf(stderr, "error: %s\n", sp.status().message().c_str()); return 2; }
    cfg.attn = {*sp};
    auto m = bna::model::Gpt::create(cfg);
    if (!m) { std::fprintf(stderr, "error: %s\n", m.status().message().c_str()); return 2; }
    auto g = bna::model::CudaGpt::create(*m);
    if (!g) { std::fprintf(stderr, "error: %s\n", g.status().message().c_str()); return 2; }
    bna::data::Batch batch;
    double loss_tail = 0;
    int64_t tail = 0;
    const auto t0 = Clock::now();
    for (int64_t s = 1; s <= steps; ++s) {
      bna::data::TaskOptions ts = to;
      ts.max_distance = max_distance(s);
      if (!bna::data::task_batch(ts, B, seed, static_cast<uint64_t>(s), batch).is_ok()) return 1;
      if (!g->zero_grad().is_ok()) return 1;
      auto l = g->forward(batch.x.data(), batch.y.data(), B, T);
      if (!l || !g->backward().is_ok()) { std::fprintf(stderr, "error: step %lld failed\n", (long long)s); return 1; }
      if (!g->step(bna::train::lr_at(sched, s), ao, 1.0)) return 1;
      if (s > steps - std::min<int64_t>(20, steps)) { loss_tail += *l; ++tail; }
    }
    const double train_s = std::chrono::duration<double>(Clock::now() - t0).count();
    bna::data::TaskScore score;
    std::vector<float> logits;
    for (int64_t e = 0; e < eval_batches; ++e) {  // held-out indices (training used 1..steps)
      if (!bna::data::task_batch(to, B, seed, 1000000 + static_cast<uint64_t>(e), batch).is_ok()) return 1;
      if (!g->forward(batch.x.data(), nullptr, B, T) || !g->logits(logits).is_ok()) return 1;
      const bna::data::TaskScore s = bna::data::score_batch(batch, logits.data(), cfg.vocab_size);
      score.examples += s.examples; score.exact += s.exact; score.tokens += s.tokens; score.correct += s.correct;
    }
    const double acc = score.examples ? double(score.exact) / score.examples : 0.0;
    const double tok_acc = score.tokens ? double(score.correct) / score.tokens : 0.0;
    const double tok_s = double(B * T * steps) / train_s;
    if (json) {
      nlohmann::ordered_json j;
      j["device"] = bna::attn::cuda_device_name(); j["dtype"] = "bf16 mixed (f32 masters)"; j["task"] = task; j["T"] = T; j["W"] = W; j["S"] = S;
      j["layers"] = layers; j["d_model"] = C; j["heads"] = heads; j["batch"] = B; j["steps"] = steps; j["lr"] = lr;
      j["seed"] = seed; j["curriculum"] = curriculum; j["dist0"] = curriculum > 0 ? dist0 : 0; j["variant"] = name; j["attn"] = spec; j["exact_match"] = acc; j["answer_token_acc"] = tok_acc;
      j["examples"] = score.examples; j["final_train_loss"] = loss_tail / std::max<int64_t>(1, tail);
      j["train_s"] = train_s; j["tokens_per_s"] = tok_s;
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("  %-17s exact %.3f (%lld/%lld)  answer tokens %.3f  loss %.4f  %.0f tok/s  (%.1f s)\n", name.c_str(),
                  acc, (long long)score.exact, (long long)score.examples, tok_acc, loss_tail / std::max<int64_t>(1, tail),
                  tok_s, train_s);
    }
    std::fflush(stdout);
  }
  return 0;
}
