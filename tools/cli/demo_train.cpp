// bna demo --train: does the graph matter? Trains the same small GPT (same seed, same init, same
// batches, same steps) four times, changing only the attention of every layer: dense; window only
// (graph:w=W,s=0,c=0); window + landmarks (graph:w=W,s=S,c=0); Butterfly window + cycle + landmarks
// (graph:w=W,s=S,c=1); then prints one table (path used, losses, exact-match accuracy against chance,
// tokens/s, wall time) and a reading computed from the numbers.
//
// Decisions a reader must know:
//   * Defaults (T=128, W=S=T/16=8, 3 layers, d_model 64, 4 heads, batch 16, 300 steps, lr 3e-3 -> 3e-4,
//     one passkey digit) take about two minutes on a 2-core CPU, and the passkey usually lies beyond what
//     window-only attention can reach (layers * W = 24 tokens back): the KEY block is uniform over the
//     sequence (data.hpp). At 300 steps dense reaches 100%; three layers (not two) because the earlier
//     ablation (bench/results/cpu-gpt-ablation-2026-11-27.json) saw the only sparse signal with three.
//   * Chance is what a model that cannot see the stored answer gets by guessing uniformly: 10^-digits
//     for passkey, 32^-queries for recall. The reading calls a variant "above chance" only when its
//     accuracy exceeds chance by 3 binomial standard deviations over the evaluated examples, and two
//     variants "separated" only when their accuracies differ by 3 standard deviations of the difference;
//     otherwise it says the short run does not separate them.
#include "demo_train.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bna/threads.hpp"
#include "bna/train.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

using Clock = std::chrono::steady_clock;

constexpr int64_t kHeads = 4, kDModel = 64, kEvalBatches = 16;
constexpr int64_t kPasskeyDigits = 1, kRecallPairs = 8, kRecallQueries = 1;
constexpr float kLr = 3e-3f, kLrMin = 3e-4f;

struct Variant {
  const char* name;
  std::string spec;
};

struct VariantResult {
  std::string name, spec, path;
  double train_loss = 0;  // mean over the last min(10, steps) steps
  double val_loss = 0, accuracy = 0;
  int64_t examples = 0;
  double tokens_per_s = 0, wall_s = 0;
};

double binomial_sd(double p, int64_t n) { return std::sqrt(std::max(p * (1 - p), 0.0) / static_cast<double>(n)); }

