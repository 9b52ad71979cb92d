// Parallel loops over the cores (OpenMP underneath; its team is sized to the cores by default).
// parallel_for calls fn(i) for i in [begin, end) with a static schedule; fn must not throw.
#pragma once

#include <cstdint>

namespace bna {

int num_threads();
void set_num_threads(int n);  // n <= 0 restores the default (all cores)

template <class F>
void parallel_for(int64_t begin, int64_t end, F&& fn) {
#pragma omp parallel for schedule(static)
  for (int64_t i = begin; i < end; ++i) fn(i);
}

// Dynamic schedule in chunks of `grain`, for uneven work (e.g. causal rows).
template <class F>
void parallel_for_dynamic(int64_t begin, int64_t end, int64_t grain, F&& fn) {
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t c = begin; c < end; c += grain) {
    const int64_t e = c + grain < end ? c + grain : end;
    for (int64_t i = c; i < e; ++i) fn(i);
  }
}

}  // namespace bna
