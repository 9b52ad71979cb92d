// Tests for compile() and load_artifact(): the structured layout (perms + rules, no ABI arrays by
// default) and the opt-in ABI arrays, reuse vs force, byte-reproducible builds, T/H mismatch errors
// (never a rebuild), corruption detection, the window_idx size limit, and materialize_abi of a loaded
// artifact against the graph the topology path builds directly.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <cstring>
#include <fstream>
#include <functional>
#include <ostream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bna/npy.hpp"
#include "bna/spec.hpp"
#include "bna/topology.hpp"

namespace bna::spec {
namespace fs = std::filesystem;
namespace {

class SpecArtifact : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = (fs::temp_directory_path() / ("bna_spec_art_" + std::to_string(::getpid()) + "_" +
                                          ::testing::UnitTest::GetInstance()->current_test_info()->name()))
                .string();
    fs::remove_all(root_);
    auto s = load_spec(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/default.wf");
    ASSERT_TRUE(s) << s.status().to_string();
    spec_ = *s;
  }
  void TearDown() override { fs::remove_all(root_); }

  CompileOptions opts(int64_t T = 64, int64_t H = 2) const {
    CompileOptions o;
    o.T = T;
    o.H = H;
    o.out_root = root_;
    return o;
  }
  static std::string read(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
  }

  long count_entries() const { return std::distance(fs::directory_iterator(root_), fs::directory_iterator()); }

