// The streams forward's chunked-prefill (q_offset) kernels (attn_fwd_launch.cuh launch_view), in
// their own translation unit so they compile next to the plain ones.
#include "attention/cuda/attn_fwd_launch.cuh"

namespace bna::cuda::detail {

template Status launch_view<Mode::kStreams, kViewOffset>(const FwdParams&, const AttnArgs&, cudaStream_t);

}  // namespace bna::cuda::detail
