// Graph file tests: round trip (arrays and metadata), NumPy export, CRC-32C check value, and corrupt
// inputs: every truncation of a small file, every single-byte flip, wrong magic/version, forged dims.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "bna/graph.hpp"
#include "bna/graph_io.hpp"
#include "bna/io.hpp"
#include "bna/npy.hpp"

namespace bna::io {
namespace {

std::string temp_dir() {
  auto d = std::filesystem::temp_directory_path() / ("bna_graph_file_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(d);
  return d.string();
}

graph::GraphAbi small_graph() {
  graph::RowRules r{.T = 6, .window = 2, .landmark_stride = 2, .include_self = true};
  auto g = graph::build_heads(r, {{{0, 3, 1, 5, 2, 4}}, {{0, 1, 2, 3, 4, 5}, {0, 2, 4, 1, 5, 3}}});
  BNA_ASSERT(g.has_value());
  g->meta.strategy = "random";
  g->meta.seed = 0xfedcba9876543210ull;
  return *g;
}

std::string file_bytes(const graph::GraphAbi& g, const std::string& dir) {
  const std::string path = dir + "/g.bnagraph";
  BNA_ASSERT(save_graph(path, g).is_ok());
  return *read_file(path);
}

Expected<graph::GraphAbi> parse(const std::string& s) {
  return parse_graph(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

void put_u64(std::string& s, size_t at, uint64_t v) {
  for (int b = 0; b < 8; ++b) s[at + b] = static_cast<char>((v >> (8 * b)) & 0xff);
}
void fix_crc(std::string& s) {
  const uint32_t c = crc32c(s.data(), s.size() - 4);
  for (int b = 0; b < 4; ++b) s[s.size() - 4 + b] = static_cast<char>((c >> (8 * b)) & 0xff);
}

TEST(Crc32c, CheckValueAndIncremental) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string s = "The quick brown fox jumps over the lazy dog, repeatedly and at length.";
  EXPECT_EQ(crc32c(s.data() + 13, s.size() - 13, crc32c(s.data(), 13)), crc32c(s.data(), s.size()));
}

TEST(GraphFile, RoundTrip) {
  const std::string dir = temp_dir();
  const graph::GraphAbi g = small_graph();
  ASSERT_TRUE(save_graph(dir + "/g.bnagraph", g).is_ok());
  auto h = load_graph(dir + "/g.bnagraph");
  ASSERT_TRUE(h) << h.status().to_string();
  EXPECT_EQ(h->H, g.H);
  EXPECT_EQ(h->T, g.T);
  EXPECT_EQ(h->D, g.D);
  EXPECT_EQ(h->neigh_idx, g.neigh_idx);
  EXPECT_EQ(h->edge_type, g.edge_type);
  EXPECT_EQ(h->meta.strategy, "random");
  EXPECT_EQ(h->meta.window, 2);
  EXPECT_EQ(h->meta.landmark_stride, 2);
  EXPECT_EQ(h->meta.num_cycles, 2);
  EXPECT_EQ(h->meta.seed, 0xfedcba9876543210ull);
  EXPECT_TRUE(h->meta.include_self);
  EXPECT_EQ(h->meta.cycle_perms, g.meta.cycle_perms);
  EXPECT_TRUE(graph::validate(*h).is_ok());
  // Arrays start at a multiple of 64.
  const std::string bytes = *read_file(dir + "/g.bnagraph");
  const size_t arrays = bytes.size() - 4 - static_cast<size_t>(g.H * g.T * g.D * 5);
  EXPECT_EQ(arrays % 64, 0u);
  EXPECT_EQ(std::memcmp(bytes.data(), "BNAGRAPH", 8), 0);
  std::filesystem::remove_all(dir);
}

TEST(GraphFile, EveryTruncationIsAnError) {
  const std::string dir = temp_dir();
  const std::string full = file_bytes(small_graph(), dir);
  ASSERT_TRUE(parse(full));
  for (size_t n = 0; n < full.size(); ++n) {
    auto g = parse_graph(reinterpret_cast<const uint8_t*>(full.data()), n);
    ASSERT_FALSE(g) << "length " << n;
    EXPECT_EQ(g.status().code() == StatusCode::kCorrupt || g.status().code() == StatusCode::kUnimplemented, true)
        << g.status().to_string();
  }
  auto longer = parse(full + "x");
  EXPECT_FALSE(longer);
  std::filesystem::remove_all(dir);
}

TEST(GraphFile, EveryByteFlipIsAnError) {
  const std::string dir = temp_dir();
  const std::string full = file_bytes(small_graph(), dir);
  for (size_t i = 0; i < full.size(); ++i) {
    std::string f = full;
    f[i] = static_cast<char>(f[i] ^ 0x5a);
    ASSERT_FALSE(parse(f)) << "flip at " << i;
  }
  std::string body = full;
  body[full.size() - 10] ^= 1;  // inside edge_type
  auto g = parse(body);
  ASSERT_FALSE(g);
  EXPECT_NE(g.status().message().find("checksum mismatch"), std::string::npos) << g.status().message();
  std::filesystem::remove_all(dir);
}

TEST(GraphFile, HeaderErrorsNameTheValue) {
  const std::string dir = temp_dir();
  const std::string full = file_bytes(small_graph(), dir);
  auto expect = [](const std::string& f, const std::string& needle) {
    auto g = parse(f);
    ASSERT_FALSE(g);
    EXPECT_NE(g.status().message().find(needle), std::string::npos) << g.status().message();
  };
  std::string m = full;
  m[0] = 'X';
  expect(m, "bad magic");
  std::string v = full;
  v[8] = 2;
  expect(v, "format version 2, expected 1");
  std::string huge = full;
  put_u64(huge, 16, 1ull << 40);
  put_u64(huge, 24, 1ull << 30);
  put_u64(huge, 32, 1ull << 40);
  expect(huge, "needs more than");
  std::string neg = full;
  put_u64(neg, 24, ~0ull);
  expect(neg, "T=-1");
  std::string ml = full;
  put_u64(ml, 40, 3);
  expect(ml, "metadata length 3");
  expect(std::string("BNA"), "expected at least 52");
  std::filesystem::remove_all(dir);
}

TEST(GraphFile, BadJsonWithValidChecksum) {
  const std::string dir = temp_dir();
  const std::string full = file_bytes(small_graph(), dir);
  const size_t meta_at = 48;
  std::string f = full;
  f[meta_at] = '[';  // '{' -> '[': still a 'valid' prefix but broken JSON
  fix_crc(f);
  auto g = parse(f);
  ASSERT_FALSE(g);
  EXPECT_NE(g.status().message().find("not valid JSON"), std::string::npos) << g.status().message();
  // Valid JSON with a wrong field type (same length, so the layout stays intact).
  std::string w = full;
  const size_t pos = w.find("\"include_self\":true");
  ASSERT_NE(pos, std::string::npos);
  w.replace(pos, 19, "\"include_self\":1234");
  fix_crc(w);
  auto gw = parse(w);
  ASSERT_FALSE(gw);
  EXPECT_NE(gw.status().message().find("'include_self' is 1234, expected a boolean"), std::string::npos) << gw.status().message();
  std::filesystem::remove_all(dir);
}

TEST(GraphFile, SaveRejectsInconsistentGraph) {
  graph::GraphAbi g = small_graph();
  g.edge_type.pop_back();
  EXPECT_FALSE(save_graph(temp_dir() + "/bad.bnagraph", g).is_ok());
  EXPECT_FALSE(load_graph(temp_dir() + "/missing.bnagraph"));
}

TEST(GraphFile, ExportNpy) {
  const std::string dir = temp_dir() + "/export/sub";
  const graph::GraphAbi g = small_graph();
  ASSERT_TRUE(export_graph_npy(dir, g).is_ok());
  auto idx = read_npy(dir + "/neigh_idx.npy");
  auto ty = read_npy(dir + "/edge_type.npy");
  ASSERT_TRUE(idx && ty);
  EXPECT_EQ(idx->type, NpyType::kI32);
  EXPECT_EQ(ty->type, NpyType::kU8);
  EXPECT_EQ(idx->shape, (std::vector<int64_t>{g.H, g.T, g.D}));
  EXPECT_EQ(std::memcmp(idx->bytes.data(), g.neigh_idx.data(), idx->bytes.size()), 0);
  EXPECT_EQ(std::memcmp(ty->bytes.data(), g.edge_type.data(), ty->bytes.size()), 0);
  auto meta = read_file(dir + "/meta.json");
  ASSERT_TRUE(meta);
  auto j = nlohmann::json::parse(*meta);
  EXPECT_EQ(j["H"], g.H);
  EXPECT_EQ(j["D"], g.D);
  EXPECT_EQ(j["window"], 2);
  EXPECT_EQ(j["cycle_perms"][1][1][1], 2);
  std::filesystem::remove_all(temp_dir());
}

}  // namespace
}  // namespace bna::io
