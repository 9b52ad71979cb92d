// Minimal device-memory helpers for tests and benchmarks (host-only header, no CUDA types).
// DeviceBuffer owns one cudaMalloc allocation; every call returns Status instead of throwing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>

#include "bna/status.hpp"

namespace bna::cuda {

Status device_malloc(void** ptr, size_t bytes);
void device_free(void* ptr);  // nullptr is a no-op; errors are ignored (used in destructors)
Status copy_to_device(void* dst, const void* src, size_t bytes);
Status copy_to_host(void* dst, const void* src, size_t bytes);
Status copy_on_device(void* dst, const void* src, size_t bytes);  // device -> device
Status device_memset(void* dst, int byte, size_t bytes);
Status device_synchronize();

// Timing with CUDA events on the default stream: elapsed milliseconds between two records.
class EventTimer {
 public:
  EventTimer();
  ~EventTimer();
  EventTimer(const EventTimer&) = delete;
  EventTimer& operator=(const EventTimer&) = delete;
  Status start();
  Status stop();                     // records the end event and waits for it
  Expected<float> elapsed_ms() const;

 private:
  void* start_ = nullptr;
  void* stop_ = nullptr;
};

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  ~DeviceBuffer() { device_free(ptr_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)), bytes_(o.bytes_) {}
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) { device_free(ptr_); ptr_ = std::exchange(o.ptr_, nullptr); bytes_ = o.bytes_; }
    return *this;
  }
  Status allocate(size_t bytes) {
    device_free(ptr_);
    ptr_ = nullptr;
    bytes_ = bytes;
    return device_malloc(&ptr_, bytes);
  }
  void* get() const { return ptr_; }
  template <class T> T* as() const { return static_cast<T*>(ptr_); }
  size_t bytes() const { return bytes_; }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace bna::cuda
