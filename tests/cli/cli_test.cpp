// End-to-end checks of the bna CLI contract: bad input exits 2 with an "error:" line that names the
// value, a failed check exits 1, and the main job (`bna demo`) passes its own checks on a small
// problem, and `bna demo --train` prints its four variants with finite numbers on tiny settings. Runs
// the built binary (BNA_CLI_PATH) through the shell.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "bna/attention.hpp"

namespace {

struct Result {
  int code = -1;
  std::string out;  // stdout and stderr together
};

Result bna(const std::string& args) {
  const std::string cmd = std::string(BNA_CLI_PATH) + " " + args + " 2>&1";
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string tmp(const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("bna_cli_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

void expect_bad_input(const std::string& args, const std::string& names) {
  const Result r = bna(args);
  EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
  EXPECT_NE(r.out.find("error:"), std::string::npos) << args << "\n" << r.out;
  EXPECT_NE(r.out.find(names), std::string::npos) << args << " should name '" << names << "'\n" << r.out;
}

TEST(Cli, BadGraphParametersExitTwoAndNameTheValue) {
  const std::string out = tmp("x.bnag");
  expect_bad_input("graph build --T 0 --out " + out, "T=0");
  expect_bad_input("graph build --T 16 --window -1 --out " + out, "window=-1");
  expect_bad_input("graph build --T 16 --strategy bogus --out " + out, "bogus");
  expect_bad_input("graph build --T 8 --strategy edge_disjoint --cycles 5 --out " + out, "k=5");
  expect_bad_input("graph build --T 16 --cycles 0 --out " + out, "num_cycles=0");
  EXPECT_FALSE(std::filesystem::exists(out)) << "a failed build must not leave a file";
}

TEST(Cli, BadFilesExitTwo) {
  expect_bad_input("graph validate /nonexistent/graph.bnag", "/nonexistent/graph.bnag");
  const std::string good = tmp("g.bnag");
  ASSERT_EQ(bna("graph build --T 32 --H 2 --out " + good).code, 0);
  std::string bytes;
  {
    std::ifstream in(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_GT(bytes.size(), 64u);
  const std::string trunc = tmp("trunc.bnag"), flipped = tmp("flipped.bnag"), magic = tmp("magic.bnag");
  std::ofstream(trunc, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  std::string f = bytes;
  f[f.size() - 5] ^= 0x40;
  std::ofstream(flipped, std::ios::binary) << f;
  std::string m = bytes;
  m[0] ^= 0x01;
  std::ofstream(magic, std::ios::binary) << m;
  expect_bad_input("graph validate " + trunc, trunc);
  expect_bad_input("graph validate " + flipped, flipped);
  expect_bad_input("graph validate " + magic, magic);
  const Result ok = bna("graph validate " + good);
  EXPECT_EQ(ok.code, 0) << ok.out;
}

TEST(Cli, MalformedSpecsGiveLineAndColumn) {
  const std::string corpus = std::string(BNA_SOURCE_DIR) + "/fuzz/corpus/spec_parser/";
  expect_bad_input("spec validate " + corpus + "unbalanced_open.wf", "unbalanced_open.wf:2:1");
  expect_bad_input("spec validate " + corpus + "unknown_key.wf", "unknown_key.wf:1:");
  expect_bad_input("compile " + corpus + "negative.wf --T 16 --H 2 --out-root " + tmp("cache"), "negative.wf");
  expect_bad_input("spec validate " + corpus + "empty.wf", "empty.wf");
}

TEST(Cli, CompileWritesTheAbiArraysOnlyWithAbi) {
  const std::string spec = std::string(BNA_SOURCE_DIR) + "/configs/graph_specs/default.wf";
  const std::string root = tmp("abi_cache");
  std::filesystem::remove_all(root);
  const Result plain = bna("compile " + spec + " --T 32 --H 2 --out-root " + root + " --json");
  ASSERT_EQ(plain.code, 0) << plain.out;
  EXPECT_NE(plain.out.find("\"abi_stored\": false"), std::string::npos) << plain.out;
  const Result abi = bna("compile " + spec + " --T 32 --H 2 --out-root " + root + " --abi");
  ASSERT_EQ(abi.code, 0) << abi.out;
  EXPECT_NE(abi.out.find("status:   built"), std::string::npos) << abi.out;  // upgraded, not reused
  int dirs = 0;
  for (const auto& e : std::filesystem::directory_iterator(root)) {
    ++dirs;
    for (const char* f : {"perm.npy", "inv_perm.npy", "meta.json", "neigh_idx.npy", "edge_type.npy"})
      EXPECT_TRUE(std::filesystem::exists(e.path() / f)) << f << "\n" << abi.out;
  }
  EXPECT_EQ(dirs, 1);
  expect_bad_input("compile " + spec + " --T 0 --H 2 --out-root " + root, "T=0");
  std::filesystem::remove_all(root);
}

TEST(Cli, UnknownCommandAndHelp) {
  EXPECT_EQ(bna("frobnicate").code, 2);
  const Result h = bna("--help");
  EXPECT_EQ(h.code, 0);
  for (const char* sub : {"demo", "graph", "compile", "spec", "bench"})
    EXPECT_NE(h.out.find(sub), std::string::npos) << sub << " missing from --help";
}

TEST(Cli, DemoPassesItsChecksOnASmallProblem) {
  const Result r = bna("demo --T 1024 --H 2 --dense-T 512 --check-rows 16");
  EXPECT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("validate:   ok"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("path:       streams"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  size_t passes = 0;
  for (size_t at = r.out.find("PASS"); at != std::string::npos; at = r.out.find("PASS", at + 1)) ++passes;
  EXPECT_EQ(passes, 2u) << r.out;  // butterfly and dense, both against the float64 oracle
  expect_bad_input("demo --T 1024 --dh -3", "--dh -3");
  expect_bad_input("demo --T 1024 --backend tpu", "--backend tpu");
}

// `bna demo --train` with tiny settings: the four variants in one table, every number finite, a
// reading line; the JSON form holds the same four.
TEST(Cli, DemoTrainPrintsFourVariantsWithFiniteNumbers) {
  const Result r = bna("demo --train --steps 2 --train-T 32 --train-batch 2");
  ASSERT_EQ(r.code, 0) << r.out;
  for (const char* name : {"dense ", "window ", "window+landmarks ", "butterfly "}) {
    size_t at = std::string::npos;
    for (size_t p = r.out.find(std::string("\n") + name); p != std::string::npos;
         p = r.out.find(std::string("\n") + name, p + 1))
      at = p + 1;  // the table row is the last line that starts with the name
    ASSERT_NE(at, std::string::npos) << name << " row missing\n" << r.out;
    std::istringstream row(r.out.substr(at, r.out.find('\n', at) - at));
    std::vector<std::string> cols{std::istream_iterator<std::string>(row), {}};
    ASSERT_EQ(cols.size(), 8u) << "variant, spec, path, train loss, val loss, accuracy, tok/s, wall s expected\n" << r.out;
    for (size_t c = 3; c < cols.size(); ++c) {
      char* end = nullptr;
      const double x = std::strtod(cols[c].c_str(), &end);
      EXPECT_TRUE(end && *end == '\0' && std::isfinite(x)) << name << " column " << c << " = '" << cols[c] << "'\n" << r.out;
    }
    EXPECT_NE(cols[2], "") << r.out;
  }
  EXPECT_NE(r.out.find("graph:w=2,s=0,c=0"), std::string::npos) << "W = T/16 = 2\n" << r.out;
  EXPECT_NE(r.out.find("graph:w=2,s=2,c=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nreading: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("chance 0.100"), std::string::npos) << r.out;

  const Result j = bna("demo --train --task recall --steps 1 --train-T 32 --train-batch 2 --json 2>/dev/null; exit $?");  // stdout only
  ASSERT_EQ(j.code, 0) << j.out;
  EXPECT_EQ(j.out.find("step "), std::string::npos) << "progress must not go to stdout with --json\n" << j.out;
  size_t names = 0;
  for (size_t p = j.out.find("\"name\""); p != std::string::npos; p = j.out.find("\"name\"", p + 1)) ++names;
  EXPECT_EQ(names, 4u) << j.out;
  EXPECT_NE(j.out.find("\"task\": \"recall\""), std::string::npos) << j.out;
}

TEST(Cli, DemoTrainBadValuesExitTwoAndNameTheValue) {
  expect_bad_input("demo --train --steps 0", "--steps 0");
  expect_bad_input("demo --train --steps -5", "--steps -5");
  expect_bad_input("demo --train --train-T 4", "--train-T 4");
  expect_bad_input("demo --train --train-T 64 --train-window 64", "--train-window 64");
  expect_bad_input("demo --train --train-batch 0", "--train-batch 0");
  expect_bad_input("demo --train --task bogus", "bogus");
  expect_bad_input("demo --train --task copy", "--task copy");
  expect_bad_input("demo --steps 10", "--train");    // a training flag without --train
  expect_bad_input("demo --train --T 128", "--T");  // the graph's T; training uses --train-T
}

// --backend of train and bench model: an unknown value is bad usage; cuda without a device (or in a
// build without CUDA) exits 2 with a hint instead of failing as a run.
TEST(Cli, TrainAndBenchModelBackendErrorsExitTwo) {
  expect_bad_input("train --task passkey --T 64 --steps 1 --backend bogus", "--backend bogus");
  expect_bad_input("bench model --context 64 --decode-tokens 1 --backend bogus", "--backend bogus");
  if (bna::attn::cuda_available()) GTEST_SKIP() << "a CUDA device is present; the no-device path is not reachable";
  for (const char* args : {"train --task passkey --T 64 --steps 1 --backend cuda",
                           "bench model --context 64 --decode-tokens 1 --backend cuda"}) {
    const Result r = bna(args);
    EXPECT_EQ(r.code, 2) << args << "\n" << r.out;
    EXPECT_NE(r.out.find("use --backend cpu"), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace
