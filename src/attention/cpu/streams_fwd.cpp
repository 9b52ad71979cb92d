// Streams forward: each row is band [i-W, i] U landmarks K[0::S] (j < i-W) U a few extras, the three
// streams partitioning the row (design-notes §2). Per query tile of kQt consecutive rows (QTile,
// micro_tile.hpp): the landmark keys are read in place as strided rows and form one GEMM-like
// (64 queries x landmarks x dh) block shared by the whole tile; the band runs per 16-row group over
// that group's kQt-wide key span [first - W, last] (81% of computed scores are allowed at W = 64);
// extras (earlier cycle neighbours, ~1 per row) are gathered dot products into a separate per-row
// state; their scattered K/V rows are prefetched at the start of the tile, a whole landmark pass
// ahead of their use. Neighbours after the row (j > i) are dropped when the StreamsGraph is built.
// Everything merges by the exact LSE rule. streams_from_abi verifies the partition on every row (in
// parallel) before anything relies on it. Small Tq (decode, short chunks): p.gqa_pack > 1 packs the
// query heads of a KV head into one tile (gqa_pack.hpp): landmarks, band keys and extras all belong
// to the KV head and the query position, so one pass serves every packed head; the band still runs
// per unpacked 16-query group (TileGroup), which keeps the results bit-identical.
#include <algorithm>
#include <climits>
#include <cstring>
#include <atomic>
#include <string>
#include <vector>