// The reading: which variants learned, and whether window-only is separated from the graphs that add
// long-range edges. Claims only what 3-sigma differences support.
std::string reading(const std::vector<VariantResult>& r, double chance, int64_t reach, int64_t T) {
  const int64_t n = r[0].examples;
  if (n == 0) return "no examples were scored";
  auto above = [&](const VariantResult& v) { return v.accuracy > chance + 3 * binomial_sd(chance, n) + 1e-12; };
  auto separated = [&](const VariantResult& a, const VariantResult& b) {
    const double sd = std::sqrt(std::pow(binomial_sd(a.accuracy, n), 2) + std::pow(binomial_sd(b.accuracy, n), 2));
    return std::abs(a.accuracy - b.accuracy) > 3 * std::max(sd, binomial_sd(chance, n));
  };
  std::string learned, not_learned;
  for (const auto& v : r) {
    std::string& list = above(v) ? learned : not_learned;
    list += (list.empty() ? "" : ", ") + v.name;
  }
  char buf[512];
  if (learned.empty()) {
    std::snprintf(buf, sizeof buf,
                  "this short run does not separate them: every variant is within 3 sd of chance (%.3f, n=%lld); "
                  "train longer (--steps) for a real comparison",
                  chance, static_cast<long long>(n));
    return buf;
  }
  std::string s = "above chance (3 sd): " + learned + (not_learned.empty() ? "" : "; at chance: " + not_learned) + ". ";
  const VariantResult &window = r[1], &landmarks = r[2], &butterfly = r[3];
  if (!above(window) && (above(landmarks) || above(butterfly))) {
    std::snprintf(buf, sizeof buf,
                  "Window-only reaches at most layers*W = %lld of T = %lld tokens back and stays at chance; "
                  "the graphs with long-range edges do not. ",
                  static_cast<long long>(reach), static_cast<long long>(T));
    s += buf;
  } else if (!above(window) && above(r[0])) {
    std::snprintf(buf, sizeof buf,
                  "Window-only reaches at most layers*W = %lld of T = %lld tokens back; at this length of training "
                  "only dense attention uses the long-range information. ",
                  static_cast<long long>(reach), static_cast<long long>(T));
    s += buf;
  }
  if (above(butterfly) || above(landmarks)) {
    if (separated(butterfly, landmarks))
      s += std::string(butterfly.accuracy > landmarks.accuracy ? "The cycle edges help: butterfly beats window+landmarks"
                                                                : "The cycle edges do not help here: window+landmarks beats butterfly") +
           " by more than 3 sd. ";
    else
      s += "Butterfly and window+landmarks are not separated by this run. ";
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int run(const DemoTrainFlags& f) {
  // Bad values first, each named (exit 2).
  if (f.steps < 1) return fail_usage("demo --train: --steps " + std::to_string(f.steps) + ", expected >= 1");
  if (f.layers < 1 || f.layers > 12)
    return fail_usage("demo --train: --train-layers " + std::to_string(f.layers) + ", expected 1..12");
  if (f.batch < 1) return fail_usage("demo --train: --train-batch " + std::to_string(f.batch) + ", expected >= 1");
  if (f.T < 16 || f.T > 8192)
    return fail_usage("demo --train: --train-T " + std::to_string(f.T) + ", expected 16..8192", "e.g. --train-T 128");
  const int64_t W = f.window > 0 ? f.window : std::max<int64_t>(2, f.T / 16);
  if (f.window < 0 || W >= f.T)
    return fail_usage("demo --train: --train-window " + std::to_string(f.window) + ", expected 1..T-1 = " +
                      std::to_string(f.T - 1) + " (or 0 for T/16)");
  auto kind = data::parse_task(f.task);
  if (!kind) return fail(kind.status());
  if (*kind == data::TaskKind::kCopy)
    return fail_usage("demo --train: --task copy, expected passkey or recall", "use bna train --task copy for the copy task");
  const int64_t S = W;

  train::DataSpec ds;
  ds.kind = "task";
  ds.task.kind = *kind;
  ds.task.T = f.T;
  ds.task.digits = kPasskeyDigits;
  ds.task.pairs = kRecallPairs;
  ds.task.queries = kRecallQueries;
  auto streams = train::open_data(ds, f.batch, f.T, f.seed);
  if (!streams) return fail(streams.status());
  const double chance = *kind == data::TaskKind::kPasskey ? std::pow(0.1, kPasskeyDigits) : std::pow(1.0 / 32, kRecallQueries);
  const std::string ws = std::to_string(W), ss = std::to_string(S);
  const std::vector<Variant> variants = {
      {"dense", "dense"},
      {"window", "graph:w=" + ws + ",s=0,c=0"},
      {"window+landmarks", "graph:w=" + ws + ",s=" + ss + ",c=0"},
      {"butterfly", "graph:w=" + ws + ",s=" + ss + ",c=1"},
  };
  // Progress goes to stderr with --json so stdout holds only the document.
  FILE* out = f.json ? stderr : stdout;
  std::fprintf(out,
               "bna demo --train: task %s, T=%lld, W=%lld, S=%lld, %lld layers, d_model %lld, %lld heads, batch %lld, "
               "%lld steps, lr %.0e->%.0e, seed %llu, %d threads\n",
               f.task.c_str(), (long long)f.T, (long long)W, (long long)S, (long long)f.layers, (long long)kDModel,
               (long long)kHeads, (long long)f.batch, (long long)f.steps, kLr, kLrMin, (unsigned long long)f.seed,
               num_threads());
  std::fflush(out);

  std::vector<VariantResult> results;
  const auto t_all = Clock::now();
  for (const auto& v : variants) {
    model::GptConfig cfg;
    cfg.vocab_size = streams->vocab_size;
    cfg.seq_len = f.T;
    cfg.n_layers = f.layers;
    cfg.n_heads = kHeads;
    cfg.d_model = kDModel;
    cfg.seed = f.seed;
    auto spec = model::parse_attn_spec(v.spec);
    if (!spec) return fail(spec.status());
    cfg.attn = {*spec};
    auto m = model::Gpt::create(cfg);
    if (!m) return fail(m.status());
    train::TrainOptions o;
    o.steps = f.steps;
    o.schedule.lr = kLr;
    o.schedule.lr_min = kLrMin;
    o.schedule.warmup = std::min<int64_t>(30, f.steps / 10);
    o.log_every = std::max<int64_t>(1, f.steps / 5);
    o.eval_batches = kEvalBatches;
    o.score_task = true;
    const auto t0 = Clock::now();
    auto on_log = [&](const train::LogRecord& r) {
      std::fprintf(out, "  %-16s step %4lld/%lld  loss %.4f  %.0f tok/s\n", v.name, (long long)r.step, (long long)r.steps,
                   r.loss, r.tokens_per_s);
      std::fflush(out);
    };
    auto res = train::train(*m, streams->train_fn, streams->eval_fn, o, on_log);
    if (!res) return fail(res.status());
    VariantResult vr;
    vr.wall_s = std::chrono::duration<double>(Clock::now() - t0).count();
    vr.name = v.name;
    vr.spec = v.spec;
    vr.path = m->attention_path(0);
    for (int64_t l = 1; l < f.layers; ++l)
      if (m->attention_path(l) != vr.path) vr.path += "/" + m->attention_path(l);
    const size_t tail = std::min<size_t>(10, res->losses.size());
    for (size_t i = res->losses.size() - tail; i < res->losses.size(); ++i) vr.train_loss += res->losses[i] / tail;
    if (!res->final_eval) return fail(internal_error("demo --train: no final evaluation"));
    vr.val_loss = res->final_eval->loss;
    vr.accuracy = res->final_eval->accuracy();
    vr.examples = res->final_eval->score.examples;
    vr.tokens_per_s = res->tokens_per_s;
    results.push_back(vr);
  }
  const double total_s = std::chrono::duration<double>(Clock::now() - t_all).count();
  const std::string why = reading(results, chance, f.layers * W, f.T);

  if (f.json) {
    nlohmann::ordered_json j;
    j["demo"] = "train";
    j["task"] = f.task;
    j["T"] = f.T; j["W"] = W; j["S"] = S;
    j["layers"] = f.layers; j["d_model"] = kDModel; j["heads"] = kHeads;
    j["batch"] = f.batch; j["steps"] = f.steps; j["lr"] = kLr; j["lr_min"] = kLrMin; j["seed"] = f.seed;
    j["threads"] = num_threads();
#ifdef NDEBUG
    j["build_type"] = "Release";
#else
    j["build_type"] = "Debug";
#endif
    const char* commit = std::getenv("BNA_COMMIT");
    j["commit"] = commit ? commit : "unknown";
    j["chance"] = chance;
    j["examples"] = results[0].examples;
    for (const auto& r : results)
      j["variants"].push_back({{"name", r.name}, {"spec", r.spec}, {"path", r.path}, {"train_loss", r.train_loss},
                               {"val_loss", r.val_loss}, {"accuracy", r.accuracy}, {"tokens_per_s", r.tokens_per_s},
                               {"wall_s", r.wall_s}});
    j["wall_s"] = total_s;
    j["reading"] = why;
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }
  std::printf("\n%-17s %-22s %-8s %10s %8s %8s %9s %8s\n", "variant", "attention", "path", "train loss", "val loss",
              "accuracy", "tok/s", "wall s");
  for (const auto& r : results)
    std::printf("%-17s %-22s %-8s %10.4f %8.4f %8.3f %9.0f %8.1f\n", r.name.c_str(), r.spec.c_str(), r.path.c_str(),
                r.train_loss, r.val_loss, r.accuracy, r.tokens_per_s, r.wall_s);
  std::printf("chance %.3f (exact match on %lld held-out examples; 1 sd at chance %.3f); train loss = mean of the last "
              "%lld steps; total %.1f s\n",
              chance, (long long)results[0].examples, binomial_sd(chance, results[0].examples),
              (long long)std::min<int64_t>(10, f.steps), total_s);
  std::printf("reading: %s\n", why.c_str());
  return 0;
}

}  // namespace

void add_demo_train_flags(CLI::App* demo, CLI::Option* train_flag, DemoTrainFlags& f) {
  demo->add_option("--task", f.task, "--train: synthetic task, passkey (1 digit) or recall (8 pairs, 1 query)")
      ->capture_default_str()->needs(train_flag);
  demo->add_option("--steps", f.steps, "--train: optimizer steps per variant")->capture_default_str()->needs(train_flag);
  demo->add_option("--train-T", f.T, "--train: sequence length")->capture_default_str()->needs(train_flag);
  demo->add_option("--train-window", f.window, "--train: window W, also the landmark stride S (0: T/16)")
      ->capture_default_str()->needs(train_flag);
  demo->add_option("--train-layers", f.layers, "--train: transformer layers")->capture_default_str()->needs(train_flag);
  demo->add_option("--train-batch", f.batch, "--train: sequences per step")->capture_default_str()->needs(train_flag);
  demo->add_option("--train-seed", f.seed, "--train: seed of init, graphs and data order")
      ->capture_default_str()->needs(train_flag);
  demo->add_flag("--json", f.json, "--train: print one JSON document instead of the table")->needs(train_flag);
}

int run_demo_train(const DemoTrainFlags& f) {
  const int code = run(f);
  if (code != 0) exit_code() = code;
  return code;
}

}  // namespace bna::cli
