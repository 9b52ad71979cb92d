// Host launch API of the CUDA attention kernels (sm_90a). Includes no CUDA header: every pointer is a
// DEVICE pointer passed as void*/float*, the stream is a cudaStream_t passed as void* (nullptr: the
// default stream). Launches are asynchronous; errors from the launch itself come back as Status,
// errors inside the kernel surface at the next synchronising call.
//
// Tensors (dimension vocabulary of docs/numerics.md), all contiguous, 16-byte aligned:
//   q   [B, Hq,  T, dh]  bf16 | f16 (uint16_t bits)
//   k,v [B, Hkv, T, dh]  same dtype as q
//   out [B, Hq,  T, dh]  same dtype as q
//   lse [B, Hq,  T]      f32, natural log
// dh in {64, 128}; Hq % Hkv == 0 (query head hq reads KV head hq / (Hq / Hkv)).
#pragma once

#include <cstdint>
#include <string>

#include "bna/dtype.hpp"
#include "bna/status.hpp"

namespace bna::cuda {

struct AttnArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t B = 1, Hq = 1, Hkv = 1, T = 0, dh = 128;
  DType dtype = DType::kBF16;
  float scale = 0.0f;  // 0 -> 1/sqrt(dh)
};

// True when the CUDA runtime reports at least one device (never an error: false on any failure).
bool device_available();

// Name of device 0, or "none".
std::string device_name();

// Dense causal forward: out[i] = softmax_{j <= i}(scale * q_i . k_j) v_j, lse[i] = log sum.
// Errors: invalid_argument for null pointers, dtype f32, dh not in {64,128}, Hq % Hkv != 0, T < 1,
// misaligned pointers; internal for a failed CUDA call (message names the call and the CUDA error).
Status dense_causal_fwd(const AttnArgs& a, void* stream = nullptr);

// Streams forward (the StreamsGraph of src/attention/cpu/kernels.hpp): row i of KV head h attends
//   band [max(0, i-W), i]  U  landmarks {m*S : m*S < i - W}  U  {extra[h, i, c] : c < C, extra >= 0}
// in one kernel and one online softmax. extra: DEVICE int32 [Hkv, T, C], -1 padded, each entry <= i
// and disjoint from band and landmarks (entries > i are masked, never attended), or nullptr with C = 0.
// S = 0: no landmarks. Workspace: none.
// Errors: as dense_causal_fwd, plus W < 0, S < 0, C < 0, C > 0 with extra == nullptr.
Status streams_fwd(const AttnArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                   void* stream = nullptr);

}  // namespace bna::cuda