#include "attention/cpu/gqa_pack.hpp"
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {
namespace {

constexpr uint8_t kWindowT = static_cast<uint8_t>(graph::EdgeType::kWindow);
constexpr uint8_t kLandmarkT = static_cast<uint8_t>(graph::EdgeType::kLandmark);

struct RowCounts {
  int64_t extra = 0, over = 0, typed_lm = 0;
};
struct RowOut {
  int32_t* extra = nullptr;
  uint8_t* extra_t = nullptr;
  int32_t* over = nullptr;
  uint8_t* over_t = nullptr;
  int32_t* lm = nullptr;
  uint8_t* lm_t = nullptr;
};

// Classifies row i of head h. Returns false (and fills *msg when given) if the row is not
// band U landmarks U extras. Stamps are per-thread scratch (band: W+1, landmarks: T/S+1).
bool classify_row(const graph::GraphAbi& g, int64_t h, int64_t i, int64_t W, int64_t S, std::vector<int64_t>& band_stamp,
                  std::vector<int64_t>& lm_stamp, RowCounts& rc, std::string* msg, const RowOut& out) {
  const int64_t stamp = h * g.T + i + 1;
  const int64_t lo = std::max<int64_t>(0, i - W);
  const int32_t* row = g.row(h, i);
  const uint8_t* ty = g.row_types(h, i);
  int64_t nband = 0, nlm = 0;
  rc = {};
  auto fail = [&](const std::string& what) {
    if (msg) *msg = "streams: head " + std::to_string(h) + " row " + std::to_string(i) + ": " + what;
    return false;
  };
  for (int64_t c = 0; c < g.D; ++c) {
    const int32_t j = row[c];
    if (j < 0) break;
    if (j >= lo && j <= i) {
      if (band_stamp[j - lo] == stamp) return fail("band key " + std::to_string(j) + " listed twice");
      band_stamp[j - lo] = stamp;
      ++nband;
      const uint8_t base = (S > 0 && j % S == 0 && j < i) ? kLandmarkT : kWindowT;
      if (ty[c] != base) {
        if (out.over) { out.over[rc.over] = j; out.over_t[rc.over] = ty[c]; }
        ++rc.over;
      }
    } else if (S > 0 && j < lo && j % S == 0) {
      if (lm_stamp[j / S] == stamp) return fail("landmark " + std::to_string(j) + " listed twice");
      lm_stamp[j / S] = stamp;
      ++nlm;
      if (ty[c] != kLandmarkT) {
        if (out.lm) { out.lm[rc.typed_lm] = j; out.lm_t[rc.typed_lm] = ty[c]; }
        ++rc.typed_lm;
      }
    } else if (j < i) {  // a later neighbour (j > i) can never be attended: dropped
      if (out.extra) { out.extra[rc.extra] = j; out.extra_t[rc.extra] = ty[c]; }
      ++rc.extra;
    }
  }
  if (nband != i - lo + 1) {
    for (int64_t j = lo; j <= i; ++j)
      if (band_stamp[j - lo] != stamp) return fail("band key " + std::to_string(j) + " missing (W=" + std::to_string(W) + ")");
  }
  const int64_t want_lm = S > 0 ? (lo + S - 1) / S : 0;
  if (nlm != want_lm) {
    for (int64_t m = 0; m * S < lo; ++m)
      if (lm_stamp[m] != stamp) return fail("landmark " + std::to_string(m * S) + " missing (S=" + std::to_string(S) + ")");
  }
  return true;
}

}  // namespace

Expected<StreamsGraph> streams_from_abi(const graph::GraphAbi& g, int64_t W, int64_t S) {
  if (W < 0) return invalid_argument("streams: W=" + std::to_string(W) + ", expected W >= 0");
  if (S < 0) return invalid_argument("streams: S=" + std::to_string(S) + ", expected S >= 0");
  if (g.H < 1 || g.T < 1) return invalid_argument("streams: graph H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) + ", expected >= 1");
  const int64_t n = g.H * g.T;
  std::vector<int64_t> extra_n(n), over_n(n), lm_n(n);
  std::atomic<int64_t> first_bad{n};
  std::atomic<int64_t> typed_lm{0};
  const int64_t nlm_slots = S > 0 ? g.T / S + 1 : 1;
  auto scan = [&](bool fill, StreamsGraph* sg) {
#pragma omp parallel
    {
      std::vector<int64_t> band_stamp(W + 1, 0), lm_stamp(nlm_slots, 0);
      int64_t tl = 0;
#pragma omp for schedule(static)
      for (int64_t r = 0; r < n; ++r) {
        if (!fill && r > first_bad.load(std::memory_order_relaxed)) continue;
        RowCounts rc;
        const int64_t h = r / g.T, i = r % g.T;
        RowOut ro;
        if (fill) {
          const size_t at = static_cast<size_t>(r * sg->C);
          ro = {sg->extra.data() + at, sg->extra_type.data() + at, sg->band_override.data() + at,
                sg->band_override_type.data() + at, sg->landmark_override.data() + at, sg->landmark_override_type.data() + at};
        }
        if (!classify_row(g, h, i, W, S, band_stamp, lm_stamp, rc, nullptr, ro)) {
          int64_t cur = first_bad.load();
          while (r < cur && !first_bad.compare_exchange_weak(cur, r)) {}
          continue;
        }
        extra_n[r] = rc.extra;
        over_n[r] = rc.over;
        lm_n[r] = rc.typed_lm;
        tl += rc.typed_lm;
      }
      if (!fill) typed_lm += tl;
    }
  };
  scan(false, nullptr);
  if (first_bad.load() < n) {
    const int64_t r = first_bad.load();
    std::vector<int64_t> band_stamp(W + 1, 0), lm_stamp(nlm_slots, 0);
    RowCounts rc;
    std::string msg;
    classify_row(g, r / g.T, r % g.T, W, S, band_stamp, lm_stamp, rc, &msg, RowOut{});
    return invalid_argument(msg);
  }
  StreamsGraph sg;
  sg.Hkv = g.H;
  sg.T = g.T;
  sg.W = W;
  sg.S = S;
  sg.C = 0;
  for (int64_t r = 0; r < n; ++r) sg.C = std::max({sg.C, extra_n[r], over_n[r], lm_n[r]});
  sg.typed_landmarks = typed_lm.load();
  sg.allocate_slots();
  if (sg.C > 0) scan(true, &sg);
  return sg;
}

size_t streams_workspace_floats(int64_t Hkv, int64_t Tk, int64_t dh, int64_t S) {
  if (S <= 0) return 0;
  const size_t rows = static_cast<size_t>(Hkv * ((Tk + S - 1) / S));
  return 2 * ((rows * static_cast<size_t>(dh) + 15) & ~size_t(15));
}

void streams_fwd(const Problem& p, const StreamsGraph& g, const FwdScratch& ws, float* landmark_ws) {
  const int64_t W = g.W, S = g.S, C = g.C;
  // Compacted landmarks: Kl[hk, m] = K[hk, m*S], Vl likewise, m < nL.
  const int64_t nL = S > 0 ? (p.Tk + S - 1) / S : 0;
  float* Kl = landmark_ws;
  float* Vl = S > 0 ? landmark_ws + streams_workspace_floats(p.Hkv, p.Tk, p.dh, S) / 2 : nullptr;
  if (nL > 0) {
    const size_t row_bytes = sizeof(float) * static_cast<size_t>(p.dh);
    auto copy_row = [&](int64_t r) {
      const int64_t hk = r / nL, m = r % nL;
      const int64_t src = (hk * p.Tk + m * S) * p.dh;
      std::memcpy(Kl + r * p.dh, p.k + src, row_bytes);
      std::memcpy(Vl + r * p.dh, p.v + src, row_bytes);
    };
    // A few hundred KB or less (decode, one KV head per call) is copied on the calling thread.
    if (p.Hkv * nL * p.dh < (int64_t(1) << 16)) {
      for (int64_t r = 0; r < p.Hkv * nL; ++r) copy_row(r);
    } else {
      parallel_for(0, p.Hkv * nL, copy_row);
    }
  }
  const float* bias = p.edge_bias;
  const float wb = bias ? bias[kWindowT] : 0.0f, lb = bias ? bias[kLandmarkT] : 0.0f;
  const TileWork work(p);
  for_each_tile(work.items(), [&](int64_t item) {
    const WorkTile w = work.tile(item);
    const QTileRows& rows = w.rows;
    const int nq = rows.nq;
    if (nq == 0) return;
    const int64_t hk = w.hk;
    QTile qt(ws.base + ws.per_thread * omp_get_thread_num(), p.dh, p.scale);
    const int64_t* pos = rows.pos;
    qt.begin(nq, rows.q, pos);
    const int64_t pmin = pos[0], pmax = pos[nq - 1];
    const float* K = p.k + hk * p.Tk * p.dh;
    const float* V = p.v + hk * p.Tk * p.dh;
    // The extras' K/V rows are scattered: prefetch the whole tile's now, so the landmark and band
    // passes hide their latency.
    if (C > 0)
      for (int r = 0; r < nq; ++r) qt.prefetch_rows(K, V, g.extra.data() + (hk * g.T + pos[r]) * C, C);
    // Landmarks: keys 0, S, 2S, ... (compacted rows), shared by every row of the tile;
    // row r allows landmark m*S only if m*S < pos[r] - W. Only chunks reaching pmin - W need a mask.
    if (S > 0 && pmax - W > 0) {
      const int64_t nl = (pmax - W + S - 1) / S;
      qt.key_rows(Kl + hk * nL * p.dh, Vl + hk * nL * p.dh, 0, 1, nl, 0, nq, [&](QScores& sc, int64_t j0) {
        if (bias) {
          for (int j = 0; j < sc.n; ++j) sc.add(j, lb);
          for (int r = 0; r < nq; ++r) {
            const int32_t* lo = g.landmark_override.data() + (hk * g.T + pos[r]) * C;
            const uint8_t* lot = g.landmark_override_type.data() + (hk * g.T + pos[r]) * C;
            for (int64_t c = 0; c < C && lo[c] >= 0; ++c) {
              const int64_t m = lo[c] / S - j0;
              if (m >= 0 && m < sc.n) sc.at(static_cast<int>(m), r) += bias[lot[c]] - lb;
            }
          }
        }
        if ((j0 + sc.n - 1) * S < pmin - W) return;
        for (int j = 0; j < sc.n; ++j) sc.keep_diff(j, static_cast<int32_t>((j0 + j) * S), static_cast<int32_t>(W + 1), INT_MAX);
      });
    }
    // Band: per 16-query group (lanes [gr, rend), TileGroup), keys [max(0, first - W), last] of the
    // group; row r allows [pos[r] - W, pos[r]]. A band key on a landmark is typed LANDMARK for rows past
    // it, WINDOW for itself.
    for (int gi = 0; gi < w.ngroups; ++gi) {
      const TileGroup& tg = w.group[gi];
      const int gr = tg.r0, rend = tg.r1;
      const int64_t gfirst = tg.first, glast = tg.last;
      const int64_t b0 = std::max<int64_t>(0, gfirst - W);
      const int64_t nb = glast - b0 + 1;
      qt.key_rows(K, V, b0, 1, nb, gr, rend, [&](QScores& sc, int64_t j0) {
        const int64_t k0 = b0 + j0;
        for (int j = 0; j < sc.n; ++j) {
          const int64_t kj = k0 + j;
          if (bias) {
            sc.add(j, wb);
            if (S > 0 && kj % S == 0) sc.add_diff(j, static_cast<int32_t>(kj), 1, INT_MAX, lb - wb);
          }
          if (kj > gfirst || kj < glast - W) sc.keep_diff(j, static_cast<int32_t>(kj), 0, static_cast<int32_t>(W));
        }
        if (bias && C > 0) {
          for (int r = gr; r < rend; ++r) {
            const int64_t hi = pos[r];
            const int32_t* ov = g.band_override.data() + (hk * g.T + hi) * C;
            const uint8_t* ovt = g.band_override_type.data() + (hk * g.T + hi) * C;
            for (int64_t c = 0; c < C && ov[c] >= 0; ++c) {
              const int64_t kj = ov[c];
              if (kj < k0 || kj >= k0 + sc.n) continue;
              const float base = (S > 0 && kj % S == 0 && kj < hi) ? lb : wb;
              sc.at(static_cast<int>(kj - k0), r) += bias[ovt[c]] - base;
            }
          }
        }
      });
    }
    // Extras: per-row scattered keys (causally filtered here) as gathered dot products, kept in the
    // row's separate state and merged in finish().
    if (C > 0) {
      int64_t* kp = qt.extra_i64();
      float* kb = reinterpret_cast<float*>(kp + C);
      for (int r = 0; r < nq; ++r) {
        const int32_t* ex = g.extra.data() + (hk * g.T + pos[r]) * C;
        const uint8_t* ext = g.extra_type.data() + (hk * g.T + pos[r]) * C;
        int64_t n = 0;
        for (int64_t c = 0; c < C && ex[c] >= 0; ++c) {
          if (ex[c] > pos[r]) continue;
          kp[n] = ex[c];
          kb[n] = bias ? bias[ext[c]] : 0.0f;
          ++n;
        }
        qt.row_extras(r, K, V, kp, bias ? kb : nullptr, n);
      }
    }
    qt.finish(rows.o, rows.lse);
  });
}

}  // namespace bna::cpu
