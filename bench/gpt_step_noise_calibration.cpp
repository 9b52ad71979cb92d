// Calibrates the trajectory bound of tests/model_cuda/cuda_gpt_test.cpp on the CPU (plain main).
// The test compares one GPU and one CPU run of 3 AdamW steps. Each step's gradients are allowed an
// rms error of tol * rms(g) per tensor (tol = 2^-8 sqrt(12 L + 4), docs/numerics.md); AdamW then
// amplifies such differences, so the later losses and gradient norms of two runs drift apart by more
// than tol even when every step is within it. This program measures that drift: CPU runs of the
// test's two models (same weights, data, lr and clipping as the test) with Gaussian noise of rms
// noise * tol * rms(g) added to every tensor's gradient on every step, against the noiseless run.
// It prints the worst relative deviation, in units of tol, of the losses after steps 1..3 and of the
// gradient norms of steps 2 and 3, over --seeds noise draws. Usage:
//   bna_gpt_step_noise_calibration [--seeds 48] [--noise 1.0]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bna/model.hpp"
#include "bna/rng.hpp"
#include "bna/train.hpp"
#include "gpt_test_models.hpp"

namespace {

using bna::model::Gpt;
using bna::model::GptConfig;

struct Trajectory {
  std::vector<double> losses;  // before steps 1, 2, 3 and after step 3
  std::vector<double> norms;   // gradient norms of steps 1, 2, 3
};

// One run of the test's 3 steps; noise_rel = 0 is the reference run.
bna::Expected<Trajectory> run(const GptConfig& cfg, double noise_rel, uint64_t noise_seed) {
  auto m = Gpt::create(cfg);
  if (!m) return m.status();
  bna::Rng init(11);
  for (const auto& p : m->params()) {
    if (p.shape.size() == 1) continue;
    for (int64_t i = 0; i < p.numel; ++i) m->weights()[p.offset + i] = static_cast<float>(0.1 * init.normal());
  }
  const int64_t B = 2, T = cfg.seq_len, n = B * T;
  bna::Rng data(5);
  std::vector<int32_t> idx(n), tgt(n);
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = static_cast<int32_t>(data.uniform_below(96));
    tgt[i] = i % 17 == 0 ? -1 : static_cast<int32_t>(data.uniform_below(96));
  }
  bna::Rng noise(noise_seed);
  bna::train::AdamWOptions ao;
  bna::train::AdamW adam(m->num_params(), ao);
  Trajectory t;
  for (int s = 0; s < 3; ++s) {
    m->zero_grad();
    auto l = m->forward(idx.data(), tgt.data(), B, T);
    if (!l) return l.status();
    t.losses.push_back(*l);
    BNA_RETURN_IF_ERROR(m->backward());
    for (const auto& p : m->params()) {
      float* g = m->grads() + p.offset;
      double ss = 0;
      for (int64_t i = 0; i < p.numel; ++i) ss += static_cast<double>(g[i]) * g[i];
      const double sd = noise_rel * std::sqrt(ss / static_cast<double>(p.numel));
      for (int64_t i = 0; i < p.numel; ++i) g[i] += static_cast<float>(sd * noise.normal());
    }
    t.norms.push_back(bna::train::clip_grad_norm(m->grads(), m->num_params(), 1.0));
    adam.step(*m, 1e-2f);
  }
  auto l = m->forward(idx.data(), tgt.data(), B, T);
  if (!l) return l.status();
  t.losses.push_back(*l);
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  int seeds = 48;
  double noise = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) { std::fprintf(stderr, "error: %s needs a value\n", a.c_str()); return 2; }
    if (a == "--seeds") seeds = std::atoi(argv[++i]);
    else if (a == "--noise") noise = std::atof(argv[++i]);
    else { std::fprintf(stderr, "error: unknown flag %s (expected --seeds N, --noise F)\n", a.c_str()); return 2; }
  }
  if (seeds < 1 || !(noise > 0)) { std::fprintf(stderr, "error: --seeds must be >= 1 and --noise > 0\n"); return 2; }
  for (bool contiguous : {false, true}) {
    const GptConfig cfg = model_cuda_test_model(contiguous ? TestModel::kContiguousPaths : TestModel::kTiny);
    const double tol = std::ldexp(1.0, -8) * std::sqrt(12.0 * static_cast<double>(cfg.n_layers) + 4.0);
    auto ref = run(cfg, 0.0, 0);
    if (!ref) { std::fprintf(stderr, "error: %s\n", ref.status().to_string().c_str()); return 1; }
    double worst_loss = 0, worst_norm = 0;
    for (int s = 0; s < seeds; ++s) {
      auto t = run(cfg, noise * tol, 100 + static_cast<uint64_t>(s));
      if (!t) { std::fprintf(stderr, "error: %s\n", t.status().to_string().c_str()); return 1; }
      for (size_t k = 1; k < t->losses.size(); ++k)
        worst_loss = std::max(worst_loss, std::fabs(t->losses[k] - ref->losses[k]) / ref->losses[k]);
      for (size_t k = 1; k < t->norms.size(); ++k)
        worst_norm = std::max(worst_norm, std::fabs(t->norms[k] - ref->norms[k]) / ref->norms[k]);
    }
    std::printf("%s: tol %.4f, noise %.2f tol, %d seeds: worst loss drift %.2f tol, worst grad-norm drift %.2f tol\n",
                contiguous ? "tiny_contiguous_paths" : "tiny", tol, noise, seeds, worst_loss / tol, worst_norm / tol);
  }
  return 0;
}
