// The shared CPU forward engine: online-softmax attention of a tile of query rows against key chunks.
// Every forward path (dense, gather, streams, permute-window, block-sparse) describes its work as
// query rows (row pointers + absolute positions) and key lists (positions into one KV head), and
// calls TileAttn. Decisions a reader must know:
//  * Keys are handled in chunks of kBk: the chunk's K rows are packed transposed (Kt [dh, kBk]) so the
//    score micro-kernel is broadcast-FMA over key columns (4 query rows x 16 keys in registers) and
//    the PV micro-kernel is FMA over dh columns; both need dh % 16 == 0, other dh use scalar loops.
//  * The caller masks and biases scores through a callback on the scaled chunk S [nq, kBk]; a masked
//    score is -inf and gets exactly zero weight. A row whose keys are all masked keeps l = 0 and ends
//    with o = 0, lse = -inf (never NaN).
//  * Feeding disjoint key sets one after another into the same running (m, l, acc) is exactly the
//    LSE merge of their separate softmaxes (design-notes §2), so streams need no separate merge pass.
#pragma once

#include <immintrin.h>
#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>

namespace bna::cpu {

inline constexpr int kBq = 64;   // query rows per tile (multiple of 4)
inline constexpr int kBk = 64;   // keys per chunk (multiple of 16)
inline constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// exp for 8 floats: Cephes-style range reduction and degree-6 polynomial (rel. error ~2 ulp);
// inputs below -87.3 (including -inf) give exactly 0, so masked scores carry no weight.
inline __m256 exp256(__m256 x) {
  const __m256 zero_mask = _mm256_cmp_ps(x, _mm256_set1_ps(-87.3f), _CMP_LT_OQ);
  x = _mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f));
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  __m256 fx = _mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f));
  fx = _mm256_floor_ps(fx);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  const __m256 z = _mm256_mul_ps(x, x);
  __m256 y = _mm256_set1_ps(1.9875691500E-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073E-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894E-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459E-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201E-1f));
  y = _mm256_fmadd_ps(y, z, x);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  __m256i e = _mm256_cvttps_epi32(fx);
  e = _mm256_add_epi32(e, _mm256_set1_epi32(127));
  e = _mm256_slli_epi32(e, 23);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(e));
  return _mm256_andnot_ps(zero_mask, y);
}

inline float hsum256(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);
  lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
  lo = _mm_add_ss(lo, _mm_shuffle_ps(lo, lo, 1));
  return _mm_cvtss_f32(lo);
}

// Per-thread scratch of TileAttn, in floats. extra_i64 reserves room for caller key lists.
inline size_t tile_scratch_floats(int64_t dh, int64_t extra_i64) {
  const size_t f = static_cast<size_t>(dh) * kBk + kBq * kBk + kBq * static_cast<size_t>(dh) + 2 * kBq;
  const size_t ptrs = 2 * kBk + kBq * 3;  // K/V row pointers, query row pointers, positions (8 bytes)
  return (f + 2 * (ptrs + static_cast<size_t>(extra_i64)) + 16 + 15) & ~size_t(15);
}

struct ScratchArena {
  float* base = nullptr;
  size_t per_thread = 0;  // floats, multiple of 16 (64-byte aligned slices when base is)
  float* for_thread() const { return base + per_thread * static_cast<size_t>(omp_get_thread_num()); }
};

class TileAttn {
 public:
  // scratch: tile_scratch_floats(dh, extra) floats; extra_i64() gives the caller's int64 area.
  TileAttn(float* scratch, int64_t dh, float scale, int64_t extra_i64 = 0) : dh_(dh), scale_(scale) {
    kt_ = scratch;
    s_ = kt_ + dh * kBk;
    acc_ = s_ + kBq * kBk;
    m_ = acc_ + kBq * dh;
    l_ = m_ + kBq;
    uintptr_t p = reinterpret_cast<uintptr_t>(l_ + kBq);
    p = (p + 7) & ~uintptr_t(7);
    kptr_ = reinterpret_cast<const float**>(p);
    vptr_ = kptr_ + kBk;
    qptr_ = vptr_ + kBk;
    qpos_ = reinterpret_cast<int64_t*>(qptr_ + kBq);
    extra_ = qpos_ + kBq;
    (void)extra_i64;
    vec_ = dh % 16 == 0;
  }
  int64_t* extra_i64() { return extra_; }