  std::string root_;
  GraphSpec spec_;
};

TEST_F(SpecArtifact, LayoutAndShapes) {
  auto r = compile(spec_, opts(64, 2));
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_FALSE(r->reused);
  EXPECT_FALSE(r->abi_stored);
  EXPECT_EQ(r->artifact_dir, (fs::path(root_) / r->key.hex).string());
  for (const char* f : {"perm.npy", "inv_perm.npy", "window_idx.npy", "meta.json"})
    EXPECT_TRUE(fs::exists(fs::path(r->artifact_dir) / f)) << f;
  // The [H, T, D] arrays are not written unless asked for.
  for (const char* f : {"neigh_idx.npy", "edge_type.npy"})
    EXPECT_FALSE(fs::exists(fs::path(r->artifact_dir) / f)) << f;
  auto perm = io::read_npy((fs::path(r->artifact_dir) / "perm.npy").string());
  ASSERT_TRUE(perm);
  EXPECT_EQ(perm->type, io::NpyType::kI32);
  EXPECT_EQ(perm->shape, (std::vector<int64_t>{2, 2, 64}));  // all cycles: [H, k, T]
  auto inv = io::read_npy((fs::path(r->artifact_dir) / "inv_perm.npy").string());
  ASSERT_TRUE(inv);
  EXPECT_EQ(inv->shape, (std::vector<int64_t>{2, 2, 64}));
  auto wi = io::read_npy((fs::path(r->artifact_dir) / "window_idx.npy").string());
  ASSERT_TRUE(wi);
  EXPECT_EQ(wi->shape, (std::vector<int64_t>{64, 65}));
  const auto meta = nlohmann::json::parse(read(fs::path(r->artifact_dir) / "meta.json"));
  EXPECT_EQ(meta["schema"], "bna-graph-artifact-v2");
  EXPECT_EQ(meta["cache_key"], r->key.hex);
  EXPECT_EQ(meta["key_payload"].dump(), r->key.payload);
  EXPECT_EQ(meta["dispatch"]["path"], "permute_window");
  EXPECT_EQ(meta["D"], r->D);
  EXPECT_EQ(meta["num_cycles"], 2);
  EXPECT_EQ(meta["abi_stored"], false);
  EXPECT_EQ(meta["rules"]["strategy"], "random");
  EXPECT_EQ(meta["rules"]["seed"], 42);
  EXPECT_EQ(meta["rules"]["window"], 64);
  EXPECT_EQ(meta["rules"]["landmark_stride"], 64);
  EXPECT_EQ(meta["rules"]["include_self"], true);
  EXPECT_EQ(meta["graph_metrics"]["max_degree"], r->D);
  EXPECT_FALSE(meta["files"].contains("neigh_idx.npy"));
  EXPECT_FALSE(meta.contains("generated_at"));
  // default.wf at T = 64: 2 cycles x 2 + 63 window + self at most, landmark 0 inside the window.
  EXPECT_GE(r->D, 64);
  EXPECT_LE(r->D, 68);
  // No leftovers from the temporary directory.
  EXPECT_EQ(count_entries(), 1);
}

TEST_F(SpecArtifact, AbiOptInWritesTheArraysOfTheRules) {
  CompileOptions o = opts(64, 2);
  o.materialize_abi = true;
  auto r = compile(spec_, o);
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_TRUE(r->abi_stored);
  const fs::path dir = r->artifact_dir;
  auto ni = io::read_npy((dir / "neigh_idx.npy").string());
  ASSERT_TRUE(ni) << ni.status().to_string();
  EXPECT_EQ(ni->type, io::NpyType::kI32);
  EXPECT_EQ(ni->shape, (std::vector<int64_t>{2, 64, r->D}));
  auto et = io::read_npy((dir / "edge_type.npy").string());
  ASSERT_TRUE(et) << et.status().to_string();
  EXPECT_EQ(et->type, io::NpyType::kU8);
  EXPECT_EQ(et->shape, (std::vector<int64_t>{2, 64, r->D}));
  auto a = load_artifact(dir.string(), 64, 2);
  ASSERT_TRUE(a) << a.status().to_string();
  EXPECT_TRUE(a->abi_stored);
  auto g = materialize_abi(*a);
  ASSERT_TRUE(g) << g.status().to_string();
  ASSERT_EQ(ni->bytes.size(), g->neigh_idx.size() * 4);
  EXPECT_EQ(std::memcmp(ni->bytes.data(), g->neigh_idx.data(), ni->bytes.size()), 0);
  EXPECT_EQ(std::vector<uint8_t>(et->bytes), g->edge_type);
  EXPECT_TRUE(verify_stored_abi(*a).is_ok());
  EXPECT_EQ(count_entries(), 1);

  // A flipped edge type is found by verify_stored_abi (load checks headers and sizes only).
  {
    std::fstream f(dir / "edge_type.npy", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(io::npy_header(io::NpyType::kU8, et->shape).size()));
    const char bad = 4;  // REWIRE never appears in a compiled graph
    f.write(&bad, 1);
  }
  auto b = load_artifact(dir.string(), 64, 2);
  ASSERT_TRUE(b) << b.status().to_string();
  const Status st = verify_stored_abi(*b);
  EXPECT_EQ(st.code(), StatusCode::kCorrupt);
  EXPECT_NE(st.message().find("edge_type.npy head 0 row 0 col 0: stored 4"), std::string::npos) << st.message();
}

TEST_F(SpecArtifact, AbiOptInUpgradesAnExistingArtifact) {
  auto a = compile(spec_, opts());
  ASSERT_TRUE(a) << a.status().to_string();
  EXPECT_FALSE(a->abi_stored);
  const std::string perm_before = read(fs::path(a->artifact_dir) / "perm.npy");
  CompileOptions o = opts();
  o.materialize_abi = true;
  auto b = compile(spec_, o);  // same key, the ABI arrays were missing: rebuilt and swapped in
  ASSERT_TRUE(b) << b.status().to_string();
  EXPECT_FALSE(b->reused);
  EXPECT_TRUE(b->abi_stored);
  EXPECT_EQ(b->artifact_dir, a->artifact_dir);
  EXPECT_TRUE(fs::exists(fs::path(b->artifact_dir) / "neigh_idx.npy"));
  EXPECT_EQ(read(fs::path(b->artifact_dir) / "perm.npy"), perm_before);
  EXPECT_EQ(count_entries(), 1);
  auto c = compile(spec_, o);  // now present: reused
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->reused);
  EXPECT_TRUE(c->abi_stored);
  auto d = compile(spec_, opts());  // a plain compile reuses the superset
  ASSERT_TRUE(d);
  EXPECT_TRUE(d->reused);
  EXPECT_TRUE(d->abi_stored);
  // A missing array is caught by the reuse check.
  fs::remove(fs::path(b->artifact_dir) / "edge_type.npy");
  auto e = compile(spec_, opts());
  ASSERT_FALSE(e);
  EXPECT_NE(e.status().message().find("missing edge_type.npy"), std::string::npos) << e.status().message();
}

