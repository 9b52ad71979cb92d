// bna_analysis: timings of the graph diagnostics on window-64 + one random cycle graphs — Lanczos
// spectral gaps (adjacency, normalised, Laplacian) on the implicit banded graph (and on the explicit CSR
// with --csr) and bitset causal reachability (window + cycle, and window only) — min, median and max of
// `--repeats` runs after one warm-up. Plain main (no Google Benchmark): each case takes seconds.
// Usage: bna_analysis [--T 65536,1048576] [--repeats 3] [--layers 16] [--reach-max-T 65536] [--cases anl] [--block b]
//        [--csr] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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


std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

double load_average() {
  std::ifstream f("/proc/loadavg");
  double l = -1;
  f >> l;
  return l;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int64_t> Ts{65536, 1048576};
  int repeats = 3;
  bool json = false, csr = false;
  int64_t reach_max_T = 65536, reach_layers = 16, fiedler_max_T = 16384, full_reorth_max_T = -1, max_matvecs = -1;
  std::string cases = "anl";  // a: adjacency gap, n: normalised gap, l: Fiedler
  double tol = -1;
  int block = -1;  // SpectralOptions::block_size (default when < 1)
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json")) json = true;
    else if (!std::strcmp(argv[i], "--csr")) csr = true;
    else if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--reach-max-T") && i + 1 < argc) reach_max_T = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--layers") && i + 1 < argc) reach_layers = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--full-reorth-max-T") && i + 1 < argc) full_reorth_max_T = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--fiedler-max-T") && i + 1 < argc) fiedler_max_T = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--max-matvecs") && i + 1 < argc) max_matvecs = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--tol") && i + 1 < argc) tol = std::atof(argv[++i]);
    else if (!std::strcmp(argv[i], "--block") && i + 1 < argc) block = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--cases") && i + 1 < argc) cases = argv[++i];
    else if (!std::strcmp(argv[i], "--T") && i + 1 < argc) {
      Ts.clear();
      std::stringstream ss(argv[++i]);
      std::string tok;
      while (std::getline(ss, tok, ',')) Ts.push_back(std::atoll(tok.c_str()));
    } else {
      std::fprintf(stderr,
                   "error: unknown argument %s\nhint: bna_analysis [--T a,b,c] [--repeats n] [--layers n] "
                   "[--reach-max-T n] [--full-reorth-max-T n] [--fiedler-max-T n] [--max-matvecs n] [--tol x] [--block b] [--cases a,n,l] [--csr] [--json]\n", argv[i]);
      return 2;
    }
  }
  const std::string cpu = cpu_model();
  nlohmann::json records = nlohmann::json::array();
  if (!json)
    std::printf("%s, %d threads, load %.2f (value +- certified error bound)\n%-30s %8s %9s %9s %9s %8s %s\n", cpu.c_str(), num_threads(), load_average(),
                "case", "T", "min_s", "median_s", "max_s", "matvecs", "value");
  for (int64_t T : Ts) {
    Rng rng(42);
    std::vector<topo::Perm> cycles{topo::cycle_random(T, rng)};
    analysis::BandedGraph bg;
    auto build_s = time_runs(repeats, [&] { bg = *analysis::banded_from_perms(cycles, T, 64); });
    analysis::SpectralOptions o;
    o.method = analysis::EigenMethod::kLanczos;
    if (full_reorth_max_T >= 0) o.full_reorth_max_T = full_reorth_max_T;
    if (max_matvecs > 0) o.max_matvecs = max_matvecs;
    if (tol > 0) o.tol = tol;
    if (block > 0) o.block_size = block;
    // bound: the certified error bound of `value` (gap_error_bound, fiedler_error_bound); residual: the
    // largest Ritz residual (what the old criterion compared with tol).
    auto report = [&](const char* name, const std::vector<double>& s, int64_t mv, double value, bool conv,
                      double bound = 0, double residual = 0) {
      const double mn = s.front(), med = s[s.size() / 2], mx = s.back();
      if (!json)
        std::printf("%-30s %8lld %9.3f %9.3f %9.3f %8lld %.10g +- %.2g%s\n", name, (long long)T, mn, med, mx, (long long)mv,
                    value, bound, conv ? "" : " (not converged)");
      records.push_back({{"case", name}, {"T", T}, {"window", 64}, {"cycles", 1}, {"min_s", mn}, {"median_s", med},
                         {"max_s", mx}, {"repeats", s.size()}, {"matvecs", mv}, {"value", value}, {"error_bound", bound},
                         {"max_residual", residual}, {"converged", conv},
                         {"tol", o.tol}, {"max_matvecs", o.max_matvecs}, {"full_reorth_max_T", o.full_reorth_max_T},
                         {"block_size", o.block_size},
                         {"threads", num_threads()}, {"load_average", load_average()}});
      std::fflush(stdout);
    };
    report("banded_from_perms", build_s, 0, static_cast<double>(bg.num_edges()), true);
    auto want = [&](char c) { return cases.find(c) != std::string::npos; };
    analysis::AdjacencySpectrum a;
    if (want('a')) {
    auto sa = time_runs(repeats, [&] { a = *analysis::adjacency_spectrum(bg, o); });
    report("adjacency_gap_lanczos", sa, a.info.matvecs, a.spectral_gap, a.info.converged, a.gap_error_bound,
           a.info.max_residual);
    if (!json) std::printf("    lambda1 %.12g lambda2 %.12g lambda_min %.12g residual %.3g\n", a.lambda1, a.lambda2,
                           a.lambda_min, a.info.max_residual);
    }
    analysis::NormalizedSpectrum n;
    if (want('n')) {
    auto sn = time_runs(repeats, [&] { n = *analysis::normalized_spectrum(bg, o); });
    report("normalized_gap_lanczos", sn, n.info.matvecs, n.spectral_gap, n.info.converged, n.gap_error_bound,
           n.info.max_residual);
    }
    if (T <= fiedler_max_T && want('l')) {
      analysis::LaplacianSpectrum l;
      auto sl = time_runs(repeats, [&] { l = *analysis::laplacian_spectrum(bg, o); });
      report("fiedler_lanczos", sl, l.info.matvecs, l.fiedler_value, l.info.converged, l.fiedler_error_bound,
             l.info.max_residual);
    }
    if (csr && T <= fiedler_max_T) {  // the explicit CSR of the same graph, for comparison
      auto g = analysis::csr_from_perms(cycles, T, 64);
      analysis::AdjacencySpectrum ac;
      auto sc = time_runs(repeats, [&] { ac = *analysis::adjacency_spectrum(*g, o); });
      report("adjacency_gap_lanczos_csr", sc, ac.info.matvecs, ac.spectral_gap, ac.info.converged, ac.gap_error_bound,
             ac.info.max_residual);
    }
    if (T <= reach_max_T) {
      graph::RowRules rules;
      rules.T = T;
      rules.window = 64;
      rules.landmark_stride = 0;
      auto abi = graph::build_head(rules, cycles);
      if (!abi) { std::fprintf(stderr, "error: %s\n", abi.status().message().c_str()); return 1; }
      analysis::ReachabilityOptions ro;
      ro.max_layers = reach_layers;
      ro.max_T = std::max<int64_t>(ro.max_T, T);
      analysis::Reachability r;
      std::vector<graph::GraphAbi> layers{*abi};
      auto sr = time_runs(repeats, [&] { r = *analysis::causal_reachability(layers, ro); });
      report("causal_reachability", sr, 0, static_cast<double>(r.layers_to_p95), true);
      if (!json)
        std::printf("    layers %lld: layers_to_p95 %lld layers_to_full %lld mean coverage L=1 %.4f L=last %.4f\n",
                    (long long)reach_layers, (long long)r.layers_to_p95, (long long)r.layers_to_full,
                    r.mean_coverage.front(), r.mean_coverage.back());
      // Window only (no cycle): reach sets never fill their prefix, every layer runs.
      std::vector<topo::Perm> none;
      auto wabi = graph::build_head(rules, none);
      if (!wabi) { std::fprintf(stderr, "error: %s\n", wabi.status().message().c_str()); return 1; }
      std::vector<graph::GraphAbi> wl{*wabi};
      auto sw = time_runs(repeats, [&] { r = *analysis::causal_reachability(wl, ro); });
      report("causal_reachability_window_only", sw, 0, r.mean_coverage.back(), true);
    }
  }
  if (json)
    std::printf("%s\n", nlohmann::json({{"bench", "analysis"}, {"cpu", cpu}, {"threads", num_threads()},
                                        {"build", "Release"}, {"records", records}}).dump(2).c_str());
  return 0;
}
