// Topology build throughput (Google Benchmark).
//   perms_only: construct_perms_only at T = 2^20, H = 32 on ONE thread; counter ns_per_token_head
//               (target <= 20 ns for random, k = 1).
//   construct:  the full [H, T, D] ABI at T = 65536, H = 32, W = 64, S = 64 (and S = 0); bytes_per_second
//               counts neigh_idx + edge_type written (target >= 1 GB/s), with and without validation.
//               S = 64 allocates ~11.4 GB per graph: run it on a machine with the memory to spare.
// Usage: bna_topology_build [--benchmark_format=json] [--benchmark_repetitions=5 ...]
#include <benchmark/benchmark.h>

#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace {

using bna::topo::Strategy;

bna::topo::Topology make(Strategy s, int64_t H, int64_t k, int64_t W, int64_t S, bool validate) {
  bna::topo::TopologyOptions o;
  o.n_heads = H;
  o.strategy = s;
  o.num_cycles = k;
  o.seed = 1;
  o.window = W;
  o.landmark_stride = S;
  o.enforce_hamiltonian = validate;
  auto t = bna::topo::Topology::create(o);
  if (!t.has_value()) std::abort();
  return std::move(t).value();
}

// Args: strategy code, num_cycles.
void BM_PermsOnlyOneThread(benchmark::State& state) {
  const int64_t T = int64_t{1} << 20, H = 32;
  const auto s = static_cast<Strategy>(state.range(0));
  const int64_t k = state.range(1);
  const auto topo = make(s, H, k, 64, 64, true);
  bna::set_num_threads(1);
  for (auto _ : state) {
    auto p = topo.construct_perms_only(T);
    if (!p.has_value()) {
      state.SkipWithError(p.status().to_string().c_str());
      break;
    }
    benchmark::DoNotOptimize(p->perm.data());
  }
  bna::set_num_threads(0);
  state.SetLabel(std::string(bna::topo::strategy_name(s)) + " k=" + std::to_string(k));
  // ns per (token, head): seconds / (iterations * T * H) * 1e9.
  state.counters["ns_per_token_head"] = benchmark::Counter(
      static_cast<double>(T * H) * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  state.counters["ns_per_token_head_cycle"] = benchmark::Counter(
      static_cast<double>(T * H * k) * 1e-9, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_PermsOnlyOneThread)
    ->Args({static_cast<int>(Strategy::kRandom), 1})
    ->Args({static_cast<int>(Strategy::kEdgeDisjoint), 4})
    ->Args({static_cast<int>(Strategy::kRegularPartition), 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// Args: validate (0/1), landmark stride S. With S = 64 every row holds up to T/S = 1024 landmarks, so
// D ~ 1091 and one graph is ~11.4 GB; S = 0 (D = 67, ~0.7 GB) shows the band+cycle rows alone.
void BM_Construct(benchmark::State& state) {
  const int64_t T = 65536, H = 32, S = state.range(1);
  const auto topo = make(Strategy::kRandom, H, 1, 64, S, state.range(0) != 0);
  int64_t bytes = 0;
  for (auto _ : state) {
    auto g = topo.construct(T);
    if (!g.has_value()) {
      state.SkipWithError(g.status().to_string().c_str());
      break;
    }
    bytes = static_cast<int64_t>(g->nbytes());
    benchmark::DoNotOptimize(g->neigh_idx.data());
  }
  state.SetBytesProcessed(bytes * state.iterations());
  state.SetLabel("random k=1 W=64 S=" + std::to_string(S) + " validate=" + (state.range(0) ? "on" : "off") +
                 " threads=" + std::to_string(bna::num_threads()));
}
BENCHMARK(BM_Construct)
    ->Args({0, 64})
    ->Args({1, 64})
    ->Args({0, 0})
    ->Args({1, 0})
    ->Iterations(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