  // Start a tile of nq <= kBq query rows; q[r] points at row r (dh floats), pos[r] its position.
  void begin(int nq, const float* const* q, const int64_t* pos) {
    nq_ = nq;
    for (int r = 0; r < nq; ++r) { qptr_[r] = q[r]; qpos_[r] = pos[r]; }
    for (int r = nq; r < round4(nq); ++r) { qptr_[r] = q[0]; qpos_[r] = pos[0]; }
    for (int r = 0; r < round4(nq); ++r) { m_[r] = kNegInf; l_[r] = 0.0f; }
    std::memset(acc_, 0, sizeof(float) * round4(nq) * dh_);
  }
  int nq() const { return nq_; }
  int64_t qpos(int r) const { return qpos_[r]; }

  // Attend keys kpos[0..nk) of one KV head (K, V: [Tk, dh] of that head). fix(j0, n, S, ldS) may set
  // S[r*ldS + j] (scaled scores of keys j0..j0+n) to -inf or add a bias, for r < nq.
  template <class Fix>
  void keys(const float* K, const float* V, const int64_t* kpos, int64_t nk, Fix&& fix) {
    for (int64_t j0 = 0; j0 < nk; j0 += kBk) {
      const int n = static_cast<int>(nk - j0 < kBk ? nk - j0 : kBk);
      for (int j = 0; j < n; ++j) {
        kptr_[j] = K + kpos[j0 + j] * dh_;
        vptr_[j] = V + kpos[j0 + j] * dh_;
      }
      chunk(n, [&](float* S, int ld) { fix(j0, n, S, ld); });
    }
  }
  // Contiguous keys [k0, k0 + nk) (stride 1 row) or strided (row k0 + stride*j): no position list.
  template <class Fix>
  void key_range(const float* K, const float* V, int64_t k0, int64_t stride, int64_t nk, Fix&& fix) {
    for (int64_t j0 = 0; j0 < nk; j0 += kBk) {
      const int n = static_cast<int>(nk - j0 < kBk ? nk - j0 : kBk);
      for (int j = 0; j < n; ++j) {
        const int64_t row = k0 + (j0 + j) * stride;
        kptr_[j] = K + row * dh_;
        vptr_[j] = V + row * dh_;
      }
      chunk(n, [&](float* S, int ld) { fix(j0, n, S, ld); });
    }
  }

  // Row r alone attends n explicit keys (positions kpos, already causally filtered) with per-key
  // additive bias kbias (nullptr = none). For the few scattered keys of a row (cycle extras).
  void row_keys(int r, const float* K, const float* V, const int64_t* kpos, const float* kbias, int64_t n) {
    const float* q = qptr_[r];
    float* a = acc_ + r * dh_;
    for (int64_t c0 = 0; c0 < n; c0 += 16) {
      const int cn = static_cast<int>(n - c0 < 16 ? n - c0 : 16);
      float s[16];
      float mx = kNegInf;
      for (int c = 0; c < cn; ++c) {
        const float* k = K + kpos[c0 + c] * dh_;
        s[c] = dot(q, k) * scale_ + (kbias ? kbias[c0 + c] : 0.0f);
        mx = s[c] > mx ? s[c] : mx;
      }
      const float m_new = mx > m_[r] ? mx : m_[r];
      if (m_new == kNegInf) continue;
      const float corr = m_[r] == kNegInf ? 0.0f : std::exp(m_[r] - m_new);
      if (corr != 1.0f)
        for (int64_t d = 0; d < dh_; ++d) a[d] *= corr;
      float lsum = 0.0f;
      for (int c = 0; c < cn; ++c) {
        const float pw = s[c] == kNegInf ? 0.0f : std::exp(s[c] - m_new);
        lsum += pw;
        if (pw == 0.0f) continue;
        const float* v = V + kpos[c0 + c] * dh_;
        for (int64_t d = 0; d < dh_; ++d) a[d] += pw * v[d];
      }
      l_[r] = l_[r] * corr + lsum;
      m_[r] = m_new;
    }
  }

  // Final o = acc / l and lse = m + log(l); rows with l = 0 get o = 0, lse = -inf.
  void finish(float* const* o, float* const* lse) const {
    for (int r = 0; r < nq_; ++r) {
      float* dst = o[r];
      if (l_[r] > 0.0f) {
        const float inv = 1.0f / l_[r];
        const float* a = acc_ + r * dh_;
        for (int64_t d = 0; d < dh_; ++d) dst[d] = a[d] * inv;
        if (lse[r]) *lse[r] = m_[r] + std::log(l_[r]);
      } else {
        std::memset(dst, 0, sizeof(float) * dh_);
        if (lse[r]) *lse[r] = kNegInf;
      }
    }
  }
  // Raw state for callers that combine several tiles (permute-window average).
  float m(int r) const { return m_[r]; }
  float l(int r) const { return l_[r]; }
  const float* acc(int r) const { return acc_ + r * dh_; }

 private:
  static int round4(int n) { return (n + 3) & ~3; }

  float dot(const float* a, const float* b) const {
    int64_t d = 0;
    float tail = 0.0f;
    if (dh_ >= 8) {
      __m256 x = _mm256_setzero_ps();
      for (; d + 8 <= dh_; d += 8) x = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), x);
      tail = hsum256(x);
    }
    for (; d < dh_; ++d) tail += a[d] * b[d];
    return tail;
  }

  template <class Fix>
  void chunk(int n, Fix&& fix) {
    const int nqp = round4(nq_);
    const int ncols = (n + 15) & ~15;
    if (vec_) {
      // Pack K transposed; pad columns to ncols with zeros so padded scores are finite (then masked).
      for (int j = 0; j < n; ++j) {
        const float* kr = kptr_[j];
        for (int64_t d = 0; d < dh_; ++d) kt_[d * kBk + j] = kr[d];
      }
      for (int j = n; j < ncols; ++j)
        for (int64_t d = 0; d < dh_; ++d) kt_[d * kBk + j] = 0.0f;
      scores_vec(nqp, ncols);
    } else {
      for (int r = 0; r < nqp; ++r)
        for (int j = 0; j < n; ++j) {
          float s = 0.0f;
          const float* q = qptr_[r];
          const float* k = kptr_[j];
          for (int64_t d = 0; d < dh_; ++d) s += q[d] * k[d];
          s_[r * kBk + j] = s * scale_;
        }
    }
    fix(s_, kBk);
    softmax_update(n);
    pv(n, nqp);
  }

  void scores_vec(int nqp, int ncols) {
    const __m256 sc = _mm256_set1_ps(scale_);
    for (int r0 = 0; r0 < nqp; r0 += 4) {
      const float* q0 = qptr_[r0];
      const float* q1 = qptr_[r0 + 1];
      const float* q2 = qptr_[r0 + 2];
      const float* q3 = qptr_[r0 + 3];
      for (int j0 = 0; j0 < ncols; j0 += 16) {
        __m256 a00 = _mm256_setzero_ps(), a01 = _mm256_setzero_ps();
        __m256 a10 = _mm256_setzero_ps(), a11 = _mm256_setzero_ps();
        __m256 a20 = _mm256_setzero_ps(), a21 = _mm256_setzero_ps();
        __m256 a30 = _mm256_setzero_ps(), a31 = _mm256_setzero_ps();
        const float* kt = kt_ + j0;
        for (int64_t d = 0; d < dh_; ++d) {
          const __m256 k0 = _mm256_loadu_ps(kt + d * kBk);
          const __m256 k1 = _mm256_loadu_ps(kt + d * kBk + 8);
          __m256 b = _mm256_broadcast_ss(q0 + d);
          a00 = _mm256_fmadd_ps(b, k0, a00); a01 = _mm256_fmadd_ps(b, k1, a01);
          b = _mm256_broadcast_ss(q1 + d);
          a10 = _mm256_fmadd_ps(b, k0, a10); a11 = _mm256_fmadd_ps(b, k1, a11);
          b = _mm256_broadcast_ss(q2 + d);
          a20 = _mm256_fmadd_ps(b, k0, a20); a21 = _mm256_fmadd_ps(b, k1, a21);
          b = _mm256_broadcast_ss(q3 + d);
          a30 = _mm256_fmadd_ps(b, k0, a30); a31 = _mm256_fmadd_ps(b, k1, a31);
        }
        float* s = s_ + r0 * kBk + j0;
        _mm256_storeu_ps(s, _mm256_mul_ps(a00, sc)); _mm256_storeu_ps(s + 8, _mm256_mul_ps(a01, sc));
        s += kBk;
        _mm256_storeu_ps(s, _mm256_mul_ps(a10, sc)); _mm256_storeu_ps(s + 8, _mm256_mul_ps(a11, sc));
        s += kBk;
        _mm256_storeu_ps(s, _mm256_mul_ps(a20, sc)); _mm256_storeu_ps(s + 8, _mm256_mul_ps(a21, sc));
        s += kBk;
        _mm256_storeu_ps(s, _mm256_mul_ps(a30, sc)); _mm256_storeu_ps(s + 8, _mm256_mul_ps(a31, sc));
      }
    }
  }

  // Online softmax: rescale acc by exp(m_old - m_new), turn S into probabilities P in place.
  void softmax_update(int n) {
    for (int r = 0; r < nq_; ++r) {
      float* s = s_ + r * kBk;
      float mx = kNegInf;
      for (int j = 0; j < n; ++j) mx = s[j] > mx ? s[j] : mx;
      const float m_new = mx > m_[r] ? mx : m_[r];
      if (m_new == kNegInf) {  // nothing allowed yet: zero weights, state unchanged
        std::memset(s, 0, sizeof(float) * kBk);
        continue;
      }
      const float corr = m_[r] == kNegInf ? 0.0f : std::exp(m_[r] - m_new);
      const __m256 mv = _mm256_set1_ps(m_new);
      __m256 sum = _mm256_setzero_ps();
      int j = 0;
      for (; j + 8 <= n; j += 8) {
        const __m256 p = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, p);
        sum = _mm256_add_ps(sum, p);
      }
      float tail = 0.0f;
      for (; j < n; ++j) {
        const float p = s[j] == kNegInf ? 0.0f : std::exp(s[j] - m_new);
        s[j] = p;
        tail += p;
      }
      for (; j < kBk; ++j) s[j] = 0.0f;
      l_[r] = l_[r] * corr + hsum256(sum) + tail;
      if (corr != 1.0f) {
        float* a = acc_ + r * dh_;
        for (int64_t d = 0; d < dh_; ++d) a[d] *= corr;
      }
      m_[r] = m_new;
    }
    for (int r = nq_; r < round4(nq_); ++r) std::memset(s_ + r * kBk, 0, sizeof(float) * kBk);
  }

  void pv(int n, int nqp) {
    if (!vec_) {
      for (int r = 0; r < nq_; ++r) {
        float* a = acc_ + r * dh_;
        const float* p = s_ + r * kBk;
        for (int j = 0; j < n; ++j) {
          if (p[j] == 0.0f) continue;
          const float* v = vptr_[j];
          for (int64_t d = 0; d < dh_; ++d) a[d] += p[j] * v[d];
        }
      }
      return;
    }
    for (int r0 = 0; r0 < nqp; r0 += 4) {
      const float* p0 = s_ + r0 * kBk;
      float* a0 = acc_ + r0 * dh_;
      for (int64_t c = 0; c < dh_; c += 16) {
        __m256 x00 = _mm256_loadu_ps(a0 + c), x01 = _mm256_loadu_ps(a0 + c + 8);
        __m256 x10 = _mm256_loadu_ps(a0 + dh_ + c), x11 = _mm256_loadu_ps(a0 + dh_ + c + 8);
        __m256 x20 = _mm256_loadu_ps(a0 + 2 * dh_ + c), x21 = _mm256_loadu_ps(a0 + 2 * dh_ + c + 8);
        __m256 x30 = _mm256_loadu_ps(a0 + 3 * dh_ + c), x31 = _mm256_loadu_ps(a0 + 3 * dh_ + c + 8);
        for (int j = 0; j < n; ++j) {
          const float* v = vptr_[j] + c;
          const __m256 v0 = _mm256_loadu_ps(v), v1 = _mm256_loadu_ps(v + 8);
          __m256 b = _mm256_broadcast_ss(p0 + j);
          x00 = _mm256_fmadd_ps(b, v0, x00); x01 = _mm256_fmadd_ps(b, v1, x01);
          b = _mm256_broadcast_ss(p0 + kBk + j);
          x10 = _mm256_fmadd_ps(b, v0, x10); x11 = _mm256_fmadd_ps(b, v1, x11);
          b = _mm256_broadcast_ss(p0 + 2 * kBk + j);
          x20 = _mm256_fmadd_ps(b, v0, x20); x21 = _mm256_fmadd_ps(b, v1, x21);
          b = _mm256_broadcast_ss(p0 + 3 * kBk + j);
          x30 = _mm256_fmadd_ps(b, v0, x30); x31 = _mm256_fmadd_ps(b, v1, x31);
        }
        _mm256_storeu_ps(a0 + c, x00); _mm256_storeu_ps(a0 + c + 8, x01);
        _mm256_storeu_ps(a0 + dh_ + c, x10); _mm256_storeu_ps(a0 + dh_ + c + 8, x11);
        _mm256_storeu_ps(a0 + 2 * dh_ + c, x20); _mm256_storeu_ps(a0 + 2 * dh_ + c + 8, x21);
        _mm256_storeu_ps(a0 + 3 * dh_ + c, x30); _mm256_storeu_ps(a0 + 3 * dh_ + c + 8, x31);
      }
    }
  }

  int64_t dh_;
  float scale_;
  bool vec_;
  int nq_ = 0;
  float* kt_;
  float* s_;
  float* acc_;
  float* m_;
  float* l_;
  const float** kptr_;
  const float** vptr_;
  const float** qptr_;
  int64_t* qpos_;
  int64_t* extra_;
};

}  // namespace bna::cpu
