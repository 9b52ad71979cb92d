// bna demo: the main job on an embedded default. Builds the default long-context Butterfly
// topology (T=65,536, H=8, W=64, S=64, one random cycle), validates it and reports size, build time
// and graph quality. Later stages add attention against dense (see README).
#include <chrono>
#include <cstdio>

#include "bna/topology.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct DemoFlags {
  GraphFlags g{.T = 65536, .H = 8, .window = 64, .landmark_stride = 64, .strategy = "random", .cycles = 1, .seed = 0};
};

int run_demo(const DemoFlags& f) {
  auto strategy = topo::parse_strategy(f.g.strategy);
  if (!strategy) return fail(strategy.status());
  topo::TopologyOptions opt;
  opt.n_heads = f.g.H;
  opt.strategy = *strategy;
  opt.num_cycles = f.g.cycles;
  opt.window = f.g.window;
  opt.landmark_stride = f.g.landmark_stride;
  opt.seed = f.g.seed;
  auto topo = topo::Topology::create(opt);
  if (!topo) return fail(topo.status());
  std::printf("bna demo: Butterfly topology T=%lld H=%lld W=%lld S=%lld strategy=%s cycles=%lld seed=%llu\n",
              (long long)f.g.T, (long long)f.g.H, (long long)f.g.window, (long long)f.g.landmark_stride,
              f.g.strategy.c_str(), (long long)f.g.cycles, (unsigned long long)f.g.seed);
  const auto t0 = std::chrono::steady_clock::now();
  auto g = topo->construct(f.g.T);
  const auto t1 = std::chrono::steady_clock::now();
  if (!g) return fail(g.status());
  const double ms = std::chrono::duration<double, std::milli>(t1 - t0).count();
  std::printf("graph:      [H=%lld, T=%lld, D=%lld]  %.1f MiB (neigh_idx + edge_type)\n", (long long)g->H,
              (long long)g->T, (long long)g->D, g->nbytes() / 1048576.0);
  std::printf("build:      %.1f ms  (%.2f GB/s written)\n", ms, g->nbytes() / (ms * 1e6));
  const auto t2 = std::chrono::steady_clock::now();
  const Status v = graph::validate(*g);
  const auto t3 = std::chrono::steady_clock::now();
  std::printf("validate:   %s  (%.1f ms)\n", v.is_ok() ? "ok" : v.message().c_str(),
              std::chrono::duration<double, std::milli>(t3 - t2).count());
  const auto m = graph::metrics(*g);
  std::printf("degree:     mean %.1f  min %lld  max %lld\n", m.degree_mean, (long long)m.degree_min,
              (long long)m.degree_max);
  std::printf("edges:      cycle %lld  window %lld  landmark %lld  rewire %lld\n",
              (long long)m.edge_type_counts[1], (long long)m.edge_type_counts[2], (long long)m.edge_type_counts[3],
              (long long)m.edge_type_counts[4]);
  std::printf("quality:    shortcut rate %.3f  reachability(%d hops) %.1f nodes\n", m.shortcut_rate, m.bfs_hops,
              m.reachability_proxy);
  if (!v.is_ok()) { exit_code() = 1; return 1; }
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new DemoFlags();  // lives for the process
  auto* sub = root.add_subcommand("demo", "build the default long-context Butterfly graph and check it");
  add_graph_flags(sub, f->g);
  sub->callback([f] { run_demo(*f); });
});

}  // namespace
}  // namespace bna::cli
