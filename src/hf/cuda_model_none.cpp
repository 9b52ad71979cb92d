// CudaModel in a build without CUDA (include/bna/hf_cuda.hpp): every entry point is kUnavailable.
#ifndef BNA_HAVE_CUDA
#include "bna/hf_cuda.hpp"

namespace bna::hf {
namespace {
Status none() { return unavailable("cuda model: built without CUDA (configure with -DBNA_CUDA=ON where nvcc exists)"); }
}  // namespace

struct CudaModel::Impl {
  Config cfg;
  AttentionOptions attn;
};

CudaModel::CudaModel() : impl_(std::make_unique<Impl>()) {}
CudaModel::CudaModel(CudaModel&&) noexcept = default;
CudaModel& CudaModel::operator=(CudaModel&&) noexcept = default;
CudaModel::~CudaModel() = default;
Expected<CudaModel> CudaModel::load(const std::string&) { return none(); }
Expected<CudaModel> CudaModel::random(const Config&, uint64_t) { return none(); }
const Config& CudaModel::config() const { return impl_->cfg; }
Status CudaModel::set_attention(const AttentionOptions&) { return none(); }
const AttentionOptions& CudaModel::attention() const { return impl_->attn; }
Status CudaModel::reset(int64_t) { return none(); }
int64_t CudaModel::position() const { return 0; }
int64_t CudaModel::capacity() const { return 0; }
size_t CudaModel::kv_bytes() const { return 0; }
size_t CudaModel::graph_bytes() const { return 0; }
size_t CudaModel::device_bytes() const { return 0; }
Expected<std::vector<float>> CudaModel::forward(std::span<const int32_t>, bool, int64_t) { return none(); }
Expected<int32_t> CudaModel::forward_greedy(std::span<const int32_t>) { return none(); }
Expected<ModelBenchReport> bench_model_cuda(CudaModel&, const ModelBenchOptions&) { return none(); }

}  // namespace bna::hf
#endif  // BNA_HAVE_CUDA
