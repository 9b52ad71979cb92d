// Attention of one query row (G query heads) over an explicit key list of the KV cache
// (cached_attention.hpp). Plain loops written so that GCC vectorises them at -O3 -march=x86-64-v3:
// the dot product keeps 16 independent partial sums (two AVX2 FMA chains; a single running sum
// would not vectorise without reassociation), the V update is an axpy over dh.
#include "model/cached_attention.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace bna::model::detail {
namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t d = 0;
  for (; d + kLanes <= n; d += kLanes)
    for (int u = 0; u < kLanes; ++u) acc[u] += a[d + u] * b[d + u];
  float s = 0.0f;
  for (; d < n; ++d) s += a[d] * b[d];
  for (int u = 0; u < kLanes; ++u) s += acc[u];
  return s;
}

inline void axpy(float w, const float* x, float* y, int64_t n) {
  for (int64_t d = 0; d < n; ++d) y[d] += w * x[d];
}

}  // namespace

void attend_cached_row(const float* q, int64_t q_stride, int64_t G, const float* k, const float* v, int64_t dh,
                       const int32_t* keys, int64_t n, float scale, float* scores, float* out, int64_t out_stride) {
  for (int64_t g = 0; g < G; ++g) std::memset(out + g * out_stride, 0, static_cast<size_t>(dh) * sizeof(float));
  if (n == 0) return;
  // Scores [G, n]: each K row is read once for the whole group.
  for (int64_t c = 0; c < n; ++c) {
    const float* kr = k + (keys ? keys[c] : c) * dh;
    for (int64_t g = 0; g < G; ++g) scores[g * n + c] = scale * dot(q + g * q_stride, kr, dh);
  }
  for (int64_t g = 0; g < G; ++g) {
    float* s = scores + g * n;
    const float m = *std::max_element(s, s + n);
    float sum = 0.0f;
    for (int64_t c = 0; c < n; ++c) {
      s[c] = std::exp(s[c] - m);
      sum += s[c];
    }
    const float inv = 1.0f / sum;  // sum >= 1 (the maximum contributes e^0)
    for (int64_t c = 0; c < n; ++c) s[c] *= inv;
  }
  for (int64_t c = 0; c < n; ++c) {
    const float* vr = v + (keys ? keys[c] : c) * dh;
    for (int64_t g = 0; g < G; ++g) axpy(scores[g * n + c], vr, out + g * out_stride, dh);
  }
}

}  // namespace bna::model::detail
