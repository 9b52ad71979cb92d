// QTile: the register-blocked CPU forward engine with queries in SIMD lanes. A tile holds up to kQt
// query rows; everything per query (running max m, sum l, the accumulator) lives "transposed", one
// query per lane, so the online softmax is pure vertical AVX2 (no horizontal reductions) and the
// per-row rescale exp(m_old - m_new) is one vector multiply per dh row. Decisions a reader must know:
//  * Q is packed once per tile as Qt [dh, kQt], pre-multiplied by the scale. Keys are never packed:
//    the score micro-kernel broadcasts K[key, d] straight from the K rows (4 keys x 16 queries = 8
//    FMA accumulators), so strided landmarks (K[0::S]) and permuted keys cost no copy.
//  * Scores of a chunk of <= kKc keys land in St [kKc, kQt] (key-major); the PV micro-kernel
//    broadcasts V[key, c] and FMAs the probability row of 16 queries into acc^T [dh, kQt] (4 dh rows
//    x 16 queries in registers). Both micro-kernels take any dh (no dh % 16 requirement).
//  * A chunk covers a lane range [r0, r1) (multiples of 16), so banded callers (streams band,
//    causal diagonals, permute-window) compute only the 16-query groups whose keys overlap.
//  * Masks and edge bias go through a callback on the chunk's scores (QScores), vectorised over lanes
//    by integer position differences. A masked score is -inf, exp256 maps it to exactly 0, and a lane
//    whose keys are all masked keeps m = -inf, l = 0 and ends with o = 0, lse = -inf (never NaN).
//  * A few scattered keys per row (streams cycle extras) go through row_extras into a separate
//    row-major (m, l, acc) per row, merged with the main state by the exact LSE rule in finish().
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "attention/cpu/kernels.hpp"
#include "attention/cpu/tile.hpp"

namespace bna::cpu {

inline constexpr int kQt = 64;  // queries per tile (multiple of 16)
inline constexpr int kKc = 64;  // keys per chunk

// Per-thread scratch of a QTile in floats, plus extra_i64 caller int64 slots. 64-byte aligned base.
inline size_t qtile_scratch_floats(int64_t dh, int64_t extra_i64) {
  const size_t d = static_cast<size_t>(dh);
  const size_t f = 2 * d * kQt + static_cast<size_t>(kKc) * kQt + kQt * d + 8 * kQt;
  const size_t ptrs = 2 * kKc + kQt;  // K/V row pointers, query row pointers (8 bytes each)
  return (f + 2 * (ptrs + static_cast<size_t>(extra_i64)) + 16 + 15) & ~size_t(15);
}

// The scores of one chunk as the mask/bias callback sees them: key j (< n), lanes [r0, r1).
struct QScores {
  float* s;  // s[j * kQt + r]
  int n, r0, r1;
  const int32_t* qpos;  // [kQt] query positions
  const int32_t* qaux;  // [kQt] second query coordinate (permute-window rank) or nullptr

  float& at(int j, int r) { return s[j * kQt + r]; }
  // Key j stays only in lanes where lo <= q - kpos <= hi (q = qpos, or qaux when aux); else -inf.
  void keep_diff(int j, int32_t kpos, int32_t lo, int32_t hi, bool aux = false) {
    const int32_t* q = aux ? qaux : qpos;
    const __m256i kv = _mm256_set1_epi32(kpos), lov = _mm256_set1_epi32(lo), hiv = _mm256_set1_epi32(hi);
    const __m256 ninf = _mm256_set1_ps(kNegInf);
    float* row = s + j * kQt;
    for (int r = r0; r < r1; r += 8) {
      const __m256i dv = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + r)), kv);
      const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(lov, dv), _mm256_cmpgt_epi32(dv, hiv));
      _mm256_storeu_ps(row + r, _mm256_blendv_ps(_mm256_loadu_ps(row + r), ninf, _mm256_castsi256_ps(bad)));
    }
  }
  // Adds b to key j in every lane.
  void add(int j, float b) {
    const __m256 bv = _mm256_set1_ps(b);
    float* row = s + j * kQt;
    for (int r = r0; r < r1; r += 8) _mm256_storeu_ps(row + r, _mm256_add_ps(_mm256_loadu_ps(row + r), bv));
  }
  // Adds b to key j in lanes where lo <= q - kpos <= hi.
  void add_diff(int j, int32_t kpos, int32_t lo, int32_t hi, float b, bool aux = false) {
    const int32_t* q = aux ? qaux : qpos;
    const __m256i kv = _mm256_set1_epi32(kpos), lov = _mm256_set1_epi32(lo), hiv = _mm256_set1_epi32(hi);
    const __m256 bv = _mm256_set1_ps(b);
    float* row = s + j * kQt;
    for (int r = r0; r < r1; r += 8) {
      const __m256i dv = _mm256_sub_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + r)), kv);
      const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(lov, dv), _mm256_cmpgt_epi32(dv, hiv));
      const __m256 add = _mm256_andnot_ps(_mm256_castsi256_ps(bad), bv);
      _mm256_storeu_ps(row + r, _mm256_add_ps(_mm256_loadu_ps(row + r), add));
    }
  }
};

