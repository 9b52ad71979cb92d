// Block-sparse forward launcher (attn_fwd_tiles.cuh with PW = false): one CTA per 64-row slice of a
// query block and query head, iterating the BSR column list of its block; 4 kernels (dh x dtype).
#include <string>

#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {

Status block_sparse_fwd(const AttnArgs& a, int64_t Bs, int64_t N, const int32_t* indptr, const int32_t* indices,
                        void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("block_sparse_fwd", a));
  BNA_RETURN_IF_ERROR(detail::reject_cache_view("block_sparse_fwd", a));
  if (Bs < 1) return invalid_argument("block_sparse_fwd: Bs=" + std::to_string(Bs) + ", expected Bs >= 1");
  const int64_t want = (a.T + Bs - 1) / Bs;
  if (N != want)
    return invalid_argument("block_sparse_fwd: N=" + std::to_string(N) + ", expected ceil(T/Bs)=" + std::to_string(want));
  if (Bs > a.T) Bs = a.T;  // one block either way; keeps block ends inside int
  if (indptr == nullptr || indices == nullptr)
    return invalid_argument("block_sparse_fwd: indptr and indices must be non-null device int32 arrays");
  detail::TileParams p = detail::tile_params(a);
  p.Bs = static_cast<int>(Bs);
  p.n_sub = static_cast<int>((Bs + detail::kBr - 1) / detail::kBr);
  p.N = static_cast<int>(N);
  p.indptr = indptr;
  p.indices = indices;
  const int64_t qtiles = N * p.n_sub;
  if (qtiles * a.B * a.Hq > int64_t{0x7fffffff})
    return invalid_argument("block_sparse_fwd: B*Hq*N*ceil(Bs/64)=" + std::to_string(qtiles * a.B * a.Hq) +
                            ", expected < 2^31 CTAs");
  p.n_qtiles = static_cast<int>(qtiles);
  auto s = static_cast<cudaStream_t>(stream);
  return detail::dispatch_dh_dtype(a, [&](auto dh, auto bf16) {
    return detail::launch_tiles<decltype(dh)::value, decltype(bf16)::value, false>(p, s);
  });
}

}  // namespace bna::cuda
