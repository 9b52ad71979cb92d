// nn layers against float64 references computed from the same f32 inputs, and their backward passes
// against float64 finite differences of the float64 reference (docs/numerics.md, rule 6).
// Bounds: SGEMM uses the classical dot-product bound |err| <= gamma_K * sum_k |a_ik b_kj|,
// gamma_K = K u / (1 - K u), u = 2^-24; row-wise layers use a few ulps of the row's magnitude, named
// at each check.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "bna/nn.hpp"
#include "bna/rng.hpp"

namespace bna::nn {
namespace {

std::vector<float> randn(int64_t n, uint64_t seed, double scale = 1.0) {
  Rng r(seed);
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(r.normal() * scale);
  return v;
}

constexpr double kU = 5.960464477539063e-08;  // 2^-24
double gamma_k(int64_t k) { return k * kU / (1.0 - k * kU); }

struct GemmCase { bool ta, tb; int64_t M, N, K; };

TEST(Nn, SgemmAllTransposesWithinDotProductBound) {
  for (GemmCase c : {GemmCase{false, false, 7, 13, 61}, GemmCase{true, false, 9, 5, 67},
                     GemmCase{false, true, 17, 3, 257}, GemmCase{true, true, 1, 11, 31}}) {
    SCOPED_TRACE(testing::Message() << "ta=" << c.ta << " tb=" << c.tb << " M=" << c.M << " N=" << c.N << " K=" << c.K);
    auto A = randn(c.M * c.K, 1), B = randn(c.K * c.N, 2), C = randn(c.M * c.N, 3);
    const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N;
    auto a = [&](int64_t i, int64_t k) { return static_cast<double>(c.ta ? A[k * lda + i] : A[i * lda + k]); };
    auto b = [&](int64_t k, int64_t j) { return static_cast<double>(c.tb ? B[j * ldb + k] : B[k * ldb + j]); };
    std::vector<float> out = C;
    sgemm(c.ta, c.tb, c.M, c.N, c.K, 0.5f, A.data(), lda, B.data(), ldb, 2.0f, out.data(), c.N);
    for (int64_t i = 0; i < c.M; ++i)
      for (int64_t j = 0; j < c.N; ++j) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < c.K; ++k) { ref += a(i, k) * b(k, j); mag += std::fabs(a(i, k) * b(k, j)); }
        ref = 0.5 * ref + 2.0 * C[i * c.N + j];
        const double bound = gamma_k(c.K + 2) * (0.5 * mag + 2.0 * std::fabs(C[i * c.N + j])) + 1e-7;
        ASSERT_LE(std::fabs(out[i * c.N + j] - ref), bound) << "at (" << i << "," << j << ")";
      }
  }
}

