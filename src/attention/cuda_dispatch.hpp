// CUDA backend of the plan/run API (internal). plan() runs the shared planner (path choice, streams
// extraction) and then cuda_finish_plan(); run() / run_backward() hand over to cuda_run() /
// cuda_run_backward() after the shared tensor checks. Compiled in every build: without CUDA these
// return "built without CUDA" errors.
#pragma once

#include "attention/runtime.hpp"
#include "bna/attention.hpp"

namespace bna::attn {

// Checks that the CUDA kernels cover the plan (path dense or streams; bf16/f16; dh 64/128; no edge
// bias; Tq == Tk, or decode with q_offset = Tk - Tq and G*Tq <= 64), uploads the streams extras
// once into st.cuda, and sets plan.workspace_bytes to the DEVICE workspace a call needs.
Status cuda_finish_plan(Plan& plan, PlanState& st);
Status cuda_run(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                const TensorView& lse, void* workspace);
Status cuda_run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                         const TensorView& out, const TensorView& lse, const TensorView& dout, const TensorView& dq,
                         const TensorView& dk, const TensorView& dv, float* d_edge_bias, void* workspace);

}  // namespace bna::attn