class QTile {
 public:
  QTile(float* scratch, int64_t dh, float scale) : dh_(dh), scale_(scale) {
    qt_ = scratch;
    acc_ = qt_ + dh * kQt;
    st_ = acc_ + dh * kQt;
    eacc_ = st_ + kKc * kQt;
    m_ = eacc_ + kQt * dh;
    l_ = m_ + kQt;
    em_ = l_ + kQt;
    el_ = em_ + kQt;
    qpos_ = reinterpret_cast<int32_t*>(el_ + kQt);
    qaux_ = qpos_ + kQt;
    uintptr_t p = reinterpret_cast<uintptr_t>(qaux_ + 2 * kQt);
    p = (p + 7) & ~uintptr_t(7);
    kptr_ = reinterpret_cast<const float**>(p);
    vptr_ = kptr_ + kKc;
    qptr_ = vptr_ + kKc;
    extra_ = reinterpret_cast<int64_t*>(qptr_ + kQt);
  }
  int64_t* extra_i64() { return extra_; }
  int nq() const { return nq_; }
  int lanes() const { return nqp_; }  // nq rounded up to 16
  int32_t qpos(int r) const { return qpos_[r]; }

  // Start a tile of nq <= kQt rows: q[r] -> dh floats, pos[r] its absolute position, aux[r] an optional
  // second coordinate for masks (nullptr: none). Padding lanes copy row 0 and are never written out.
  void begin(int nq, const float* const* q, const int64_t* pos, const int64_t* aux = nullptr) {
    nq_ = nq;
    nqp_ = (nq + 15) & ~15;
    for (int r = 0; r < nqp_; ++r) {
      const int rr = r < nq ? r : 0;
      qptr_[r] = q[rr];
      qpos_[r] = static_cast<int32_t>(pos[rr]);
      qaux_[r] = aux ? static_cast<int32_t>(aux[rr]) : 0;
    }
    // Qt = scale * Q^T: 8 rows x 8 dh at a time through an 8x8 register transpose, the rest scalar.
    const __m256 sv = _mm256_set1_ps(scale_);
    const int64_t d8 = dh_ & ~int64_t(7);
    int r8 = 0;
    for (; r8 + 8 <= nq; r8 += 8) {
      for (int64_t d0 = 0; d0 < d8; d0 += 8) {
        __m256 x[8];
        for (int i = 0; i < 8; ++i) x[i] = _mm256_mul_ps(_mm256_loadu_ps(q[r8 + i] + d0), sv);
        transpose8(x);
        for (int i = 0; i < 8; ++i) _mm256_storeu_ps(qt_ + (d0 + i) * kQt + r8, x[i]);
      }
      for (int i = 0; i < 8; ++i)
        for (int64_t d = d8; d < dh_; ++d) qt_[d * kQt + r8 + i] = q[r8 + i][d] * scale_;
    }
    for (int r = r8; r < nq; ++r)
      for (int64_t d = 0; d < dh_; ++d) qt_[d * kQt + r] = q[r][d] * scale_;
    for (int64_t d = 0; d < dh_; ++d)
      for (int r = nq; r < nqp_; ++r) qt_[d * kQt + r] = 0.0f;
    std::memset(acc_, 0, sizeof(float) * dh_ * kQt);
    for (int r = 0; r < kQt; ++r) { m_[r] = kNegInf; l_[r] = 0.0f; em_[r] = kNegInf; el_[r] = 0.0f; }
  }

