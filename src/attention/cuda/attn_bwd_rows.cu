// Backward launchers of the graph paths (gather, permute-window, block-sparse): pass A (dQ and row
// statistics, one warp per query row) then pass B (dK, dV, one warp per key row) of
// attn_bwd_rows.cuh. Workspace: the row statistics (graph_bwd_workspace_bytes).
#include <algorithm>
#include <cmath>
#include <string>

#include "attention/cuda/attn_bwd_launch.cuh"
#include "attention/cuda/attn_bwd_rows.cuh"
#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {
namespace {

using detail::BwdRowsParams;
using detail::RowSrc;

Status check_rows(const char* who, const AttnBwdArgs& a, int64_t segments) {
  const std::string w(who);
  BNA_RETURN_IF_ERROR(detail::validate(who, a.fwd));
  BNA_RETURN_IF_ERROR(detail::reject_cache_view(who, a.fwd));
  if (!a.dout || !a.dq || !a.dk || !a.dv)
    return invalid_argument(w + ": dout, dq, dk and dv must be non-null device pointers");
  if (!detail::aligned16(a.dout) || !detail::aligned16(a.dq) || !detail::aligned16(a.dk) || !detail::aligned16(a.dv))
    return invalid_argument(w + ": dout, dq, dk and dv must be 16-byte aligned");
  const size_t need = graph_bwd_workspace_bytes(a.fwd, segments);
  if (a.workspace == nullptr || a.workspace_bytes < need)
    return invalid_argument(w + ": workspace of " + std::to_string(a.workspace_bytes) + " bytes, expected a device buffer of >= " +
                            std::to_string(need) + " (graph_bwd_workspace_bytes)");
  if ((reinterpret_cast<uintptr_t>(a.workspace) & 255u) != 0)
    return invalid_argument(w + ": workspace must be 256-byte aligned");
  if (a.fwd.B * a.fwd.Hq * a.fwd.T > (int64_t{1} << 31) * detail::kGatherWarps)
    return invalid_argument(w + ": B*Hq*T=" + std::to_string(a.fwd.B * a.fwd.Hq * a.fwd.T) + " rows, expected < 2^33");
  return Status::ok();
}

BwdRowsParams rows_params(const AttnBwdArgs& a, int nseg) {
  BwdRowsParams p{};
  p.g = detail::gather_params(a.fwd);
  p.dout = static_cast<const uint16_t*>(a.dout);
  p.dq = static_cast<uint16_t*>(a.dq);
  p.dk = static_cast<uint16_t*>(a.dk);
  p.dv = static_cast<uint16_t*>(a.dv);
  p.stats = static_cast<float2*>(a.workspace);
  p.nseg = nseg;
  p.scale = a.fwd.scale > 0.0f ? a.fwd.scale : 1.0f / std::sqrt(static_cast<float>(a.fwd.dh));
  return p;
}

template <RowSrc SRC>
Status launch_rows(const AttnBwdArgs& a, const BwdRowsParams& p, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  const int64_t grid_q = (p.g.rows + detail::kGatherWarps - 1) / detail::kGatherWarps;
  const int64_t grid_k = (p.g.rows / p.g.group + detail::kGatherWarps - 1) / detail::kGatherWarps;
  return detail::dispatch_dh_dtype(a.fwd, [&](auto dh, auto bf16) -> Status {
    constexpr int DH = decltype(dh)::value;
    constexpr bool BF = decltype(bf16)::value;
    detail::rows_dq_kernel<DH, BF, SRC><<<static_cast<unsigned>(grid_q), detail::kGatherWarps * 32, 0, s>>>(p);
    BNA_CUDA_TRY(cudaGetLastError());
    detail::keys_dkdv_kernel<DH, BF, SRC><<<static_cast<unsigned>(grid_k), detail::kGatherWarps * 32, 0, s>>>(p);
    BNA_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  });
}

}  // namespace

size_t graph_bwd_workspace_bytes(const AttnArgs& a, int64_t segments) {
  const size_t rows = static_cast<size_t>(a.B * a.Hq * a.T);
  return detail::pad256(rows * static_cast<size_t>(std::max<int64_t>(segments, 1)) * 8);
}

