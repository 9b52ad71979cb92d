// Layout kernels of the reference GPT's CUDA step (API: gpt_kernels.hpp), for the layers whose
// attention path reads contiguous [B, H, T, dh] tensors only (block-sparse, gather, permute-window:
// attn::run takes strided views on dense and streams plans only; cuda_gpt.cpp). Unchanged from the
// version every CUDA GPT layer used before the strided views.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>

#include "attention/cuda/cuda_check.cuh"
#include "model/cuda/gpt_kernels.hpp"
#include "model/cuda/kernel_common.cuh"

namespace bna::model::cuda {
namespace {

using common::f2bf;
using common::grid_for;
using common::kThreads;
using common::launched;

// Layout kernels: one thread per 8 consecutive dims (16 bytes of bf16) of one (token, head).
// Index math in 32 bits (every count here is < 2^31 / 8), offsets in 64.
__global__ void split_qkv_kernel(const uint4* qkv, uint4* q, uint4* k, uint4* v, int T, int Hq, int Hkv, int dh8,
                                 int count) {
  const int row8 = (Hq + 2 * Hkv) * dh8;
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / row8, col = e - bt * row8, h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    const uint4 val = qkv[e];
    if (h < Hq) q[((static_cast<int64_t>(b) * Hq + h) * T + t) * dh8 + d] = val;
    else if (h < Hq + Hkv) k[((static_cast<int64_t>(b) * Hkv + h - Hq) * T + t) * dh8 + d] = val;
    else v[((static_cast<int64_t>(b) * Hkv + h - Hq - Hkv) * T + t) * dh8 + d] = val;
  }
}

__global__ void merge_qkv_kernel(const uint4* dq, const uint4* dk, const uint4* dv, uint4* dqkv, int T, int Hq,
                                 int Hkv, int dh8, int count) {
  const int row8 = (Hq + 2 * Hkv) * dh8;
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / row8, col = e - bt * row8, h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    uint4 val;
    if (h < Hq) val = dq[((static_cast<int64_t>(b) * Hq + h) * T + t) * dh8 + d];
    else if (h < Hq + Hkv) val = dk[((static_cast<int64_t>(b) * Hkv + h - Hq) * T + t) * dh8 + d];
    else val = dv[((static_cast<int64_t>(b) * Hkv + h - Hq - Hkv) * T + t) * dh8 + d];
    dqkv[e] = val;
  }
}

// e runs over the token-major layout [B*T, H, dh8].
__global__ void heads_to_tokens_kernel(const uint4* o, uint4* y, int T, int H, int dh8, int count) {
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / (H * dh8), col = e - bt * (H * dh8), h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    y[e] = o[((static_cast<int64_t>(b) * H + h) * T + t) * dh8 + d];
  }
}

__global__ void tokens_to_heads_kernel(const float4* y, uint4* o, int T, int H, int dh8, int count) {
  for (int e = blockIdx.x * kThreads + threadIdx.x; e < count; e += gridDim.x * kThreads) {
    const int bt = e / (H * dh8), col = e - bt * (H * dh8), h = col / dh8, d = col - h * dh8, b = bt / T, t = bt - b * T;
    const float4 a = y[2 * static_cast<int64_t>(e)], c = y[2 * static_cast<int64_t>(e) + 1];
    uint4 r;
    r.x = static_cast<uint32_t>(f2bf(a.x)) | (static_cast<uint32_t>(f2bf(a.y)) << 16);
    r.y = static_cast<uint32_t>(f2bf(a.z)) | (static_cast<uint32_t>(f2bf(a.w)) << 16);
    r.z = static_cast<uint32_t>(f2bf(c.x)) | (static_cast<uint32_t>(f2bf(c.y)) << 16);
    r.w = static_cast<uint32_t>(f2bf(c.z)) | (static_cast<uint32_t>(f2bf(c.w)) << 16);
    o[((static_cast<int64_t>(b) * H + h) * T + t) * dh8 + d] = r;
  }
}

}  // namespace

Status layout_check(const char* who, int64_t count8, int64_t dh) {
  if (dh % 8 != 0 || count8 > 0x7fffffff)
    return invalid_argument(std::string(who) + ": dh=" + std::to_string(dh) + ", " + std::to_string(count8) +
                            " 16-byte chunks; expected dh % 8 == 0 and < 2^31 chunks");
  return Status::ok();
}
Status split_qkv(const uint16_t* qkv, uint16_t* q, uint16_t* k, uint16_t* v, int64_t B, int64_t T, int64_t Hq,
                 int64_t Hkv, int64_t dh) {
  const int64_t count = B * T * (Hq + 2 * Hkv) * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("split_qkv", count, dh));
  split_qkv_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(qkv), reinterpret_cast<uint4*>(q),
                                                  reinterpret_cast<uint4*>(k), reinterpret_cast<uint4*>(v),
                                                  static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(Hkv),
                                                  static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status merge_qkv(const uint16_t* dq, const uint16_t* dk, const uint16_t* dv, uint16_t* dqkv, int64_t B, int64_t T,
                 int64_t Hq, int64_t Hkv, int64_t dh) {
  const int64_t count = B * T * (Hq + 2 * Hkv) * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("merge_qkv", count, dh));
  merge_qkv_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(dq), reinterpret_cast<const uint4*>(dk),
                                                  reinterpret_cast<const uint4*>(dv), reinterpret_cast<uint4*>(dqkv),
                                                  static_cast<int>(T), static_cast<int>(Hq), static_cast<int>(Hkv),
                                                  static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status heads_to_tokens(const uint16_t* o, uint16_t* y, int64_t B, int64_t H, int64_t T, int64_t dh) {
  const int64_t count = B * H * T * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("heads_to_tokens", count, dh));
  heads_to_tokens_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const uint4*>(o), reinterpret_cast<uint4*>(y),
                                                        static_cast<int>(T), static_cast<int>(H),
                                                        static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}
Status tokens_to_heads(const float* y, uint16_t* o, int64_t B, int64_t H, int64_t T, int64_t dh) {
  const int64_t count = B * H * T * dh / 8;
  BNA_RETURN_IF_ERROR(layout_check("tokens_to_heads", count, dh));
  tokens_to_heads_kernel<<<grid_for(count), kThreads>>>(reinterpret_cast<const float4*>(y), reinterpret_cast<uint4*>(o),
                                                        static_cast<int>(T), static_cast<int>(H),
                                                        static_cast<int>(dh / 8), static_cast<int>(count));
  return launched();
}

}  // namespace bna::model::cuda
