// Host side of the forward kernels: argument validation and dispatch over (dh, dtype) for one Mode.
// Included by exactly one .cu per Mode, so each translation unit instantiates 4 kernels and the two
// units compile in parallel.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "attention/cuda/attn_fwd.cuh"
#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/launch.hpp"

namespace bna::cuda::detail {

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

inline Status validate(const char* who, const AttnArgs& a) {
  const std::string w(who);
  if (!a.q || !a.k || !a.v || !a.out || !a.lse)
    return invalid_argument(w + ": q, k, v, out and lse must be non-null device pointers");
  if (a.dtype != DType::kBF16 && a.dtype != DType::kF16)
    return invalid_argument(w + ": dtype=" + dtype_name(a.dtype) + ", expected bf16 or f16");
  if (a.dh != 64 && a.dh != 128)
    return invalid_argument(w + ": dh=" + std::to_string(a.dh) + ", expected 64 or 128");
  if (a.B < 1 || a.Hq < 1 || a.Hkv < 1 || a.Hq % a.Hkv != 0)
    return invalid_argument(w + ": B=" + std::to_string(a.B) + " Hq=" + std::to_string(a.Hq) +
                            " Hkv=" + std::to_string(a.Hkv) + ", expected B, Hkv >= 1 and Hq % Hkv == 0");
  if (a.T < 1 || a.T > (int64_t{1} << 30))
    return invalid_argument(w + ": T=" + std::to_string(a.T) + ", expected 1 <= T <= 2^30");
  const int64_t tiles = (a.T + kBr - 1) / kBr;
  if (tiles * a.B * a.Hq > std::numeric_limits<int32_t>::max())
    return invalid_argument(w + ": B*Hq*ceil(T/64)=" + std::to_string(tiles * a.B * a.Hq) +
                            ", expected < 2^31 CTAs");
  if (!aligned16(a.q) || !aligned16(a.k) || !aligned16(a.v) || !aligned16(a.out))
    return invalid_argument(w + ": q, k, v and out must be 16-byte aligned");
  if (!(a.scale >= 0.0f) || !std::isfinite(a.scale))
    return invalid_argument(w + ": scale=" + std::to_string(a.scale) + ", expected finite >= 0 (0 = 1/sqrt(dh))");
  return Status::ok();
}

template <int DH, bool BF16, Mode M>
Status launch_kernel(const FwdParams& p, int64_t ctas, cudaStream_t stream) {
  auto kernel = attn_fwd_kernel<DH, BF16, M>;
  constexpr int smem = smem_bytes<DH>();
  BNA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  kernel<<<static_cast<unsigned>(ctas), kThreads, smem, stream>>>(p);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

template <Mode M>
Status launch_fwd(const AttnArgs& a, int W, int S, const int32_t* extra, int C, void* stream) {
  FwdParams p{};
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
  p.n_qtiles = static_cast<int>((a.T + kBr - 1) / kBr);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.dh));
  p.scale_log2 = scale * 1.4426950408889634f;
  p.W = W;
  p.S = S;
  p.C = C;
  p.extra = C > 0 ? extra : nullptr;
  const int64_t ctas = static_cast<int64_t>(p.n_qtiles) * p.BH;
  auto s = static_cast<cudaStream_t>(stream);
  const bool bf16 = a.dtype == DType::kBF16;
  if (a.dh == 64) return bf16 ? launch_kernel<64, true, M>(p, ctas, s) : launch_kernel<64, false, M>(p, ctas, s);
  return bf16 ? launch_kernel<128, true, M>(p, ctas, s) : launch_kernel<128, false, M>(p, ctas, s);
}

}  // namespace bna::cuda::detail
