// Host-side transposes for the graph-path backward (launch.hpp): which queries list each key.
#include <algorithm>
#include <string>

#include "attention/cuda/launch.hpp"

namespace bna::cuda {

Status transpose_gather(const int32_t* neigh_idx, int64_t Hkv, int64_t T, int64_t D, std::vector<int64_t>& rowptr,
                        std::vector<int32_t>& rows) {
  if (Hkv < 1 || T < 1 || D < 1)
    return invalid_argument("transpose_gather: Hkv=" + std::to_string(Hkv) + " T=" + std::to_string(T) + " D=" +
                            std::to_string(D) + ", expected all >= 1");
  rowptr.assign(static_cast<size_t>(Hkv * (T + 1)), 0);
  // Counts, prefix sums (absolute offsets), then fill in query order (ascending i per key).
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t e = 0; e < D; ++e) {
        const int32_t j = neigh_idx[(h * T + i) * D + e];
        if (j >= 0 && j <= i) ++rowptr[static_cast<size_t>(h * (T + 1) + j + 1)];
      }
  int64_t total = 0;
  for (int64_t h = 0; h < Hkv; ++h) {
    int64_t* rp = rowptr.data() + h * (T + 1);
    rp[0] = total;
    for (int64_t j = 0; j < T; ++j) {
      total += rp[j + 1];  // the count of key j
      rp[j + 1] = total;
    }
  }
  rows.assign(static_cast<size_t>(total), 0);
  std::vector<int64_t> fill(static_cast<size_t>(Hkv * T));
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t j = 0; j < T; ++j) fill[static_cast<size_t>(h * T + j)] = rowptr[static_cast<size_t>(h * (T + 1) + j)];
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t i = 0; i < T; ++i)
      for (int64_t e = 0; e < D; ++e) {
        const int32_t j = neigh_idx[(h * T + i) * D + e];
        if (j >= 0 && j <= i) rows[static_cast<size_t>(fill[static_cast<size_t>(h * T + j)]++)] = static_cast<int32_t>(i);
      }
  return Status::ok();
}

Status transpose_block_sparse(const int32_t* indptr, const int32_t* indices, int64_t Hkv, int64_t N,
                              std::vector<int32_t>& t_indptr, std::vector<int32_t>& t_indices) {
  if (Hkv < 1 || N < 1)
    return invalid_argument("transpose_block_sparse: Hkv=" + std::to_string(Hkv) + " N=" + std::to_string(N) +
                            ", expected both >= 1");
  t_indptr.assign(static_cast<size_t>(Hkv * (N + 1)), 0);
  std::vector<int32_t> cnt(static_cast<size_t>(Hkv * N), 0);
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t qb = 0; qb < N; ++qb)
      for (int32_t x = indptr[h * (N + 1) + qb]; x < indptr[h * (N + 1) + qb + 1]; ++x) {
        const int32_t kb = indices[x];
        if (kb < 0 || kb >= N)
          return invalid_argument("transpose_block_sparse: head " + std::to_string(h) + " block row " +
                                  std::to_string(qb) + " lists key block " + std::to_string(kb) + ", expected 0 <= kb < N=" +
                                  std::to_string(N));
        if (kb <= qb) ++cnt[static_cast<size_t>(h * N + kb)];  // later key blocks are never attended
      }
  int32_t total = 0;
  for (int64_t h = 0; h < Hkv; ++h) {
    for (int64_t kb = 0; kb < N; ++kb) {
      t_indptr[static_cast<size_t>(h * (N + 1) + kb)] = total;
      total += cnt[static_cast<size_t>(h * N + kb)];
    }
    t_indptr[static_cast<size_t>(h * (N + 1) + N)] = total;
  }
  t_indices.assign(static_cast<size_t>(total), 0);
  std::vector<int32_t> fill(static_cast<size_t>(Hkv * N));
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t kb = 0; kb < N; ++kb) fill[static_cast<size_t>(h * N + kb)] = t_indptr[static_cast<size_t>(h * (N + 1) + kb)];
  for (int64_t h = 0; h < Hkv; ++h)
    for (int64_t qb = 0; qb < N; ++qb)
      for (int32_t x = indptr[h * (N + 1) + qb]; x < indptr[h * (N + 1) + qb + 1]; ++x) {
        const int32_t kb = indices[x];
        if (kb <= qb) t_indices[static_cast<size_t>(fill[static_cast<size_t>(h * N + kb)]++)] = static_cast<int32_t>(qb);
      }
  return Status::ok();
}

}  // namespace bna::cuda