  // Keys kp[j] / vp[j] (dh floats each), j < n <= kKc, for lanes [r0, r1) (r0 % 16 == 0; r1 is rounded
  // up to 16 and clipped to lanes()). fix(QScores&) masks or biases the scaled scores.
  template <class Fix>
  void chunk(const float* const* kp, const float* const* vp, int n, int r0, int r1, Fix&& fix) {
    if (n <= 0) return;
    r1 = (r1 + 15) & ~15;
    if (r1 > nqp_) r1 = nqp_;
    if (r0 >= r1) return;
    scores(kp, n, r0, r1);
    QScores sc{st_, n, r0, r1, qpos_, qaux_};
    fix(sc);
    softmax(n, r0, r1);
    pv(vp, n, r0, r1);
  }
  // Rows k0 + stride*j of K/V ([Tk, dh] of one head), j < nk, in chunks of kKc; fix(QScores&, j0).
  template <class Fix>
  void key_rows(const float* K, const float* V, int64_t k0, int64_t stride, int64_t nk, int r0, int r1, Fix&& fix) {
    for (int64_t j0 = 0; j0 < nk; j0 += kKc) {
      const int n = static_cast<int>(nk - j0 < kKc ? nk - j0 : kKc);
      for (int j = 0; j < n; ++j) {
        const int64_t row = k0 + (j0 + j) * stride;
        kptr_[j] = K + row * dh_;
        vptr_[j] = V + row * dh_;
      }
      chunk(kptr_, vptr_, n, r0, r1, [&](QScores& sc) { fix(sc, j0); });
    }
  }
  // Explicit key rows kpos[j] (j < nk) of K/V, in chunks of kKc; fix(QScores&, j0).
  template <class Fix>
  void key_list(const float* K, const float* V, const int64_t* kpos, int64_t nk, int r0, int r1, Fix&& fix) {
    for (int64_t j0 = 0; j0 < nk; j0 += kKc) {
      const int n = static_cast<int>(nk - j0 < kKc ? nk - j0 : kKc);
      for (int j = 0; j < n; ++j) {
        kptr_[j] = K + kpos[j0 + j] * dh_;
        vptr_[j] = V + kpos[j0 + j] * dh_;
      }
      chunk(kptr_, vptr_, n, r0, r1, [&](QScores& sc) { fix(sc, j0); });
    }
  }

  // Prefetch (to L2) the K and V rows of scattered keys a later row_extras will read.
  void prefetch_rows(const float* K, const float* V, const int32_t* kpos, int64_t n) const {
    for (int64_t c = 0; c < n && kpos[c] >= 0; ++c) {
      const char* kr = reinterpret_cast<const char*>(K + kpos[c] * dh_);
      const char* vr = reinterpret_cast<const char*>(V + kpos[c] * dh_);
      for (int64_t b = 0; b < dh_ * 4; b += 64) {
        _mm_prefetch(kr + b, _MM_HINT_T1);
        _mm_prefetch(vr + b, _MM_HINT_T1);
      }
    }
  }

  // Row r alone attends n scattered keys kpos (already causally filtered) with per-key bias kbias
  // (nullptr = none), into the row's separate extras state. Call at most once per row and tile.
  void row_extras(int r, const float* K, const float* V, const int64_t* kpos, const float* kbias, int64_t n) {
    if (n <= 0) return;
    const float* q = qptr_[r];
    float* a = eacc_ + r * dh_;
    float mx = kNegInf;
    float* s = st_;  // free between chunks; n <= kKc * kQt is far more than any extras list
    for (int64_t c = 0; c < n; ++c) {
      s[c] = dot(q, K + kpos[c] * dh_) * scale_ + (kbias ? kbias[c] : 0.0f);
      mx = s[c] > mx ? s[c] : mx;
    }
    std::memset(a, 0, sizeof(float) * dh_);
    if (mx == kNegInf) return;
    float lsum = 0.0f;
    for (int64_t c = 0; c < n; ++c) {
      const float pw = s[c] == kNegInf ? 0.0f : std::exp(s[c] - mx);
      lsum += pw;
      axpy(a, pw, V + kpos[c] * dh_);
    }
    em_[r] = mx;
    el_[r] = lsum;
  }

