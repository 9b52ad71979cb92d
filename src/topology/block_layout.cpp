// Validation of block-sparse (BSR) layouts. Checks shapes first, so that every later index
// (indptr, head_base, indices) is known to be in bounds before it is read; causality is not
// required here (token-level masking is attention's job), only ascending unique in-range indices.
#include <string>

#include "bna/block_layout.hpp"

namespace bna::topo {

Status validate_block_layout(const BlockSparseLayout& L) {
  auto s = [](int64_t v) { return std::to_string(v); };
  if (L.H < 1) return invalid_argument("block_layout: H=" + s(L.H) + ", expected H >= 1");
  if (L.T < 1) return invalid_argument("block_layout: T=" + s(L.T) + ", expected T >= 1");
  if (L.block_size < 1)
    return invalid_argument("block_layout: block_size=" + s(L.block_size) + ", expected block_size >= 1");
  const int64_t N = (L.T + L.block_size - 1) / L.block_size;
  if (L.n_blocks != N)
    return invalid_argument("block_layout: n_blocks=" + s(L.n_blocks) + ", expected ceil(T/Bs) = " + s(N) +
                            " for T=" + s(L.T) + " Bs=" + s(L.block_size));
  if (static_cast<int64_t>(L.indptr.size()) != L.H * (N + 1))
    return invalid_argument("block_layout: indptr has " + s(static_cast<int64_t>(L.indptr.size())) +
                            " entries, expected H*(N+1) = " + s(L.H * (N + 1)));
  if (static_cast<int64_t>(L.head_base.size()) != L.H)
    return invalid_argument("block_layout: head_base has " + s(static_cast<int64_t>(L.head_base.size())) +
                            " entries, expected H = " + s(L.H));
  const int64_t n_idx = static_cast<int64_t>(L.indices.size());
  for (int64_t h = 0; h < L.H; ++h) {
    const int32_t* ip = L.indptr.data() + h * (N + 1);
    if (ip[0] != 0)
      return invalid_argument("block_layout: head " + s(h) + ": indptr[0]=" + s(ip[0]) + ", expected 0");
    for (int64_t b = 0; b < N; ++b)
      if (ip[b + 1] < ip[b])
        return invalid_argument("block_layout: head " + s(h) + " block " + s(b) + ": indptr decreases (" +
                                s(ip[b]) + " -> " + s(ip[b + 1]) + ")");
    const int64_t base = L.head_base[h];
    if (base < 0 || base + ip[N] > n_idx)
      return out_of_range("block_layout: head " + s(h) + ": entries [" + s(base) + ", " + s(base + ip[N]) +
                          ") outside indices of size " + s(n_idx));
    for (int64_t b = 0; b < N; ++b) {
      const int32_t* r = L.indices.data() + base + ip[b];
      const int64_t len = ip[b + 1] - ip[b];
      for (int64_t p = 0; p < len; ++p) {
        if (r[p] < 0 || r[p] >= N)
          return out_of_range("block_layout: head " + s(h) + " block " + s(b) + " position " + s(p) + ": index " +
                              s(r[p]) + " out of range [0, " + s(N) + ")");
        if (p > 0 && r[p] <= r[p - 1])
          return invalid_argument("block_layout: head " + s(h) + " block " + s(b) + " position " + s(p) +
                                  ": index " + s(r[p]) + " after " + s(r[p - 1]) + ", expected ascending unique");
      }
    }
  }
  return Status::ok();
}

}  // namespace bna::topo
