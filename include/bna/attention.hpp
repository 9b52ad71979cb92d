// Attention runtime API: plan once, run many times. The same API fronts the CPU backend (also the
// reference every GPU kernel is tested against) and the CUDA backend.
//
// Tensors (dimension vocabulary of docs/numerics.md):
//   q    [B, Hq,  Tq, dh]   f32 | bf16 | f16
//   k, v [B, Hkv, Tk, dh]   same dtype as q
//   out  [B, Hq,  Tq, dh]   same dtype as q
//   lse  [B, Hq,  Tq]       f32, natural log; -inf for a row with no allowed key (its out row is 0)
// Causality: query i sits at absolute position q_offset + i and attends key j only if j <= that.
// GQA: the graph lives on KV heads; query head hq uses KV head hq / (Hq / Hkv) and its neighbourhood.
// Rows are multisets only where the source says so (permute-window union mode); ABI rows are sets.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bna/block_layout.hpp"
#include "bna/decode_graph.hpp"
#include "bna/dtype.hpp"
#include "bna/graph.hpp"
#include "bna/status.hpp"
#include "bna/tensor.hpp"
#include "bna/topology.hpp"

namespace bna::attn {

enum class Path { kDense, kGather, kPermuteWindow, kStreams, kBlockSparse, kCompressed, kDecode };
const char* path_name(Path p);  // "dense", "gather", "permute_window", "streams", "block_sparse", "compressed", "decode"
Expected<Path> parse_path(std::string_view s);

enum class Backend { kCpu, kCuda };
const char* backend_name(Backend b);
Expected<Backend> parse_backend(std::string_view s);

// Several cycles in permute-window: average the per-cycle outputs, or attend the union of the
// per-cycle bands with each key weighted by its multiplicity (a log-multiplicity score bonus).
enum class MultiCycleMode { kAverage, kUnionLogMultiplicity };

struct Options {
  float scale = 0.0f;  // 0 -> 1/sqrt(dh)
  Backend backend = Backend::kCpu;
  std::optional<Path> force_path;  // error (never a silent fallback) when the graph cannot use it
  bool use_edge_bias = false;
  std::array<float, 5> edge_bias{};  // added to the score, indexed by edge code; ignored when off
  // permute-window
  int64_t permute_window = 64;  // band half-width in cycle order
  MultiCycleMode multi_cycle_mode = MultiCycleMode::kAverage;
  bool circular = false;  // band wraps around the cycle
  // compressed butterfly: selected with force_path = Path::kCompressed and GraphSource::blocks as the
  // routing layout (block rows of KV head h or H = 1, Bs = compressed_block, T >= Tk). One cutoff
  // rule for prefill, chunked prefill and decode (docs/numerics.md): query at position pos attends raw
  // keys [c, pos], c = max(0, pos - L + 1), plus the means of routed complete blocks ending at or
  // before c. Untyped: use_edge_bias must be false. No backward.
  int64_t compressed_tail = 1024;   // L raw tokens attended exactly
  int64_t compressed_block = 64;    // block size of the mean-pooled summaries
};

struct Shape {
  int64_t B = 1, Hq = 1, Hkv = 1, Tq = 0, Tk = 0, dh = 64;
  int64_t q_offset = 0;  // absolute position of query 0 (Tk - Tq for decode / chunked prefill)
  DType dtype = DType::kF32;
};

// Where the neighbourhoods come from. Set exactly one of abi / perms / blocks / topology / decode, or dense = true.
struct GraphSource {
  const graph::GraphAbi* abi = nullptr;             // any ABI graph (gather; streams when it matches)
  // A topology (window + landmarks + cycles, with self loops): streams built from its cycle
  // permutations at T = Tk, never materialising the [H, T, D] ABI; equals planning its construct(Tk).
  // Strategies that need routing vectors (greedy, online insertion) are an error here.
  const topo::Topology* topology = nullptr;
  const topo::PermsOnly* perms = nullptr;           // permute-window
  const topo::BlockSparseLayout* blocks = nullptr;  // block-sparse
  bool dense = false;                               // dense causal
  // Incremental decode graph (Path::kDecode, chosen automatically): its size must equal Tk at plan
  // and at run time (re-plan after appending; plan is O(1) here). An ABI graph also runs on the decode
  // path with force_path = Path::kDecode. See docs/decode.md.
  const topo::DecodeGraph* decode = nullptr;
};

struct PlanState;  // backend-specific precomputed data (compacted streams, uploaded graphs, ...)

struct Plan {
  Path path = Path::kDense;
  std::string reason;  // why this path was chosen, for logs and `bna bench`
  Shape shape;
  Options options;
  size_t workspace_bytes = 0;
  std::shared_ptr<const PlanState> state;
};

// Picks the path from the graph's structure: dense flag -> dense; perms-only -> permute-window;
// ABI whose rows are exactly window + landmarks + few extra neighbours -> streams; block layout ->
// block-sparse; any other ABI -> gather. Checks every shape against the graph and names mismatches.
Expected<Plan> plan(const GraphSource& graph, const Shape& shape, const Options& opt = {});

// Forward. workspace: at least plan.workspace_bytes, or nullptr to allocate internally. No
// allocation happens inside the hot loops.
Status run(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
           const TensorView& out, const TensorView& lse, void* workspace = nullptr);

// Backward of run(): given out, lse and dout, writes dq [B,Hq,Tq,dh], dk, dv [B,Hkv,Tk,dh] (the
// dtype of q) and, when edge bias is on and d_edge_bias != nullptr, accumulates d(bias)[5].
Status run_backward(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                    const TensorView& out, const TensorView& lse, const TensorView& dout,
                    const TensorView& dq, const TensorView& dk, const TensorView& dv,
                    float* d_edge_bias = nullptr, void* workspace = nullptr);

// ---- compressed path: summaries carried across calls (chunked prefill, decode) -----------------
// Block means of K/V of one batch of sequences, kept so each call summarises only the blocks completed
// since the previous one (run() without a cache recomputes the blocks it needs, O(Tk*dh) per call).
// Both give bit-identical results. The K/V rows already summarised must not change between calls;
// reset() before a new sequence. Not thread-safe: one cache per concurrent caller.
class CompressedCache {
 public:
  CompressedCache();
  ~CompressedCache();
  CompressedCache(CompressedCache&&) noexcept;
  CompressedCache& operator=(CompressedCache&&) noexcept;
  void reset();
  int64_t blocks() const;  // complete blocks summarised (per batch element); 0 after reset
  struct Impl;
  Impl* impl() const { return impl_.get(); }

