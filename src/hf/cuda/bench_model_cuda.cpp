// bench_model_cuda (include/bna/hf_cuda.hpp): dense and Butterfly prefill / decode of a CudaModel,
// through the loop bench_model uses (src/hf/bench_loop.hpp). Each forward copies its logits to the
// host, so the wall clock of a call covers its GPU work; the greedy draw runs on the host, as
// `bna run` does, and is inside the decode time.
//
// Decisions a reader must know:
// * One untimed run per record comes first (cuBLAS heuristics, activation buffer growth).
// * The prefill is one call, or chunks of o.chunk tokens (CudaModel::forward's chunking).
#include "attention/cuda/launch.hpp"
#include "bna/hf_cuda.hpp"
#include "hf/bench_loop.hpp"

namespace bna::hf {

Expected<ModelBenchReport> bench_model_cuda(CudaModel& m, const ModelBenchOptions& o) {
  if (o.chunk < 0)
    return invalid_argument("bench model: chunk=" + std::to_string(o.chunk) + ", expected >= 0 (0 = one call)");
  struct CudaHooks {
    int64_t chunk;
    int warmup_runs() const { return 1; }
    Expected<std::vector<float>> prefill(CudaModel& m, std::span<const int32_t> ids) {
      return m.forward(ids, false, chunk);
    }
    Expected<int32_t> decode_greedy(CudaModel& m, int32_t tok) {
      return m.forward_greedy(std::span<const int32_t>(&tok, 1));
    }
    void before_runs(ModelBenchRecord&) {}
    void after_runs(const CudaModel& m, ModelBenchRecord& r) { r.device_bytes = m.device_bytes(); }
  } hooks{o.chunk};
  BNA_ASSIGN_OR_RETURN(ModelBenchReport rep, detail::bench_model_loop(m, o, hooks));
  rep.device = bna::cuda::device_name();
  return rep;
}

}  // namespace bna::hf
