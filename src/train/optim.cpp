// AdamW (PyTorch's update), the warmup + cosine schedule and global-norm gradient clipping.
// Elementwise work is split over threads; the norm is a float64 sum over fixed chunks added in
// order, so it does not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <vector>

#include "bna/threads.hpp"
#include "bna/train.hpp"
#include "nn/par.hpp"

namespace bna::train {

void AdamW::step(model::Gpt& model, float lr) {
  ++t;
  const float b1 = opt.beta1, b2 = opt.beta2;
  const double bc1 = 1.0 - std::pow(static_cast<double>(b1), static_cast<double>(t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(b2), static_cast<double>(t));
  const float step_size = static_cast<float>(lr / bc1);
  const float inv_sqrt_bc2 = static_cast<float>(1.0 / std::sqrt(bc2));
  float* w = model.weights();
  const float* g = model.grads();
  for (const model::ParamInfo& p : model.params()) {
    const float decay = p.decay ? 1.0f - lr * opt.weight_decay : 1.0f;
    float* wp = w + p.offset;
    const float* gp = g + p.offset;
    float* mp = m.data() + p.offset;
    float* vp = v.data() + p.offset;
    nn::detail::par_rows((p.numel + 4095) / 4096, 4096 * 10, [&](int64_t c) {
      const int64_t e = std::min(p.numel, (c + 1) * 4096);
      for (int64_t i = c * 4096; i < e; ++i) {
        mp[i] = b1 * mp[i] + (1.0f - b1) * gp[i];
        vp[i] = b2 * vp[i] + (1.0f - b2) * gp[i] * gp[i];
        wp[i] = wp[i] * decay - step_size * mp[i] / (std::sqrt(vp[i]) * inv_sqrt_bc2 + opt.eps);
      }
    });
  }
}

float lr_at(const Schedule& s, int64_t step) {
  if (s.warmup > 0 && step <= s.warmup) return s.lr * static_cast<float>(step) / static_cast<float>(s.warmup);
  if (step >= s.steps) return s.lr_min;
  const double prog = static_cast<double>(step - s.warmup) / static_cast<double>(std::max<int64_t>(1, s.steps - s.warmup));
  return static_cast<float>(s.lr_min + (s.lr - s.lr_min) * 0.5 * (1.0 + std::cos(M_PI * prog)));
}

double clip_grad_norm(float* g, int64_t n, double max_norm) {
  constexpr int64_t kChunk = 1 << 14;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<double> part(static_cast<size_t>(chunks), 0.0);
  nn::detail::par_rows(chunks, kChunk * 2, [&](int64_t c) {
    double s = 0;
    const int64_t e = std::min(n, (c + 1) * kChunk);
    for (int64_t i = c * kChunk; i < e; ++i) s += static_cast<double>(g[i]) * g[i];
    part[c] = s;
  });
  double total = 0;
  for (double p : part) total += p;
  const double norm = std::sqrt(total);
  if (max_norm > 0 && norm > max_norm) {
    const float scale = static_cast<float>(max_norm / (norm + 1e-6));
    nn::detail::par_rows(chunks, kChunk, [&](int64_t c) {
      const int64_t e = std::min(n, (c + 1) * kChunk);
      for (int64_t i = c * kChunk; i < e; ++i) g[i] *= scale;
    });
  }
  return norm;
}

}  // namespace bna::train
