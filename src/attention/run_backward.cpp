// Backward dispatch of the attention runtime: the same validation and f32 staging as run(), then
// one call per batch element into the backward kernels declared in attention/cpu/backward.hpp.
// The kernels overwrite the bias gradient per batch element; this file sums it over B into the
// caller's d_edge_bias (accumulating, as attention.hpp promises).
#include <cstring>

#include "attention/cpu/backward.hpp"
#include "attention/cuda_dispatch.hpp"  // [cuda-dispatch]
#include "attention/runtime.hpp"

namespace bna::attn {

Status run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const TensorView& lse, const TensorView& dout, const TensorView& dq,
                    const TensorView& dk, const TensorView& dv, float* d_edge_bias, void* workspace) {
  if (!plan.state) return invalid_argument("attention: plan has no state (use attn::plan to build it)");
  const Shape& s = plan.shape;
  const bool sv = strided_views_ok(plan);
  BNA_RETURN_IF_ERROR(check_tensor(q, "q", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(k, "k", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(v, "v", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(out, "out", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_lse(lse, s));
  BNA_RETURN_IF_ERROR(check_tensor(dout, "dout", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(dq, "dq", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(dk, "dk", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(dv, "dv", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  if (plan.options.backend == Backend::kCuda)  // [cuda-dispatch]
    return cuda_run_backward(plan, q, k, v, out, lse, dout, dq, dk, dv, d_edge_bias, workspace);
  const PlanState& st = *plan.state;
  WorkspaceGuard ws;
  BNA_RETURN_IF_ERROR(acquire_workspace(plan, workspace, ws));
  const bool f32 = s.dtype == DType::kF32;
  const int64_t nq = q_elems(s), nkv = kv_elems(s);
  float* qs = ws.base;
  float* ks = qs + round16(nq);
  float* vs = ks + round16(nkv);
  float* os = vs + round16(nkv);
  float* dos = os + round16(nq);
  float* dqs = dos + round16(nq);
  float* dks = dqs + round16(nq);
  float* dvs = dks + round16(nkv);
  const bool want_bias_grad = plan.options.use_edge_bias && d_edge_bias != nullptr;
  float bias_grad[5];
  const size_t esz = dtype_size(s.dtype);
  for (int64_t b = 0; b < s.B; ++b) {
    auto at = [&](const TensorView& t, int64_t n) { return static_cast<char*>(t.data) + b * n * esz; };
    cpu::GradProblem g;
    g.fwd = make_problem(plan);
    g.fwd.lse = lse.as<float>() + b * s.Hq * s.Tq;
    if (f32) {
      g.fwd.q = reinterpret_cast<const float*>(at(q, nq));
      g.fwd.k = reinterpret_cast<const float*>(at(k, nkv));
      g.fwd.v = reinterpret_cast<const float*>(at(v, nkv));
      g.fwd.o = reinterpret_cast<float*>(at(out, nq));
      g.dout = reinterpret_cast<const float*>(at(dout, nq));
      g.dq = reinterpret_cast<float*>(at(dq, nq));
      g.dk = reinterpret_cast<float*>(at(dk, nkv));
      g.dv = reinterpret_cast<float*>(at(dv, nkv));
    } else {
      convert_to_float(s.dtype, at(q, nq), qs, nq);
      convert_to_float(s.dtype, at(k, nkv), ks, nkv);
      convert_to_float(s.dtype, at(v, nkv), vs, nkv);
      convert_to_float(s.dtype, at(out, nq), os, nq);
      convert_to_float(s.dtype, at(dout, nq), dos, nq);
      g.fwd.q = qs; g.fwd.k = ks; g.fwd.v = vs; g.fwd.o = os;
      g.dout = dos; g.dq = dqs; g.dk = dks; g.dv = dvs;
    }
    g.d_edge_bias = want_bias_grad ? bias_grad : nullptr;
    switch (plan.path) {
      case Path::kDense: cpu::dense_bwd(g); break;
      case Path::kGather: cpu::gather_bwd(g, *st.src.abi); break;
      case Path::kStreams: cpu::streams_bwd(g, *st.streams); break;
      case Path::kPermuteWindow:
        cpu::permute_window_bwd(g, *st.src.perms, plan.options.permute_window, plan.options.multi_cycle_mode,
                                plan.options.circular);
        break;
      case Path::kBlockSparse: cpu::block_sparse_bwd(g, *st.src.blocks); break;
      default: return unimplemented(std::string("attention: path ") + path_name(plan.path) + " has no CPU backward");
    }
    if (!f32) {
      convert_from_float(s.dtype, dqs, at(dq, nq), nq);
      convert_from_float(s.dtype, dks, at(dk, nkv), nkv);
      convert_from_float(s.dtype, dvs, at(dv, nkv), nkv);
    }
    if (want_bias_grad)
      for (int e = 0; e < 5; ++e) d_edge_bias[e] += bias_grad[e];
  }
  return {};
}

}  // namespace bna::attn
