// bna graph plot --out DIR: SVG pictures comparing topologies at one T — window only, one cycle,
// several cycles and a staged butterfly schedule: spectrum.svg (normalised-adjacency eigenvalue
// histogram), mixing.svg (chi2 to the degree-stationary law vs walk steps), reachability.svg (mean
// causal prefix coverage vs layers). The butterfly's undirected pictures use the union of one period of
// stages; its reachability uses stage l at layer l. Files are written to a temporary name and renamed.
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "bna/analysis.hpp"
#include "bna/butterfly.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

struct PlotFlags {
  std::string out;
  int64_t T = 1024, window = 16, cycles = 4, layers = 12, steps = 40, block = 64;
  uint64_t seed = 0;
};

struct Subject {
  std::string name;
  std::vector<graph::GraphAbi> layers;  // layer l uses layers[l mod size]
  graph::GraphAbi undirected;           // what the spectrum and mixing pictures see
};

Expected<graph::GraphAbi> window_and_cycles(int64_t T, int64_t W, int64_t k, uint64_t seed) {
  Rng rng(seed);
  std::vector<topo::Perm> cycles;
  if (k > 0) {
    BNA_ASSIGN_OR_RETURN(cycles, topo::cycles_edge_disjoint(T, k, rng));
  }
  graph::RowRules rules;
  rules.T = T;
  rules.window = W;
  rules.landmark_stride = 0;
  return graph::build_head(rules, cycles);
}

Status write_file(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream o(tmp, std::ios::binary);
    o << text;
    if (!o) return io_error("graph plot: cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) return io_error("graph plot: cannot rename " + tmp + " to " + path + ": " + ec.message());
  return Status::ok();
}

int run_plot(const PlotFlags& f) {
  if (f.T < 8 || f.T > 4096) return fail_usage("graph plot: --T=" + std::to_string(f.T) + ", expected 8 <= T <= 4096 (dense spectrum)");
  std::error_code ec;
  std::filesystem::create_directories(f.out, ec);
  if (ec) return fail(io_error("graph plot: cannot create --out " + f.out + ": " + ec.message()));
  std::vector<Subject> subjects;
  const std::pair<const char*, int64_t> plain[] = {{"window only", 0}, {"window + 1 cycle", 1}, {"window + cycles", f.cycles}};
  for (const auto& [name, k] : plain) {
    auto g = window_and_cycles(f.T, f.window, k, f.seed);
    if (!g) return fail(g.status());
    Subject s;
    s.name = std::string(name) + (k > 1 ? " (" + std::to_string(k) + ")" : "");
    s.undirected = *g;
    s.layers = {std::move(g).value()};
    subjects.push_back(std::move(s));
  }
  {
    topo::ButterflyOptions bo;
    bo.rule = topo::PartnerRule::kXor;
    bo.local_blocks = 1;
    bo.sink_count = 1;
    const int64_t N = (f.T + f.block - 1) / f.block;
    const int64_t period = topo::butterfly_stage_count(N, bo.rule);
    Subject s;
    s.name = "butterfly xor (Bs=" + std::to_string(f.block) + ")";
    for (int64_t l = 0; l < period; ++l) {
      bo.layer = l;
      auto g = topo::butterfly_token_graph(f.T, f.block, 1, bo);
      if (!g) return fail(g.status());
      s.layers.push_back(std::move(g).value());
    }
    auto u = graph::stack_heads(s.layers);
    if (!u) return fail(u.status());
    s.undirected = std::move(u).value();
    subjects.push_back(std::move(s));
  }
  std::vector<std::pair<std::string, std::vector<double>>> spectra;
  analysis::PlotSpec mixing{.title = "Random-walk mixing (lazy walk, T=" + std::to_string(f.T) + ")",
                            .x_label = "steps t", .y_label = "worst-source chi2 to pi ~ degree", .log_y = true};
  analysis::PlotSpec reach{.title = "Causal prefix reachability (T=" + std::to_string(f.T) + ")",
                           .x_label = "layers L", .y_label = "mean fraction of prefix seen"};
  for (const auto& s : subjects) {
    auto csr = analysis::csr_from_abi(s.undirected);
    if (!csr) return fail(csr.status());
    auto ev = analysis::dense_eigenvalues(*csr, analysis::Operator::kNormalized);
    if (!ev) return fail(ev.status());
    spectra.push_back({s.name, std::move(ev).value()});
    analysis::MixingOptions mo;
    mo.steps = f.steps;
    mo.seed = f.seed;
    auto mc = analysis::mixing_curve(*csr, mo);
    if (!mc) return fail(mc.status());
    analysis::PlotSeries ms{.name = s.name};
    for (int64_t t = 0; t <= f.steps; ++t) { ms.x.push_back(t); ms.y.push_back(mc->chi2[t]); }
    mixing.series.push_back(std::move(ms));
    analysis::ReachabilityOptions ro;
    ro.max_layers = f.layers;
    auto r = analysis::causal_reachability(s.layers, ro);
    if (!r) return fail(r.status());
    analysis::PlotSeries rs{.name = s.name};
    for (int64_t l = 0; l < f.layers; ++l) { rs.x.push_back(l + 1); rs.y.push_back(r->mean_coverage[l]); }
    reach.series.push_back(std::move(rs));
    std::printf("%-28s t_mix %lld  layers to p95 %lld  mean coverage at L=%lld %.3f\n", s.name.c_str(),
                (long long)mc->t_mix, (long long)r->layers_to_p95, (long long)f.layers, r->mean_coverage.back());
  }
  auto hist = analysis::histogram_spec("Normalised adjacency spectrum (T=" + std::to_string(f.T) + ")", "eigenvalue",
                                       spectra, 60);
  for (const auto& [file, spec] : {std::pair{"spectrum.svg", hist}, {"mixing.svg", mixing}, {"reachability.svg", reach}}) {
    const std::string path = (std::filesystem::path(f.out) / file).string();
    Status st = write_file(path, analysis::svg_plot(spec));
    if (!st.is_ok()) return fail(st);
    std::printf("wrote %s\n", path.c_str());
  }
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  auto* f = new PlotFlags();  // lives for the process
  CLI::App* graph = ensure_subcommand(&root, "graph", "build, check and study attention graphs");
  auto* sub = graph->add_subcommand("plot", "SVG pictures: spectrum, mixing and reachability of several topologies");
  sub->add_option("--out", f->out, "output directory")->required();
  sub->add_option("--T", f->T, "tokens (8..4096)")->capture_default_str();
  sub->add_option("--window", f->window, "causal window W")->capture_default_str();
  sub->add_option("--cycles", f->cycles, "cycles of the 'several cycles' topology")->capture_default_str();
  sub->add_option("--layers", f->layers, "layers of the reachability picture")->capture_default_str();
  sub->add_option("--steps", f->steps, "random-walk steps of the mixing picture")->capture_default_str();
  sub->add_option("--block", f->block, "butterfly block size Bs")->capture_default_str();
  sub->add_option("--seed", f->seed, "seed")->capture_default_str();
  sub->callback([f] { run_plot(*f); });
});

}  // namespace
}  // namespace bna::cli