TEST_F(SpecArtifact, ReuseThenForce) {
  auto a = compile(spec_, opts());
  ASSERT_TRUE(a) << a.status().to_string();
  EXPECT_FALSE(a->reused);
  auto b = compile(spec_, opts());
  ASSERT_TRUE(b) << b.status().to_string();
  EXPECT_TRUE(b->reused);
  EXPECT_EQ(b->key.hex, a->key.hex);
  EXPECT_EQ(b->D, a->D);
  EXPECT_EQ(b->dispatch.path, a->dispatch.path);
  EXPECT_DOUBLE_EQ(b->metrics.degree_mean, a->metrics.degree_mean);
  EXPECT_EQ(b->metrics.reachability_proxy, a->metrics.reachability_proxy);
  for (int t = 0; t < graph::kNumEdgeTypes; ++t) EXPECT_EQ(b->metrics.edge_type_counts[t], a->metrics.edge_type_counts[t]) << t;
  // A comment-only change reuses the same artifact.
  auto commented = parse_spec("; different text, same graph\n" + std::string(
      "(butterfly (backbone (cycle :type random :seed 42 :k 2)) (local (window :size 64))"
      " (highways (landmarks :stride 64)) (permute_window :enabled true :window 32))"));
  ASSERT_TRUE(commented);
  auto c = compile(*commented, opts());
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->reused);
  EXPECT_EQ(c->artifact_dir, a->artifact_dir);

  const std::string before = read(fs::path(a->artifact_dir) / "perm.npy");
  const std::string meta_before = read(fs::path(a->artifact_dir) / "meta.json");
  CompileOptions f = opts();
  f.force = true;
  auto d = compile(spec_, f);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_FALSE(d->reused);
  // Rebuilt byte-for-byte identical: no timestamps, no absolute paths.
  EXPECT_EQ(read(fs::path(d->artifact_dir) / "perm.npy"), before);
  EXPECT_EQ(read(fs::path(d->artifact_dir) / "meta.json"), meta_before);
  EXPECT_EQ(count_entries(), 1) << "force left the old artifact or a temporary behind";
}

TEST_F(SpecArtifact, DifferentSeedDifferentArtifact) {
  auto a = compile(spec_, opts());
  GraphSpec s2 = spec_;
  s2.seed = 43;
  auto b = compile(s2, opts());
  ASSERT_TRUE(a && b);
  EXPECT_NE(a->artifact_dir, b->artifact_dir);
  EXPECT_FALSE(b->reused);
}

TEST_F(SpecArtifact, LoadRoundTrip) {
  auto r = compile(spec_, opts(64, 2));
  ASSERT_TRUE(r);
  auto l = lower(normalize(spec_), 64, 2);
  ASSERT_TRUE(l);
  auto a = load_artifact(r->artifact_dir, 64, 2);
  ASSERT_TRUE(a) << a.status().to_string();
  EXPECT_EQ(a->cache_key, r->key.hex);
  EXPECT_FALSE(a->abi_stored);
  EXPECT_EQ(a->perms.perm, l->perms.perm);
  EXPECT_EQ(a->perms.inv, l->perms.inv);
  EXPECT_EQ(a->D, l->D);
  EXPECT_EQ(a->rules.window, 64);
  EXPECT_EQ(a->rules.landmark_stride, 64);
  EXPECT_EQ(a->meta.strategy, "random");
  EXPECT_EQ(a->meta.num_cycles, 2);
  EXPECT_EQ(a->metrics.degree_mean, l->metrics.degree_mean);
  EXPECT_EQ(a->metrics.reachability_proxy, l->metrics.reachability_proxy);
  EXPECT_EQ(a->permute.W, 65);
  EXPECT_EQ(a->permute.window_idx, derive_window_idx(64, 32));
  EXPECT_EQ(a->dispatch.path, "permute_window");
  EXPECT_EQ(verify_stored_abi(*a).code(), StatusCode::kInvalidArgument);  // nothing stored
}

