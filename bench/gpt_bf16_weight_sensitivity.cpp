// How well-conditioned are the model_cuda test's models for its gradient bound? (CPU, plain main.)
// The bound (tol = 2^-8 sqrt(12 L + 4), docs/numerics.md) counts bf16 rounding points, each 2^-9
// relative, and assumes errors pass through the model with O(1) gain. This program rounds only the
// weights to bf16 (one of the GPU's rounding points) and reports, per model and weight scale, the
// largest per-tensor rms change of the first-step gradients in units of tol. A model near or above
// 1 tol from this one rounding alone cannot meet the bound on the GPU, whatever the kernels do.
//   bna_gpt_bf16_weight_sensitivity
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bna/dtype.hpp"
#include "bna/model.hpp"
#include "bna/rng.hpp"
#include "gpt_test_models.hpp"

namespace {

using bna::model::Gpt;
using bna::model::GptConfig;

// First-step gradients of the test's batch at weights N(0, std) (LayerNorm gains 1, biases 0),
// with the weights rounded to bf16 when `round`.
bna::Expected<std::vector<float>> grads(const GptConfig& cfg, double std, bool round) {
  auto m = Gpt::create(cfg);
  if (!m) return m.status();
  bna::Rng rng(11);
  for (const auto& p : m->params()) {
    if (p.shape.size() == 1) continue;
    for (int64_t i = 0; i < p.numel; ++i) {
      const float w = static_cast<float>(std * rng.normal());
      m->weights()[p.offset + i] = round ? bna::bf16_to_float(bna::float_to_bf16(w)) : w;
    }
  }
  const int64_t B = 2, T = cfg.seq_len, n = B * T;
  bna::Rng data(5);
  std::vector<int32_t> idx(n), tgt(n);
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = static_cast<int32_t>(data.uniform_below(static_cast<uint64_t>(cfg.vocab_size)));
    tgt[i] = i % 17 == 0 ? -1 : static_cast<int32_t>(data.uniform_below(static_cast<uint64_t>(cfg.vocab_size)));
  }
  m->zero_grad();
  auto l = m->forward(idx.data(), tgt.data(), B, T);
  if (!l) return l.status();
  BNA_RETURN_IF_ERROR(m->backward());
  return std::vector<float>(m->grads(), m->grads() + m->num_params());
}

}  // namespace

int main() {
  struct Case { const char* name; bool wide; double std; };
  const Case cases[] = {{"tiny (C=128)", false, 0.1},
                        {"wide (C=384, V=97)", true, 0.1},
                        {"wide, scaled weights", true, 0.1 * std::sqrt(128.0 / 384.0)}};
  for (const Case& c : cases) {
    const GptConfig cfg = model_cuda_test_model(c.wide ? TestModel::kWide : TestModel::kTiny);
    const double tol = std::ldexp(1.0, -8) * std::sqrt(12.0 * static_cast<double>(cfg.n_layers) + 4.0);
    auto exact = grads(cfg, c.std, false);
    auto rounded = grads(cfg, c.std, true);
    if (!exact || !rounded) { std::fprintf(stderr, "error: model build or step failed\n"); return 1; }
    auto m = Gpt::create(cfg);
    double worst = 0;
    std::string where;
    for (const auto& p : m->params()) {
      double se = 0, sr = 0;
      for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
        const double d = static_cast<double>((*rounded)[i]) - (*exact)[i];
        se += d * d;
        sr += static_cast<double>((*exact)[i]) * (*exact)[i];
      }
      const double r = sr > 0 ? std::sqrt(se / sr) / tol : 0.0;
      if (r > worst) { worst = r; where = p.name; }
    }
    std::printf("%-22s weights N(0, %.4f): worst gradient change from bf16 weights %.2f tol (%s)\n", c.name, c.std,
                worst, where.c_str());
  }
  return 0;
}
