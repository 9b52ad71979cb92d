// Host side of the backward kernels: validation, workspace layout and the launches of attn_bwd.cuh
// for one Mode (dQ on the caller's stream, dK/dV beside it on a second one). Included by exactly one .cu per Mode (4 (dh, dtype) combinations each).
// Workspace layout: [D: B*Hq*T f32, padded to 256 B] [dK acc: B*Hkv*T*dh f32] [dV acc: same].
#pragma once

#include <algorithm>
#include <string>
#include <unordered_map>

#include "attention/cuda/attn_bwd.cuh"
#include "attention/cuda/attn_fwd_launch.cuh"

namespace bna::cuda::detail {

inline size_t pad256(size_t n) { return (n + 255) & ~size_t(255); }

inline size_t bwd_workspace(const AttnArgs& a) {
  const size_t rows = static_cast<size_t>(a.B * a.Hq * a.T);
  const size_t kv = static_cast<size_t>(a.B * a.Hkv * a.T * a.dh);
  return pad256(rows * 4) + 2 * pad256(kv * 4);
}

inline Status validate_bwd(const char* who, const AttnBwdArgs& a) {
  const std::string w(who);
  BNA_RETURN_IF_ERROR(validate(who, a.fwd));
  BNA_RETURN_IF_ERROR(reject_cache_view(who, a.fwd, true));
  if (!a.dout || !a.dq || !a.dk || !a.dv)
    return invalid_argument(w + ": dout, dq, dk and dv must be non-null device pointers");
  if (!aligned16(a.dout) || !aligned16(a.dq) || !aligned16(a.dk) || !aligned16(a.dv))
    return invalid_argument(w + ": dout, dq, dk and dv must be 16-byte aligned");
  const size_t need = bwd_workspace(a.fwd);
  if (a.workspace == nullptr || a.workspace_bytes < need)
    return invalid_argument(w + ": workspace of " + std::to_string(a.workspace_bytes) + " bytes, expected a device buffer of >= " +
                            std::to_string(need) + " (attn_bwd_workspace_bytes)");
  if ((reinterpret_cast<uintptr_t>(a.workspace) & 255u) != 0)
    return invalid_argument(w + ": workspace must be 256-byte aligned");
  if (a.fwd.B * a.fwd.Hq > 65535)
    return invalid_argument(w + ": B*Hq=" + std::to_string(a.fwd.B * a.fwd.Hq) + ", expected <= 65535");
  return Status::ok();
}

// A second stream on the current device for this host thread, created on first use and destroyed
// when the thread ends: the dK/dV kernel runs on it beside the dQ kernel, so each fills the other's
// tail. Backward calls from one thread share it (their dK/dV kernels queue behind each other).
inline Status side_stream(cudaStream_t& out) {
  struct Streams {
    std::unordered_map<int, cudaStream_t> by_device;
    ~Streams() {
      for (auto& [dev, s] : by_device) cudaStreamDestroy(s);  // at exit the runtime may be gone: ignored
    }
  };
  thread_local Streams streams;
  int dev = 0;
  BNA_CUDA_TRY(cudaGetDevice(&dev));
  auto it = streams.by_device.find(dev);
  if (it == streams.by_device.end()) {
    cudaStream_t s = nullptr;
    BNA_CUDA_TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    it = streams.by_device.emplace(dev, s).first;
  }
  out = it->second;
  return Status::ok();
}

// Runs launch(side) on the side stream after everything queued on `stream` so far, and makes
// `stream` wait for it (a fork and a join by events). Once the side stream has forked it is always
// joined back, also when a later step fails, so nothing it runs outlives what `stream` waits for.
// While `stream` is being captured into a CUDA graph, launch runs on `stream` itself: a side stream
// shared across calls must not be pulled into one caller's capture.
template <class F>
Status on_side_stream(cudaStream_t stream, F&& launch) {
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  BNA_CUDA_TRY(cudaStreamIsCapturing(stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return launch(stream);
  cudaStream_t side = nullptr;
  BNA_RETURN_IF_ERROR(side_stream(side));
  cudaEvent_t fork = nullptr, join = nullptr;
  bool forked = false;
  Status st = [&]() -> Status {
    BNA_CUDA_TRY(cudaEventCreateWithFlags(&fork, cudaEventDisableTiming));
    BNA_CUDA_TRY(cudaEventCreateWithFlags(&join, cudaEventDisableTiming));
    BNA_CUDA_TRY(cudaEventRecord(fork, stream));
    BNA_CUDA_TRY(cudaStreamWaitEvent(side, fork, 0));
    forked = true;
    return launch(side);
  }();
  if (forked) {  // join even after a failed launch
    Status js = [&]() -> Status {
      BNA_CUDA_TRY(cudaEventRecord(join, side));
      BNA_CUDA_TRY(cudaStreamWaitEvent(stream, join, 0));
      return Status::ok();
    }();
    if (st.is_ok()) st = js;
  }
  if (fork != nullptr) cudaEventDestroy(fork);  // released once the recorded work completes
  if (join != nullptr) cudaEventDestroy(join);
  return st;
}

template <int DH, bool BF16, Mode M>
Status launch_bwd_kernels(const BwdParams& bp, cudaStream_t stream) {
  const FwdParams& p = bp.f;
  const int64_t rows = static_cast<int64_t>(p.BH) * p.T;
  {
    const int64_t threads = rows * (DH / 8);
    bwd_dot_kernel<DH, BF16><<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
        p.o, bp.dout, const_cast<float*>(bp.D), rows, p.T, p.Hq, p.os_b, p.os_h, p.os_t);
    BNA_CUDA_TRY(cudaGetLastError());
  }
  constexpr int smem = bwd_smem_bytes<DH>();
  // dK/dV and dQ are independent once D is written (the extras' dK/dV scatter in the dQ kernel and
  // the dK/dV kernel both add with atomics), so they run side by side: measured on an H100, the
  // backward took 3-5% less time for dense shapes and 16% less for streams at T=8192 with a cycle
  // (docs/kernels.md).
  auto dkdv = [&](cudaStream_t s) -> Status {
    auto k = bwd_dkdv_kernel<DH, BF16, M>;
    BNA_CUDA_TRY(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    const int64_t items = static_cast<int64_t>(bp.n_lt) * bp.n_lch + static_cast<int64_t>(bp.n_kt) * bp.n_bch;
    k<<<dim3(static_cast<unsigned>(items), static_cast<unsigned>(p.BH)), kThreads, smem, s>>>(bp);
    BNA_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  };
  auto dq = [&](cudaStream_t s) -> Status {
    auto k = bwd_dq_kernel<DH, BF16, M>;
    BNA_CUDA_TRY(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    k<<<static_cast<unsigned>(static_cast<int64_t>(p.n_qtiles) * p.BH), kThreads, smem, s>>>(bp);
    BNA_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  };
  return on_side_stream(stream, [&](cudaStream_t side) -> Status {
    BNA_RETURN_IF_ERROR(dkdv(side));
    return dq(stream);
  });
}

template <Mode M>
Status launch_bwd(const AttnBwdArgs& a, int W, int S, const int32_t* extra, int C, void* stream) {
  const AttnArgs& f = a.fwd;
  BwdParams bp{};
  FwdParams& p = bp.f;
  p.q = static_cast<const uint16_t*>(f.q);
  p.k = static_cast<const uint16_t*>(f.k);
  p.v = static_cast<const uint16_t*>(f.v);
  p.o = static_cast<uint16_t*>(f.out);
  p.lse = f.lse;
  p.T = static_cast<int>(f.T);
  p.kv_rows = p.T;
  p.Hq = static_cast<int>(f.Hq);
  p.Hkv = static_cast<int>(f.Hkv);
  p.group = static_cast<int>(f.Hq / f.Hkv);
  p.BH = static_cast<int>(f.B * f.Hq);
  p.n_qtiles = static_cast<int>((f.T + kBr - 1) / kBr);
  const float scale = f.scale > 0.0f ? f.scale : 1.0f / std::sqrt(static_cast<float>(f.dh));
  p.scale_log2 = scale * 1.4426950408889634f;
  p.W = W;
  p.S = S;
  p.C = C;
  p.extra = C > 0 ? extra : nullptr;
  set_strides(p, f);
  bp.dout = static_cast<const uint16_t*>(a.dout);
  bp.dq = static_cast<uint16_t*>(a.dq);
  bp.scale = scale;
  char* ws = static_cast<char*>(a.workspace);
  const size_t rows = static_cast<size_t>(f.B * f.Hq * f.T);
  const size_t kv = static_cast<size_t>(f.B * f.Hkv * f.T * f.dh);
  bp.D = reinterpret_cast<const float*>(ws);
  bp.dk_acc = reinterpret_cast<float*>(ws + pad256(rows * 4));
  bp.dv_acc = reinterpret_cast<float*>(ws + pad256(rows * 4) + pad256(kv * 4));
  const int T = p.T;
  if constexpr (M == Mode::kDense) {
    bp.n_land = 0;
    bp.Wb = T;
  } else {
    const int lim = T - 1 - W;  // a landmark j is used by some row iff j < T - 1 - W
    bp.n_land = (S > 0 && lim > 0) ? (lim - 1) / S + 1 : 0;
    bp.Wb = W;
  }
  bp.n_lt = (bp.n_land + 63) / 64;
  bp.n_lch = (p.n_qtiles + kQChunk - 1) / kQChunk;
  bp.n_kt = p.n_qtiles;
  const int band_tiles = static_cast<int>(std::min<int64_t>(p.n_qtiles, (static_cast<int64_t>(bp.Wb) + 63) / 64 + 2));
  bp.n_bch = (band_tiles + kQChunk - 1) / kQChunk;

  bp.direct = p.group == 1 && bp.n_lt == 0 && bp.n_bch == 1 && p.extra == nullptr;
  bp.dk_out = static_cast<uint16_t*>(a.dk);
  bp.dv_out = static_cast<uint16_t*>(a.dv);
  auto s = static_cast<cudaStream_t>(stream);
  if (!bp.direct) BNA_CUDA_TRY(cudaMemsetAsync(bp.dk_acc, 0, 2 * pad256(kv * 4), s));
  const bool bf16 = f.dtype == DType::kBF16;
  auto kernels = [&]() -> Status {
#if BNA_CUDA_DH64
    if (f.dh == 64) return bf16 ? launch_bwd_kernels<64, true, M>(bp, s) : launch_bwd_kernels<64, false, M>(bp, s);
#endif
#if BNA_CUDA_DH128
    if (f.dh == 128) return bf16 ? launch_bwd_kernels<128, true, M>(bp, s) : launch_bwd_kernels<128, false, M>(bp, s);
#endif
    return invalid_argument("attention cuda: dh=" + std::to_string(f.dh) + " was not compiled in (BNA_CUDA_HEAD_DIMS)");
  };
  BNA_RETURN_IF_ERROR(kernels());
  if (bp.direct) return Status::ok();
  const int64_t n4 = static_cast<int64_t>(kv / 4);
  const unsigned blocks = static_cast<unsigned>((n4 + 255) / 256);
  const int dh4 = static_cast<int>(f.dh / 4);
  for (auto [acc, out] : {std::pair{bp.dk_acc, a.dk}, {bp.dv_acc, a.dv}}) {
    auto* dst = static_cast<uint16_t*>(out);
    if (bf16)
      bwd_convert_kernel<true><<<blocks, 256, 0, s>>>(acc, dst, n4, dh4, p.T, p.Hkv, p.ks_b, p.ks_h, p.ks_t);
    else
      bwd_convert_kernel<false><<<blocks, 256, 0, s>>>(acc, dst, n4, dh4, p.T, p.Hkv, p.ks_b, p.ks_h, p.ks_t);
  }
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace bna::cuda::detail