// float64 loss L = sum(w_out * layer(x)) for finite differences.
TEST(Nn, LayerNormBackwardMatchesFiniteDifferences) {
  const int64_t n = 5, C = 13;
  auto x = randn(n * C, 4), g = randn(C, 5), be = randn(C, 6), dy = randn(n * C, 7);
  std::vector<float> y(n * C), mean(n), rstd(n), dx(n * C, 0.0f), dg(C, 0.0f), db(C, 0.0f);
  layernorm_fwd(x.data(), g.data(), be.data(), y.data(), mean.data(), rstd.data(), n, C);
  layernorm_bwd(x.data(), g.data(), mean.data(), rstd.data(), dy.data(), dx.data(), dg.data(), db.data(), n, C);
  auto f64 = [&](const std::vector<double>& xd, const std::vector<double>& gd, const std::vector<double>& bd) {
    double L = 0;
    for (int64_t i = 0; i < n; ++i) {
      double m = 0, v = 0;
      for (int64_t c = 0; c < C; ++c) m += xd[i * C + c];
      m /= C;
      for (int64_t c = 0; c < C; ++c) v += (xd[i * C + c] - m) * (xd[i * C + c] - m);
      v /= C;
      const double r = 1.0 / std::sqrt(v + 1e-5);
      for (int64_t c = 0; c < C; ++c) L += dy[i * C + c] * ((xd[i * C + c] - m) * r * gd[c] + bd[c]);
    }
    return L;
  };
  std::vector<double> xd(x.begin(), x.end()), gd(g.begin(), g.end()), bd(be.begin(), be.end());
  // Forward output against float64 (a few ulps of |y|).
  for (int64_t i = 0; i < n; ++i) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += xd[i * C + c];
    m /= C;
    for (int64_t c = 0; c < C; ++c) v += (xd[i * C + c] - m) * (xd[i * C + c] - m);
    const double r = 1.0 / std::sqrt(v / C + 1e-5);
    for (int64_t c = 0; c < C; ++c) {
      const double ref = (xd[i * C + c] - m) * r * gd[c] + bd[c];
      EXPECT_NEAR(y[i * C + c], ref, 16 * kU * (1 + std::fabs(ref) + std::fabs(gd[c]) * 4)) << i << "," << c;
    }
  }
  const double h = 1e-6;
  auto check = [&](std::vector<double>& p, const std::vector<float>& grad, const char* name) {
    for (size_t k = 0; k < p.size(); ++k) {
      const double s = p[k];
      p[k] = s + h; const double lp = f64(xd, gd, bd);
      p[k] = s - h; const double lm = f64(xd, gd, bd);
      p[k] = s;
      const double fd = (lp - lm) / (2 * h);
      // f32 gradient of an O(C)-term row sum: a few hundred ulps of the row's scale; FD error ~1e-8.
      EXPECT_NEAR(grad[k], fd, 2e-5 * (1 + std::fabs(fd))) << name << "[" << k << "]";
    }
  };
  check(xd, dx, "dx");
  check(gd, dg, "dgamma");
  check(bd, db, "dbeta");
}

TEST(Nn, GeluTanhFormAndGradient) {
  auto x = randn(1001, 8, 3.0);
  std::vector<float> y(x.size()), dx(x.size()), ones(x.size(), 1.0f);
  gelu_fwd(x.data(), y.data(), static_cast<int64_t>(x.size()));
  gelu_bwd(x.data(), ones.data(), dx.data(), static_cast<int64_t>(x.size()));
  for (size_t i = 0; i < x.size(); ++i) {
    const double ref = gelu_tanh(x[i]);
    EXPECT_NEAR(y[i], ref, 8 * kU * (1 + std::fabs(x[i]))) << "x=" << x[i];
    const double h = 1e-6, fd = (gelu_tanh(x[i] + h) - gelu_tanh(x[i] - h)) / (2 * h);
    EXPECT_NEAR(gelu_tanh_grad(x[i]), fd, 1e-8 * (1 + std::fabs(x[i]))) << "x=" << x[i];
    EXPECT_NEAR(dx[i], gelu_tanh_grad(x[i]), 16 * kU * (1 + std::fabs(x[i]))) << "x=" << x[i];
  }
  // The tanh form, not erf: at x = 1 they differ by ~1.6e-4.
  EXPECT_NEAR(gelu_tanh(1.0), 0.8411919906082768, 1e-15);
}

TEST(Nn, LinearBackwardMatchesReference) {
  const int64_t n = 7, in = 11, out = 5;
  auto x = randn(n * in, 9), w = randn(out * in, 10), b = randn(out, 11), dy = randn(n * out, 12);
  std::vector<float> y(n * out), dx(n * in), dw(out * in, 1.0f), db(out, 1.0f);
  linear_fwd(x.data(), w.data(), b.data(), y.data(), n, in, out);
  linear_bwd(x.data(), w.data(), dy.data(), dx.data(), dw.data(), db.data(), n, in, out);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t o = 0; o < out; ++o) {
      double ref = b[o], mag = std::fabs(b[o]);
      for (int64_t k = 0; k < in; ++k) { ref += double(x[i * in + k]) * w[o * in + k]; mag += std::fabs(double(x[i * in + k]) * w[o * in + k]); }
      EXPECT_NEAR(y[i * out + o], ref, gamma_k(in + 1) * mag + 1e-7);
    }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < in; ++k) {
      double ref = 0, mag = 0;
      for (int64_t o = 0; o < out; ++o) { ref += double(dy[i * out + o]) * w[o * in + k]; mag += std::fabs(double(dy[i * out + o]) * w[o * in + k]); }
      EXPECT_NEAR(dx[i * in + k], ref, gamma_k(out) * mag + 1e-7);
    }
  for (int64_t o = 0; o < out; ++o) {
    double rb = 1.0;
    for (int64_t i = 0; i < n; ++i) rb += dy[i * out + o];
    EXPECT_NEAR(db[o], rb, gamma_k(n + 1) * (n * 4 + 1));  // accumulated onto the initial 1.0
    for (int64_t k = 0; k < in; ++k) {
      double ref = 1.0, mag = 1.0;
      for (int64_t i = 0; i < n; ++i) { ref += double(dy[i * out + o]) * x[i * in + k]; mag += std::fabs(double(dy[i * out + o]) * x[i * in + k]); }
      EXPECT_NEAR(dw[o * in + k], ref, gamma_k(n + 1) * mag + 1e-7);
    }
  }
}

