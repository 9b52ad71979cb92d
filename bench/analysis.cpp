// bna_analysis: timings of the graph diagnostics on window + random-cycle graphs — Lanczos spectral
// gaps (adjacency, normalised, Laplacian) and bitset causal reachability — median and spread of
// `--repeats` runs after one warm-up. Plain main (no Google Benchmark): each case takes seconds.
// Usage: bna_analysis [--T 4096,16384,65536] [--repeats 3] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"

using namespace bna;

namespace {

template <class F>
std::vector<double> time_runs(int repeats, F&& f) {
  f();
  std::vector<double> s;
  for (int r = 0; r < repeats; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    s.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(s.begin(), s.end());
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> Ts{4096, 16384, 65536};
  int repeats = 3;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--T") && i + 1 < argc) {
      Ts.clear();
      std::stringstream ss(argv[++i]);
      std::string tok;
      while (std::getline(ss, tok, ',')) Ts.push_back(std::atoll(tok.c_str()));
    } else {
      std::fprintf(stderr, "error: unknown argument %s\nhint: bna_analysis [--T a,b,c] [--repeats n] [--json]\n", argv[i]);
      return 2;
    }
  }
  nlohmann::json records = nlohmann::json::array();
  if (!json) std::printf("%-28s %8s %10s %10s %8s %s\n", "case", "T", "median_s", "spread_s", "matvecs", "value");
  for (int64_t T : Ts) {
    Rng rng(42);
    std::vector<topo::Perm> cycles{topo::cycle_random(T, rng)};
    auto g = analysis::csr_from_perms(cycles, T, 64);
    if (!g) { std::fprintf(stderr, "error: %s\n", g.status().message().c_str()); return 1; }
    analysis::SpectralOptions o;
    o.method = analysis::EigenMethod::kLanczos;
    auto report = [&](const char* name, const std::vector<double>& s, int64_t mv, double value) {
      const double med = s[s.size() / 2], spread = s.back() - s.front();
      if (!json) std::printf("%-28s %8lld %10.3f %10.3f %8lld %.6f\n", name, (long long)T, med, spread, (long long)mv, value);
      records.push_back({{"case", name}, {"T", T}, {"window", 64}, {"cycles", 1}, {"median_s", med}, {"spread_s", spread},
                         {"matvecs", mv}, {"value", value}, {"threads", num_threads()},
                         {"machine", "2-core x86-64 AVX2 (shared)"}, {"build", "Release"}});
    };
    analysis::AdjacencySpectrum a;
    auto sa = time_runs(repeats, [&] { a = *analysis::adjacency_spectrum(*g, o); });
    report("adjacency_gap_lanczos", sa, a.info.matvecs, a.spectral_gap);
    analysis::NormalizedSpectrum n;
    auto sn = time_runs(repeats, [&] { n = *analysis::normalized_spectrum(*g, o); });
    report("normalized_gap_lanczos", sn, n.info.matvecs, n.spectral_gap);
    analysis::LaplacianSpectrum l;
    auto sl = time_runs(repeats, [&] { l = *analysis::laplacian_spectrum(*g, o); });
    report("fiedler_lanczos", sl, l.info.matvecs, l.fiedler_value);
    if (T <= 16384) {
      graph::RowRules rules;
      rules.T = T;
      rules.window = 64;
      rules.landmark_stride = 0;
      auto abi = graph::build_head(rules, cycles);
      if (!abi) { std::fprintf(stderr, "error: %s\n", abi.status().message().c_str()); return 1; }
      analysis::ReachabilityOptions ro;
      ro.max_layers = 8;
      analysis::Reachability r;
      std::vector<graph::GraphAbi> layers{*abi};
      auto sr = time_runs(repeats, [&] { r = *analysis::causal_reachability(layers, ro); });
      report("causal_reachability_8_layers", sr, 0, static_cast<double>(r.layers_to_p95));
    }
  }
  if (json) std::printf("%s\n", records.dump(2).c_str());
  return 0;
}
