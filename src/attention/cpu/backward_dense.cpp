// Backward of dense causal attention: query at position pos attends every key j <= pos (j < Tk).
// Flash-style over query tiles of kBqBwd rows, but with GEMMs instead of a per-pair loop: for a tile
// Q [nq, dh] and its causal key prefix K [nk, dh] (nk = last position of the tile + 1),
//   S = Q K^T, dP = dO V^T (OpenBLAS), then row-wise P = exp(scale*S - lse) (0 past the diagonal),
//   dS = P*(dP - D) with D = rowsum(dO*O), then dQ = scale dS K, dK += scale dS^T Q, dV += P^T dO.
// Tiles run in sequence so dK/dV accumulate without races; the parallelism is inside OpenBLAS and in
// the elementwise pass (OpenMP over rows). Scratch: two [kBqBwd, Tk] f32 buffers, O(T) memory.
// Keys are untyped: the forward adds one WINDOW bias to every score of a row. That shift is part of
// the forward's lse, so it is added back when P is recomputed; it cancels in the softmax, so the
// exact d_edge_bias is 0 and is written as zeros.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "attention/cpu/backward.hpp"
#include "attention/cpu/backward_core.hpp"
#include "bna/graph.hpp"

namespace bna::cpu {
namespace {
constexpr int64_t kBqBwd = 128;
}  // namespace

void dense_bwd(const GradProblem& gp) {
  const Problem& p = gp.fwd;
  BNA_ASSERT(p.Hkv >= 1 && p.Hq % p.Hkv == 0 && p.dh >= 1);
  const int64_t G = p.Hq / p.Hkv, dh = p.dh, Tq = p.Tq, Tk = p.Tk;
  const float scale = p.scale;
  const float shift = p.edge_bias != nullptr ? p.edge_bias[static_cast<int>(graph::EdgeType::kWindow)] : 0.0f;
  std::fill(gp.dk, gp.dk + p.Hkv * Tk * dh, 0.0f);
  std::fill(gp.dv, gp.dv + p.Hkv * Tk * dh, 0.0f);
  if (gp.d_edge_bias != nullptr) std::fill(gp.d_edge_bias, gp.d_edge_bias + 5, 0.0f);
  std::vector<float> S(static_cast<size_t>(kBqBwd * Tk)), dP(static_cast<size_t>(kBqBwd * Tk));
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();

  for (int64_t hq = 0; hq < p.Hq; ++hq) {
    const int64_t hkv = hq / G;
    const float* K = p.k + hkv * Tk * dh;
    const float* V = p.v + hkv * Tk * dh;
    float* dK = gp.dk + hkv * Tk * dh;
    float* dV = gp.dv + hkv * Tk * dh;
    for (int64_t i0 = 0; i0 < Tq; i0 += kBqBwd) {
      const int64_t nq = std::min(kBqBwd, Tq - i0);
      const int64_t nk = std::min(Tk, p.q_offset + i0 + nq);
      const int64_t row0 = hq * Tq + i0;
      const float* Q = p.q + row0 * dh;
      const float* dO = gp.dout + row0 * dh;
      float* dQ = gp.dq + row0 * dh;
      const int m = static_cast<int>(nq), n = static_cast<int>(nk), d = static_cast<int>(dh);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0f, Q, d, K, d, 0.0f, S.data(), n);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, d, 1.0f, dO, d, V, d, 0.0f, dP.data(), n);
#pragma omp parallel for schedule(static)
      for (int64_t r = 0; r < nq; ++r) {
        const int64_t pos = p.q_offset + i0 + r;
        const float lse = p.lse[row0 + r];
        float* s = S.data() + r * nk;
        float* dp = dP.data() + r * nk;
        const int64_t last = lse > kNegInf ? std::min(pos, nk - 1) : -1;
        const float D = bwd_detail::dot(dO + r * dh, p.o + (row0 + r) * dh, dh);
        for (int64_t j = 0; j <= last; ++j) {
          const float pj = std::exp(scale * s[j] + shift - lse);
          s[j] = pj;
          dp[j] = pj * (dp[j] - D);
        }
        for (int64_t j = last + 1; j < nk; ++j) s[j] = dp[j] = 0.0f;
      }
      // dP now holds dS and S holds P.
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, d, n, scale, dP.data(), n, K, d, 0.0f, dQ, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, m, scale, dP.data(), n, Q, d, 1.0f, dK, d);
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, n, d, m, 1.0f, S.data(), n, dO, d, 1.0f, dV, d);
    }
  }
}

}  // namespace bna::cpu