  // o[r] = merged acc / l, lse[r] = m + log(l) (lse[r] may be nullptr); l = 0 -> o = 0, lse = -inf.
  // accumulate: o[r] += result and *lse[r] = logaddexp(*lse[r], lse_r) (permute-window average).
  // acc^T is turned back into rows by 8x8 register transposes (8 rows x 8 dh at a time).
  void finish(float* const* o, float* const* lse, bool accumulate = false) const {
    alignas(32) float sa[kQt], sb[kQt], lr[kQt];
    for (int r = 0; r < nq_; ++r) {
      const float M = m_[r] > em_[r] ? m_[r] : em_[r];
      const float a = m_[r] == kNegInf ? 0.0f : std::exp(m_[r] - M);
      const float b = em_[r] == kNegInf ? 0.0f : std::exp(em_[r] - M);
      const float L = a * l_[r] + b * el_[r];
      const float inv = L > 0.0f ? 1.0f / L : 0.0f;
      sa[r] = a * inv;
      sb[r] = b * inv;
      lr[r] = L > 0.0f ? M + std::log(L) : kNegInf;
    }
    const int64_t d8 = dh_ & ~int64_t(7);
    int r0 = 0;
    for (; r0 + 8 <= nq_; r0 += 8) {
      for (int64_t d0 = 0; d0 < d8; d0 += 8) {
        __m256 x[8];
        for (int i = 0; i < 8; ++i) x[i] = _mm256_loadu_ps(acc_ + (d0 + i) * kQt + r0);
        transpose8(x);
        for (int i = 0; i < 8; ++i) {
          float* dst = o[r0 + i] + d0;
          __m256 y = _mm256_mul_ps(x[i], _mm256_set1_ps(sa[r0 + i]));
          if (accumulate) y = _mm256_add_ps(y, _mm256_loadu_ps(dst));
          _mm256_storeu_ps(dst, y);
        }
      }
      for (int i = 0; i < 8; ++i) finish_cols(o[r0 + i], r0 + i, d8, sa[r0 + i], accumulate);
    }
    for (; r0 < nq_; ++r0) finish_cols(o[r0], r0, 0, sa[r0], accumulate);
    for (int r = 0; r < nq_; ++r) {
      // Rows with extras (el > 0) add them; eacc is written only for those rows.
      if (el_[r] > 0.0f && sb[r] != 0.0f) {
        const float* e = eacc_ + r * dh_;
        for (int64_t d = 0; d < dh_; ++d) o[r][d] += e[d] * sb[r];
      }
      if (!lse || !lse[r]) continue;
      if (!accumulate) {
        *lse[r] = lr[r];
      } else {
        const float x = *lse[r];
        const float mx = x > lr[r] ? x : lr[r];
        if (mx != kNegInf) *lse[r] = mx + std::log(std::exp(x - mx) + std::exp(lr[r] - mx));
      }
    }
  }

