// Permute-window forward launcher: one cycle or average mode on tensor cores (attn_fwd_tiles.cuh with
// PW = true, one launch per cycle, f32 accumulation + pw_average_finish_kernel for several cycles);
// union mode on the row-list kernel (attn_fwd_gather.cuh with UNION = true).
#include <algorithm>
#include <cmath>
#include <string>

#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {

size_t permute_window_workspace_bytes(const AttnArgs& a, int64_t num_cycles, bool union_mode) {
  if (num_cycles <= 1 || union_mode) return 0;
  const size_t rows = static_cast<size_t>(a.B * a.Hq * a.T);
  const size_t o_bytes = (rows * static_cast<size_t>(a.dh) * 4 + 255) & ~size_t(255);
  return o_bytes + ((rows * 4 + 255) & ~size_t(255));
}

Status permute_window_fwd(const AttnArgs& a, const PermuteWindowArgs& pw, void* stream) {
  BNA_RETURN_IF_ERROR(detail::validate("permute_window_fwd", a));
  BNA_RETURN_IF_ERROR(detail::reject_cache_view("permute_window_fwd", a));
  if (pw.w < 0) return invalid_argument("permute_window_fwd: w=" + std::to_string(pw.w) + ", expected w >= 0");
  if (pw.num_cycles < 1 || pw.num_cycles > 4096)
    return invalid_argument("permute_window_fwd: num_cycles=" + std::to_string(pw.num_cycles) + ", expected 1..4096");
  if (pw.perm == nullptr)
    return invalid_argument("permute_window_fwd: perm is null, expected a device int32 [Hkv, num_cycles, T] array");
  const bool use_union = pw.union_mode && pw.num_cycles > 1;
  if (use_union && pw.inv == nullptr)
    return invalid_argument("permute_window_fwd: union mode needs inv (device int32 [Hkv, num_cycles, T]), got null");
  const size_t need = permute_window_workspace_bytes(a, pw.num_cycles, pw.union_mode);
  if (need > 0) {
    if (pw.workspace == nullptr || pw.workspace_bytes < need)
      return invalid_argument("permute_window_fwd: workspace of " + std::to_string(pw.workspace_bytes) + " bytes" +
                              (pw.workspace == nullptr ? " (null)" : "") + ", expected >= " + std::to_string(need) +
                              " for average mode over " + std::to_string(pw.num_cycles) + " cycles");
    if ((reinterpret_cast<uintptr_t>(pw.workspace) & 255u) != 0)
      return invalid_argument("permute_window_fwd: workspace is not 256-byte aligned");
  }
  // Band normalisation of the CPU reference: circular with 2w + 1 >= T is the full linear band.
  int64_t w = pw.w;
  bool circular = pw.circular;
  if (circular && 2 * w + 1 >= a.T) circular = false, w = a.T - 1;
  w = std::min<int64_t>(w, a.T - 1);
  auto s = static_cast<cudaStream_t>(stream);

  if (use_union) {
    const int64_t entries = pw.num_cycles * (2 * w + 1);
    if (entries > (int64_t{1} << 24))
      return invalid_argument("permute_window_fwd: union of num_cycles*(2w+1)=" + std::to_string(entries) +
                              " entries per row, expected <= 2^24");
    detail::GatherParams p = detail::gather_params(a);
    p.perm = pw.perm;
    p.inv = pw.inv;
    p.ncyc = static_cast<int>(pw.num_cycles);
    p.w = static_cast<int>(w);
    p.circular = circular ? 1 : 0;
    return detail::dispatch_dh_dtype(a, [&](auto dh, auto bf16) {
      return detail::launch_gather<decltype(dh)::value, decltype(bf16)::value, true>(p, s);
    });
  }

  detail::TileParams p = detail::tile_params(a);
  p.perm = pw.perm;
  p.ncyc = static_cast<int>(pw.num_cycles);
  p.w = static_cast<int>(w);
  p.circular = circular ? 1 : 0;
  p.n_qtiles = static_cast<int>((a.T + detail::kBr - 1) / detail::kBr);
  const int64_t rows = a.B * a.Hq * a.T;
  if (need > 0) {
    p.acc_o = static_cast<float*>(pw.workspace);
    p.acc_lse = reinterpret_cast<float*>(static_cast<char*>(pw.workspace) +
                                         ((static_cast<size_t>(rows) * a.dh * 4 + 255) & ~size_t(255)));
  }
  for (int64_t c = 0; c < pw.num_cycles; ++c) {
    p.cyc = static_cast<int>(c);
    p.acc_first = c == 0 ? 1 : 0;
    BNA_RETURN_IF_ERROR(detail::dispatch_dh_dtype(a, [&](auto dh, auto bf16) {
      return detail::launch_tiles<decltype(dh)::value, decltype(bf16)::value, true>(p, s);
    }));
  }
  if (need == 0) return Status::ok();
  const float inv_n = 1.0f / static_cast<float>(pw.num_cycles);
  const float log_n = std::log(static_cast<float>(pw.num_cycles));
  const int64_t pairs = rows * a.dh / 2;
  const unsigned grid = static_cast<unsigned>(std::min<int64_t>((pairs + 255) / 256, 65536));
  if (a.dtype == DType::kBF16)
    detail::pw_average_finish_kernel<true><<<grid, 256, 0, s>>>(p.acc_o, p.acc_lse, p.o, p.lse, rows,
                                                                static_cast<int>(a.dh), inv_n, log_n);
  else
    detail::pw_average_finish_kernel<false><<<grid, 256, 0, s>>>(p.acc_o, p.acc_lse, p.o, p.lse, rows,
                                                                 static_cast<int>(a.dh), inv_n, log_n);
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

}  // namespace bna::cuda
