// Gather forward launcher (attn_fwd_gather.cuh with UNION = false): one warp per query row over its
// D neighbour entries; 4 kernels (dh x dtype).
#include <string>

#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {

Status gather_fwd(const AttnArgs& a, const int32_t* neigh_idx, int64_t D, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("gather_fwd", a));
  BNA_RETURN_IF_ERROR(detail::reject_cache_view("gather_fwd", a));
  if (D < 1 || D > (int64_t{1} << 24))
    return invalid_argument("gather_fwd: D=" + std::to_string(D) + ", expected 1 <= D <= 2^24");
  if (neigh_idx == nullptr)
    return invalid_argument("gather_fwd: neigh_idx is null, expected a device int32 [Hkv, T, D] array");
  detail::GatherParams p = detail::gather_params(a);
  p.neigh = neigh_idx;
  p.D = static_cast<int>(D);
  auto s = static_cast<cudaStream_t>(stream);
  return detail::dispatch_dh_dtype(a, [&](auto dh, auto bf16) {
    return detail::launch_gather<decltype(dh)::value, decltype(bf16)::value, false>(p, s);
  });
}

}  // namespace bna::cuda
