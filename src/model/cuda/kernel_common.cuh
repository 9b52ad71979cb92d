// Shared pieces of the reference GPT's CUDA kernel units (gpt_kernels.cu, layernorm_kernels.cu,
// layout_kernels.cu): block size, bf16 rounding, grid sizing and the launch check. Internal to
// src/model/cuda; each unit keeps its kernels in its own anonymous namespace.
#pragma once

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>

#include "attention/cuda/cuda_check.cuh"
#include "bna/status.hpp"

namespace bna::model::cuda::common {

inline constexpr int kThreads = 256;

__device__ __forceinline__ uint16_t f2bf(float f) { return __bfloat16_as_ushort(__float2bfloat16_rn(f)); }

// Blocks for a grid-stride loop over `count` elements: one thread each, at most 64 blocks per
// multiprocessor of an H100 (132).
inline unsigned grid_for(int64_t count) {
  return static_cast<unsigned>(std::max<int64_t>(1, std::min<int64_t>((count + kThreads - 1) / kThreads, 132 * 64)));
}

// The status of the last launch.
inline Status launched() {
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace bna::model::cuda::common