 private:
  // Columns [d0, dh) of row r: dst = acc^T[:, r] * sa (or += when accumulating).
  void finish_cols(float* dst, int r, int64_t d0, float sa, bool accumulate) const {
    if (accumulate)
      for (int64_t d = d0; d < dh_; ++d) dst[d] += acc_[d * kQt + r] * sa;
    else
      for (int64_t d = d0; d < dh_; ++d) dst[d] = acc_[d * kQt + r] * sa;
  }
  static void transpose8(__m256* x) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
      t[i] = _mm256_unpacklo_ps(x[i], x[i + 1]);
      t[i + 1] = _mm256_unpackhi_ps(x[i], x[i + 1]);
    }
    __m256 u[8];
    for (int i = 0; i < 8; i += 4) {
      u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
      u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
      u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
      u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; ++i) {
      x[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
      x[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
  }
  float dot(const float* a, const float* b) const {
    int64_t d = 0;
    float tail = 0.0f;
    if (dh_ >= 8) {
      __m256 x = _mm256_setzero_ps(), y = _mm256_setzero_ps();
      for (; d + 16 <= dh_; d += 16) {
        x = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), x);
        y = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8), _mm256_loadu_ps(b + d + 8), y);
      }
      for (; d + 8 <= dh_; d += 8) x = _mm256_fmadd_ps(_mm256_loadu_ps(a + d), _mm256_loadu_ps(b + d), x);
      tail = hsum256(_mm256_add_ps(x, y));
    }
    for (; d < dh_; ++d) tail += a[d] * b[d];
    return tail;
  }
  void axpy(float* a, float w, const float* v) const {
    int64_t d = 0;
    const __m256 wv = _mm256_set1_ps(w);
    for (; d + 8 <= dh_; d += 8) _mm256_storeu_ps(a + d, _mm256_fmadd_ps(wv, _mm256_loadu_ps(v + d), _mm256_loadu_ps(a + d)));
    for (; d < dh_; ++d) a[d] += w * v[d];
  }

  // St[j, r] = Qt[:, r] . K[j, :] for j < n, lanes [r0, r1): NK keys x 16 lanes per micro-tile.
  template <int NK>
  void score_block(const float* const* kp, int j, int r0, int r1) {
    const float* k[NK];
    for (int t = 0; t < NK; ++t) k[t] = kp[j + t];
    for (int r = r0; r < r1; r += 16) {
      __m256 c0[NK], c1[NK];
      for (int t = 0; t < NK; ++t) c0[t] = c1[t] = _mm256_setzero_ps();
      const float* q = qt_ + r;
      for (int64_t d = 0; d < dh_; ++d) {
        const __m256 qa = _mm256_loadu_ps(q + d * kQt), qb = _mm256_loadu_ps(q + d * kQt + 8);
        for (int t = 0; t < NK; ++t) {
          const __m256 b = _mm256_broadcast_ss(k[t] + d);
          c0[t] = _mm256_fmadd_ps(b, qa, c0[t]);
          c1[t] = _mm256_fmadd_ps(b, qb, c1[t]);
        }
      }
      for (int t = 0; t < NK; ++t) {
        _mm256_storeu_ps(st_ + (j + t) * kQt + r, c0[t]);
        _mm256_storeu_ps(st_ + (j + t) * kQt + r + 8, c1[t]);
      }
    }
  }
  void scores(const float* const* kp, int n, int r0, int r1) {
    int j = 0;
    for (; j + 4 <= n; j += 4) score_block<4>(kp, j, r0, r1);
    switch (n - j) {
      case 3: score_block<3>(kp, j, r0, r1); break;
      case 2: score_block<2>(kp, j, r0, r1); break;
      case 1: score_block<1>(kp, j, r0, r1); break;
      default: break;
    }
  }

  // Online softmax over the chunk, 8 lanes at a time: new max, P = exp(S - m) in place, l and the
  // rescale of acc^T by exp(m_old - m_new) (skipped when every lane's max is unchanged).
  void softmax(int n, int r0, int r1) {
    const __m256 ninf = _mm256_set1_ps(kNegInf), one = _mm256_set1_ps(1.0f);
    for (int r = r0; r < r1; r += 8) {
      const __m256 mold = _mm256_loadu_ps(m_ + r);
      __m256 mx = ninf;
      for (int j = 0; j < n; ++j) mx = _mm256_max_ps(mx, _mm256_loadu_ps(st_ + j * kQt + r));
      const __m256 mnew = _mm256_max_ps(mold, mx);
      // A lane with nothing allowed yet subtracts 0 instead of -inf: its weights stay exactly 0.
      const __m256 muse = _mm256_blendv_ps(mnew, _mm256_setzero_ps(), _mm256_cmp_ps(mnew, ninf, _CMP_EQ_OQ));
      const __m256 corr = exp256(_mm256_sub_ps(mold, muse));
      __m256 sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
      int j = 0;
      for (; j + 2 <= n; j += 2) {
        float* s0 = st_ + j * kQt + r;
        const __m256 p0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s0), muse));
        const __m256 p1 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s0 + kQt), muse));
        _mm256_storeu_ps(s0, p0);
        _mm256_storeu_ps(s0 + kQt, p1);
        sum0 = _mm256_add_ps(sum0, p0);
        sum1 = _mm256_add_ps(sum1, p1);
      }
      if (j < n) {
        float* s0 = st_ + j * kQt + r;
        const __m256 p0 = exp256(_mm256_sub_ps(_mm256_loadu_ps(s0), muse));
        _mm256_storeu_ps(s0, p0);
        sum0 = _mm256_add_ps(sum0, p0);
      }
      _mm256_storeu_ps(l_ + r, _mm256_fmadd_ps(_mm256_loadu_ps(l_ + r), corr, _mm256_add_ps(sum0, sum1)));
      _mm256_storeu_ps(m_ + r, mnew);
      if (_mm256_movemask_ps(_mm256_cmp_ps(corr, one, _CMP_NEQ_UQ)) != 0) {
        float* a = acc_ + r;
        for (int64_t d = 0; d < dh_; ++d) _mm256_storeu_ps(a + d * kQt, _mm256_mul_ps(_mm256_loadu_ps(a + d * kQt), corr));
      }
    }
  }

  // acc^T[c, r] += sum_j P[j, r] * V[j, c]: NC dh rows x 16 lanes per micro-tile.
  template <int NC>
  void pv_block(const float* const* vp, int n, int64_t c, int r0, int r1) {
    for (int r = r0; r < r1; r += 16) {
      __m256 x0[NC], x1[NC];
      float* a = acc_ + c * kQt + r;
      for (int t = 0; t < NC; ++t) {
        x0[t] = _mm256_loadu_ps(a + t * kQt);
        x1[t] = _mm256_loadu_ps(a + t * kQt + 8);
      }
      const float* p = st_ + r;
      for (int j = 0; j < n; ++j) {
        const __m256 pa = _mm256_loadu_ps(p + j * kQt), pb = _mm256_loadu_ps(p + j * kQt + 8);
        const float* v = vp[j] + c;
        for (int t = 0; t < NC; ++t) {
          const __m256 b = _mm256_broadcast_ss(v + t);
          x0[t] = _mm256_fmadd_ps(b, pa, x0[t]);
          x1[t] = _mm256_fmadd_ps(b, pb, x1[t]);
        }
      }
      for (int t = 0; t < NC; ++t) {
        _mm256_storeu_ps(a + t * kQt, x0[t]);
        _mm256_storeu_ps(a + t * kQt + 8, x1[t]);
      }
    }
  }
  void pv(const float* const* vp, int n, int r0, int r1) {
    int64_t c = 0;
    for (; c + 4 <= dh_; c += 4) pv_block<4>(vp, n, c, r0, r1);
    switch (dh_ - c) {
      case 3: pv_block<3>(vp, n, c, r0, r1); break;
      case 2: pv_block<2>(vp, n, c, r0, r1); break;
      case 1: pv_block<1>(vp, n, c, r0, r1); break;
      default: break;
    }
  }

  int64_t dh_;
  float scale_;
  int nq_ = 0, nqp_ = 0;
  float* qt_;
  float* acc_;
  float* st_;
  float* eacc_;
  float* m_;
  float* l_;
  float* em_;
  float* el_;
  int32_t* qpos_;
  int32_t* qaux_;
  const float** kptr_;
  const float** vptr_;
  const float** qptr_;
  int64_t* extra_;
};

