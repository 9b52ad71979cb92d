// Row-wise layers of the reference GPT: LayerNorm, GELU (tanh form), embeddings, softmax
// cross-entropy. Rows are independent and split over OpenMP threads; parameter-gradient reductions
// run over channel chunks with rows in order, so results never depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "bna/nn.hpp"
#include "bna/threads.hpp"
#include "nn/par.hpp"

namespace bna::nn {

namespace {
constexpr int64_t kChunk = 64;
constexpr float kGeluC = 0.7978845608028654f;  // sqrt(2/pi)
}  // namespace

void layernorm_fwd(const float* x, const float* gamma, const float* beta, float* y, float* mean, float* rstd,
                   int64_t n, int64_t C) {
  detail::par_rows(n, 4 * C, [&](int64_t i) {
    const float* xi = x + i * C;
    float m = 0.0f;
    for (int64_t c = 0; c < C; ++c) m += xi[c];
    m /= static_cast<float>(C);
    float v = 0.0f;
    for (int64_t c = 0; c < C; ++c) { const float d = xi[c] - m; v += d * d; }
    v /= static_cast<float>(C);
    const float r = 1.0f / std::sqrt(v + kLayerNormEps);
    float* yi = y + i * C;
    for (int64_t c = 0; c < C; ++c) yi[c] = (xi[c] - m) * r * gamma[c] + beta[c];
    mean[i] = m;
    rstd[i] = r;
  });
}

void layernorm_bwd(const float* x, const float* gamma, const float* mean, const float* rstd, const float* dy,
                   float* dx_acc, float* dgamma, float* dbeta, int64_t n, int64_t C) {
  detail::par_rows(n, 6 * C, [&](int64_t i) {
    const float* xi = x + i * C;
    const float* dyi = dy + i * C;
    const float m = mean[i], r = rstd[i];
    float sum_dn = 0.0f, sum_dn_xh = 0.0f;
    for (int64_t c = 0; c < C; ++c) {
      const float dn = dyi[c] * gamma[c];
      sum_dn += dn;
      sum_dn_xh += dn * (xi[c] - m) * r;
    }
    sum_dn /= static_cast<float>(C);
    sum_dn_xh /= static_cast<float>(C);
    float* dxi = dx_acc + i * C;
    for (int64_t c = 0; c < C; ++c) {
      const float xh = (xi[c] - m) * r;
      dxi[c] += r * (dyi[c] * gamma[c] - sum_dn - xh * sum_dn_xh);
    }
  });
  const int64_t chunks = (C + kChunk - 1) / kChunk;
  detail::par_rows(chunks, 3 * n * kChunk, [&](int64_t ch) {
    const int64_t c0 = ch * kChunk, c1 = std::min(C, c0 + kChunk);
    float ag[kChunk] = {}, ab[kChunk] = {};
    for (int64_t i = 0; i < n; ++i) {
      const float m = mean[i], r = rstd[i];
      for (int64_t c = c0; c < c1; ++c) {
        const float d = dy[i * C + c];
        ag[c - c0] += d * (x[i * C + c] - m) * r;
        ab[c - c0] += d;
      }
    }
    for (int64_t c = c0; c < c1; ++c) {
      dgamma[c] += ag[c - c0];
      dbeta[c] += ab[c - c0];
    }
  });
}

double gelu_tanh(double x) {
  const double c = 0.7978845608028654;
  return 0.5 * x * (1.0 + std::tanh(c * (x + 0.044715 * x * x * x)));
}

double gelu_tanh_grad(double x) {
  const double c = 0.7978845608028654;
  const double u = c * (x + 0.044715 * x * x * x);
  const double t = std::tanh(u);
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * c * (1.0 + 3.0 * 0.044715 * x * x);
}

void gelu_fwd(const float* x, float* y, int64_t n) {
  const int64_t chunks = (n + 4095) / 4096;
  detail::par_rows(chunks, 4096 * 8, [&](int64_t ch) {
    const int64_t e = std::min(n, (ch + 1) * 4096);
    for (int64_t i = ch * 4096; i < e; ++i) {
      const float v = x[i];
      y[i] = 0.5f * v * (1.0f + std::tanh(kGeluC * (v + 0.044715f * v * v * v)));
    }
  });
}

void gelu_bwd(const float* x, const float* dy, float* dx, int64_t n) {
  const int64_t chunks = (n + 4095) / 4096;
  detail::par_rows(chunks, 4096 * 12, [&](int64_t ch) {
    const int64_t e = std::min(n, (ch + 1) * 4096);
    for (int64_t i = ch * 4096; i < e; ++i) {
      const float v = x[i];
      const float t = std::tanh(kGeluC * (v + 0.044715f * v * v * v));
      const float g = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * kGeluC * (1.0f + 3.0f * 0.044715f * v * v);
      dx[i] = dy[i] * g;
    }
  });
}

void embedding_fwd(const int32_t* ids, const float* table, const float* pos_table, float* out, int64_t n,
                   int64_t T, int64_t C) {
  detail::par_rows(n, C, [&](int64_t i) {
    const float* e = table + static_cast<int64_t>(ids[i]) * C;
    float* o = out + i * C;
    if (pos_table != nullptr) {
      const float* p = pos_table + (i % T) * C;
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
    } else {
      std::copy(e, e + C, o);
    }
  });
}

void embedding_bwd(const int32_t* ids, const float* dout, float* dtable, float* dpos, int64_t n, int64_t T,
                   int64_t C) {
  const int64_t chunks = (C + kChunk - 1) / kChunk;
  detail::par_rows(chunks, 2 * n * kChunk, [&](int64_t ch) {
    const int64_t c0 = ch * kChunk, c1 = std::min(C, c0 + kChunk);
    for (int64_t i = 0; i < n; ++i) {
      const float* d = dout + i * C;
      float* t = dtable + static_cast<int64_t>(ids[i]) * C;
      for (int64_t c = c0; c < c1; ++c) t[c] += d[c];
      if (dpos != nullptr) {
        float* p = dpos + (i % T) * C;
        for (int64_t c = c0; c < c1; ++c) p[c] += d[c];
      }
    }
  });
}

int64_t softmax_cross_entropy_fwd(const float* logits, const int32_t* targets, float* probs, float* losses,
                                  int64_t n, int64_t V) {
  detail::par_rows(n, 8 * V, [&](int64_t i) {
    const float* l = logits + i * V;
    float* p = probs + i * V;
    float m = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < V; ++j) m = std::max(m, l[j]);
    double s = 0.0;
    const int32_t t = targets != nullptr ? targets[i] : -1;
    const float lt = t >= 0 ? l[t] : 0.0f;  // read before p (which may alias l) is written
    for (int64_t j = 0; j < V; ++j) {
      const float e = std::exp(l[j] - m);
      p[j] = e;
      s += e;
    }
    const float inv = static_cast<float>(1.0 / s);
    for (int64_t j = 0; j < V; ++j) p[j] *= inv;
    if (losses != nullptr) losses[i] = t >= 0 ? static_cast<float>(std::log(s) + m - lt) : 0.0f;
  });
  int64_t counted = 0;
  if (targets != nullptr)
    for (int64_t i = 0; i < n; ++i) counted += targets[i] >= 0;
  return counted;
}

void softmax_cross_entropy_bwd(const float* probs, const int32_t* targets, const float* dloss, float* dlogits,
                               int64_t n, int64_t V) {
  detail::par_rows(n, 2 * V, [&](int64_t i) {
    const float* p = probs + i * V;
    float* d = dlogits + i * V;
    const int32_t t = targets[i];
    if (t < 0) {
      std::fill(d, d + V, 0.0f);
      return;
    }
    const float g = dloss[i];
    for (int64_t j = 0; j < V; ++j) d[j] = p[j] * g;
    d[t] -= g;
  });
}

}  // namespace bna::nn
