// Host side of the forward kernels: argument validation and dispatch over (dh, dtype) for one Mode.
// Included by exactly one .cu per Mode, so each translation unit instantiates 4 kernels and the two
// units compile in parallel.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "attention/cuda/attn_fwd.cuh"
#include "attention/cuda/attn_fwd_m16.cuh"
#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/cuda_config.hpp"
#include "attention/cuda/kv_view.hpp"
#include "attention/cuda/launch.hpp"

namespace bna::cuda::detail {

inline bool strided(const AttnArgs& a) {
  for (int i = 0; i < 3; ++i)
    if (a.q_strides[i] != 0 || a.kv_strides[i] != 0 || a.o_strides[i] != 0) return true;
  return false;
}

// Strided q / k / v / out (AttnArgs::*_strides): only with the plain view, each stride a multiple of
// 8 elements, head and row strides at least dh, and no two elements of a tensor at one address
// (out, dq, dk, dv are written through them): sorted by stride, each dim of extent > 1 starts past
// the span of the smaller ones.
inline Status validate_strides(const std::string& w, const AttnArgs& a) {
  if (!strided(a)) return Status::ok();
  if (a.q_offset != 0 || a.kv_rows != 0 || a.kv_pages != nullptr)
    return invalid_argument(w + ": strided q/k/v/out with q_offset=" + std::to_string(a.q_offset) + " kv_rows=" +
                            std::to_string(a.kv_rows) + (a.kv_pages ? " and kv_pages" : "") +
                            ", expected q_offset 0, kv_rows 0 and no kv_pages");
  for (const int64_t* s : {a.q_strides, a.kv_strides, a.o_strides})
    for (int i = 0; i < 3; ++i)
      if (s[i] < (i == 0 ? 0 : a.dh) || s[i] % 8 != 0)
        return invalid_argument(w + ": stride " + std::to_string(s[i]) + " (batch, head, row = 0, 1, 2: " +
                                std::to_string(i) + "), expected a multiple of 8 elements" +
                                (i > 0 ? " >= dh=" + std::to_string(a.dh) : std::string()));
  const char* names[3] = {"q", "k/v", "out"};
  const int64_t* roles[3] = {a.q_strides, a.kv_strides, a.o_strides};
  const int64_t heads[3] = {a.Hq, a.Hkv, a.Hq};
  for (int r = 0; r < 3; ++r) {
    std::pair<int64_t, int64_t> d[4] = {{1, a.dh}, {roles[r][1], heads[r]}, {roles[r][2], a.T}, {roles[r][0], a.B}};
    std::sort(d, d + 4);
    int64_t span = 0;  // the largest offset the smaller dims reach
    for (const auto& [stride, extent] : d) {
      if (extent <= 1) continue;
      if (stride <= span)
        return invalid_argument(w + ": " + names[r] + " strides [" + std::to_string(roles[r][0]) + ", " +
                                std::to_string(roles[r][1]) + ", " + std::to_string(roles[r][2]) + ", 1] overlap for B=" +
                                std::to_string(a.B) + " H=" + std::to_string(heads[r]) + " T=" + std::to_string(a.T) +
                                " dh=" + std::to_string(a.dh) + "; expected a layout with one element per address");
      span = stride * (extent - 1) + span;
    }
  }
  return Status::ok();
}

// The kernel strides: the given ones, or contiguous [B, H, rows, dh] (rows = T - q_offset for q and
// out, kv_rows or T for k / v).
inline void set_strides(FwdParams& p, const AttnArgs& a) {
  const int64_t dh = a.dh, qrows = a.T - a.q_offset, kvr = a.kv_rows > 0 ? a.kv_rows : a.T;
  const bool s = strided(a);
  auto pick = [&](const int64_t* given, int64_t H, int64_t rows, int64_t& b, int64_t& h, int64_t& t) {
    b = s ? given[0] : H * rows * dh;
    h = s ? given[1] : rows * dh;
    t = s ? given[2] : dh;
  };
  pick(a.q_strides, a.Hq, qrows, p.qs_b, p.qs_h, p.qs_t);
  pick(a.kv_strides, a.Hkv, kvr, p.ks_b, p.ks_h, p.ks_t);
  pick(a.o_strides, a.Hq, qrows, p.os_b, p.os_h, p.os_t);
}

inline Status validate(const char* who, const AttnArgs& a) {
  const std::string w(who);
  const bool paged = a.kv_pages != nullptr;
  if (!a.q || (!paged && (!a.k || !a.v)) || !a.out || !a.lse)
    return invalid_argument(w + ": q, k, v (or kv_pages), out and lse must be non-null device pointers");
  if (a.dtype != DType::kBF16 && a.dtype != DType::kF16)
    return invalid_argument(w + ": dtype=" + dtype_name(a.dtype) + ", expected bf16 or f16");
  if (a.dh != 64 && a.dh != 128)
    return invalid_argument(w + ": dh=" + std::to_string(a.dh) + ", expected 64 or 128");
  if (!head_dim_compiled(a.dh))
    return invalid_argument(w + ": dh=" + std::to_string(a.dh) + " was not compiled in (CMake BNA_CUDA_HEAD_DIMS)");
  if (a.B < 1 || a.Hq < 1 || a.Hkv < 1 || a.Hq % a.Hkv != 0)
    return invalid_argument(w + ": B=" + std::to_string(a.B) + " Hq=" + std::to_string(a.Hq) +
                            " Hkv=" + std::to_string(a.Hkv) + ", expected B, Hkv >= 1 and Hq % Hkv == 0");
  if (a.T < 1 || a.T > (int64_t{1} << 30))
    return invalid_argument(w + ": T=" + std::to_string(a.T) + ", expected 1 <= T <= 2^30");
  const int64_t tiles = (a.T + kBr - 1) / kBr;
  if (tiles * a.B * a.Hq > std::numeric_limits<int32_t>::max())
    return invalid_argument(w + ": B*Hq*ceil(T/64)=" + std::to_string(tiles * a.B * a.Hq) +
                            ", expected < 2^31 CTAs");
  if (!aligned16(a.q) || (!paged && (!aligned16(a.k) || !aligned16(a.v))) || !aligned16(a.out))
    return invalid_argument(w + ": q, k, v and out must be 16-byte aligned");
  if (a.q_offset < 0 || a.q_offset >= a.T)
    return invalid_argument(w + ": q_offset=" + std::to_string(a.q_offset) + ", expected 0 <= q_offset < T=" +
                            std::to_string(a.T));
  BNA_RETURN_IF_ERROR(validate_pages(w, a.kv_pages, a.kv_page, a.kv_pages_stride, a.T));
  if (a.fwd_variant < 0 || a.fwd_variant > 2)
    return invalid_argument(w + ": fwd_variant=" + std::to_string(a.fwd_variant) + ", expected 0, 1 or 2");
  if (!(a.scale >= 0.0f) || !std::isfinite(a.scale))
    return invalid_argument(w + ": scale=" + std::to_string(a.scale) + ", expected finite >= 0 (0 = 1/sqrt(dh))");
  if (a.kv_rows != 0 && (a.kv_rows < a.T || a.kv_rows > (int64_t{1} << 30)))
    return invalid_argument(w + ": kv_rows=" + std::to_string(a.kv_rows) + ", expected 0 or T=" + std::to_string(a.T) +
                            " <= kv_rows <= 2^30");
  return validate_strides(w, a);
}

// For the kernels that read contiguous K/V [.., T, dh] with Tq == Tk only (everything but dense and
// streams forward): kv_rows, q_offset and kv_pages are refused by name, and strides unless
// strides_ok (dense and streams backward).
inline Status reject_cache_view(const char* who, const AttnArgs& a, bool strides_ok = false) {
  if (!strides_ok && strided(a))
    return invalid_argument(std::string(who) + ": strided q/k/v/out, expected contiguous (only the dense and "
                            "streams kernels take strides)");
  if (a.kv_rows != 0 && a.kv_rows != a.T)
    return invalid_argument(std::string(who) + ": kv_rows=" + std::to_string(a.kv_rows) +
                            ", expected 0 or T (only dense_causal_fwd and streams_fwd read a strided KV cache)");
  if (a.q_offset != 0)
    return invalid_argument(std::string(who) + ": q_offset=" + std::to_string(a.q_offset) +
                            ", expected 0 (only dense_causal_fwd and streams_fwd take Tq < Tk)");
  if (a.kv_pages != nullptr)
    return invalid_argument(std::string(who) + ": kv_pages is set, expected nullptr (only dense_causal_fwd, "
                            "streams_fwd and the decode kernels read a paged KV cache)");
  return Status::ok();
}

// Grid: one CTA per item, or (persistent kernels) as many CTAs as fit on the device at once
// (occupancy x SMs, read once per kernel).
template <class K>
Status launch_grid(K kernel, int smem, bool persistent, const FwdParams& p, cudaStream_t stream, int& resident) {
  if (resident == 0) {
    BNA_CUDA_TRY(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int dev = 0, sms = 0, per_sm = 0;
    BNA_CUDA_TRY(cudaGetDevice(&dev));
    BNA_CUDA_TRY(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    BNA_CUDA_TRY(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kThreads, smem));
    resident = std::max(1, per_sm) * std::max(1, sms);
  }
  const int64_t grid = persistent ? std::min<int64_t>(p.n_items, resident) : p.n_items;
  kernel<<<static_cast<unsigned>(grid), kThreads, smem, stream>>>(p);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

// Variant 0 (auto): 128-row tiles from T = 16k up (dense 64k: 106 vs 132 ms; streams 64k: 3.85 vs
// 4.48 ms, H200), 64-row persistent tiles below (streams 4k: 0.128 vs 0.142 ms: twice the CTAs),
// except dense at dh = 64, 128-row tiles throughout (H100, H = 12: B = 16, T = 1024: 0.146 vs
// 0.170 ms; B = 1, T = 8192: 0.484 vs 0.700 ms; bench/results/gpu-h100-gpt-train-fusions-2026-11-27.json).
template <int DH, bool BF16, Mode M, int VIEW>
Status launch_kernel(FwdParams p, int variant, int64_t T, cudaStream_t stream) {
  if (variant == 0) variant = (T < 16384 && !(M == Mode::kDense && DH == 64)) ? 1 : 2;
  if (variant == 1) {
    static int resident = 0;
    p.q_tile0 = p.q_off / kBr;
    p.n_qtiles = static_cast<int>((T + kBr - 1) / kBr) - p.q_tile0;
    p.n_items = p.n_qtiles * p.BH;
    return launch_grid(attn_fwd_m16_kernel<DH, BF16, M, VIEW>, smem_bytes_m16<DH>(), true, p, stream, resident);
  }
  static int resident = 0;
  p.q_tile0 = p.q_off / kFwdBr;
  p.n_qtiles = static_cast<int>((T + kFwdBr - 1) / kFwdBr) - p.q_tile0;
  p.n_items = p.n_qtiles * p.BH;
  return launch_grid(attn_fwd_kernel<DH, BF16, M, VIEW>, smem_bytes<DH>(), kFwdPersistent, p, stream, resident);
}

// The kernels of one (mode, view) over the compiled head dims and both dtypes. The plain view is
// instantiated by each mode's launcher TU, the others only in attn_fwd_views_*.cu (extern below),
// so the TUs compile in parallel.
template <Mode M, int VIEW>
Status launch_view(const FwdParams& p, const AttnArgs& a, cudaStream_t s) {
  const bool bf16 = a.dtype == DType::kBF16;
#if BNA_CUDA_DH64
  if (a.dh == 64) return bf16 ? launch_kernel<64, true, M, VIEW>(p, a.fwd_variant, a.T, s)
                              : launch_kernel<64, false, M, VIEW>(p, a.fwd_variant, a.T, s);
#endif
#if BNA_CUDA_DH128
  if (a.dh == 128) return bf16 ? launch_kernel<128, true, M, VIEW>(p, a.fwd_variant, a.T, s)
                               : launch_kernel<128, false, M, VIEW>(p, a.fwd_variant, a.T, s);
#endif
  return invalid_argument("attention cuda: dh=" + std::to_string(a.dh) + " was not compiled in (BNA_CUDA_HEAD_DIMS)");
}
extern template Status launch_view<Mode::kDense, kViewOffset>(const FwdParams&, const AttnArgs&, cudaStream_t);
extern template Status launch_view<Mode::kDense, kViewPaged>(const FwdParams&, const AttnArgs&, cudaStream_t);
extern template Status launch_view<Mode::kStreams, kViewOffset>(const FwdParams&, const AttnArgs&, cudaStream_t);

template <Mode M>
Status launch_fwd(const AttnArgs& a, int W, int S, const int32_t* extra, int C, void* stream) {
  FwdParams p{};
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.o = static_cast<uint16_t*>(a.out);
  p.lse = a.lse;
  p.T = static_cast<int>(a.T);
  p.kv_rows = static_cast<int>(a.kv_rows > 0 ? a.kv_rows : a.T);
  p.q_off = static_cast<int>(a.q_offset);
  if (a.kv_pages != nullptr) {
    p.pages = reinterpret_cast<const uint16_t* const*>(a.kv_pages);
    p.pshift = page_shift(a.kv_page);
    p.pmask = static_cast<int>(a.kv_page - 1);
    p.page_stride = static_cast<int>(a.kv_pages_stride);
    p.page_v = a.Hkv * a.kv_page * a.dh;
  }
  p.Hq = static_cast<int>(a.Hq);
  p.Hkv = static_cast<int>(a.Hkv);
  p.group = static_cast<int>(a.Hq / a.Hkv);
  p.BH = static_cast<int>(a.B * a.Hq);
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.dh));
  p.scale_log2 = scale * 1.4426950408889634f;
  p.W = W;
  p.S = S;
  p.C = C;
  p.extra = C > 0 ? extra : nullptr;
  set_strides(p, a);
  auto s = static_cast<cudaStream_t>(stream);
  if (p.pages != nullptr) {  // paged K/V: dense only (the model pages its dense layers)
    if constexpr (M == Mode::kDense) return launch_view<M, kViewPaged>(p, a, s);
    return invalid_argument("streams_fwd: kv_pages is set, expected nullptr (dense_causal_fwd and the decode kernels "
                            "read a paged KV cache)");
  }
  if (p.q_off > 0) return launch_view<M, kViewOffset>(p, a, s);
  return launch_view<M, kViewPlain>(p, a, s);
}

}  // namespace bna::cuda::detail