// One query row against n explicit keys kpos (already causally filtered; a multiset) with per-key
// bias kbias (nullptr = none): two passes over a score buffer s[n] (scores, then exp256 weights), K/V
// rows prefetched a few keys ahead because they are scattered. Writes o [dh] and *lse (l = 0 -> o = 0,
// lse = -inf). For gathered rows that no other query of the tile shares (gather path, G < 4).
inline void attend_row(const float* q, const float* K, const float* V, const int64_t* kpos, const float* kbias,
                       int64_t n, float scale, int64_t dh, float* s, float* o, float* lse) {
  constexpr int64_t kAhead = 6;
  auto prefetch_row = [&](const float* row) {
    for (int64_t b = 0; b < dh; b += 16) _mm_prefetch(reinterpret_cast<const char*>(row + b), _MM_HINT_T0);
  };
  for (int64_t c = 0; c < n && c < kAhead; ++c) prefetch_row(K + kpos[c] * dh);
  float mx = kNegInf;
  for (int64_t c = 0; c < n; ++c) {
    if (c + kAhead < n) prefetch_row(K + kpos[c + kAhead] * dh);
    prefetch_row(V + kpos[c] * dh);
    const float* k = K + kpos[c] * dh;
    int64_t d = 0;
    float dot = 0.0f;
    if (dh >= 8) {
      __m256 x = _mm256_setzero_ps(), y = _mm256_setzero_ps();
      for (; d + 16 <= dh; d += 16) {
        x = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), x);
        y = _mm256_fmadd_ps(_mm256_loadu_ps(q + d + 8), _mm256_loadu_ps(k + d + 8), y);
      }
      for (; d + 8 <= dh; d += 8) x = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + d), x);
      dot = hsum256(_mm256_add_ps(x, y));
    }
    for (; d < dh; ++d) dot += q[d] * k[d];
    s[c] = dot * scale + (kbias ? kbias[c] : 0.0f);
    mx = s[c] > mx ? s[c] : mx;
  }
  std::memset(o, 0, sizeof(float) * dh);
  if (mx == kNegInf) {
    *lse = kNegInf;
    return;
  }
  const __m256 mv = _mm256_set1_ps(mx);
  __m256 sum = _mm256_setzero_ps();
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) {
    const __m256 pw = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + c), mv));
    _mm256_storeu_ps(s + c, pw);
    sum = _mm256_add_ps(sum, pw);
  }
  float l = hsum256(sum);
  for (; c < n; ++c) {
    s[c] = s[c] == kNegInf ? 0.0f : std::exp(s[c] - mx);
    l += s[c];
  }
  for (c = 0; c < n; ++c) {
    if (s[c] == 0.0f) continue;
    const float* v = V + kpos[c] * dh;
    const __m256 pw = _mm256_set1_ps(s[c]);
    int64_t d = 0;
    for (; d + 8 <= dh; d += 8) _mm256_storeu_ps(o + d, _mm256_fmadd_ps(pw, _mm256_loadu_ps(v + d), _mm256_loadu_ps(o + d)));
    for (; d < dh; ++d) o[d] += s[c] * v[d];
  }
  const float inv = 1.0f / l;
  for (int64_t d = 0; d < dh; ++d) o[d] *= inv;
  *lse = mx + std::log(l);
}

