// CudaGpt in a build without CUDA (include/bna/model_cuda.hpp): every entry point is kUnavailable.
#ifndef BNA_HAVE_CUDA
#include "bna/model_cuda.hpp"

namespace bna::model {
namespace {
Status none() { return unavailable("cuda gpt: built without CUDA (configure with -DBNA_CUDA=ON where nvcc exists)"); }
}  // namespace

struct CudaGpt::Impl {};

CudaGpt::CudaGpt() : impl_(std::make_unique<Impl>()) {}
CudaGpt::CudaGpt(CudaGpt&&) noexcept = default;
CudaGpt& CudaGpt::operator=(CudaGpt&&) noexcept = default;
CudaGpt::~CudaGpt() = default;
Expected<CudaGpt> CudaGpt::create(Gpt&) { return none(); }
Expected<float> CudaGpt::forward(const int32_t*, const int32_t*, int64_t, int64_t, bool) { return none(); }
Status CudaGpt::backward(float) { return none(); }
Status CudaGpt::zero_grad() { return none(); }
Expected<double> CudaGpt::step(float, const train::AdamWOptions&, double) { return none(); }
int64_t CudaGpt::steps_done() const { return 0; }
Status CudaGpt::logits(std::vector<float>&) const { return none(); }
Status CudaGpt::download_optimizer(std::vector<float>&, std::vector<float>&) const { return none(); }
Status CudaGpt::upload_optimizer(const std::vector<float>&, const std::vector<float>&, int64_t) { return none(); }
Status CudaGpt::download_weights(Gpt&) const { return none(); }
Status CudaGpt::download_grads(std::vector<float>&) const { return none(); }
size_t CudaGpt::device_bytes() const { return 0; }

}  // namespace bna::model
#endif  // BNA_HAVE_CUDA