// materialize_abi(load_artifact(compile(spec))) equals the graph bna::topo builds directly
// (Topology::construct: cycles -> rows -> validate) for the same options, entry for entry.
struct TopologyCase {
  const char* name;
  const char* body;
  int64_t T, H;
};

void PrintTo(const TopologyCase& c, std::ostream* os) { *os << c.name << " T=" << c.T << " H=" << c.H; }

class SpecArtifactTopology : public SpecArtifact, public ::testing::WithParamInterface<TopologyCase> {};

TEST_P(SpecArtifactTopology, MaterializedAbiEqualsTopologyConstruct) {
  const TopologyCase& c = GetParam();
  auto s = parse_spec(std::string("(butterfly ") + c.body + ")", "t.wf");
  ASSERT_TRUE(s) << s.status().to_string();
  const GraphSpec n = normalize(*s);
  auto r = compile(n, opts(c.T, c.H));
  ASSERT_TRUE(r) << c.name << ": " << r.status().to_string();
  auto a = load_artifact(r->artifact_dir, c.T, c.H);
  ASSERT_TRUE(a) << c.name << ": " << a.status().to_string();
  auto g = materialize_abi(*a);
  ASSERT_TRUE(g) << c.name << ": " << g.status().to_string();

  topo::TopologyOptions o;
  o.n_heads = c.H;
  o.strategy = n.strategy;
  o.num_cycles = n.num_cycles;
  o.edge_disjoint = n.edge_disjoint;
  o.regular_num_clusters = n.regular_num_clusters;
  o.coverage_target = n.coverage_target;
  o.seed = n.seed;
  o.window = n.window_size;
  o.landmark_stride = n.landmark_stride;
  auto topo = topo::Topology::create(o);
  ASSERT_TRUE(topo);
  auto direct = topo->construct(c.T);
  ASSERT_TRUE(direct) << c.name << ": " << direct.status().to_string();
  EXPECT_EQ(g->D, direct->D) << c.name;
  EXPECT_EQ(r->D, direct->D) << c.name;
  EXPECT_EQ(g->neigh_idx, direct->neigh_idx) << c.name;
  EXPECT_EQ(g->edge_type, direct->edge_type) << c.name;
  EXPECT_EQ(g->meta.cycle_perms, direct->meta.cycle_perms) << c.name;
  EXPECT_EQ(g->meta.strategy, direct->meta.strategy) << c.name;
  EXPECT_EQ(g->meta.window, direct->meta.window) << c.name;
  EXPECT_EQ(g->meta.landmark_stride, direct->meta.landmark_stride) << c.name;
  EXPECT_EQ(g->meta.num_cycles, direct->meta.num_cycles) << c.name;
  EXPECT_EQ(g->meta.seed, direct->meta.seed) << c.name;
  EXPECT_TRUE(graph::validate(*g, {c.H, c.T, true}).is_ok()) << c.name;
  const graph::GraphMetrics m = graph::metrics(*direct, 4, kMetricsSources);
  EXPECT_EQ(r->metrics.degree_mean, m.degree_mean) << c.name;
  EXPECT_EQ(r->metrics.reachability_proxy, m.reachability_proxy) << c.name;
  EXPECT_EQ(r->metrics.edge_type_counts[3], m.edge_type_counts[3]) << c.name;
}

INSTANTIATE_TEST_SUITE_P(
    Specs, SpecArtifactTopology,
    ::testing::Values(
        TopologyCase{"default_rules", "(backbone (cycle :k 2)) (local (window :size 64)) (highways (landmarks :stride 64))",
                     200, 2},
        TopologyCase{"T_below_window", "(backbone (cycle :k 2)) (local (window :size 64)) (highways (landmarks :stride 8))",
                     23, 3},
        TopologyCase{"no_landmarks", "(backbone (cycle :k 1)) (local (window :size 5)) (highways (landmarks :stride none))",
                     41, 2},
        TopologyCase{"no_window", "(backbone (cycle :type edge_disjoint :k 3)) (local (window :size 0))"
                                  " (highways (landmarks :stride 3)) (permute_window :enabled false)",
                     31, 2},
        TopologyCase{"regular_partition", "(backbone (cycle :type regular_partition :k 2 :clusters 3 :seed 9))",
                     50, 2}),
    [](const ::testing::TestParamInfo<TopologyCase>& i) { return std::string(i.param.name); });