 private:
  std::unique_ptr<Impl> impl_;
};

// run() of a Path::kCompressed plan using (and extending) cache. Errors as run(), plus a plan of
// another path, or a cache built for another B/Hkv/dh/Bs (named).
Status run_compressed(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                      const TensorView& out, const TensorView& lse, CompressedCache& cache,
                      void* workspace = nullptr);

// ---- CPU benchmark (used by bench/attention_cpu.cpp and `bna bench attention`) ----------------
// Butterfly graphs at B=1, Hq=Hkv=H, f32: dense causal, gather and streams on the same ABI graph
// (window W, landmarks every S, `cycles` random cycles), permute-window (w = W, perms of the same
// topology) and block-sparse (butterfly layout, Bs = 64). Times run() only: median and spread of
// `repeats` runs after one warm-up. GFLOP/s counts allowed (query, key) pairs only, 4*dh per pair.
struct BenchOptions {
  std::vector<int64_t> T = {1024, 4096, 16384, 65536};
  int64_t H = 8, dh = 64, W = 64, S = 64, cycles = 1;
  int repeats = 5;
  int64_t dense_max_T = 16384;  // dense above this T is skipped (minutes per run on 2 cores)
  std::vector<Path> paths = {Path::kDense, Path::kGather, Path::kStreams, Path::kPermuteWindow, Path::kBlockSparse};
};
struct BenchRecord {
  Path path = Path::kDense;
  int64_t T = 0;
  bool skipped = false;
  std::string note;  // plan reason, or why skipped
  int64_t pairs = 0;  // allowed (query, key) pairs over all heads
  double ms_median = 0, ms_min = 0, ms_max = 0;
  double gflops = 0;             // useful GFLOP/s
  double speedup_vs_dense = 0;   // dense ms / this ms at the same T (0 when dense was skipped)
  double ratio_to_sgemm = 0;     // gflops / sgemm_gflops
};
struct BenchReport {
  int threads = 1;
  double sgemm_gflops = 0;  // OpenBLAS SGEMM 2048^3, measured in the same run
  BenchOptions options;
  std::vector<BenchRecord> records;
};
// Errors: invalid sizes (T, H, dh, W, S, repeats < 1) or a graph build / plan failure.
Expected<BenchReport> bench_cpu(const BenchOptions& opt);

// ---- CUDA backend (Options::backend = Backend::kCuda; src/attention/cuda_dispatch.cpp) -------------
// plan() picks the path as for the CPU, then checks that a CUDA kernel covers it: bf16/f16, dh
// 64/128, no edge bias; dense and streams with Tq == Tk (forward and backward) or decode (q_offset =
// Tk - Tq, G*Tq <= 64: split-K, forward only); block-sparse, permute-window and gather with Tq == Tk
// (forward and backward); compressed (force_path, Tq == Tk, forward only). The graph (streams extras,
// BSR arrays and their transpose, perms, neigh_idx and its transpose, routing) is uploaded once at plan time. Every TensorView given to run()/run_backward() then holds a DEVICE pointer (16-byte aligned),
// and plan.workspace_bytes counts DEVICE bytes (a 256-byte aligned device buffer, or nullptr to
// allocate one per call). Launches go to the default stream; run() returns after queueing them.
// Dense and streams (Tq == Tk) also take strided views (any strides, last dim contiguous; e.g. the
// token-major q/k/v of a fused QKV GEMM output); the kernels check them (cuda/launch.hpp). Their
// backward runs its dK/dV kernel on a second stream per host thread, joined back before returning.
// In a build without CUDA, plan() with backend cuda and the helpers below return kUnavailable
// ("built without CUDA") and cuda_available() is false. For `bna demo`-style use:
//   if (attn::cuda_available()) { cuda_malloc, cuda_copy(.., true), plan(.., opt{backend=kCuda}),
//   run(..), cuda_copy(.., false), cuda_free }.
bool cuda_available();            // CUDA build and at least one device
std::string cuda_device_name();   // device 0, or "none"
Status cuda_malloc(void** ptr, size_t bytes);
void cuda_free(void* ptr);        // nullptr is a no-op
Status cuda_copy(void* dst, const void* src, size_t bytes, bool to_device);  // synchronous
Status cuda_synchronize();

}  // namespace bna::attn
