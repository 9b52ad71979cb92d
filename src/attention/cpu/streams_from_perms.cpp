// StreamsGraph straight from cycle permutations (no [H, T, D] ABI): row i of head h is the band
// [max(0, i-W), i], the landmarks {m*S < i} and the cycle neighbours (prev/next in every cycle).
// Types follow the ABI merge rule (CYCLE beats LANDMARK and WINDOW), so the result equals
// streams_from_abi(Topology::construct(T), W, S) for a topology with self loops and no rewires.
// Neighbours after i (j > i) can never be attended by row i and are dropped here, as there.
#include <algorithm>
#include <string>
#include <vector>

#include "attention/cpu/kernels.hpp"
#include "bna/threads.hpp"

namespace bna::cpu {
namespace {

constexpr uint8_t kCycleT = static_cast<uint8_t>(graph::EdgeType::kCycle);

// The sorted, de-duplicated cycle neighbours of node i (at most 2 per cycle).
int64_t cycle_neighbours(const topo::PermsOnly& P, int64_t h, int64_t i, int32_t* out) {
  int64_t n = 0;
  for (int64_t c = 0; c < P.num_cycles; ++c) {
    const int32_t* perm = P.perm_of(h, c);
    const int64_t pos = P.inv_of(h, c)[i];
    out[n++] = perm[(pos + P.T - 1) % P.T];
    out[n++] = perm[(pos + 1) % P.T];
  }
  std::sort(out, out + n);
  return std::unique(out, out + n) - out;
}

enum class Slot { kExtra, kBand, kLandmark, kLater };
Slot classify(int64_t j, int64_t i, int64_t W, int64_t S) {
  if (j > i) return Slot::kLater;
  const int64_t lo = std::max<int64_t>(0, i - W);
  if (j >= lo) return Slot::kBand;
  if (S > 0 && j < lo && j % S == 0) return Slot::kLandmark;
  return Slot::kExtra;
}

}  // namespace

Expected<StreamsGraph> streams_from_perms(const topo::PermsOnly& P, int64_t W, int64_t S) {
  if (W < 0) return invalid_argument("streams: W=" + std::to_string(W) + ", expected W >= 0");
  if (S < 0) return invalid_argument("streams: S=" + std::to_string(S) + ", expected S >= 0");
  if (P.H < 1 || P.T < 1 || P.num_cycles < 1)
    return invalid_argument("streams: perms H=" + std::to_string(P.H) + " T=" + std::to_string(P.T) + " cycles=" +
                            std::to_string(P.num_cycles) + ", expected all >= 1");
  if (P.perm.size() != static_cast<size_t>(P.H * P.num_cycles * P.T) || P.inv.size() != P.perm.size())
    return invalid_argument("streams: perms arrays hold " + std::to_string(P.perm.size()) + " / " +
                            std::to_string(P.inv.size()) + " entries, expected H*cycles*T = " +
                            std::to_string(P.H * P.num_cycles * P.T));
  const int64_t n = P.H * P.T, K = 2 * P.num_cycles;
  // Pass 1: per-row counts of each slot, giving C.
  int64_t C = 0, typed_lm = 0;
#pragma omp parallel reduction(max : C) reduction(+ : typed_lm)
  {
    std::vector<int32_t> nb(K);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t h = r / P.T, i = r % P.T;
      const int64_t m = cycle_neighbours(P, h, i, nb.data());
      int64_t cnt[4] = {0, 0, 0, 0};
      for (int64_t e = 0; e < m; ++e) ++cnt[static_cast<int>(classify(nb[e], i, W, S))];
      C = std::max({C, cnt[0], cnt[1], cnt[2]});
      typed_lm += cnt[2];
    }
  }
  StreamsGraph sg;
  sg.Hkv = P.H;
  sg.T = P.T;
  sg.W = W;
  sg.S = S;
  sg.C = C;
  sg.typed_landmarks = typed_lm;
  sg.allocate_slots();
  if (sg.C == 0) return sg;
#pragma omp parallel
  {
    std::vector<int32_t> nb(K);
#pragma omp for schedule(static)
    for (int64_t r = 0; r < n; ++r) {
      const int64_t h = r / P.T, i = r % P.T;
      const int64_t m = cycle_neighbours(P, h, i, nb.data());
      const size_t at = static_cast<size_t>(r * sg.C);
      int64_t cnt[3] = {0, 0, 0};
      for (int64_t e = 0; e < m; ++e) {
        const Slot s = classify(nb[e], i, W, S);
        if (s == Slot::kLater) continue;
        int32_t* idx = s == Slot::kExtra ? sg.extra.data() : s == Slot::kBand ? sg.band_override.data()
                                                                              : sg.landmark_override.data();
        uint8_t* ty = s == Slot::kExtra ? sg.extra_type.data() : s == Slot::kBand ? sg.band_override_type.data()
                                                                                  : sg.landmark_override_type.data();
        const int64_t c = cnt[static_cast<int>(s)]++;
        idx[at + c] = nb[e];
        ty[at + c] = kCycleT;
      }
    }
  }
  return sg;
}

}  // namespace bna::cpu
