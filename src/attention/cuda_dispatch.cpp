// CUDA backend of the plan/run API (see cuda_dispatch.hpp) and the public CUDA helpers of
// attention.hpp. Decisions: the graph (streams extras, int32 [Hkv, T, C]) is uploaded once at plan
// time and owned by the PlanState (block-sparse BSR arrays, permute-window perms, gather neigh_idx
// likewise) (freed with the last copy of the plan); a call without a caller
// workspace allocates one for that call only (cudaMalloc/cudaFree around the launches, which then
// synchronise); every launch goes to the default stream.
#include "attention/cuda_dispatch.hpp"

#include <algorithm>
#include <climits>
#include <string>
#include <vector>

#ifdef BNA_HAVE_CUDA
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#endif

namespace bna::attn {

#ifdef BNA_HAVE_CUDA

namespace {

std::string S(int64_t v) { return std::to_string(v); }

struct CudaPlanData {
  cuda::DeviceBuffer extra;  // [Hkv, T, C] int32, or empty
  int64_t W = 0, S = 0, C = 0;
  bool decode = false;
  // Graph paths (forward and backward, Tq == Tk), uploaded once here:
  //   block-sparse: g0 = indptr [Hkv, N + 1] (absolute offsets), g1 = indices; Bs, N
  //   permute-window: g0 = perm, g1 = inv [Hkv, num_cycles, T]; w, circular, union_mode, num_cycles
  //   gather: g0 = neigh_idx [Hkv, T, D]; D
  // and, for the backward, the transposed graph (launch.hpp): block-sparse g2 = t_indptr, g3 =
  // t_indices; gather g2 = t_rowptr (int64), g3 = t_rows.
  cuda::DeviceBuffer g0, g1, g2, g3;
  int64_t Bs = 0, N = 0, D = 0, num_cycles = 1, w = 0;
  bool circular = false, union_mode = false;
  // compressed: g0 = routing indptr [H_r, N + 1] (absolute), g1 = indices; Bs, N, tail, routing_heads
  bool compressed = false;
  int64_t tail = 0, routing_heads = 1;
};

Status upload_i32(cuda::DeviceBuffer& buf, const int32_t* host, size_t n) {
  BNA_RETURN_IF_ERROR(buf.allocate(std::max<size_t>(n, 1) * sizeof(int32_t)));
  if (n == 0) return {};
  return cuda::copy_to_device(buf.get(), host, n * sizeof(int32_t));
}

// Uploads a BSR layout as the kernels take it: g0 = indptr [H, N + 1] with ABSOLUTE offsets (head_base
// added), g1 = indices. indptr_out keeps the host copy for the caller.
Status upload_layout(const topo::BlockSparseLayout& L, CudaPlanData& d, std::vector<int32_t>& indptr) {
  indptr.assign(static_cast<size_t>(L.H * (L.n_blocks + 1)), 0);
  for (int64_t h = 0; h < L.H; ++h)
    for (int64_t b = 0; b <= L.n_blocks; ++b) {
      const int64_t x = L.head_base[h] + L.indptr[h * (L.n_blocks + 1) + b];
      if (x > INT32_MAX) return invalid_argument("attention: backend cuda: block layout with " + S(x) + " entries, expected < 2^31");
      indptr[static_cast<size_t>(h * (L.n_blocks + 1) + b)] = static_cast<int32_t>(x);
    }
  BNA_RETURN_IF_ERROR(upload_i32(d.g0, indptr.data(), indptr.size()));
  return upload_i32(d.g1, L.indices.data(), L.indices.size());
}

// Uploads the graph of a block-sparse / permute-window / gather plan (Tq == Tk only).
Status finish_graph_path(Plan& plan, PlanState& st, CudaPlanData& d) {
  const Shape& s = plan.shape;
  if (s.Tq != s.Tk || s.q_offset != 0)
    return unimplemented(std::string("attention: backend cuda: ") + path_name(plan.path) + " with Tq=" + S(s.Tq) +
                         " Tk=" + S(s.Tk) + " q_offset=" + S(s.q_offset) + "; the CUDA kernel takes Tq == Tk only");
  if (plan.path == Path::kCompressed) {
    const topo::BlockSparseLayout& L = *st.src.blocks;
    d.compressed = true;
    d.Bs = L.block_size;
    d.N = L.n_blocks;
    d.tail = plan.options.compressed_tail;
    d.routing_heads = L.H;
    std::vector<int32_t> indptr;
    BNA_RETURN_IF_ERROR(upload_layout(L, d, indptr));
    cuda::AttnArgs a;
    a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
    plan.workspace_bytes = cuda::compressed_workspace_bytes(a, d.Bs);
    plan.reason += " [cuda compressed: streams band W=tail-1 on tensor cores + summary merge, one warp per row]";
    return {};
  }
  if (plan.path == Path::kBlockSparse) {
    const topo::BlockSparseLayout& L = *st.src.blocks;
    d.Bs = L.block_size;
    d.N = L.n_blocks;
    std::vector<int32_t> indptr;
    BNA_RETURN_IF_ERROR(upload_layout(L, d, indptr));
    std::vector<int32_t> t_indptr, t_indices;
    BNA_RETURN_IF_ERROR(cuda::transpose_block_sparse(indptr.data(), L.indices.data(), L.H, L.n_blocks, t_indptr, t_indices));
    BNA_RETURN_IF_ERROR(upload_i32(d.g2, t_indptr.data(), t_indptr.size()));
    BNA_RETURN_IF_ERROR(upload_i32(d.g3, t_indices.data(), t_indices.size()));
    plan.reason += " [cuda block-sparse, tensor cores]";
  } else if (plan.path == Path::kPermuteWindow) {
    const topo::PermsOnly& P = *st.src.perms;
    d.num_cycles = P.num_cycles;
    d.w = plan.options.permute_window;
    d.circular = plan.options.circular;
    d.union_mode = plan.options.multi_cycle_mode == MultiCycleMode::kUnionLogMultiplicity && P.num_cycles > 1;
    BNA_RETURN_IF_ERROR(upload_i32(d.g0, P.perm.data(), P.perm.size()));
    BNA_RETURN_IF_ERROR(upload_i32(d.g1, P.inv.data(), P.inv.size()));  // union forward and every backward
    cuda::AttnArgs a;
    a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
    const bool average = !d.union_mode && d.num_cycles > 1;
    plan.workspace_bytes = std::max(cuda::permute_window_workspace_bytes(a, d.num_cycles, d.union_mode),
                                    cuda::graph_bwd_workspace_bytes(a, average ? d.num_cycles : 1));
    plan.reason += d.union_mode ? " [cuda permute-window union, one warp per row]" : " [cuda permute-window, tensor cores]";
  } else {
    const graph::GraphAbi& g = *st.src.abi;
    d.D = g.D;
    BNA_RETURN_IF_ERROR(upload_i32(d.g0, g.neigh_idx.data(), g.neigh_idx.size()));
    std::vector<int64_t> t_rowptr;
    std::vector<int32_t> t_rows;
    BNA_RETURN_IF_ERROR(cuda::transpose_gather(g.neigh_idx.data(), g.H, g.T, g.D, t_rowptr, t_rows));
    BNA_RETURN_IF_ERROR(d.g2.allocate(t_rowptr.size() * sizeof(int64_t)));
    BNA_RETURN_IF_ERROR(cuda::copy_to_device(d.g2.get(), t_rowptr.data(), t_rowptr.size() * sizeof(int64_t)));
    BNA_RETURN_IF_ERROR(upload_i32(d.g3, t_rows.data(), t_rows.size()));
    plan.reason += " [cuda gather, one warp per row]";
  }
  if (plan.path != Path::kPermuteWindow) {  // forward: no workspace; backward: the row statistics
    cuda::AttnArgs a;
    a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
    plan.workspace_bytes = cuda::graph_bwd_workspace_bytes(a, 1);
  }
  return {};
}

const CudaPlanData& data_of(const Plan& plan) { return *static_cast<const CudaPlanData*>(plan.state->cuda.get()); }

// The CUDA kernels take one set of strides per role: v shares k's, and in backward dq shares q's,
// dk and dv k's, dout out's.
Status same_strides(const TensorView& x, const char* xn, const TensorView& y, const char* yn) {
  for (int i = 0; i < 3; ++i)
    if (x.shape[i] > 1 && x.strides[i] != y.strides[i])  // a dim of extent 1 never steps
      return invalid_argument(std::string("attention: backend cuda: ") + xn + " strides [" + S(x.strides[0]) + ", " +
                              S(x.strides[1]) + ", " + S(x.strides[2]) + ", 1] differ from " + yn + "'s [" +
                              S(y.strides[0]) + ", " + S(y.strides[1]) + ", " + S(y.strides[2]) +
                              ", 1]; expected the same");
  return {};
}

cuda::AttnArgs fwd_args(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                        const TensorView& out, const TensorView& lse) {
  const Shape& s = plan.shape;
  cuda::AttnArgs a;
  a.q = q.data; a.k = k.data; a.v = v.data; a.out = out.data; a.lse = lse.as<float>();
  a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
  a.scale = plan.options.scale;
  if (!q.is_contiguous() || !k.is_contiguous() || !v.is_contiguous() || !out.is_contiguous()) {
    // strided_views_ok(plan) held (attention.cpp); the kernels validate the strides.
    for (int i = 0; i < 3; ++i) {
      a.q_strides[i] = q.strides[i];
      a.kv_strides[i] = k.strides[i];
      a.o_strides[i] = out.strides[i];
    }
  }
  return a;
}

cuda::DecodeArgs decode_args(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                             const TensorView& out, const TensorView& lse) {
  const Shape& s = plan.shape;
  cuda::DecodeArgs a;
  a.q = q.data; a.k = k.data; a.v = v.data; a.out = out.data; a.lse = lse.as<float>();
  a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.Tq = s.Tq; a.Tk = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
  a.scale = plan.options.scale;
  return a;
}

// The caller's workspace, or one allocated for this call.
struct CallWorkspace {
  cuda::DeviceBuffer owned;
  void* ptr = nullptr;
  Status acquire(void* user, size_t bytes) {
    if (user != nullptr) {
      if ((reinterpret_cast<uintptr_t>(user) & 255u) != 0)
        return invalid_argument("attention: cuda workspace is not 256-byte aligned");
      ptr = user;
      return {};
    }
    if (bytes == 0) return {};
    BNA_RETURN_IF_ERROR(owned.allocate(bytes));
    ptr = owned.get();
    return {};
  }
  // An owned workspace must outlive the kernels that use it.
  Status release() { return owned.get() != nullptr ? cuda::device_synchronize() : Status::ok(); }
};

}  // namespace

Status cuda_finish_plan(Plan& plan, PlanState& st) {
  const Shape& s = plan.shape;
  const bool graph_path = plan.path == Path::kBlockSparse || plan.path == Path::kPermuteWindow ||
                          plan.path == Path::kGather || plan.path == Path::kCompressed;
  if (plan.path != Path::kDense && plan.path != Path::kStreams && !graph_path)
    return unimplemented(std::string("attention: backend cuda has no ") + path_name(plan.path) +
                         " kernel yet (dense, streams, block_sparse, permute_window, gather and compressed only)");
  if (s.dtype != DType::kBF16 && s.dtype != DType::kF16)
    return invalid_argument(std::string("attention: backend cuda: dtype ") + dtype_name(s.dtype) + ", expected bf16 or f16");
  if (s.dh != 64 && s.dh != 128)
    return invalid_argument("attention: backend cuda: dh=" + S(s.dh) + ", expected 64 or 128");
  if (plan.options.use_edge_bias)
    return unimplemented("attention: backend cuda: edge bias is not implemented in the CUDA kernels");
  auto d = std::make_shared<CudaPlanData>();
  if (graph_path) {
    plan.workspace_bytes = 0;
    BNA_RETURN_IF_ERROR(finish_graph_path(plan, st, *d));
    st.cuda = std::move(d);
    return {};
  }
  if (s.Tq != s.Tk) {
    if (s.q_offset != s.Tk - s.Tq)
      return unimplemented("attention: backend cuda: q_offset=" + S(s.q_offset) + " with Tq=" + S(s.Tq) + " Tk=" + S(s.Tk) +
                           "; the CUDA kernels take Tq == Tk or decode (q_offset = Tk - Tq)");
    if ((s.Hq / s.Hkv) * s.Tq > 64)
      return unimplemented("attention: backend cuda: decode with G*Tq=" + S((s.Hq / s.Hkv) * s.Tq) +
                           " query rows per KV head, expected <= 64");
    d->decode = true;
  }
  if (plan.path == Path::kStreams) {
    const cpu::StreamsGraph& g = *st.streams;
    d->W = g.W;
    d->S = g.S;
    d->C = g.C;
    if (g.C > 0) {
      const size_t bytes = g.extra.size() * sizeof(int32_t);
      BNA_RETURN_IF_ERROR(d->extra.allocate(bytes));
      BNA_RETURN_IF_ERROR(cuda::copy_to_device(d->extra.get(), g.extra.data(), bytes));
    }
  }
  if (d->decode) {
    cuda::DecodeArgs a;
    a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.Tq = s.Tq; a.Tk = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
    plan.workspace_bytes = cuda::decode_workspace_bytes(a, plan.path == Path::kDense, d->W, d->S, d->C);
    plan.reason += " [cuda split-K decode]";
  } else {
    cuda::AttnArgs a;
    a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
    plan.workspace_bytes = cuda::attn_bwd_workspace_bytes(a);  // forward needs none; backward this much
    plan.reason += " [cuda]";
  }
  st.cuda = std::move(d);
  return {};
}

Status cuda_run(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                const TensorView& lse, void* workspace) {
  if (!plan.state->cuda) return invalid_argument("attention: plan was not made for backend cuda");
  const CudaPlanData& d = data_of(plan);
  const bool dense = plan.path == Path::kDense;
  if (d.decode) {
    CallWorkspace ws;
    BNA_RETURN_IF_ERROR(ws.acquire(workspace, plan.workspace_bytes));
    cuda::DecodeArgs a = decode_args(plan, q, k, v, out, lse);
    a.workspace = ws.ptr;
    a.workspace_bytes = plan.workspace_bytes;
    BNA_RETURN_IF_ERROR(dense ? cuda::dense_decode(a) : cuda::streams_decode(a, d.W, d.S, d.extra.as<int32_t>(), d.C));
    return ws.release();
  }
  BNA_RETURN_IF_ERROR(same_strides(v, "v", k, "k"));
  const cuda::AttnArgs a = fwd_args(plan, q, k, v, out, lse);
  if (plan.path == Path::kCompressed) {
    CallWorkspace ws;
    BNA_RETURN_IF_ERROR(ws.acquire(workspace, plan.workspace_bytes));
    cuda::CompressedArgs c;
    c.tail = d.tail;
    c.Bs = d.Bs;
    c.N = d.N;
    c.indptr = d.g0.as<int32_t>();
    c.indices = d.g1.as<int32_t>();
    c.routing_heads = d.routing_heads;
    c.workspace = ws.ptr;
    c.workspace_bytes = plan.workspace_bytes;
    BNA_RETURN_IF_ERROR(cuda::compressed_fwd(a, c));
    return ws.release();
  }
  if (plan.path == Path::kBlockSparse) return cuda::block_sparse_fwd(a, d.Bs, d.N, d.g0.as<int32_t>(), d.g1.as<int32_t>());
  if (plan.path == Path::kGather) return cuda::gather_fwd(a, d.g0.as<int32_t>(), d.D);
  if (plan.path == Path::kPermuteWindow) {
    CallWorkspace ws;
    BNA_RETURN_IF_ERROR(ws.acquire(workspace, plan.workspace_bytes));
    cuda::PermuteWindowArgs pw;
    pw.perm = d.g0.as<int32_t>();
    pw.inv = d.union_mode ? d.g1.as<int32_t>() : nullptr;
    pw.num_cycles = d.num_cycles;
    pw.w = d.w;
    pw.circular = d.circular;
    pw.union_mode = d.union_mode;
    pw.workspace = ws.ptr;
    pw.workspace_bytes = plan.workspace_bytes;
    BNA_RETURN_IF_ERROR(cuda::permute_window_fwd(a, pw));
    return ws.release();
  }
  return dense ? cuda::dense_causal_fwd(a) : cuda::streams_fwd(a, d.W, d.S, d.extra.as<int32_t>(), d.C);
}

Status cuda_run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView& out, const TensorView& lse, const TensorView& dout, const TensorView& dq,
                         const TensorView& dk, const TensorView& dv, float* d_edge_bias, void* workspace) {
  (void)d_edge_bias;  // edge bias is rejected at plan time
  if (!plan.state->cuda) return invalid_argument("attention: plan was not made for backend cuda");
  const CudaPlanData& d = data_of(plan);
  if (d.decode) return unimplemented("attention: backend cuda: no backward for decode plans (Tq < Tk)");
  if (d.compressed) return unimplemented("attention: backend cuda: the compressed path has no backward (as on the CPU)");
  BNA_RETURN_IF_ERROR(same_strides(v, "v", k, "k"));
  BNA_RETURN_IF_ERROR(same_strides(dq, "dq", q, "q"));
  BNA_RETURN_IF_ERROR(same_strides(dk, "dk", k, "k"));
  BNA_RETURN_IF_ERROR(same_strides(dv, "dv", k, "k"));
  BNA_RETURN_IF_ERROR(same_strides(dout, "dout", out, "out"));
  CallWorkspace ws;
  BNA_RETURN_IF_ERROR(ws.acquire(workspace, plan.workspace_bytes));
  cuda::AttnBwdArgs a;
  a.fwd = fwd_args(plan, q, k, v, out, lse);
  a.dout = dout.data; a.dq = dq.data; a.dk = dk.data; a.dv = dv.data;
  a.workspace = ws.ptr;
  a.workspace_bytes = plan.workspace_bytes;
  Status st;
  switch (plan.path) {
    case Path::kDense: st = cuda::dense_causal_bwd(a); break;
    case Path::kStreams: st = cuda::streams_bwd(a, d.W, d.S, d.extra.as<int32_t>(), d.C); break;
    case Path::kGather:
      st = cuda::gather_bwd(a, d.g0.as<int32_t>(), d.D, d.g2.as<int64_t>(), d.g3.as<int32_t>());
      break;
    case Path::kBlockSparse:
      st = cuda::block_sparse_bwd(a, d.Bs, d.N, d.g0.as<int32_t>(), d.g1.as<int32_t>(), d.g2.as<int32_t>(),
                                  d.g3.as<int32_t>());
      break;
    case Path::kPermuteWindow: {
      cuda::PermuteWindowArgs pw;
      pw.perm = d.g0.as<int32_t>();
      pw.inv = d.g1.as<int32_t>();
      pw.num_cycles = d.num_cycles;
      pw.w = d.w;
      pw.circular = d.circular;
      pw.union_mode = d.union_mode;
      st = cuda::permute_window_bwd(a, pw);
      break;
    }
    default: st = unimplemented(std::string("attention: backend cuda: no backward for ") + path_name(plan.path));
  }
  BNA_RETURN_IF_ERROR(st);
  return ws.release();
}