TEST_F(SpecArtifact, LoadRejectsTandHMismatch) {
  auto r = compile(spec_, opts(64, 2));
  ASSERT_TRUE(r);
  auto wrong_t = load_artifact(r->artifact_dir, 128, 2);
  ASSERT_FALSE(wrong_t);
  EXPECT_EQ(wrong_t.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(wrong_t.status().message().find("compiled for T=64, H=2 but T=128, H=2"), std::string::npos)
      << wrong_t.status().message();
  auto wrong_h = load_artifact(r->artifact_dir, 64, 4);
  ASSERT_FALSE(wrong_h);
  EXPECT_NE(wrong_h.status().message().find("H=4"), std::string::npos);
  // Nothing was rebuilt or touched.
  EXPECT_EQ(count_entries(), 1);
}

TEST_F(SpecArtifact, CorruptionIsDetected) {
  auto r = compile(spec_, opts());
  ASSERT_TRUE(r);
  const fs::path dir = r->artifact_dir;
  const std::string perm_bytes = read(dir / "perm.npy");
  // A repeated node in a cycle: same size, so only the full load catches it.
  {
    std::fstream f(dir / "perm.npy", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(io::npy_header(io::NpyType::kI32, {2, 2, 64}).size()));
    const int32_t bad[2] = {5, 5};
    f.write(reinterpret_cast<const char*>(bad), 8);
  }
  auto a = load_artifact(dir.string(), 64, 2);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(a.status().message().find("head 0 cycle 0: position 1: node 5 repeated"), std::string::npos)
      << a.status().message();
  std::ofstream(dir / "perm.npy", std::ios::binary | std::ios::trunc) << perm_bytes;
  ASSERT_TRUE(load_artifact(dir.string(), 64, 2));
  // A header with the right length but another shape: the reuse check reads the header.
  {
    std::string swapped = perm_bytes;
    const std::string want = io::npy_header(io::NpyType::kI32, {2, 2, 64});
    const std::string other = io::npy_header(io::NpyType::kI32, {2, 64, 2});
    ASSERT_EQ(want.size(), other.size());
    swapped.replace(0, other.size(), other);
    std::ofstream(dir / "perm.npy", std::ios::binary | std::ios::trunc) << swapped;
  }
  auto h = compile(spec_, opts());
  ASSERT_FALSE(h);
  EXPECT_NE(h.status().message().find("perm.npy header"), std::string::npos) << h.status().message();
  // A truncated file: the reuse check catches it and compile says to use force.
  fs::resize_file(dir / "perm.npy", 100);
  auto c = compile(spec_, opts());
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("perm.npy has 100 bytes"), std::string::npos) << c.status().message();
  EXPECT_NE(c.status().message().find("force"), std::string::npos);
  CompileOptions f = opts();
  f.force = true;
  auto d = compile(spec_, f);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_TRUE(load_artifact(d->artifact_dir, 64, 2));
}

