// Butterfly rows materialised: the BSR block layout (rows sorted ascending, identical per KV head)
// and the token-level graph ABI used for analysis and pictures. Both build every block's row once
// into a flat CSR of role entries, then fill the output in parallel; heads are copies of head 0.
#include <algorithm>
#include <climits>
#include <cstring>
#include <string>

#include "bna/butterfly.hpp"
#include "bna/threads.hpp"

namespace bna::topo {

namespace {

// Rows cost well under a microsecond each: below this many, a thread team costs more than it saves.
constexpr int64_t kParallelMin = 4096;

template <class F>
void for_each_index(int64_t n, F&& fn) {
  if (n < kParallelMin) {
    for (int64_t i = 0; i < n; ++i) fn(i);
  } else {
    parallel_for(0, n, fn);
  }
}

struct RoleRows {
  std::vector<int64_t> ptr;  // [N + 1]
  std::vector<ButterflyEntry> entries;
};

Status check_shape(int64_t T, int64_t block_size, int64_t Hkv, const ButterflyOptions& opt, int64_t* N) {
  auto s = [](int64_t v) { return std::to_string(v); };
  if (T < 1) return invalid_argument("butterfly: T=" + s(T) + ", expected T >= 1");
  if (block_size < 1) return invalid_argument("butterfly: block_size=" + s(block_size) + ", expected block_size >= 1");
  if (Hkv < 1) return invalid_argument("butterfly: Hkv=" + s(Hkv) + ", expected Hkv >= 1");
  *N = (T + block_size - 1) / block_size;
  if (opt.num_blocks != 0 && opt.num_blocks != *N)
    return invalid_argument("butterfly: num_blocks=" + s(opt.num_blocks) + " but T=" + s(T) + " Bs=" + s(block_size) +
                            " gives N=" + s(*N) + ", expected 0 (derive) or " + s(*N));
  return Status::ok();
}

// Rows of all N blocks in role order. Two passes over the blocks (lengths, then entries) keep memory
// at exactly the total row length.
RoleRows build_role_rows(const ButterflyPlan& plan) {
  const int64_t N = plan.opt.num_blocks;
  RoleRows rr;
  rr.ptr.assign(static_cast<size_t>(N + 1), 0);
  for_each_index(N, [&](int64_t b) {
    thread_local std::vector<ButterflyEntry> row;
    butterfly_row(b, plan, row);
    rr.ptr[b + 1] = static_cast<int64_t>(row.size());
  });
  for (int64_t b = 0; b < N; ++b) rr.ptr[b + 1] += rr.ptr[b];
  rr.entries.resize(static_cast<size_t>(rr.ptr[N]));
  for_each_index(N, [&](int64_t b) {
    thread_local std::vector<ButterflyEntry> row;
    butterfly_row(b, plan, row);
    std::copy(row.begin(), row.end(), rr.entries.begin() + rr.ptr[b]);
  });
  return rr;
}

}  // namespace

Expected<BlockSparseLayout> butterfly_block_layout(int64_t T, int64_t block_size, int64_t Hkv,
                                                   const ButterflyOptions& opt) {
  int64_t N = 0;
  BNA_RETURN_IF_ERROR(check_shape(T, block_size, Hkv, opt, &N));
  ButterflyOptions o = opt;
  o.num_blocks = N;
  BNA_ASSIGN_OR_RETURN(ButterflyPlan plan, butterfly_plan(o));
  const RoleRows rr = build_role_rows(plan);
  const int64_t nnz = rr.ptr[N];
  if (nnz > INT32_MAX)
    return out_of_range("butterfly: layout has " + std::to_string(nnz) +
                        " entries per head, expected <= 2147483647 (int32 indptr)");

  BlockSparseLayout L;
  L.H = Hkv;
  L.T = T;
  L.block_size = block_size;
  L.n_blocks = N;
  L.indptr.resize(static_cast<size_t>(Hkv * (N + 1)));
  L.indices.resize(static_cast<size_t>(Hkv * nnz));
  L.head_base.resize(static_cast<size_t>(Hkv));
  for (int64_t b = 0; b <= N; ++b) L.indptr[b] = static_cast<int32_t>(rr.ptr[b]);
  for_each_index(N, [&](int64_t b) {
    int32_t* dst = L.indices.data() + rr.ptr[b];
    for (int64_t e = rr.ptr[b]; e < rr.ptr[b + 1]; ++e) *dst++ = rr.entries[e].block;
    std::sort(L.indices.data() + rr.ptr[b], dst);
  });
  for (int64_t h = 0; h < Hkv; ++h) {
    L.head_base[h] = h * nnz;
    if (h == 0) continue;
    std::memcpy(L.indptr.data() + h * (N + 1), L.indptr.data(), sizeof(int32_t) * (N + 1));
    std::memcpy(L.indices.data() + h * nnz, L.indices.data(), sizeof(int32_t) * nnz);
  }
  return L;
}

Expected<graph::GraphAbi> butterfly_token_graph(int64_t T, int64_t block_size, int64_t Hkv,
                                                const ButterflyOptions& opt) {
  int64_t N = 0;
  BNA_RETURN_IF_ERROR(check_shape(T, block_size, Hkv, opt, &N));
  if (T > INT32_MAX) return out_of_range("butterfly: T=" + std::to_string(T) + ", expected T <= 2147483647");
  ButterflyOptions o = opt;
  o.num_blocks = N;
  BNA_ASSIGN_OR_RETURN(ButterflyPlan plan, butterfly_plan(o));
  const RoleRows rr = build_role_rows(plan);
  auto block_len = [&](int64_t c) { return std::min(T, (c + 1) * block_size) - c * block_size; };

  // The last token of a block has the longest row of that block: every entry's full block.
  int64_t D = 1;
  for (int64_t b = 0; b < N; ++b) {
    int64_t len = 0;
    for (int64_t e = rr.ptr[b]; e < rr.ptr[b + 1]; ++e) len += block_len(rr.entries[e].block);
    D = std::max(D, len);
  }
  const int64_t kMaxEntries = int64_t{1} << 31;
  if (Hkv * T > kMaxEntries / D)
    return out_of_range("butterfly: token graph needs Hkv*T*D = " + std::to_string(Hkv) + "*" + std::to_string(T) +
                        "*" + std::to_string(D) + " entries, expected <= 2^31 (use the block layout instead)");

  graph::GraphAbi g;
  g.H = Hkv;
  g.T = T;
  g.D = D;
  g.neigh_idx.assign(static_cast<size_t>(Hkv * T * D), -1);
  g.edge_type.assign(static_cast<size_t>(Hkv * T * D), static_cast<uint8_t>(graph::EdgeType::kPad));
  g.meta.strategy = "butterfly";
  g.meta.window = 0;
  g.meta.landmark_stride = 0;
  g.meta.num_cycles = 0;
  g.meta.seed = 0;
  g.meta.include_self = true;

  for_each_index(T, [&](int64_t i) {
    const int64_t b = i / block_size;
    int32_t* idx = g.neigh_idx.data() + i * D;
    uint8_t* ty = g.edge_type.data() + i * D;
    int64_t n = 0;
    for (int64_t e = rr.ptr[b]; e < rr.ptr[b + 1]; ++e) {
      const ButterflyEntry& en = rr.entries[e];
      const graph::EdgeType t = (en.roles & kRolePartner) ? graph::EdgeType::kRewire
                                : (en.roles & kRoleSink)  ? graph::EdgeType::kLandmark
                                                          : graph::EdgeType::kWindow;
      const int64_t j0 = en.block * block_size;
      const int64_t j1 = std::min(std::min(T, j0 + block_size), i + 1);
      for (int64_t j = j0; j < j1; ++j, ++n) {
        idx[n] = static_cast<int32_t>(j);
        ty[n] = static_cast<uint8_t>(t);
      }
    }
  });
  for (int64_t h = 1; h < Hkv; ++h) {
    std::memcpy(g.neigh_idx.data() + h * T * D, g.neigh_idx.data(), sizeof(int32_t) * T * D);
    std::memcpy(g.edge_type.data() + h * T * D, g.edge_type.data(), T * D);
  }
  return g;
}

}  // namespace bna::topo
