// Dense causal backward launcher: dQ over key tiles 0..q0 (diagonal tile masked), dK/dV over query
// tiles kt.. (the band items of attn_bwd.cuh with W = T), chunked by kQChunk query tiles.
#include "attention/cuda/attn_bwd_launch.cuh"

namespace bna::cuda {

size_t attn_bwd_workspace_bytes(const AttnArgs& a) { return detail::bwd_workspace(a); }

Status dense_causal_bwd(const AttnBwdArgs& a, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate_bwd("dense_causal_bwd", a));
  return detail::launch_bwd<detail::Mode::kDense>(a, 0, 0, nullptr, 0, stream);
}

}  // namespace bna::cuda