TEST_F(SpecArtifact, MetaRulesAreChecked) {
  auto r = compile(spec_, opts());
  ASSERT_TRUE(r);
  const fs::path dir = r->artifact_dir;
  const std::string good = read(dir / "meta.json");
  auto with = [&](const std::function<void(nlohmann::json&)>& edit) {
    auto j = nlohmann::json::parse(good);
    edit(j);
    std::ofstream(dir / "meta.json", std::ios::trunc) << j.dump(2);
    return load_artifact(dir.string(), 64, 2);
  };
  // D that the rules do not give.
  auto a = with([](nlohmann::json& j) { j["D"] = j["D"].get<int64_t>() - 1; });
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), StatusCode::kCorrupt);
  EXPECT_NE(a.status().message().find("give D="), std::string::npos) << a.status().message();
  // Rules that change the rows (a smaller window shortens them).
  auto b = with([](nlohmann::json& j) { j["rules"]["window"] = 8; });
  ASSERT_FALSE(b);
  EXPECT_NE(b.status().message().find("give D="), std::string::npos) << b.status().message();
  auto c = with([](nlohmann::json& j) { j["rules"]["landmark_stride"] = -1; });
  ASSERT_FALSE(c);
  EXPECT_NE(c.status().message().find("landmark_stride=-1"), std::string::npos) << c.status().message();
  auto d = with([](nlohmann::json& j) { j["rules"].erase("include_self"); });
  ASSERT_FALSE(d);
  EXPECT_EQ(d.status().code(), StatusCode::kCorrupt);
  // abi_stored without the arrays.
  auto e = with([](nlohmann::json& j) { j["abi_stored"] = true; });
  ASSERT_FALSE(e);
  EXPECT_NE(e.status().message().find("missing neigh_idx.npy"), std::string::npos) << e.status().message();
  // A v1 artifact is rejected by schema, never misread.
  auto v1 = with([](nlohmann::json& j) { j["schema"] = "bna-graph-artifact-v1"; });
  ASSERT_FALSE(v1);
  EXPECT_NE(v1.status().message().find("expected 'bna-graph-artifact-v2'"), std::string::npos);
  std::ofstream(dir / "meta.json", std::ios::trunc) << good;
  EXPECT_TRUE(load_artifact(dir.string(), 64, 2));
}

TEST_F(SpecArtifact, BrokenInverseAndMetaAreDetected) {
  auto r = compile(spec_, opts());
  ASSERT_TRUE(r);
  const fs::path dir = r->artifact_dir;
  auto inv = io::read_npy((dir / "inv_perm.npy").string());
  ASSERT_TRUE(inv);
  std::swap(inv->bytes[0], inv->bytes[4]);
  ASSERT_TRUE(io::write_npy((dir / "inv_perm.npy").string(), io::NpyType::kI32, inv->shape, inv->bytes.data()).is_ok());
  auto a = load_artifact(dir.string(), 64, 2);
  ASSERT_FALSE(a);
  EXPECT_NE(a.status().message().find("not the inverse"), std::string::npos) << a.status().message();
  // A meta.json that names another key.
  fs::copy(dir, fs::path(root_) / "renamed", fs::copy_options::recursive);
  auto b = load_artifact((fs::path(root_) / "renamed").string(), 64, 2);
  ASSERT_FALSE(b);
  EXPECT_NE(b.status().message().find("content-addressed"), std::string::npos);
  std::ofstream(dir / "meta.json") << "{not json";
  EXPECT_EQ(load_artifact(dir.string(), 64, 2).status().code(), StatusCode::kCorrupt);
}

TEST_F(SpecArtifact, WindowIdxOmittedAboveLimitAndDerivedAtLoad) {
  CompileOptions o = opts(64, 2);
  o.max_window_idx_bytes = 1000;
  auto r = compile(spec_, o);
  ASSERT_TRUE(r);
  EXPECT_FALSE(fs::exists(fs::path(r->artifact_dir) / "window_idx.npy"));
  auto a = load_artifact(r->artifact_dir, 64, 2);
  ASSERT_TRUE(a) << a.status().to_string();
  EXPECT_EQ(a->permute.window_idx, derive_window_idx(64, 32));
}

TEST_F(SpecArtifact, CompileErrorsLeaveNothingBehind) {
  GraphSpec s = spec_;
  s.degree = 5;  // D is larger at T = 64
  auto r = compile(s, opts());
  ASSERT_FALSE(r);
  EXPECT_FALSE(fs::exists(root_) && !fs::is_empty(root_));
  EXPECT_FALSE(compile(spec_, opts(0, 2)));
  s = spec_;
  s.window_size = -3;
  s.window_schedule.reset();
  EXPECT_FALSE(compile(s, opts()));
}

TEST_F(SpecArtifact, CompileFileReadsSpec) {
  auto r = compile_file(std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/long_context.wf", opts(2048, 2));
  ASSERT_TRUE(r) << r.status().to_string();
  EXPECT_EQ(r->dispatch.path, "permute_window");
  EXPECT_TRUE(load_artifact(r->artifact_dir, 2048, 2));
  EXPECT_EQ(compile_file(root_ + "/missing.wf", opts()).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace bna::spec
