// Backward of streams attention: row pos of KV head h is the band [max(0, pos-W), pos], the
// landmarks {m*S < pos-W} left of the band, and the extra neighbours (j <= pos). Band keys are WINDOW,
// LANDMARK when j is a multiple of S below pos, or their band_override type; landmarks left of the
// band are LANDMARK or their landmark_override type (a cycle/rewire neighbour that falls on a
// landmark keeps its higher-priority ABI type, exactly as in the forward). Since the three streams
// partition the row, one softmax over their concatenation equals the forward's merged streams.
#include <algorithm>

#include "attention/cpu/backward.hpp"
#include "attention/cpu/backward_core.hpp"
#include "bna/graph.hpp"

namespace bna::cpu {

void streams_bwd(const GradProblem& gp, const StreamsGraph& sg) {
  const int64_t Tk = gp.fwd.Tk;
  BNA_ASSERT(sg.Hkv == gp.fwd.Hkv || sg.Hkv == 1);
  BNA_ASSERT(gp.fwd.q_offset + gp.fwd.Tq <= sg.T);
  const size_t per = static_cast<size_t>(sg.Hkv * sg.T * sg.C);
  BNA_ASSERT(sg.extra.size() == per && sg.band_override.size() == per && sg.landmark_override.size() == per);
  constexpr auto kWindow = static_cast<uint8_t>(graph::EdgeType::kWindow);
  constexpr auto kLandmark = static_cast<uint8_t>(graph::EdgeType::kLandmark);
  bwd_detail::backward_rows(gp, [&sg, Tk](int64_t hkv, int64_t pos, bwd_detail::RowSegments& rs) {
    const int64_t h = sg.Hkv == 1 ? 0 : hkv;
    const int64_t C = sg.C;
    const size_t base = static_cast<size_t>((h * sg.T + pos) * C);
    const int32_t* ov = C > 0 ? sg.band_override.data() + base : nullptr;
    const uint8_t* ot = C > 0 ? sg.band_override_type.data() + base : nullptr;
    const int64_t lo = std::max<int64_t>(0, pos - sg.W);
    const int64_t hi = std::min(pos, Tk - 1);
    // Landmarks strictly left of the band, typed by landmark_override where the ABI says so.
    if (sg.S > 0) {
      const int32_t* lv = C > 0 ? sg.landmark_override.data() + base : nullptr;
      const uint8_t* lt = C > 0 ? sg.landmark_override_type.data() + base : nullptr;
      for (int64_t j = 0; j < lo && j < Tk; j += sg.S) {
        uint8_t ty = kLandmark;
        for (int64_t c = 0; c < C && lv[c] >= 0; ++c) {
          if (lv[c] == j) { ty = lt[c]; break; }
        }
        rs.add(static_cast<int32_t>(j), ty);
      }
    }
    for (int64_t j = lo; j <= hi; ++j) {
      uint8_t ty = (sg.S > 0 && j < pos && j % sg.S == 0) ? kLandmark : kWindow;
      for (int64_t c = 0; c < C && ov[c] >= 0; ++c) {
        if (ov[c] == j) { ty = ot[c]; break; }
      }
      rs.add(static_cast<int32_t>(j), ty);
    }
    if (C > 0) {
      const int32_t* ex = sg.extra.data() + base;
      const uint8_t* et = sg.extra_type.data() + base;
      for (int64_t c = 0; c < C && ex[c] >= 0; ++c) {
        if (ex[c] <= pos && ex[c] < Tk) rs.add(ex[c], et[c]);
      }
    }
    rs.close_segment(1.0f);
  });
}

}  // namespace bna::cpu
