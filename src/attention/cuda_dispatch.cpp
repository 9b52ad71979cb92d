// CUDA backend of the plan/run API (see cuda_dispatch.hpp) and the public CUDA helpers of
// attention.hpp. Decisions: the graph (streams extras, int32 [Hkv, T, C]) is uploaded once at plan
// time and owned by the PlanState (freed with the last copy of the plan); a call without a caller
// workspace allocates one for that call only (cudaMalloc/cudaFree around the launches, which then
// synchronise); every launch goes to the default stream.
#include "attention/cuda_dispatch.hpp"

#include <string>

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
};

const CudaPlanData& data_of(const Plan& plan) { return *static_cast<const CudaPlanData*>(plan.state->cuda.get()); }

cuda::AttnArgs fwd_args(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                        const TensorView& out, const TensorView& lse) {
  const Shape& s = plan.shape;
  cuda::AttnArgs a;
  a.q = q.data; a.k = k.data; a.v = v.data; a.out = out.data; a.lse = lse.as<float>();
  a.B = s.B; a.Hq = s.Hq; a.Hkv = s.Hkv; a.T = s.Tk; a.dh = s.dh; a.dtype = s.dtype;
  a.scale = plan.options.scale;
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
  if (plan.path != Path::kDense && plan.path != Path::kStreams)
    return unimplemented(std::string("attention: backend cuda has no ") + path_name(plan.path) +
                         " kernel yet (dense and streams only)");
  if (s.dtype != DType::kBF16 && s.dtype != DType::kF16)
    return invalid_argument(std::string("attention: backend cuda: dtype ") + dtype_name(s.dtype) + ", expected bf16 or f16");
  if (s.dh != 64 && s.dh != 128)
    return invalid_argument("attention: backend cuda: dh=" + S(s.dh) + ", expected 64 or 128");
  if (plan.options.use_edge_bias)
    return unimplemented("attention: backend cuda: edge bias is not implemented in the CUDA kernels");
  auto d = std::make_shared<CudaPlanData>();
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
  const cuda::AttnArgs a = fwd_args(plan, q, k, v, out, lse);
  return dense ? cuda::dense_causal_fwd(a) : cuda::streams_fwd(a, d.W, d.S, d.extra.as<int32_t>(), d.C);
}

Status cuda_run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView& out, const TensorView& lse, const TensorView& dout, const TensorView& dq,
                         const TensorView& dk, const TensorView& dv, float* d_edge_bias, void* workspace) {
  (void)d_edge_bias;  // edge bias is rejected at plan time
  if (!plan.state->cuda) return invalid_argument("attention: plan was not made for backend cuda");
  const CudaPlanData& d = data_of(plan);
  if (d.decode) return unimplemented("attention: backend cuda: no backward for decode plans (Tq < Tk)");
  CallWorkspace ws;
  BNA_RETURN_IF_ERROR(ws.acquire(workspace, plan.workspace_bytes));
  cuda::AttnBwdArgs a;
  a.fwd = fwd_args(plan, q, k, v, out, lse);
  a.dout = dout.data; a.dq = dq.data; a.dk = dk.data; a.dv = dv.data;
  a.workspace = ws.ptr;
  a.workspace_bytes = plan.workspace_bytes;
  BNA_RETURN_IF_ERROR(plan.path == Path::kDense ? cuda::dense_causal_bwd(a)
                                                : cuda::streams_bwd(a, d.W, d.S, d.extra.as<int32_t>(), d.C));
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
