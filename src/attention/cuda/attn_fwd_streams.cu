// Streams forward launcher: one kernel visits, per 64-query tile, the landmark tiles (K[m*S] read
// with stride S, masked only near the band), the band tiles [q0-W, q_last] (causal + window mask)
// and one gathered tile per extras column, all under one online softmax.
#include <string>

#include "attention/cuda/attn_fwd_launch.cuh"

namespace bna::cuda {

Status streams_fwd(const AttnArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("streams_fwd", a));
  if (W < 0) return invalid_argument("streams_fwd: W=" + std::to_string(W) + ", expected W >= 0");
  if (W > a.T) W = a.T;  // a window past T changes nothing
  if (S < 0) return invalid_argument("streams_fwd: S=" + std::to_string(S) + ", expected S >= 0 (0 = no landmarks)");
  if (C < 0 || C > 4096) return invalid_argument("streams_fwd: C=" + std::to_string(C) + ", expected 0 <= C <= 4096");
  if (C > 0 && extra == nullptr)
    return invalid_argument("streams_fwd: C=" + std::to_string(C) + " but extra is null, expected a device [Hkv, T, C] array");
  if (S > a.T) S = a.T;  // only landmark 0 can exist; keeps m*S inside int
  return detail::launch_fwd<detail::Mode::kStreams>(a, static_cast<int>(W), static_cast<int>(S), extra,
                                                    static_cast<int>(C), stream);
}

}  // namespace bna::cuda
