// Graph ABI throughput: build_heads, validate and metrics on the long-context default
// (T=65,536, W=64, S=64, one random cycle per head), reported as GB/s of neigh_idx + edge_type.
// Google Benchmark program: `bna_graph_build --benchmark_filter=BuildHeads/32` for the H=32 case
// (needs ~11.4 GB of RAM for the output alone). Cycles are generated once outside the timed region.
#include <benchmark/benchmark.h>

#include <numeric>
#include <vector>

#include "bna/graph.hpp"
#include "bna/rng.hpp"

namespace {

using Perms = std::vector<std::vector<int32_t>>;

std::vector<Perms> random_cycles(int64_t H, int64_t T, uint64_t seed) {
  std::vector<Perms> out(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) {
    bna::Rng rng(seed + 7919 * static_cast<uint64_t>(h));
    std::vector<int32_t> p(static_cast<size_t>(T));
    std::iota(p.begin(), p.end(), 0);
    rng.shuffle(p);
    out[h].push_back(std::move(p));
  }
  return out;
}

constexpr int64_t kT = 65536;
const bna::graph::RowRules kRules{.T = kT, .window = 64, .landmark_stride = 64, .include_self = true};

void BM_BuildHeads(benchmark::State& state) {
  const int64_t H = state.range(0);
  const auto cycles = random_cycles(H, kT, 0);
  int64_t bytes = 0, D = 0;
  for (auto _ : state) {
    auto g = bna::graph::build_heads(kRules, cycles);
    if (!g) {
      state.SkipWithError(g.status().message().c_str());
      return;
    }
    bytes = static_cast<int64_t>(g->nbytes());
    D = g->D;
    benchmark::DoNotOptimize(g->neigh_idx.data());
  }
  state.SetBytesProcessed(bytes * state.iterations());
  state.counters["D"] = static_cast<double>(D);
  state.counters["GB"] = static_cast<double>(bytes) / 1e9;
}

// Steady state: the output arrays are reused, so no fresh page is touched after the first build.
void BM_BuildHeadsInto(benchmark::State& state) {
  const int64_t H = state.range(0);
  const auto cycles = random_cycles(H, kT, 0);
  bna::graph::GraphAbi g;
  if (!bna::graph::build_heads_into(g, kRules, cycles).is_ok()) {
    state.SkipWithError("build failed");
    return;
  }
  for (auto _ : state) {
    const bna::Status s = bna::graph::build_heads_into(g, kRules, cycles);
    if (!s.is_ok()) state.SkipWithError(s.message().c_str());
    benchmark::DoNotOptimize(g.neigh_idx.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(g.nbytes()) * state.iterations());
  state.counters["D"] = static_cast<double>(g.D);
}

void BM_Validate(benchmark::State& state) {
  const int64_t H = state.range(0);
  auto g = bna::graph::build_heads(kRules, random_cycles(H, kT, 0));
  if (!g) {
    state.SkipWithError(g.status().message().c_str());
    return;
  }
  for (auto _ : state) {
    const bna::Status s = bna::graph::validate(*g);
    if (!s.is_ok()) state.SkipWithError(s.message().c_str());
  }
  state.SetBytesProcessed(static_cast<int64_t>(g->nbytes()) * state.iterations());
}

void BM_Metrics(benchmark::State& state) {
  auto g = bna::graph::build_heads(kRules, random_cycles(state.range(0), kT, 0));
  if (!g) {
    state.SkipWithError(g.status().message().c_str());
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(bna::graph::metrics(*g));
  state.SetBytesProcessed(static_cast<int64_t>(g->nbytes()) * state.iterations());
}

BENCHMARK(BM_BuildHeads)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_BuildHeadsInto)->Arg(8)->Arg(32)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_Validate)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(3);
BENCHMARK(BM_Metrics)->Arg(8)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