bool cuda_available() { return cuda::device_available(); }
std::string cuda_device_name() { return cuda::device_name(); }
Status cuda_malloc(void** ptr, size_t bytes) { return cuda::device_malloc(ptr, bytes); }
void cuda_free(void* ptr) { cuda::device_free(ptr); }
Status cuda_copy(void* dst, const void* src, size_t bytes, bool to_device) {
  return to_device ? cuda::copy_to_device(dst, src, bytes) : cuda::copy_to_host(dst, src, bytes);
}
Status cuda_synchronize() { return cuda::device_synchronize(); }

#else  // !BNA_HAVE_CUDA

namespace {
Status no_cuda() {
  return unavailable("attention: backend cuda: this build has no CUDA backend (built without CUDA; configure with -DBNA_CUDA=ON and nvcc)");
}
}  // namespace

Status cuda_finish_plan(Plan&, PlanState&) { return no_cuda(); }
Status cuda_run(const Plan&, const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                const TensorView&, void*) { return no_cuda(); }
Status cuda_run_backward(const Plan&, const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                         const TensorView&, const TensorView&, const TensorView&, const TensorView&, const TensorView&,
                         float*, void*) { return no_cuda(); }
bool cuda_available() { return false; }
std::string cuda_device_name() { return "none"; }
Status cuda_malloc(void** ptr, size_t) { *ptr = nullptr; return no_cuda(); }
void cuda_free(void*) {}
Status cuda_copy(void*, const void*, size_t, bool) { return no_cuda(); }
Status cuda_synchronize() { return no_cuda(); }

#endif

}  // namespace bna::attn
