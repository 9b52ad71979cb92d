// Split-K decode launchers (dense and streams): validation, chunk geometry, workspace layout
// [part_o: n_chunks*B*Hkv*R*dh f32][part_m: n_chunks*B*Hkv*R][part_l: same], each padded to 256 B.
#include <algorithm>
#include <cmath>
#include <string>

#include "attention/cuda/attn_decode.cuh"
#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/cuda_config.hpp"
#include "attention/cuda/kv_view.hpp"
#include "attention/cuda/launch.hpp"

namespace bna::cuda {
namespace {

using detail::DecParams;

size_t pad256(size_t n) { return (n + 255) & ~size_t(255); }

// Fills the candidate and chunk geometry of p (no pointers) from the arguments.
void geometry(const DecodeArgs& a, bool dense, int64_t W, int64_t S, int64_t C, DecParams& p) {
  p.Hq = static_cast<int>(a.Hq);
  p.Hkv = static_cast<int>(a.Hkv);
  p.G = static_cast<int>(a.Hq / std::max<int64_t>(1, a.Hkv));
  p.Tq = static_cast<int>(a.Tq);
  p.Tk = static_cast<int>(a.Tk);
  p.kv_rows = static_cast<int>(a.kv_rows > 0 ? a.kv_rows : a.Tk);
  p.R = p.G * p.Tq;
  p.dense = dense;
  W = std::min(W, a.Tk);
  S = std::min(S, a.Tk);
  p.W = static_cast<int>(W);
  p.S = static_cast<int>(S);
  p.C = static_cast<int>(C);
  const int64_t maxpos = a.Tk - 1, minpos = a.Tk - a.Tq;
  if (dense) {
    p.n_land = 0;
    p.band_lo = 0;
    p.n_band = static_cast<int>(a.Tk);
    p.n_cand = static_cast<int>(a.Tk);
  } else {
    const int64_t lim = maxpos - W;
    p.n_land = (S > 0 && lim > 0) ? static_cast<int>((lim - 1) / S + 1) : 0;
    p.band_lo = static_cast<int>(std::max<int64_t>(0, minpos - W));
    p.n_band = static_cast<int>(maxpos - p.band_lo + 1);
    p.n_cand = p.n_land + p.n_band + static_cast<int>(a.Tq * C);
  }
  // About 16 CTAs per SM of 132 over all (b, KV head) pairs, at least 32 candidates per chunk
  // (4 per softmax state): short caches are latency-bound, so they get many small chunks.
  const int64_t bhkv = a.B * a.Hkv;
  const int64_t want = std::max<int64_t>(1, (2112 + bhkv - 1) / bhkv);
  const int64_t chunk = std::max<int64_t>(32, (p.n_cand + want - 1) / want);
  p.chunk = static_cast<int>(chunk);
  p.n_chunks = static_cast<int>((p.n_cand + chunk - 1) / chunk);
}

size_t workspace_for(const DecodeArgs& a, const DecParams& p) {
  const size_t rows = static_cast<size_t>(p.n_chunks) * static_cast<size_t>(a.B * a.Hkv) * static_cast<size_t>(p.R);
  return pad256(rows * static_cast<size_t>(a.dh) * 4) + 2 * pad256(rows * 4);
}

using detail::aligned16;

Status validate(const char* who, const DecodeArgs& a) {
  const std::string w(who);
  const bool paged = a.kv_pages != nullptr;
  if (!a.q || (!paged && (!a.k || !a.v)) || !a.out || !a.lse)
    return invalid_argument(w + ": q, k, v (or kv_pages), out and lse must be non-null device pointers");
  if (a.dtype != DType::kBF16 && a.dtype != DType::kF16)
    return invalid_argument(w + ": dtype=" + dtype_name(a.dtype) + ", expected bf16 or f16");
  if (a.dh != 64 && a.dh != 128) return invalid_argument(w + ": dh=" + std::to_string(a.dh) + ", expected 64 or 128");
  if (!detail::head_dim_compiled(a.dh))
    return invalid_argument(w + ": dh=" + std::to_string(a.dh) + " was not compiled in (CMake BNA_CUDA_HEAD_DIMS)");
  if (a.B < 1 || a.Hq < 1 || a.Hkv < 1 || a.Hq % a.Hkv != 0)
    return invalid_argument(w + ": B=" + std::to_string(a.B) + " Hq=" + std::to_string(a.Hq) + " Hkv=" +
                            std::to_string(a.Hkv) + ", expected B, Hkv >= 1 and Hq % Hkv == 0");
  if (a.Tk < 1 || a.Tk > (int64_t{1} << 30) || a.Tq < 1 || a.Tq > a.Tk)
    return invalid_argument(w + ": Tq=" + std::to_string(a.Tq) + " Tk=" + std::to_string(a.Tk) +
                            ", expected 1 <= Tq <= Tk <= 2^30");
  if (a.kv_rows != 0 && (a.kv_rows < a.Tk || a.kv_rows > (int64_t{1} << 30)))
    return invalid_argument(w + ": kv_rows=" + std::to_string(a.kv_rows) + ", expected 0 or Tk=" + std::to_string(a.Tk) +
                            " <= kv_rows <= 2^30");
  if ((a.Hq / a.Hkv) * a.Tq > 64)
    return invalid_argument(w + ": G*Tq=" + std::to_string((a.Hq / a.Hkv) * a.Tq) +
                            " query rows per KV head, expected <= 64 (use the forward kernels for longer chunks)");
  if (a.B * a.Hkv > 65535) return invalid_argument(w + ": B*Hkv=" + std::to_string(a.B * a.Hkv) + ", expected <= 65535");
  if (!aligned16(a.q) || (!paged && (!aligned16(a.k) || !aligned16(a.v))) || !aligned16(a.out))
    return invalid_argument(w + ": q, k, v and out must be 16-byte aligned");
  BNA_RETURN_IF_ERROR(detail::validate_pages(w, a.kv_pages, a.kv_page, a.kv_pages_stride, a.Tk));
  if (!(a.scale >= 0.0f) || !std::isfinite(a.scale))
    return invalid_argument(w + ": scale=" + std::to_string(a.scale) + ", expected finite >= 0 (0 = 1/sqrt(dh))");
  return Status::ok();
}

template <int DH, bool BF16>
Status launch(const DecParams& p, int64_t bhkv, cudaStream_t s) {
  const dim3 grid(static_cast<unsigned>(p.n_chunks), static_cast<unsigned>(bhkv));
  const bool paged = p.pages != nullptr;
  if (p.R == 1) {
    if (paged) detail::decode_partial_kernel<DH, BF16, 1, true><<<grid, detail::kDecThreads, 0, s>>>(p);
    else detail::decode_partial_kernel<DH, BF16, 1, false><<<grid, detail::kDecThreads, 0, s>>>(p);
  } else {
    if (paged) detail::decode_partial_kernel<DH, BF16, 4, true><<<grid, detail::kDecThreads, 0, s>>>(p);
    else detail::decode_partial_kernel<DH, BF16, 4, false><<<grid, detail::kDecThreads, 0, s>>>(p);
  }
  BNA_CUDA_TRY(cudaGetLastError());
  const int64_t warps = bhkv * p.R;
  detail::decode_combine_kernel<DH, BF16><<<static_cast<unsigned>((warps * 32 + 255) / 256), 256, 0, s>>>(
      p, static_cast<int>(bhkv));
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status run(const char* who, const DecodeArgs& a, bool dense, int64_t W, int64_t S, const int32_t* extra, int64_t C,
           void* stream) {
  DecParams p{};
  geometry(a, dense, W, S, C, p);
  const size_t need = workspace_for(a, p);
  if (a.workspace == nullptr || a.workspace_bytes < need)
    return invalid_argument(std::string(who) + ": workspace of " + std::to_string(a.workspace_bytes) +
                            " bytes, expected a device buffer of >= " + std::to_string(need) + " (decode_workspace_bytes)");
  if ((reinterpret_cast<uintptr_t>(a.workspace) & 255u) != 0)
    return invalid_argument(std::string(who) + ": workspace must be 256-byte aligned");
  p.q = static_cast<const uint16_t*>(a.q);
  p.k = static_cast<const uint16_t*>(a.k);
  p.v = static_cast<const uint16_t*>(a.v);
  p.o = static_cast<uint16_t*>(a.out);
  p.lse = a.lse;
  if (a.kv_pages != nullptr) {
    p.pages = reinterpret_cast<const uint16_t* const*>(a.kv_pages);
    p.pshift = detail::page_shift(a.kv_page);
    p.pmask = static_cast<int>(a.kv_page - 1);
    p.page_stride = static_cast<int>(a.kv_pages_stride);
    p.page_v = a.Hkv * a.kv_page * a.dh;
  }
  const float scale = a.scale > 0.0f ? a.scale : 1.0f / std::sqrt(static_cast<float>(a.dh));
  p.scale_log2 = scale * 1.4426950408889634f;
  p.extra = (!dense && C > 0) ? extra : nullptr;
  if (p.extra == nullptr && !dense) {  // no extras: drop their candidates
    p.C = 0;
    p.n_cand = p.n_land + p.n_band;
  }
  const size_t rows = static_cast<size_t>(p.n_chunks) * static_cast<size_t>(a.B * a.Hkv) * static_cast<size_t>(p.R);
  char* ws = static_cast<char*>(a.workspace);
  p.part_o = reinterpret_cast<float*>(ws);
  p.part_m = reinterpret_cast<float*>(ws + pad256(rows * a.dh * 4));
  p.part_l = reinterpret_cast<float*>(ws + pad256(rows * a.dh * 4) + pad256(rows * 4));
  auto s = static_cast<cudaStream_t>(stream);
  const int64_t bhkv = a.B * a.Hkv;
  const bool bf16 = a.dtype == DType::kBF16;
#if BNA_CUDA_DH64
  if (a.dh == 64) return bf16 ? launch<64, true>(p, bhkv, s) : launch<64, false>(p, bhkv, s);
#endif
#if BNA_CUDA_DH128
  if (a.dh == 128) return bf16 ? launch<128, true>(p, bhkv, s) : launch<128, false>(p, bhkv, s);
#endif
  return invalid_argument("decode: dh=" + std::to_string(a.dh) + " was not compiled in (BNA_CUDA_HEAD_DIMS)");
}

}  // namespace

size_t decode_workspace_bytes(const DecodeArgs& a, bool dense, int64_t W, int64_t S, int64_t C) {
  DecParams p{};
  geometry(a, dense, std::max<int64_t>(0, W), std::max<int64_t>(0, S), std::max<int64_t>(0, C), p);
  return workspace_for(a, p);
}

Status dense_decode(const DecodeArgs& a, void* stream) {
  BNA_RETURN_IF_ERROR(validate("dense_decode", a));
  return run("dense_decode", a, true, 0, 0, nullptr, 0, stream);
}

Status streams_decode(const DecodeArgs& a, int64_t W, int64_t S, const int32_t* extra, int64_t C, void* stream) {
  BNA_RETURN_IF_ERROR(validate("streams_decode", a));
  if (W < 0) return invalid_argument("streams_decode: W=" + std::to_string(W) + ", expected W >= 0");
  if (S < 0) return invalid_argument("streams_decode: S=" + std::to_string(S) + ", expected S >= 0 (0 = no landmarks)");
  if (C < 0 || C > 4096) return invalid_argument("streams_decode: C=" + std::to_string(C) + ", expected 0 <= C <= 4096");
  if (C > 0 && extra == nullptr)
    return invalid_argument("streams_decode: C=" + std::to_string(C) + " but extra is null, expected a device [Hkv, Tk, C] array");
  return run("streams_decode", a, false, W, S, extra, C, stream);
}

}  // namespace bna::cuda
