// Backward launchers of the graph paths (gather, permute-window, block-sparse) on the row-list kernel
// of attn_bwd_rows.cuh: memset of the f32 dK/dV accumulators, one warp per query row, conversion to
// the dtype. Same workspace as the dense/streams backward (attn_bwd_workspace_bytes).
#include <algorithm>
#include <string>

#include "attention/cuda/attn_bwd_launch.cuh"
#include "attention/cuda/attn_bwd_rows.cuh"
#include "attention/cuda/attn_fwd_paths_launch.cuh"

namespace bna::cuda {
namespace {

using detail::BwdRowsParams;
using detail::RowSrc;

BwdRowsParams rows_params(const AttnBwdArgs& a) {
  BwdRowsParams p{};
  p.g = detail::gather_params(a.fwd);
  p.dout = static_cast<const uint16_t*>(a.dout);
  p.dq = static_cast<uint16_t*>(a.dq);
  const AttnArgs& f = a.fwd;
  const size_t rows = static_cast<size_t>(f.B * f.Hq * f.T);
  const size_t kv = static_cast<size_t>(f.B * f.Hkv * f.T * f.dh);
  char* ws = static_cast<char*>(a.workspace);
  p.dk_acc = reinterpret_cast<float*>(ws + detail::pad256(rows * 4));
  p.dv_acc = reinterpret_cast<float*>(ws + detail::pad256(rows * 4) + detail::pad256(kv * 4));
  p.scale = f.scale > 0.0f ? f.scale : 1.0f / std::sqrt(static_cast<float>(f.dh));
  return p;
}

template <RowSrc SRC>
Status launch_rows(const AttnBwdArgs& a, const BwdRowsParams& p, void* stream) {
  const AttnArgs& f = a.fwd;
  auto s = static_cast<cudaStream_t>(stream);
  const size_t kv = static_cast<size_t>(f.B * f.Hkv * f.T * f.dh);
  BNA_CUDA_TRY(cudaMemsetAsync(p.dk_acc, 0, 2 * detail::pad256(kv * 4), s));
  const int64_t grid = (p.g.rows + detail::kGatherWarps - 1) / detail::kGatherWarps;
  BNA_RETURN_IF_ERROR(detail::dispatch_dh_dtype(f, [&](auto dh, auto bf16) -> Status {
    detail::attn_bwd_rows_kernel<decltype(dh)::value, decltype(bf16)::value, SRC>
        <<<static_cast<unsigned>(grid), detail::kGatherWarps * 32, 0, s>>>(p);
    BNA_CUDA_TRY(cudaGetLastError());
    return Status::ok();
  }));
  const int64_t n4 = static_cast<int64_t>(kv / 4);
  const unsigned blocks = static_cast<unsigned>((n4 + 255) / 256);
  if (f.dtype == DType::kBF16) {
    detail::bwd_convert_kernel<true><<<blocks, 256, 0, s>>>(p.dk_acc, static_cast<uint16_t*>(a.dk), n4);
    detail::bwd_convert_kernel<true><<<blocks, 256, 0, s>>>(p.dv_acc, static_cast<uint16_t*>(a.dv), n4);
  } else {
    detail::bwd_convert_kernel<false><<<blocks, 256, 0, s>>>(p.dk_acc, static_cast<uint16_t*>(a.dk), n4);
    detail::bwd_convert_kernel<false><<<blocks, 256, 0, s>>>(p.dv_acc, static_cast<uint16_t*>(a.dv), n4);
  }
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

Status check_rows(const char* who, const AttnBwdArgs& a) {
  BNA_RETURN_IF_ERROR(detail::validate_bwd(who, a));
  if (a.fwd.B * a.fwd.Hq * a.fwd.T > (int64_t{1} << 31) * detail::kGatherWarps)
    return invalid_argument(std::string(who) + ": B*Hq*T=" + std::to_string(a.fwd.B * a.fwd.Hq * a.fwd.T) +
                            " rows, expected < 2^33");
  return Status::ok();
}

}  // namespace

Status gather_bwd(const AttnBwdArgs& a, const int32_t* neigh_idx, int64_t D, void* stream) {
  BNA_RETURN_IF_ERROR(check_rows("gather_bwd", a));
  if (D < 1 || D > (int64_t{1} << 24))
    return invalid_argument("gather_bwd: D=" + std::to_string(D) + ", expected 1 <= D <= 2^24");
  if (neigh_idx == nullptr)
    return invalid_argument("gather_bwd: neigh_idx is null, expected a device int32 [Hkv, T, D] array");
  BwdRowsParams p = rows_params(a);
  p.g.neigh = neigh_idx;
  p.g.D = static_cast<int>(D);
  return launch_rows<RowSrc::kGather>(a, p, stream);
}

Status permute_window_bwd(const AttnBwdArgs& a, const PermuteWindowArgs& pw, void* stream) {
  BNA_RETURN_IF_ERROR(check_rows("permute_window_bwd", a));
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
  BwdRowsParams p = rows_params(a);
  p.g.perm = pw.perm;
  p.g.inv = pw.inv;
  p.g.ncyc = static_cast<int>(pw.num_cycles);
  p.g.w = static_cast<int>(w);
  p.g.circular = circular ? 1 : 0;
  p.average = !pw.union_mode && pw.num_cycles > 1 ? 1 : 0;
  return launch_rows<RowSrc::kPermute>(a, p, stream);
}

Status block_sparse_bwd(const AttnBwdArgs& a, int64_t Bs, int64_t N, const int32_t* indptr, const int32_t* indices,
                        void* stream) {
  BNA_RETURN_IF_ERROR(check_rows("block_sparse_bwd", a));
  if (Bs < 1) return invalid_argument("block_sparse_bwd: Bs=" + std::to_string(Bs) + ", expected Bs >= 1");
  const int64_t want = (a.fwd.T + Bs - 1) / Bs;
  if (N != want)
    return invalid_argument("block_sparse_bwd: N=" + std::to_string(N) + ", expected ceil(T/Bs)=" + std::to_string(want));
  if (indptr == nullptr || indices == nullptr)
    return invalid_argument("block_sparse_bwd: indptr and indices must be non-null device int32 arrays");
  if (Bs > a.fwd.T) Bs = a.fwd.T;  // one block either way; keeps entry counts inside int
  if (N * Bs > (int64_t{1} << 30))
    return invalid_argument("block_sparse_bwd: N*Bs=" + std::to_string(N * Bs) + " entries per row, expected <= 2^30");
  BwdRowsParams p = rows_params(a);
  p.indptr = indptr;
  p.indices = indices;
  p.Bs = static_cast<int>(Bs);
  p.N = static_cast<int>(N);
  return launch_rows<RowSrc::kBlocks>(a, p, stream);
}

}  // namespace bna::cuda
