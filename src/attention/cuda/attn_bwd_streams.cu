// Streams backward launcher: dQ over the forward's tile schedule (landmarks, band, extras; extras also
// scatter dK/dV), dK/dV over landmark tiles and band key tiles (attn_bwd.cuh).
#include <string>

#include "attention/cuda/attn_bwd_launch.cuh"

namespace bna::cuda {

Status streams_bwd(const AttnBwdArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate_bwd("streams_bwd", a));
  if (W < 0) return invalid_argument("streams_bwd: W=" + std::to_string(W) + ", expected W >= 0");
  if (W > a.fwd.T) W = a.fwd.T;
  if (S < 0) return invalid_argument("streams_bwd: S=" + std::to_string(S) + ", expected S >= 0 (0 = no landmarks)");
  if (C < 0 || C > 4096) return invalid_argument("streams_bwd: C=" + std::to_string(C) + ", expected 0 <= C <= 4096");
  if (C > 0 && extra == nullptr)
    return invalid_argument("streams_bwd: C=" + std::to_string(C) + " but extra is null, expected a device [Hkv, T, C] array");
  if (S > a.fwd.T) S = a.fwd.T;
  return detail::launch_bwd<detail::Mode::kStreams>(a, static_cast<int>(W), static_cast<int>(S), extra,
                                                    static_cast<int>(C), stream);
}

}  // namespace bna::cuda
