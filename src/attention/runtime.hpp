// Internal pieces shared by the forward (attention.cpp) and backward (run_backward.cpp) runtimes:
// the CPU plan state, tensor validation and the workspace layout.
// Workspace layout (one batch element at a time): [f32 staging of q, k, v, o, dout, dq, dk, dv when
// the dtype is not f32] then [per-thread kernel scratch]. Every slice is 64-byte aligned.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "attention/cpu/kernels.hpp"
#include "bna/attention.hpp"

namespace bna::attn {

struct PlanState {
  GraphSource src;                          // borrowed: the graph must outlive the plan
  std::optional<cpu::StreamsGraph> streams;  // kStreams only
  int64_t max_keys_per_row = 0;             // kernel key-list scratch
  int threads = 1;                          // threads the scratch was sized for
  size_t scratch_floats_per_thread = 0;
  size_t staging_floats = 0;  // f32 staging for one batch element (0 when dtype is f32)
  // Path-specific workspace after the per-thread scratch (plan_compressed / plan_decode below).
  size_t path_floats = 0;
  int64_t compressed_blocks = 0;  // kCompressed: blocks run() summarises per batch element (no cache)
  int64_t decode_splits = 1;      // kDecode: key splits per row
  int64_t gqa_pack = 1;           // kDense / kStreams on the CPU: query heads per packed tile (gqa_pack.hpp)
  std::shared_ptr<void> cuda;  // [cuda-dispatch] backend cuda: uploaded graph (cuda_dispatch.cpp)
};

// Checks a 4-D tensor argument: dtype, contiguity and dims [d0, d1, d2, d3]; `name` is "q", "k", ...
// allow_strided (strided_views_ok) accepts any strides with a contiguous last dim; the CUDA kernels
// check the rest (cuda/launch.hpp AttnArgs::q_strides).
Status check_tensor(const TensorView& t, const char* name, DType dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                    bool allow_strided = false);
// Strided q / k / v / out (and their gradients): backend cuda, dense or streams, Tq == Tk.
bool strided_views_ok(const Plan& plan);
Status check_lse(const TensorView& t, const Shape& s);

// Per-element counts of one batch element.
inline int64_t q_elems(const Shape& s) { return s.Hq * s.Tq * s.dh; }
inline int64_t kv_elems(const Shape& s) { return s.Hkv * s.Tk * s.dh; }
inline size_t round16(size_t n) { return (n + 15) & ~size_t(15); }

// Owns an internal workspace when the caller passes none; otherwise checks the caller's size.
struct WorkspaceGuard {
  float* base = nullptr;
  void* owned = nullptr;
  ~WorkspaceGuard();
};
Status acquire_workspace(const Plan& plan, void* user, WorkspaceGuard& ws);

cpu::Problem make_problem(const Plan& plan);

// ---- compressed and decode paths (src/attention/run_compressed_decode.cpp) ----------------------
// Validate and size the path; fill plan.path/reason and st's path fields (not threads/staging).
Status plan_compressed(const topo::BlockSparseLayout& routing, const Shape& s, const Options& o, Plan& p, PlanState& st);
Status plan_decode(const GraphSource& g, const Shape& s, const Options& o, Plan& p, PlanState& st);
// Workspace of the path: `path` points at st.path_floats floats (64-byte aligned).
// Called once per run() before the batch loop (decode: builds every row's key list).
Status prepare_path(const Plan& plan, float* path);
// One batch element b (f32 pointers in p). cache may be null (kCompressed only).
Status run_path_batch(const Plan& plan, const cpu::Problem& p, int64_t b, float* path, const cpu::FwdScratch& fs,
                      CompressedCache* cache);
Status run_impl(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                const TensorView& out, const TensorView& lse, void* workspace, CompressedCache* cache);

}  // namespace bna::attn
