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
  // Forward kernel variant, for A/B timing (docs/kernels.md): 1 = v3 (64-row query tiles, one
  // m-tile per warp, persistent grid), 2 = v4 (128-row query tiles, 2 m-tiles per warp),
  // 0 = auto (v3 below T = 16384, v4 from there). Backward ignores it.
  int fwd_variant = 0;
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

// ---- backward --------------------------------------------------------------------------------
// Gradients of dense_causal_fwd / streams_fwd. fwd holds q, k, v, the forward's out and lse and the
// shapes; dout [B, Hq, T, dh] in; dq [B, Hq, T, dh], dk, dv [B, Hkv, T, dh] out (the dtype of q,
// overwritten). Workspace: a DEVICE buffer of at least attn_bwd_workspace_bytes(fwd) bytes, 256-byte
// aligned (rowsum(dO*O) and f32 dK/dV accumulators); no allocation happens inside.
// Errors: as the forward, plus null/misaligned dout/dq/dk/dv, a missing or short workspace, B*Hq > 65535.
struct AttnBwdArgs {
  AttnArgs fwd;
  const void* dout = nullptr;
  void* dq = nullptr;
  void* dk = nullptr;
  void* dv = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
size_t attn_bwd_workspace_bytes(const AttnArgs& a);
Status dense_causal_bwd(const AttnBwdArgs& a, void* stream = nullptr);
// Same graph arguments as streams_fwd (W, S, extra [Hkv, T, C] device int32, C).
Status streams_bwd(const AttnBwdArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                   void* stream = nullptr);

// ---- decode (split-K) --------------------------------------------------------------------------
// Few queries per head against a long KV cache: q [B, Hq, Tq, dh], k/v [B, Hkv, Tk, dh], out
// [B, Hq, Tq, dh], lse [B, Hq, Tq]; query t sits at absolute position Tk - Tq + t. The keys a query
// may attend (dense: j <= pos; streams: band [pos-W, pos], landmarks m*S < pos - W, extras
// extra[h, pos, c] with extra [Hkv, Tk, C] indexed by absolute position) are split into chunks, one
// CTA per (chunk, b, KV head) serving all G*Tq query rows of that KV head; partial (o, max, sum)
// go to the workspace and a second kernel merges them (LSE merge of design-notes §2).
// Requires G*Tq <= 64 (G = Hq/Hkv); workspace: decode_workspace_bytes(...) bytes, 256-byte aligned.
struct DecodeArgs {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  float* lse = nullptr;
  int64_t B = 1, Hq = 1, Hkv = 1, Tq = 1, Tk = 0, dh = 128;
  DType dtype = DType::kBF16;
  float scale = 0.0f;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};
// Workspace bytes for a dense (dense = true) or streams decode with these W, S, C.
size_t decode_workspace_bytes(const DecodeArgs& a, bool dense, int64_t W, int64_t S, int64_t C);
Status dense_decode(const DecodeArgs& a, void* stream = nullptr);
Status streams_decode(const DecodeArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C,
                      void* stream = nullptr);

}  // namespace bna::cuda