// Causal attention of a tile of consecutive positions qpos(0..nq) to the contiguous keys [k0, k1) of
// one head: chunks wholly in the past need no mask; a chunk crossing the diagonal runs per 16-query
// group, clipped to the keys that group can see. Every key gets bias cbias when has_bias.
inline void qtile_causal_range(QTile& qt, const float* K, const float* V, int64_t k0, int64_t k1, bool has_bias,
                               float cbias) {
  const int nq = qt.nq();
  const int64_t pmin = qt.qpos(0), pmax = qt.qpos(nq - 1);
  if (k1 > pmax + 1) k1 = pmax + 1;
  auto bias_only = [&](QScores& sc, int64_t) {
    if (has_bias)
      for (int j = 0; j < sc.n; ++j) sc.add(j, cbias);
  };
  for (int64_t c0 = k0; c0 < k1; c0 += kKc) {
    const int64_t n = k1 - c0 < kKc ? k1 - c0 : kKc;
    if (c0 + n - 1 <= pmin) {
      qt.key_rows(K, V, c0, 1, n, 0, nq, bias_only);
      continue;
    }
    for (int g = 0; g < nq; g += 16) {
      const int64_t gmax = qt.qpos(g + 15 < nq ? g + 15 : nq - 1);
      const int64_t ng = std::min<int64_t>(n, gmax - c0 + 1);
      if (ng <= 0) continue;
      const bool need_mask = c0 + ng - 1 > qt.qpos(g);
      qt.key_rows(K, V, c0, 1, ng, g, g + 16, [&](QScores& sc, int64_t) {
        for (int j = 0; j < sc.n; ++j) {
          if (has_bias) sc.add(j, cbias);
          if (need_mask) sc.keep_diff(j, static_cast<int32_t>(c0 + j), 0, INT_MAX);
        }
      });
    }
  }
}

// Row pointers of query tile t (kQt rows from i0 = t * kQt) of query head hq in a Problem, as
// QTile::begin / finish take them. nq < kQt for the last tile.
struct QTileRows {
  int nq = 0;
  const float* q[kQt];
  int64_t pos[kQt];
  float* o[kQt];
  float* lse[kQt];
};
inline QTileRows qtile_rows(const Problem& p, int64_t hq, int64_t t) {
  QTileRows r;
  const int64_t i0 = t * kQt;
  r.nq = static_cast<int>(p.Tq - i0 < kQt ? p.Tq - i0 : kQt);
  for (int k = 0; k < r.nq; ++k) {
    r.q[k] = p.q + (hq * p.Tq + i0 + k) * p.dh;
    r.o[k] = p.o + (hq * p.Tq + i0 + k) * p.dh;
    r.lse[k] = p.lse != nullptr ? p.lse + hq * p.Tq + i0 + k : nullptr;
    r.pos[k] = p.q_offset + i0 + k;
  }
  return r;
}

}  // namespace bna::cpu
