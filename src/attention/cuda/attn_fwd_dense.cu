// Dense causal forward launcher: the shared flash kernel with contiguous 64-key tiles 0..q0, masking
// only the diagonal tile (j <= i); fully masked tiles above the diagonal are never visited.
#include "attention/cuda/attn_fwd_launch.cuh"

namespace bna::cuda {

Status dense_causal_fwd(const AttnArgs& a, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("dense_causal_fwd", a));
  return detail::launch_fwd<detail::Mode::kDense>(a, 0, 0, nullptr, 0, stream);
}

}  // namespace bna::cuda
