// Graph cases of the GPU graph-path tests (block-sparse, permute-window, gather): the graph in the
// form plan() takes and each row's reference key lists, written from docs/numerics.md independently of
// the kernels. Shared by attn_fwd_paths_test.cpp and attn_bwd_paths_test.cpp (CUDA builds only).
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bna/attention.hpp"
#include "bna/block_layout.hpp"
#include "bna/butterfly.hpp"
#include "bna/dtype.hpp"
#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::test::cuda_paths {

using bna::DType;
namespace topo = bna::topo;

enum class Kind { kBlockButterfly, kBlockRandom, kPermute, kGather };

struct Case {
  Kind kind;
  int64_t T, dh, group;
  DType dtype;
  int64_t Bs = 64;       // block-sparse
  int64_t w = 64;        // permute-window
  int64_t cycles = 1;
  bool union_mode = false;
  bool circular = false;
  int64_t D = 40;        // gather
};

inline std::string case_name(const Case& c) {
  std::string s;
  switch (c.kind) {
    case Kind::kBlockButterfly: s = "bsbfly_Bs" + std::to_string(c.Bs); break;
    case Kind::kBlockRandom: s = "bsrand_Bs" + std::to_string(c.Bs); break;
    case Kind::kPermute:
      s = "pw_w" + std::to_string(c.w) + "_c" + std::to_string(c.cycles) + (c.union_mode ? "_union" : "_avg") +
          (c.circular ? "_circ" : "");
      break;
    case Kind::kGather: s = "gather_D" + std::to_string(c.D); break;
  }
  return s + "_" + bna::dtype_name(c.dtype) + "_T" + std::to_string(c.T) + "_dh" + std::to_string(c.dh) + "_g" +
         std::to_string(c.group);
}

// The graph of a case, in the form plan() takes, plus each row's reference key lists.
struct Graph {
  topo::BlockSparseLayout blocks;
  topo::PermsOnly perms;
  bna::graph::GraphAbi abi;
};

inline Graph make_graph(const Case& c, int64_t Hkv, bna::Rng& rng) {
  Graph g;
  const int64_t T = c.T;
  if (c.kind == Kind::kBlockButterfly) {
    topo::ButterflyOptions bo;
    bo.layer = 1;
    auto L = topo::butterfly_block_layout(T, c.Bs, Hkv, bo);
    EXPECT_TRUE(L.has_value()) << L.status().to_string();
    g.blocks = std::move(L).value();
  } else if (c.kind == Kind::kBlockRandom) {
    // Random rows: each key block kb <= qb with probability 0.3, sometimes a future block (which
    // causality masks), every 5th row and the last row empty (so every case has empty rows; T = 1 is
    // all empty) and the self block sometimes missing (empty query rows).
    topo::BlockSparseLayout& L = g.blocks;
    L.H = Hkv; L.T = T; L.block_size = c.Bs; L.n_blocks = (T + c.Bs - 1) / c.Bs;
    for (int64_t h = 0; h < Hkv; ++h) {
      L.head_base.push_back(static_cast<int64_t>(L.indices.size()));
      const int64_t base = L.head_base.back();
      for (int64_t b = 0; b < L.n_blocks; ++b) {
        L.indptr.push_back(static_cast<int32_t>(L.indices.size() - base));
        if (b % 5 == 3 || b == L.n_blocks - 1) continue;
        for (int64_t kb = 0; kb < L.n_blocks; ++kb) {
          const double u = rng.uniform01();
          const bool take = kb < b ? u < 0.3 : (kb == b ? u < 0.8 : u < 0.05);
          if (take) L.indices.push_back(static_cast<int32_t>(kb));
        }
      }
      L.indptr.push_back(static_cast<int32_t>(L.indices.size() - base));
    }
  } else if (c.kind == Kind::kPermute) {
    topo::PermsOnly& P = g.perms;
    P.H = Hkv; P.T = T; P.num_cycles = c.cycles;
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t cy = 0; cy < c.cycles; ++cy) {
        const topo::Perm perm = topo::cycle_random(T, rng);
        const topo::Perm inv = topo::inverse_perm(perm);
        P.perm.insert(P.perm.end(), perm.begin(), perm.end());
        P.inv.insert(P.inv.end(), inv.begin(), inv.end());
      }
  } else {
    // Arbitrary rows: random earlier keys with repeats (multisets), a few future keys (masked),
    // -1 padding of random length, every 7th row and the last row empty (all -1), every 11th only
    // future keys.
    bna::graph::GraphAbi& a = g.abi;
    a.H = Hkv; a.T = T; a.D = c.D;
    a.neigh_idx.assign(static_cast<size_t>(Hkv * T * c.D), -1);
    a.edge_type.assign(a.neigh_idx.size(), 0);
    for (int64_t h = 0; h < Hkv; ++h)
      for (int64_t i = 0; i < T; ++i) {
        int32_t* row = &a.neigh_idx[static_cast<size_t>((h * T + i) * c.D)];
        uint8_t* ty = &a.edge_type[static_cast<size_t>((h * T + i) * c.D)];
        if (i % 7 == 6 || i == T - 1) continue;
        const int64_t n = 1 + static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(c.D)));
        for (int64_t e = 0; e < n; ++e) {
          int64_t j;
          if (i % 11 == 10) j = i + 1 < T ? i + 1 + static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(T - i - 1))) : -1;
          else if (e > 0 && rng.uniform01() < 0.1) j = row[e - 1];  // repeat
          else if (rng.uniform01() < 0.05 && i + 1 < T) j = T - 1;   // future
          else j = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(i + 1)));
          row[e] = static_cast<int32_t>(j);
          ty[e] = j >= 0 ? 2 : 0;
        }
      }
  }
  return g;
}

