// Device-memory helpers and event timer (see device_memory.hpp). Plain CUDA runtime calls, each
// checked; compiled only when the CUDA backend is enabled.
#include "attention/cuda/device_memory.hpp"

#include <cuda_runtime.h>

#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/launch.hpp"

namespace bna::cuda {

bool device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return n > 0;
}

std::string device_name() {
  if (!device_available()) return "none";
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return "unknown";
  return prop.name;
}

Status device_malloc(void** ptr, size_t bytes) {
  BNA_CUDA_TRY(cudaMalloc(ptr, bytes == 0 ? 16 : bytes));
  return Status::ok();
}

void device_free(void* ptr) {
  if (ptr != nullptr) (void)cudaFree(ptr);
}

Status copy_to_device(void* dst, const void* src, size_t bytes) {
  BNA_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
  return Status::ok();
}

Status copy_to_host(void* dst, const void* src, size_t bytes) {
  BNA_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
  return Status::ok();
}

Status copy_on_device(void* dst, const void* src, size_t bytes) {
  BNA_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
  return Status::ok();
}

Status device_memset(void* dst, int byte, size_t bytes) {
  BNA_CUDA_TRY(cudaMemset(dst, byte, bytes));
  return Status::ok();
}

Status device_synchronize() {
  BNA_CUDA_TRY(cudaDeviceSynchronize());
  BNA_CUDA_TRY(cudaGetLastError());
  return Status::ok();
}

EventTimer::EventTimer() {
  cudaEvent_t a = nullptr, b = nullptr;
  if (cudaEventCreate(&a) == cudaSuccess) start_ = a;
  if (cudaEventCreate(&b) == cudaSuccess) stop_ = b;
}

EventTimer::~EventTimer() {
  if (start_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(start_));
  if (stop_) (void)cudaEventDestroy(static_cast<cudaEvent_t>(stop_));
}

Status EventTimer::start() {
  if (!start_ || !stop_) return internal_error("cuda: EventTimer: cudaEventCreate failed");
  BNA_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(start_)));
  return Status::ok();
}

Status EventTimer::stop() {
  if (!start_ || !stop_) return internal_error("cuda: EventTimer: cudaEventCreate failed");
  BNA_CUDA_TRY(cudaEventRecord(static_cast<cudaEvent_t>(stop_)));
  BNA_CUDA_TRY(cudaEventSynchronize(static_cast<cudaEvent_t>(stop_)));
  return Status::ok();
}

Expected<float> EventTimer::elapsed_ms() const {
  float ms = 0.0f;
  cudaError_t e = cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start_), static_cast<cudaEvent_t>(stop_));
  if (e != cudaSuccess)
    return internal_error(std::string("cuda: cudaEventElapsedTime failed: ") + cudaGetErrorName(e));
  return ms;
}

}  // namespace bna::cuda