TEST(Nn, EmbeddingScatterAddsRepeatedIds) {
  const int64_t T = 3, n = 6, C = 4, V = 5;
  const std::vector<int32_t> ids = {1, 1, 4, 0, 1, 2};
  auto table = randn(V * C, 13), pos = randn(T * C, 14), dout = randn(n * C, 15);
  std::vector<float> out(n * C), dt(V * C, 0.0f), dp(T * C, 0.0f);
  embedding_fwd(ids.data(), table.data(), pos.data(), out.data(), n, T, C);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < C; ++c) EXPECT_EQ(out[i * C + c], table[ids[i] * C + c] + pos[(i % T) * C + c]);
  embedding_bwd(ids.data(), dout.data(), dt.data(), dp.data(), n, T, C);
  for (int64_t c = 0; c < C; ++c) {
    EXPECT_FLOAT_EQ(dt[1 * C + c], dout[0 * C + c] + dout[1 * C + c] + dout[4 * C + c]);
    EXPECT_EQ(dt[3 * C + c], 0.0f);
    EXPECT_FLOAT_EQ(dp[1 * C + c], dout[1 * C + c] + dout[4 * C + c]);
  }
}

TEST(Nn, SoftmaxCrossEntropyAndGradient) {
  const int64_t n = 4, V = 29;
  auto logits = randn(n * V, 16, 4.0);
  const std::vector<int32_t> tg = {3, 0, -1, 28};
  std::vector<float> probs(n * V), loss(n), dl(n * V);
  EXPECT_EQ(softmax_cross_entropy_fwd(logits.data(), tg.data(), probs.data(), loss.data(), n, V), 3);
  EXPECT_EQ(loss[2], 0.0f);
  const std::vector<float> dloss = {0.5f, 1.0f, 1.0f, -2.0f};
  softmax_cross_entropy_bwd(probs.data(), tg.data(), dloss.data(), dl.data(), n, V);
  for (int64_t i = 0; i < n; ++i) {
    if (tg[i] < 0) {
      for (int64_t j = 0; j < V; ++j) EXPECT_EQ(dl[i * V + j], 0.0f);
      continue;
    }
    auto lse = [&](std::vector<double> l) {
      double m = -1e300, s = 0;
      for (double v : l) m = std::max(m, v);
      for (double v : l) s += std::exp(v - m);
      return std::log(s) + m;
    };
    std::vector<double> l(logits.begin() + i * V, logits.begin() + (i + 1) * V);
    const double ref = lse(l) - l[tg[i]];
    EXPECT_NEAR(loss[i], ref, 32 * kU * (1 + std::fabs(ref) + 16));
    for (int64_t j = 0; j < V; ++j) {
      const double h = 1e-6, s = l[j];
      l[j] = s + h; const double lp = lse(l) - l[tg[i]];
      l[j] = s - h; const double lm = lse(l) - l[tg[i]];
      l[j] = s;
      EXPECT_NEAR(dl[i * V + j], dloss[i] * (lp - lm) / (2 * h), 1e-6) << "row " << i << " col " << j;
    }
  }
}

}  // namespace
}  // namespace bna::nn