// Key lists of row i of KV head h: one multiset per averaged component (cycles in average mode).
inline void row_keys(const Case& c, const Graph& g, int64_t h, int64_t i, std::vector<std::vector<int64_t>>& comps) {
  comps.clear();
  const int64_t T = c.T;
  if (c.kind == Kind::kBlockButterfly || c.kind == Kind::kBlockRandom) {
    const topo::BlockSparseLayout& L = g.blocks;
    comps.emplace_back();
    const int64_t qb = i / L.block_size;
    for (const int32_t* kb = L.row_begin(h, qb); kb != L.row_end(h, qb); ++kb)
      for (int64_t j = *kb * L.block_size; j < std::min<int64_t>((*kb + 1) * L.block_size, T); ++j)
        if (j <= i) comps.back().push_back(j);
  } else if (c.kind == Kind::kGather) {
    comps.emplace_back();
    for (int64_t e = 0; e < c.D; ++e) {
      const int32_t j = g.abi.row(h, i)[e];
      if (j >= 0 && j <= i) comps.back().push_back(j);
    }
  } else {
    int64_t w = c.w;
    bool circ = c.circular;
    if (circ && 2 * w + 1 >= T) circ = false, w = T - 1;
    w = std::min<int64_t>(w, T - 1);
    const bool avg = !c.union_mode || c.cycles == 1;
    for (int64_t cy = 0; cy < c.cycles; ++cy) {
      if (avg || cy == 0) comps.emplace_back();
      const int32_t* perm = g.perms.perm_of(h, cy);
      const int64_t r = g.perms.inv_of(h, cy)[i];
      for (int64_t off = -w; off <= w; ++off) {
        int64_t rk = r + off;
        if (circ) rk = ((rk % T) + T) % T;
        else if (rk < 0 || rk >= T) continue;
        if (perm[rk] <= i) comps.back().push_back(perm[rk]);
      }
    }
  }
}

// The plan() inputs of a case on the CUDA backend: the graph source and the path options.
inline void plan_inputs(const Case& c, const Graph& g, bna::attn::GraphSource& src, bna::attn::Options& opt) {
  namespace attn = bna::attn;
  opt.backend = attn::Backend::kCuda;
  if (c.kind == Kind::kBlockButterfly || c.kind == Kind::kBlockRandom) src.blocks = &g.blocks;
  else if (c.kind == Kind::kGather) src.abi = &g.abi, opt.force_path = attn::Path::kGather;
  else {
    src.perms = &g.perms;
    opt.permute_window = c.w;
    opt.circular = c.circular;
    opt.multi_cycle_mode = c.union_mode ? attn::MultiCycleMode::kUnionLogMultiplicity : attn::MultiCycleMode::kAverage;
  }
}

inline bool tensor_core_path(const Case& c) { return !(c.kind == Kind::kGather || (c.kind == Kind::kPermute && c.union_mode && c.cycles > 1)); }

}  // namespace bna::test::cuda_paths
