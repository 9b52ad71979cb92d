// bna graph analyze: the composite quality report (spectra, mixing, expansion, diameter, resilience,
// causal reachability, coverage) of a graph built from the graph flags or loaded with --file.
// Human table by default, --json for machines. All math lives in bna::analysis.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

#include "bna/analysis.hpp"
#include "bna/topology.hpp"
#include "cli.hpp"

#if __has_include("bna/graph_io.hpp")
#include "bna/graph_io.hpp"
#define BNA_CLI_HAVE_GRAPH_IO 1
#endif

namespace bna::cli {
namespace {

struct AnalyzeFlags {
  GraphFlags g{.T = 2048, .H = 1, .window = 64, .landmark_stride = 64, .strategy = "random", .cycles = 1, .seed = 0};
  std::string file;
  std::string method = "auto";
  int64_t max_layers = 12;
  int64_t mixing_steps = 48;
  bool no_causal = false;
  bool json = false;
};

Expected<graph::GraphAbi> make_graph(const AnalyzeFlags& f) {
  if (!f.file.empty()) {
#ifdef BNA_CLI_HAVE_GRAPH_IO
    return io::load_graph(f.file);
#else
    return unimplemented("graph analyze: --file needs bna/graph_io.hpp, which this build lacks");
#endif
  }
  BNA_ASSIGN_OR_RETURN(topo::Strategy strategy, topo::parse_strategy(f.g.strategy));
  topo::TopologyOptions opt;
  opt.n_heads = f.g.H;
  opt.strategy = strategy;
  opt.num_cycles = f.g.cycles;
  opt.window = f.g.window;
  opt.landmark_stride = f.g.landmark_stride;
  opt.seed = f.g.seed;
  BNA_ASSIGN_OR_RETURN(topo::Topology t, topo::Topology::create(opt));
  return t.construct(f.g.T);
}

nlohmann::json to_json(const analysis::QualityReport& r, double seconds) {
  using nlohmann::json;
  json res = json::array();
  for (const auto& p : r.resilience)
    res.push_back({{"drop_fraction", p.drop_fraction}, {"largest_component_mean", p.largest_component_mean},
                   {"largest_component_min", p.largest_component_min}, {"connected_rate", p.connected_rate}});
  json j = {
      {"nodes", r.nodes}, {"edges", r.edges},
      {"degree", {{"mean", r.degree_mean}, {"std", r.degree_std}, {"min", r.degree_min}, {"max", r.degree_max}}},
      {"components", {{"count", r.components.count}, {"largest", r.components.largest}}},
      {"adjacency", {{"lambda1", r.adjacency.lambda1}, {"lambda2", r.adjacency.lambda2},
                     {"lambda_min", r.adjacency.lambda_min}, {"lambda2_abs", r.adjacency.lambda2_abs},
                     {"spectral_gap", r.adjacency.spectral_gap}, {"gap_error_bound", r.adjacency.gap_error_bound},
                     {"expansion_ratio", r.adjacency.expansion_ratio},
                     {"method", r.adjacency.info.method}, {"converged", r.adjacency.info.converged}}},
      {"normalized", {{"lambda2", r.normalized.lambda2}, {"lambda_min", r.normalized.lambda_min},
                      {"spectral_gap", r.normalized.spectral_gap}, {"gap_error_bound", r.normalized.gap_error_bound},
                      {"method", r.normalized.info.method}, {"converged", r.normalized.info.converged}}},
      {"laplacian", {{"fiedler_value", r.laplacian.fiedler_value}, {"cheeger_lower", r.laplacian.cheeger_lower},
                     {"cheeger_upper", r.laplacian.cheeger_upper}, {"sweep_expansion", r.laplacian.sweep_expansion},
                     {"is_well_connected", r.laplacian.is_well_connected}, {"method", r.laplacian.info.method}}},
      {"mixing", {{"chi2", r.mixing.chi2}, {"tv", r.mixing.tv}, {"t_mix", r.mixing.t_mix},
                  {"t_mix_bound", std::isfinite(r.mixing.t_mix_bound) ? json(r.mixing.t_mix_bound) : json(nullptr)},
                  {"walk_gap", r.mixing.walk_gap}}},
      {"expansion", {{"sizes", r.expansion.sizes}, {"mean_by_size", r.expansion.mean_by_size},
                     {"min_expansion", r.expansion.min_expansion}, {"mean_expansion", r.expansion.mean_expansion}}},
      {"diameter", {{"effective", r.diameter.effective_diameter}, {"max", r.diameter.max_distance},
                    {"mean", r.diameter.mean_distance}, {"is_connected", r.diameter.is_connected}}},
      {"resilience", res},
      {"coverage", {{"full", r.coverage_full.fraction}, {"causal_only", r.coverage_causal.fraction}}},
      {"quality_score", r.quality_score}, {"is_good_expander", r.is_good_expander}, {"seconds", seconds}};
  if (r.has_causal)
    j["causal"] = {{"mean_coverage", r.reach.mean_coverage}, {"fraction_seeing_95", r.reach.fraction_seeing},
                   {"layers_to_p95", r.reach.layers_to_p95}, {"layers_to_full", r.reach.layers_to_full},
                   {"diameter_max", r.causal.max_distance}, {"diameter_p90", r.causal.p90_distance},
                   {"unreachable_fraction", r.causal.unreachable_fraction}};
  return j;
}

void print_table(const analysis::QualityReport& r, const graph::GraphAbi& g, double seconds) {
  std::printf("graph          [H=%lld, T=%lld, D=%lld] strategy=%s (heads unioned)\n", (long long)g.H, (long long)g.T,
              (long long)g.D, g.meta.strategy.c_str());
  std::printf("edges          %lld undirected, degree mean %.2f std %.2f min %lld max %lld, %lld component(s)\n",
              (long long)r.edges, r.degree_mean, r.degree_std, (long long)r.degree_min, (long long)r.degree_max,
              (long long)r.components.count);
  std::printf("adjacency      lambda1 %.4f  |lambda2| %.4f  gap %.4f (+-%.1e)  ratio %.2f  [%s]\n", r.adjacency.lambda1,
              r.adjacency.lambda2_abs, r.adjacency.spectral_gap, r.adjacency.gap_error_bound, r.adjacency.expansion_ratio,
              r.adjacency.info.method.c_str());
  std::printf("normalised     lambda2 %.4f  lambda_min %.4f  gap %.4f  %s\n", r.normalized.lambda2, r.normalized.lambda_min,
              r.normalized.spectral_gap, r.is_good_expander ? "(good expander: gap >= 0.1)" : "(gap < 0.1)");
  std::printf("laplacian      fiedler %.4f  cheeger %.4f <= h <= %.4f  (sweep cut h %.4f)\n", r.laplacian.fiedler_value,
              r.laplacian.cheeger_lower, r.laplacian.cheeger_upper, r.laplacian.sweep_expansion);
  std::printf("mixing         t_mix(tv<=%.2f) %lld  spectral bound %.0f  chi2[t=0,last] %.3g -> %.3g\n", 0.25,
              (long long)r.mixing.t_mix, r.mixing.t_mix_bound, r.mixing.chi2.front(), r.mixing.chi2.back());
  std::printf("expansion      min %.3f  mean %.3f (vertex, sampled sets)\n", r.expansion.min_expansion, r.expansion.mean_expansion);
  std::printf("diameter       effective(p90) %.0f  max %lld  mean %.2f%s\n", r.diameter.effective_diameter,
              (long long)r.diameter.max_distance, r.diameter.mean_distance, r.diameter.is_connected ? "" : "  DISCONNECTED");
  for (const auto& p : r.resilience)
    std::printf("resilience     drop %.2f -> largest component %.4f (min %.4f), connected %.0f%%\n", p.drop_fraction,
                p.largest_component_mean, p.largest_component_min, 100 * p.connected_rate);
  std::printf("coverage       full %.5f  causal-only %.5f  (of T(T-1)/2 pairs)\n", r.coverage_full.fraction,
              r.coverage_causal.fraction);
  if (r.has_causal) {
    std::printf("causal         layers to 95%% of positions seeing 95%%: %lld   to full prefix: %lld   diameter max %lld p90 %.0f\n",
                (long long)r.reach.layers_to_p95, (long long)r.reach.layers_to_full, (long long)r.causal.max_distance,
                r.causal.p90_distance);
    std::printf("               L: mean coverage / fraction seeing >= 95%%\n");
    for (size_t l = 0; l < r.reach.mean_coverage.size(); ++l)
      std::printf("               %2zu: %.4f / %.4f\n", l + 1, r.reach.mean_coverage[l], r.reach.fraction_seeing[l]);
  }
  std::printf("quality score  %.3f   (%.2f s)\n", r.quality_score, seconds);
}

int run_analyze(const AnalyzeFlags& f) {
  auto g = make_graph(f);
  if (!g) return fail(g.status(), f.file.empty() ? "check the graph flags (bna graph analyze --help)" : "");
  analysis::QualityOptions opt;
  if (f.method == "dense") opt.spectral.method = analysis::EigenMethod::kDense;
  else if (f.method == "lanczos") opt.spectral.method = analysis::EigenMethod::kLanczos;
  else if (f.method != "auto") return fail_usage("graph analyze: --method=" + f.method + ", expected auto, dense or lanczos");
  opt.reach.max_layers = f.max_layers;
  opt.mixing.steps = f.mixing_steps;
  opt.causal = !f.no_causal;
  opt.seed = f.g.seed;
  const auto t0 = std::chrono::steady_clock::now();
  auto r = analysis::quality_report(*g, opt);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (!r) return fail(r.status());
  if (f.json) std::printf("%s\n", to_json(*r, s).dump(2).c_str());
  else print_table(*r, *g, s);
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new AnalyzeFlags();  // lives for the process
  CLI::App* graph = ensure_subcommand(&root, "graph", "build, check and study attention graphs");
  auto* sub = graph->add_subcommand("analyze", "spectral gap, mixing, expansion, diameter, causal reachability");
  add_graph_flags(sub, f->g);
  sub->add_option("--file", f->file, "analyse this graph file instead of building one");
  sub->add_option("--method", f->method, "eigensolver: auto (dense for T <= 1024), dense, lanczos")->capture_default_str();
  sub->add_option("--max-layers", f->max_layers, "causal reachability layers")->capture_default_str();
  sub->add_option("--mixing-steps", f->mixing_steps, "random-walk steps for the chi2 curve")->capture_default_str();
  sub->add_flag("--no-causal", f->no_causal, "skip causal reachability (T^2/4 bytes of bitsets)");
  sub->add_flag("--json", f->json, "print JSON instead of a table");
  sub->callback([f] { run_analyze(*f); });
});

}  // namespace
}  // namespace bna::cli