Status gather_bwd(const AttnBwdArgs& a, const int32_t* neigh_idx, int64_t D, const int64_t* t_rowptr,
                  const int32_t* t_rows, void* stream) {
  BNA_RETURN_IF_ERROR(check_rows("gather_bwd", a, 1));
  if (D < 1 || D > (int64_t{1} << 24))
    return invalid_argument("gather_bwd: D=" + std::to_string(D) + ", expected 1 <= D <= 2^24");
  if (neigh_idx == nullptr)
    return invalid_argument("gather_bwd: neigh_idx is null, expected a device int32 [Hkv, T, D] array");
  if (t_rowptr == nullptr || t_rows == nullptr)
    return invalid_argument("gather_bwd: t_rowptr / t_rows are null, expected the device transpose of neigh_idx (transpose_gather)");
  BwdRowsParams p = rows_params(a, 1);
  p.g.neigh = neigh_idx;
  p.g.D = static_cast<int>(D);
  p.t_rowptr = t_rowptr;
  p.t_rows = t_rows;
  return launch_rows<RowSrc::kGather>(a, p, stream);
}

Status permute_window_bwd(const AttnBwdArgs& a, const PermuteWindowArgs& pw, void* stream) {
  const bool average = !pw.union_mode && pw.num_cycles > 1;
  BNA_RETURN_IF_ERROR(check_rows("permute_window_bwd", a, average ? pw.num_cycles : 1));
  if (pw.w < 0) return invalid_argument("permute_window_bwd: w=" + std::to_string(pw.w) + ", expected w >= 0");
  if (pw.num_cycles < 1 || pw.num_cycles > 4096)
    return invalid_argument("permute_window_bwd: num_cycles=" + std::to_string(pw.num_cycles) + ", expected 1..4096");
  if (pw.perm == nullptr || pw.inv == nullptr)
    return invalid_argument("permute_window_bwd: perm and inv must be device int32 [Hkv, num_cycles, T] arrays, got null");
  int64_t w = pw.w;
  bool circular = pw.circular;
  if (circular && 2 * w + 1 >= a.fwd.T) circular = false, w = a.fwd.T - 1;
  w = std::min<int64_t>(w, a.fwd.T - 1);
  if (pw.num_cycles * (2 * w + 1) > (int64_t{1} << 24))
    return invalid_argument("permute_window_bwd: num_cycles*(2w+1)=" + std::to_string(pw.num_cycles * (2 * w + 1)) +
                            " entries per row, expected <= 2^24");
  BwdRowsParams p = rows_params(a, average ? static_cast<int>(pw.num_cycles) : 1);
  p.g.perm = pw.perm;
  p.g.inv = pw.inv;
  p.g.ncyc = static_cast<int>(pw.num_cycles);
  p.g.w = static_cast<int>(w);
  p.g.circular = circular ? 1 : 0;
  p.average = average ? 1 : 0;
  return launch_rows<RowSrc::kPermute>(a, p, stream);
}

Status block_sparse_bwd(const AttnBwdArgs& a, int64_t Bs, int64_t N, const int32_t* indptr, const int32_t* indices,
                        const int32_t* t_indptr, const int32_t* t_indices, void* stream) {
  BNA_RETURN_IF_ERROR(check_rows("block_sparse_bwd", a, 1));
  if (Bs < 1) return invalid_argument("block_sparse_bwd: Bs=" + std::to_string(Bs) + ", expected Bs >= 1");
  const int64_t want = (a.fwd.T + Bs - 1) / Bs;
  if (N != want)
    return invalid_argument("block_sparse_bwd: N=" + std::to_string(N) + ", expected ceil(T/Bs)=" + std::to_string(want));
  if (indptr == nullptr || indices == nullptr || t_indptr == nullptr || t_indices == nullptr)
    return invalid_argument("block_sparse_bwd: indptr, indices, t_indptr and t_indices must be non-null device int32 arrays");
  if (Bs > a.fwd.T) Bs = a.fwd.T;  // one block either way; keeps entry counts inside int
  if (N * Bs > (int64_t{1} << 30))
    return invalid_argument("block_sparse_bwd: N*Bs=" + std::to_string(N * Bs) + " entries per row, expected <= 2^30");
  BwdRowsParams p = rows_params(a, 1);
  p.indptr = indptr;
  p.indices = indices;
  p.t_indptr = t_indptr;
  p.t_indices = t_indices;
  p.Bs = static_cast<int>(Bs);
  p.N = static_cast<int>(N);
  return launch_rows<RowSrc::kBlocks>(a, p, stream);
}

}  // namespace bna::cuda
