// Internal: a parallel loop that stays serial for small work. On a loaded machine an OpenMP team that
// spins between tiny regions costs far more than the work (measured: a tiny training step went from
// ~20 ms to ~600 ms), so loops under kSerialWork element-operations run on the calling thread.
#pragma once

#include <cstdint>

#include "bna/threads.hpp"

namespace bna::nn::detail {

inline constexpr int64_t kSerialWork = int64_t{1} << 16;

// fn(i) for i in [0, n); `work` is a rough count of element operations per i.
template <class F>
void par_rows(int64_t n, int64_t work, F&& fn) {
  if (n < 2 || n * work < kSerialWork) {
    for (int64_t i = 0; i < n; ++i) fn(i);
    return;
  }
  parallel_for(0, n, fn);
}

}  // namespace bna::nn::detail
