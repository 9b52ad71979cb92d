// bna graph build | validate | stats | show: build a topology (or a Butterfly block layer) from flags,
// save it, check a saved file, print its metrics, draw its mask as SVG. The graph either comes from
// a file (positional FILE) or is built from the flags; --butterfly switches the flag-built graph from
// the Hamiltonian topology to one Butterfly layer (token-level ABI; `show` draws its block layout).
// `graph analyze` lives in another file of the same group (ensure_subcommand).
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>

#include "bna/butterfly.hpp"
#include "bna/graph.hpp"
#include "bna/graph_io.hpp"
#include "bna/io.hpp"
#include "bna/render.hpp"
#include "bna/topology.hpp"
#include "cli.hpp"

namespace bna::cli {
namespace {

constexpr const char* kGroupDescription = "build, check, inspect and analyse attention graphs";

struct ButterflyFlags {
  bool enabled = false;
  int64_t block_size = 64;
  int64_t layer = 0;
  std::string rule = "xor";
  int64_t partners = 1;
  int64_t local_blocks = 4;
  int64_t sinks = 1;
};

void add_butterfly_flags(CLI::App* app, ButterflyFlags& f) {
  app->add_flag("--butterfly", f.enabled, "build one Butterfly block layer instead of the Hamiltonian topology (default: off)")
      ->capture_default_str();
  app->add_option("--block-size", f.block_size, "Butterfly block size Bs (tokens)")->capture_default_str();
  app->add_option("--layer", f.layer, "Butterfly layer index (stage = layer mod stage count)")->capture_default_str();
  app->add_option("--rule", f.rule, "Butterfly partner rule: xor, causal_shift, bit_reversal, benes, fixed_stride, random")
      ->capture_default_str();
  app->add_option("--partners", f.partners, "Butterfly partners per block")->capture_default_str();
  app->add_option("--local-blocks", f.local_blocks, "Butterfly local blocks b-1 .. b-L")->capture_default_str();
  app->add_option("--sinks", f.sinks, "Butterfly sink blocks 0 .. S-1 (causally filtered)")->capture_default_str();
}

Expected<topo::ButterflyOptions> butterfly_options(const ButterflyFlags& f) {
  BNA_ASSIGN_OR_RETURN(topo::PartnerRule rule, topo::parse_partner_rule(f.rule));
  topo::ButterflyOptions o;
  o.num_blocks = 0;  // derived from T and Bs
  o.layer = f.layer;
  o.rule = rule;
  o.partner_count = f.partners;
  o.local_blocks = f.local_blocks;
  o.sink_count = f.sinks;
  return o;
}

Expected<graph::GraphAbi> build_from_flags(const GraphFlags& g, const ButterflyFlags& b) {
  if (b.enabled) {
    BNA_ASSIGN_OR_RETURN(topo::ButterflyOptions o, butterfly_options(b));
    return topo::butterfly_token_graph(g.T, b.block_size, g.H, o);
  }
  BNA_ASSIGN_OR_RETURN(topo::Strategy strategy, topo::parse_strategy(g.strategy));
  topo::TopologyOptions opt;
  opt.n_heads = g.H;
  opt.strategy = strategy;
  opt.num_cycles = g.cycles;
  opt.window = g.window;
  opt.landmark_stride = g.landmark_stride;
  opt.seed = g.seed;
  BNA_ASSIGN_OR_RETURN(topo::Topology topo, topo::Topology::create(opt));
  return topo.construct(g.T);
}

std::string build_hint(const GraphFlags& g, const ButterflyFlags& b) {
  if (b.enabled) return "check --T, --H, --block-size, --layer, --rule, --partners, --local-blocks, --sinks";
  if (g.strategy == "greedy" || g.strategy == "online_insertion")
    return "greedy and online_insertion need routing vectors; from flags use random, regular_partition, "
           "edge_disjoint or covering";
  return "see 'bna graph build --help' for the accepted values";
}

// The graph from FILE if given, else built from the flags. Prints nothing; errors carry a hint.
Expected<graph::GraphAbi> load_or_build(const std::string& file, const GraphFlags& g, const ButterflyFlags& b,
                                        std::string* hint) {
  if (!file.empty()) {
    *hint = "is '" + file + "' a graph written by 'bna graph build --out'?";
    return io::load_graph(file);
  }
  *hint = build_hint(g, b);
  return build_from_flags(g, b);
}

// Graphs without a cycle backbone (Butterfly layers, foreign files) cannot pass the Hamiltonian check.
graph::ValidateOptions validate_options_for(const graph::GraphAbi& g, bool no_hamiltonian) {
  graph::ValidateOptions v;
  v.enforce_hamiltonian = !no_hamiltonian && g.meta.num_cycles > 0;
  return v;
}

void print_layout_summary(FILE* to, const topo::BlockSparseLayout& L, const topo::ButterflyOptions& o) {
  const int64_t N = L.n_blocks;
  const int64_t nnz = L.indptr[N];
  const topo::StageMeta m = topo::butterfly_stage_meta(N, o.layer, o.rule);
  std::fprintf(to, "butterfly:  rule %s  layer %lld -> stage %lld of %lld  N=%lld blocks of Bs=%lld\n",
              topo::partner_rule_name(o.rule), (long long)o.layer, (long long)m.stage, (long long)m.stage_count,
              (long long)N, (long long)L.block_size);
  std::fprintf(to, "blocks:     %lld per head (%.2f per row, %.2f%% of the causal block triangle)\n", (long long)nnz,
              static_cast<double>(nnz) / static_cast<double>(N),
              100.0 * static_cast<double>(nnz) / (0.5 * static_cast<double>(N) * static_cast<double>(N + 1)));
}

// ---- build ---------------------------------------------------------------------------------------
struct BuildFlags {
  GraphFlags g;
  ButterflyFlags b;
  std::string out;
  std::string npy;
};

int run_build(const BuildFlags& f) {
  if (f.out.empty() && f.npy.empty())
    return fail_usage("graph build: nothing to write", "pass --out FILE (.bnagraph) and/or --npy DIR");
  const auto t0 = std::chrono::steady_clock::now();
  auto g = build_from_flags(f.g, f.b);
  const auto t1 = std::chrono::steady_clock::now();
  if (!g) return fail(g.status(), build_hint(f.g, f.b));
  if (f.b.enabled) {
    const Status v = graph::validate(*g, validate_options_for(*g, true));
    if (!v.is_ok()) return fail(internal_error("graph build: butterfly graph failed validation: " + v.message()));
  }
  std::printf("graph:      [H=%lld, T=%lld, D=%lld]  %.1f MiB  strategy %s  built in %.1f ms\n", (long long)g->H,
              (long long)g->T, (long long)g->D, g->nbytes() / 1048576.0, g->meta.strategy.c_str(),
              std::chrono::duration<double, std::milli>(t1 - t0).count());
  if (f.b.enabled) {
    auto o = butterfly_options(f.b);
    auto L = topo::butterfly_block_layout(f.g.T, f.b.block_size, f.g.H, *o);
    if (!L) return fail(L.status());
    print_layout_summary(stdout, *L, *o);
  }
  if (!f.out.empty()) {
    const Status st = io::save_graph(f.out, *g);
    if (!st.is_ok()) return fail(st, "check that the directory of --out exists and is writable");
    std::printf("wrote:      %s\n", f.out.c_str());
  }
  if (!f.npy.empty()) {
    const Status st = io::export_graph_npy(f.npy, *g);
    if (!st.is_ok()) return fail(st, "check that --npy names a writable directory");
    std::printf("wrote:      %s/{neigh_idx.npy, edge_type.npy, meta.json}\n", f.npy.c_str());
  }
  return 0;
}

// ---- validate ------------------------------------------------------------------------------------
struct ValidateFlags {
  std::string file;
  bool no_hamiltonian = false;
  int64_t expect_heads = -1;
  int64_t expect_tokens = -1;
};

int run_validate(const ValidateFlags& f) {
  auto g = io::load_graph(f.file);
  if (!g) return fail(g.status(), "is '" + f.file + "' a graph written by 'bna graph build --out'?");
  graph::ValidateOptions v = validate_options_for(*g, f.no_hamiltonian);
  v.expect_heads = f.expect_heads;
  v.expect_tokens = f.expect_tokens;
  const Status st = graph::validate(*g, v);
  if (!st.is_ok()) return fail(st);
  std::printf("ok: %s  [H=%lld, T=%lld, D=%lld]  strategy %s  hamiltonian check %s\n", f.file.c_str(),
              (long long)g->H, (long long)g->T, (long long)g->D, g->meta.strategy.c_str(),
              v.enforce_hamiltonian ? "on" : "off");
  return 0;
}

// ---- stats ---------------------------------------------------------------------------------------
struct StatsFlags {
  std::string file;
  GraphFlags g;
  ButterflyFlags b;
  bool json = false;
  int hops = 4;
};

int run_stats(const StatsFlags& f) {
  std::string hint;
  auto g = load_or_build(f.file, f.g, f.b, &hint);
  if (!g) return fail(g.status(), hint);
  if (f.hops < 0) return fail_usage("graph stats: --hops=" + std::to_string(f.hops) + ", expected >= 0");
  const graph::GraphMetrics m = graph::metrics(*g, f.hops);
  static const char* kTypes[graph::kNumEdgeTypes] = {"pad", "cycle", "window", "landmark", "rewire"};
  if (f.json) {
    nlohmann::json j;
    j["source"] = f.file.empty() ? "flags" : f.file;
    j["strategy"] = g->meta.strategy;
    j["H"] = g->H;
    j["T"] = g->T;
    j["D"] = g->D;
    j["bytes"] = g->nbytes();
    j["degree"] = {{"mean", m.degree_mean}, {"min", m.degree_min}, {"max", m.degree_max}};
    for (int t = 1; t < graph::kNumEdgeTypes; ++t) j["edge_types"][kTypes[t]] = m.edge_type_counts[t];
    j["shortcut_rate"] = m.shortcut_rate;
    j["reachability_proxy"] = m.reachability_proxy;
    j["bfs_hops"] = m.bfs_hops;
    std::printf("%s\n", j.dump(2).c_str());
    return 0;
  }
  std::printf("%-20s %s\n", "source", f.file.empty() ? "flags" : f.file.c_str());
  std::printf("%-20s %s\n", "strategy", g->meta.strategy.c_str());
  std::printf("%-20s [H=%lld, T=%lld, D=%lld]\n", "shape", (long long)g->H, (long long)g->T, (long long)g->D);
  std::printf("%-20s %.1f MiB\n", "size", g->nbytes() / 1048576.0);
  std::printf("%-20s mean %.2f  min %lld  max %lld\n", "degree", m.degree_mean, (long long)m.degree_min,
              (long long)m.degree_max);
  for (int t = 1; t < graph::kNumEdgeTypes; ++t)
    std::printf("%-20s %lld\n", (std::string("edges ") + kTypes[t]).c_str(), (long long)m.edge_type_counts[t]);
  std::printf("%-20s %.4f\n", "shortcut rate", m.shortcut_rate);
  std::printf("%-20s %.1f nodes (%d hops)\n", "reachability", m.reachability_proxy, m.bfs_hops);
  return 0;
}

// ---- show ----------------------------------------------------------------------------------------
struct ShowFlags {
  std::string file;
  GraphFlags g;
  ButterflyFlags b;
  std::string level = "block";
  int64_t head = 0;
  std::string rows;
  std::string cols;
  bool causal = true;
  std::string out = "mask.svg";
};

// "A:B" with either side optional (A defaults to 0, B to n).
Status parse_range(const std::string& flag, const std::string& text, int64_t n, int64_t* begin, int64_t* end) {
  const size_t colon = text.find(':');
  auto bad = [&] {
    return invalid_argument("graph show: " + flag + "='" + text + "', expected A:B with 0 <= A < B <= " +
                            std::to_string(n));
  };
  if (colon == std::string::npos) return bad();
  const std::string a = text.substr(0, colon), b = text.substr(colon + 1);
  try {
    size_t used = 0;
    *begin = a.empty() ? 0 : std::stoll(a, &used);
    if (!a.empty() && used != a.size()) return bad();
    *end = b.empty() ? n : std::stoll(b, &used);
    if (!b.empty() && used != b.size()) return bad();
  } catch (const std::exception&) {
    return bad();
  }
  if (*begin < 0 || *begin >= *end || *end > n) return bad();
  return Status::ok();
}

int run_show(const ShowFlags& f) {
  if (f.level != "block" && f.level != "token")
    return fail_usage("graph show: --level='" + f.level + "', expected block or token");
  // With --out - the SVG owns stdout, so the summary goes to stderr.
  FILE* info = f.out == "-" ? stderr : stdout;
  Expected<std::string> svg = std::string();
  if (f.b.enabled && f.file.empty() && f.level == "block") {
    auto o = butterfly_options(f.b);
    if (!o) return fail(o.status(), build_hint(f.g, f.b));
    auto L = topo::butterfly_block_layout(f.g.T, f.b.block_size, f.g.H, *o);
    if (!L) return fail(L.status(), build_hint(f.g, f.b));
    svg = graph::render_block_layout_svg(*L, f.head);
    if (!svg) return fail(svg.status(), "--head must be below --H=" + std::to_string(f.g.H));
    print_layout_summary(info, *L, *o);
  } else {
    std::string hint;
    auto g = load_or_build(f.file, f.g, f.b, &hint);
    if (!g) return fail(g.status(), hint);
    const int64_t default_end = g->T < 256 ? g->T : 256;
    int64_t r0 = 0, r1 = default_end, c0 = 0, c1 = default_end;
    if (!f.rows.empty()) {
      const Status st = parse_range("--rows", f.rows, g->T, &r0, &r1);
      if (!st.is_ok()) return fail(st, "e.g. --rows 0:512");
      c1 = r1;
    }
    if (!f.cols.empty()) {
      const Status st = parse_range("--cols", f.cols, g->T, &c0, &c1);
      if (!st.is_ok()) return fail(st, "e.g. --cols 0:512");
    }
    svg = graph::render_mask_svg(*g, f.head, r0, r1, c0, c1, f.causal);
    if (!svg) return fail(svg.status(), "--head must be below H=" + std::to_string(g->H));
    std::fprintf(info, "mask:       head %lld  queries [%lld, %lld)  keys [%lld, %lld)  %s\n", (long long)f.head,
                (long long)r0, (long long)r1, (long long)c0, (long long)c1, f.causal ? "causal" : "all pairs");
  }
  if (f.out == "-") {
    std::fwrite(svg->data(), 1, svg->size(), stdout);
    return 0;
  }
  const Status st = io::write_file_atomic(f.out, *svg);
  if (!st.is_ok()) return fail(st, "check that the directory of --out exists and is writable");
  std::printf("wrote:      %s (%.1f KiB)\n", f.out.c_str(), svg->size() / 1024.0);
  return 0;
}

BNA_CLI_COMMAND([](CLI::App& root) {
  CLI::App* group = ensure_subcommand(&root, "graph", kGroupDescription);

  auto* bf = new BuildFlags();  // flag structs live for the process
  auto* build = group->add_subcommand("build", "build a graph from the flags and save it (.bnagraph and/or NumPy)");
  add_graph_flags(build, bf->g);
  add_butterfly_flags(build, bf->b);
  build->add_option("--out", bf->out, "output graph file (.bnagraph)")->capture_default_str();
  build->add_option("--npy", bf->npy, "also export neigh_idx.npy, edge_type.npy, meta.json into this directory")
      ->capture_default_str();
  build->callback([bf] { run_build(*bf); });

  auto* vf = new ValidateFlags();
  auto* validate = group->add_subcommand("validate", "check a saved graph (indices, padding, types, cycle backbone)");
  validate->add_option("file", vf->file, "graph file (.bnagraph)")->required();
  validate->add_flag("--no-hamiltonian", vf->no_hamiltonian,
                     "skip the cycle-backbone check (default: off; always skipped for graphs without cycles, e.g. Butterfly)")
      ->capture_default_str();
  validate->add_option("--expect-heads", vf->expect_heads, "required H (-1 = any)")->capture_default_str();
  validate->add_option("--expect-tokens", vf->expect_tokens, "required T (-1 = any)")->capture_default_str();
  validate->callback([vf] { run_validate(*vf); });

  auto* sf = new StatsFlags();
  auto* stats = group->add_subcommand("stats", "degree, edge-type counts and quality metrics of a file or flag-built graph");
  stats->add_option("file", sf->file, "graph file (.bnagraph); omit to build from the flags")->capture_default_str();
  add_graph_flags(stats, sf->g);
  add_butterfly_flags(stats, sf->b);
  stats->add_flag("--json", sf->json, "print JSON instead of a table (default: off)")->capture_default_str();
  stats->add_option("--hops", sf->hops, "BFS hops of the reachability proxy")->capture_default_str();
  stats->callback([sf] { run_stats(*sf); });

  auto* shf = new ShowFlags();
  auto* show = group->add_subcommand("show", "draw the attention mask of one head as SVG");
  show->add_option("file", shf->file, "graph file (.bnagraph); omit to build from the flags")->capture_default_str();
  add_graph_flags(show, shf->g);
  add_butterfly_flags(show, shf->b);
  show->add_option("--level", shf->level,
                   "with --butterfly: block (the N x N block layout) or token (the token mask)")
      ->capture_default_str();
  show->add_option("--head", shf->head, "head to draw")->capture_default_str();
  show->add_option("--rows", shf->rows, "query range A:B (empty = 0:min(T,256))")->capture_default_str();
  show->add_option("--cols", shf->cols, "key range A:B (empty = the --rows range from 0)")->capture_default_str();
  show->add_flag("--causal,!--no-causal", shf->causal, "--causal (default) drops and greys key > query pairs; --no-causal draws every listed pair")->capture_default_str();
  show->add_option("--out", shf->out, "output SVG file ('-' = stdout)")->capture_default_str();
  show->callback([shf] { run_show(*shf); });
});

}  // namespace
}  // namespace bna::cli
