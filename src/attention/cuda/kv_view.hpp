// Host-side checks and geometry of the KV views the forward and decode launchers share: 16-byte
// alignment and the paged-cache arguments (launch.hpp AttnArgs::kv_pages). No CUDA header.
#pragma once

#include <cstdint>
#include <string>

#include "bna/status.hpp"

namespace bna::cuda::detail {

inline bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// Page size, table and table stride of a paged K/V over T keys (nothing to check when pages is null).
inline Status validate_pages(const std::string& w, const void* const* pages, int64_t page, int64_t stride, int64_t T) {
  if (pages == nullptr) return Status::ok();
  if (page < 1 || page > (int64_t{1} << 20) || (page & (page - 1)) != 0)
    return invalid_argument(w + ": kv_page=" + std::to_string(page) + ", expected a power of two in [1, 2^20]");
  const int64_t need = (T + page - 1) / page;
  if (stride < need || stride > (int64_t{1} << 30))
    return invalid_argument(w + ": kv_pages_stride=" + std::to_string(stride) + ", expected >= ceil(T / kv_page) = " +
                            std::to_string(need) + " (and <= 2^30)");
  if (!aligned16(pages)) return invalid_argument(w + ": kv_pages must be 16-byte aligned");
  return Status::ok();
}

// log2 of a validated page size.
inline int page_shift(int64_t page) {
  int shift = 0;
  while ((int64_t{1} << shift) < page) ++shift;
  return shift;
}

}  // namespace bna::cuda::detail
