// Tests for compile() and load_artifact(): layout and shapes, reuse vs force, byte-reproducible
// builds, T/H mismatch errors (never a rebuild), corruption detection and the window_idx size limit.
#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "bna/npy.hpp"
#include "bna/spec.hpp"

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
  EXPECT_EQ(r->artifact_dir, (fs::path(root_) / r->key.hex).string());
  for (const char* f : {"neigh_idx.npy", "edge_type.npy", "perm.npy", "inv_perm.npy", "window_idx.npy", "meta.json"})
    EXPECT_TRUE(fs::exists(fs::path(r->artifact_dir) / f)) << f;
  auto ni = io::read_npy((fs::path(r->artifact_dir) / "neigh_idx.npy").string());
  ASSERT_TRUE(ni);
  EXPECT_EQ(ni->type, io::NpyType::kI32);
  EXPECT_EQ(ni->shape, (std::vector<int64_t>{2, 64, r->D}));
  auto et = io::read_npy((fs::path(r->artifact_dir) / "edge_type.npy").string());
  ASSERT_TRUE(et);
  EXPECT_EQ(et->type, io::NpyType::kU8);
  auto perm = io::read_npy((fs::path(r->artifact_dir) / "perm.npy").string());
  ASSERT_TRUE(perm);
  EXPECT_EQ(perm->shape, (std::vector<int64_t>{2, 2, 64}));  // all cycles: [H, k, T]
  auto wi = io::read_npy((fs::path(r->artifact_dir) / "window_idx.npy").string());
  ASSERT_TRUE(wi);
  EXPECT_EQ(wi->shape, (std::vector<int64_t>{64, 65}));
  const auto meta = nlohmann::json::parse(read(fs::path(r->artifact_dir) / "meta.json"));
  EXPECT_EQ(meta["cache_key"], r->key.hex);
  EXPECT_EQ(meta["key_payload"].dump(), r->key.payload);
  EXPECT_EQ(meta["dispatch"]["path"], "permute_window");
  EXPECT_FALSE(meta.contains("generated_at"));
  // No leftovers from the temporary directory.
  EXPECT_EQ(count_entries(), 1);
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
  // A comment-only change reuses the same artifact.
  auto commented = parse_spec("; different text, same graph\n" + std::string(
      "(butterfly (backbone (cycle :type random :seed 42 :k 2)) (local (window :size 64))"
      " (highways (landmarks :stride 64)) (permute_window :enabled true :window 32))"));
  ASSERT_TRUE(commented);
  auto c = compile(*commented, opts());
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->reused);
  EXPECT_EQ(c->artifact_dir, a->artifact_dir);

  const std::string before = read(fs::path(a->artifact_dir) / "neigh_idx.npy");
  const std::string meta_before = read(fs::path(a->artifact_dir) / "meta.json");
  CompileOptions f = opts();
  f.force = true;
  auto d = compile(spec_, f);
  ASSERT_TRUE(d) << d.status().to_string();
  EXPECT_FALSE(d->reused);
  // Rebuilt byte-for-byte identical: no timestamps, no absolute paths.
  EXPECT_EQ(read(fs::path(d->artifact_dir) / "neigh_idx.npy"), before);
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
  EXPECT_EQ(a->abi.neigh_idx, l->abi.neigh_idx);
  EXPECT_EQ(a->abi.edge_type, l->abi.edge_type);
  EXPECT_EQ(a->perms.perm, l->perms.perm);
  EXPECT_EQ(a->perms.inv, l->perms.inv);
  EXPECT_EQ(a->abi.meta.cycle_perms, l->abi.meta.cycle_perms);
  EXPECT_EQ(a->permute.W, 65);
  EXPECT_EQ(a->permute.window_idx, derive_window_idx(64, 32));
  EXPECT_EQ(a->dispatch.path, "permute_window");
}

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
  // A neighbour index out of range: same size, so only the full load catches it.
  {
    std::fstream f(dir / "neigh_idx.npy", std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(128);
    const int32_t bad = 1 << 20;
    f.write(reinterpret_cast<const char*>(&bad), 4);
  }
  auto a = load_artifact(dir.string(), 64, 2);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.status().code(), StatusCode::kCorrupt);
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
