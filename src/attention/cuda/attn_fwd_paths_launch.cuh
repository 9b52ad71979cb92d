// Host-side helpers shared by the block-sparse, permute-window and gather launchers: TileParams from
// AttnArgs, one-time shared-memory attribute per kernel, dispatch over (dh, dtype).
#pragma once

#include <cmath>
#include <string>

#include "attention/cuda/attn_fwd_gather.cuh"
#include "attention/cuda/attn_fwd_launch.cuh"
#include "attention/cuda/attn_fwd_tiles.cuh"

namespace bna::cuda::detail {

inline float scale_log2_of(const AttnArgs& a) {
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.dh));
  return scale * 1.4426950408889634f;
}

inline TileParams tile_params(const AttnArgs& a) {
  TileParams p{};
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.o = static_cast<uint16_t*>(a.out);
  p.lse = a.lse;
  p.T = static_cast<int>(a.T);
  p.Hq = static_cast<int>(a.Hq);
  p.Hkv = static_cast<int>(a.Hkv);
  p.group = static_cast<int>(a.Hq / a.Hkv);
  p.BH = static_cast<int>(a.B * a.Hq);
  p.scale_log2 = scale_log2_of(a);
  return p;
}

inline GatherParams gather_params(const AttnArgs& a) {
  GatherParams p{};
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.o = static_cast<uint16_t*>(a.out);
  p.lse = a.lse;
  p.T = static_cast<int>(a.T);
  p.Hq = static_cast<int>(a.Hq);
  p.Hkv = static_cast<int>(a.Hkv);
  p.group = static_cast<int>(a.Hq / a.Hkv);
  p.rows = a.B * a.Hq * a.T;
  p.scale_log2 = scale_log2_of(a);
  return p;
}

template <int DH, bool BF16, bool PW>
Status launch_tiles(const TileParams& p, cudaStream_t stream) {
  static bool attr_set = false;  // the >48 KB dynamic shared-memory opt-in, once per kernel
  constexpr int smem = smem_bytes_tiles<DH>();
  if (!attr_set) {
    BNA_CUDA_TRY(cudaFuncSetAttribute(attn_fwd_tiles_kernel<DH, BF16, PW>,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    attr_set = true;
  }
  const int64_t grid = static_cast<int64_t>(p.n_qtiles) * p.BH;
  if (grid == 0) return Status::ok();
  attn_fwd_tiles_kernel<DH, BF16, PW><<<static_cast<unsigned>(grid), kThreads, smem, stream>>>(p);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

template <int DH, bool BF16, bool UNION>
Status launch_gather(const GatherParams& p, cudaStream_t stream) {
  const int64_t grid = (p.rows + kGatherWarps - 1) / kGatherWarps;
  attn_fwd_gather_kernel<DH, BF16, UNION><<<static_cast<unsigned>(grid), kGatherWarps * 32, 0, stream>>>(p);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

// f(std::integral_constant<int, DH>, std::bool_constant<BF16>) for the compiled (dh, dtype).
template <class F>
Status dispatch_dh_dtype(const AttnArgs& a, F&& f) {
  const bool bf16 = a.dtype == DType::kBF16;
#if BNA_CUDA_DH64
  if (a.dh == 64) return bf16 ? f(std::integral_constant<int, 64>{}, std::true_type{})
                              : f(std::integral_constant<int, 64>{}, std::false_type{});
#endif
#if BNA_CUDA_DH128
  if (a.dh == 128) return bf16 ? f(std::integral_constant<int, 128>{}, std::true_type{})
                               : f(std::integral_constant<int, 128>{}, std::false_type{});
#endif
  return invalid_argument("attention cuda: dh=" + std::to_string(a.dh) + " was not compiled in (BNA_CUDA_HEAD_DIMS)");
}

}  // namespace bna::cuda::detail
