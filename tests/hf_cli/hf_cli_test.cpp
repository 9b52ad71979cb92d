// CLI contract of `bna run`, `bna quality` and `bna bench model`: bad input exits 2 with an `error:`
// line naming the value, good input gives the documented JSON, --out writes atomically; `--backend
// cuda` on a machine without a GPU (or a build without CUDA) exits 2 saying so; the checks that need a
// GPU to run a model are in tests/hf_cuda. Runs the bna binary built
// next to this test (<build>/bin/bna, found from /proc/self/exe; tests/CMakeLists.txt gives only the
// `cli` area a path). Skips, saying so, when that binary has not been built.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"

namespace {

namespace fs = std::filesystem;

fs::path bna_path() { return fs::read_symlink("/proc/self/exe").parent_path().parent_path() / "bin" / "bna"; }

struct Result {
  int rc = -1;
  std::string out;
};

Result run(const std::string& args, bool merge_stderr = true) {
  const std::string cmd = bna_path().string() + " " + args + (merge_stderr ? " 2>&1" : " 2>/dev/null");
  Result r;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int st = pclose(p);
  r.rc = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

class HfCli : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(bna_path())) GTEST_SKIP() << "bna binary not built at " << bna_path() << " (build bna_cli)";
    dir_ = fs::temp_directory_path() / ("bna_hf_cli_test_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    text_ = (dir_ / "text.txt").string();
    std::ofstream(text_) << "The quick brown fox jumps over the lazy dog, and then it jumps again over 12345 logs.";
  }
  void TearDown() override {
    if (!dir_.empty()) fs::remove_all(dir_);
  }
  fs::path dir_;
  std::string text_;
  const std::string model_ = std::string(BNA_FIXTURES_DIR) + "/hf/qwen2";
};

TEST_F(HfCli, QualityJsonIdenticalWhenTheWindowCoversTheText) {
  const Result r = run("quality --model " + model_ + " --text-file " + text_ + " --window 512 --greedy-tokens 4 --json",
                       false);
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kl_mean"].get<double>(), 0.0);
  EXPECT_EQ(j["kl_max"].get<double>(), 0.0);
  EXPECT_EQ(j["greedy_parity"].get<double>(), 1.0);
  EXPECT_EQ(j["first_divergence"].get<int64_t>(), -1);
  EXPECT_EQ(j["ppl_dense"].get<double>(), j["ppl_butterfly"].get<double>());
  EXPECT_GT(j["tokens"].get<int64_t>(), 2);
}

TEST_F(HfCli, QualitySparseHasPositiveKl) {
  const Result r = run("quality --model " + model_ + " --text-file " + text_ +
                           " --window 2 --landmark-stride 4 --greedy-tokens 4 --json",
                       false);
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["kl_mean"].get<double>(), 0.0);
  EXPECT_GE(j["kl_max"].get<double>(), j["kl_mean"].get<double>());
}

TEST_F(HfCli, QualityBadInputExits2) {
  Result r = run("quality --model " + model_ + " --text-file " + (dir_ / "missing.txt").string());
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("missing.txt"), std::string::npos) << r.out;
  r = run("quality --model " + (dir_ / "no_model").string() + " --text-file " + text_);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
  r = run("quality --model " + model_ + " --text-file " + text_ + " --top-k 0");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("top_k=0"), std::string::npos) << r.out;
  r = run("quality --model " + model_ + " --text-file " + text_ + " --cycles 0");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("num_cycles=0"), std::string::npos) << r.out;
}

TEST_F(HfCli, BenchModelJsonAndAtomicOut) {
  const std::string out = (dir_ / "res.json").string();
  const Result r = run("bench model --layers 2 --hidden 32 --heads 4 --kv-heads 2 --head-dim 8 --intermediate 48 "
                       "--vocab 64 --context 24 --decode-tokens 2 --window 4 --landmark-stride 8 --json --out " + out,
                       false);
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["records"].size(), 2u);
  EXPECT_EQ(j["records"][0]["attention"], "dense");
  EXPECT_EQ(j["records"][1]["attention"], "butterfly");
  EXPECT_EQ(j["records"][0]["kv_bytes"], j["records"][1]["kv_bytes"]);
  EXPECT_EQ(j["config"]["layers"], 2);
  for (const char* k : {"machine", "threads", "commit", "build_type", "dtype"}) EXPECT_TRUE(j.contains(k)) << k;
  std::ifstream f(out);
  ASSERT_TRUE(f.good());
  EXPECT_EQ(nlohmann::json::parse(f), j);
  for (const auto& e : fs::directory_iterator(dir_))
    EXPECT_TRUE(e.path().filename() == "res.json" || e.path().filename() == "text.txt") << e.path();
}

TEST_F(HfCli, BenchModelBadInputExits2) {
  Result r = run("bench model --preset qwen-huge");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("error: bench model: preset 'qwen-huge'"), std::string::npos) << r.out;
  r = run("bench model --context 1");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("context 1"), std::string::npos) << r.out;
  r = run("bench model --kv-heads 3");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("kv_heads=3"), std::string::npos) << r.out;
  r = run("bench model --hidden -4");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("error: "), std::string::npos) << r.out;
}

// --kv-page reaches the model: dense records hold whole pages (ceil(26 / 8) = 4 pages of 8 tokens per
// layer, 2 * Hkv * 8 * dh f32 each), Butterfly layers keep their contiguous [Hkv, 26, dh] caches.
TEST_F(HfCli, BenchModelKvPage) {
  const Result r = run("bench model --layers 2 --hidden 32 --heads 4 --kv-heads 2 --head-dim 8 --intermediate 48 "
                       "--vocab 64 --context 24 --decode-tokens 2 --window 4 --landmark-stride 8 --kv-page 8 --json",
                       false);
  ASSERT_EQ(r.rc, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["kv_page"], 8);
  ASSERT_EQ(j["records"].size(), 2u);
  EXPECT_EQ(j["records"][0]["kv_page"], 8);
  EXPECT_EQ(j["records"][0]["kv_bytes"], 2 * 4 * (2 * 2 * 8 * 8 * 4));
  EXPECT_EQ(j["records"][1]["kv_bytes"], 2 * (2 * 2 * 26 * 8 * 4));
}

TEST_F(HfCli, NegativeKvPageExits2) {
  for (const std::string& cmd : {"run --model " + model_ + " --prompt-file " + text_ + " --kv-page -3",
                                 "quality --model " + model_ + " --text-file " + text_ + " --kv-page -3",
                                 std::string("bench model --context 24 --kv-page -3")}) {
    const Result r = run(cmd);
    EXPECT_EQ(r.rc, 2) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("error: --kv-page -3"), std::string::npos) << cmd << "\n" << r.out;
  }
  const Result ok = run("run --model " + model_ + " --prompt-file " + text_ + " --max-new-tokens 4 --kv-page 5");
  EXPECT_EQ(ok.rc, 0) << ok.out;
}

TEST_F(HfCli, RunCpuGenerates) {
  const Result r = run("run --model " + model_ + " --prompt-file " + text_ + " --max-new-tokens 3 --backend cpu");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("backend cpu"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("generated 3 tokens"), std::string::npos) << r.out;
}

TEST_F(HfCli, BogusBackendExits2) {
  for (const std::string cmd : {"run --prompt-file ", "quality --text-file "}) {
    const Result r = run(cmd + text_ + " --model " + model_ + " --backend bogus");
    EXPECT_EQ(r.rc, 2) << cmd << r.out;
    EXPECT_NE(r.out.find("error: --backend bogus, expected cpu or cuda"), std::string::npos) << cmd << r.out;
  }
}

// The GPU backend prefills in chunks too: --prefill-chunk is no longer refused as usage; the command
// goes on to the model, which here fails on its head_dim (16) or on a build without CUDA, exit 2.
TEST_F(HfCli, CudaBackendTakesPrefillChunk) {
  for (const std::string cmd : {"run --prompt-file ", "quality --text-file "}) {
    const Result r = run(cmd + text_ + " --model " + model_ + " --backend cuda --prefill-chunk 4");
    EXPECT_EQ(r.rc, 2) << cmd << r.out;
    EXPECT_EQ(r.out.find("with --backend cuda"), std::string::npos) << cmd << r.out;
    EXPECT_TRUE(r.out.find("head_dim=16") != std::string::npos || r.out.find("built without CUDA") != std::string::npos)
        << cmd << r.out;
  }
}

// A model the GPU backend does not cover fails on its config, before any device is needed: the fixtures'
// head_dim 16 (the kernels take 64 or 128), for a Llama-path family and for GPT-2 (which the GPU
// backend runs at head_dim 64). A build without CUDA says that first.
TEST_F(HfCli, CudaBackendUnsupportedModelExits2) {
  const std::string gpt2 = std::string(BNA_FIXTURES_DIR) + "/hf/gpt2";
  for (const auto& [dir, what] : {std::pair{model_, std::string("head_dim=16")}, {gpt2, std::string("head_dim=16")}}) {
    const Result r = run("run --model " + dir + " --prompt-file " + text_ + " --backend cuda");
    EXPECT_EQ(r.rc, 2) << dir << r.out;
    EXPECT_TRUE(r.out.find(what) != std::string::npos || r.out.find("built without CUDA") != std::string::npos)
        << dir << r.out;
  }
}

// No device (or no CUDA in this build): exit 2 with the CudaModel's message, for a model it would run
// (the qwen2 fixture's config widened to head_dim 64; no weights are read before the device check).
TEST_F(HfCli, CudaBackendWithoutGpuExits2) {
  if (bna::attn::cuda_available()) GTEST_SKIP() << "a CUDA device is present; this checks the no-device path";
  const fs::path dir = dir_ / "qwen2_dh64";
  fs::create_directories(dir);
  nlohmann::json cfg = nlohmann::json::parse(std::ifstream(model_ + "/config.json"));
  cfg["hidden_size"] = 256;  // 4 heads of 64
  std::ofstream(dir / "config.json") << cfg.dump();
  fs::copy_file(model_ + "/tokenizer.json", dir / "tokenizer.json");
  for (const std::string cmd : {"run --prompt-file ", "quality --text-file "}) {
    const Result r = run(cmd + text_ + " --model " + dir.string() + " --backend cuda");
    EXPECT_EQ(r.rc, 2) << cmd << r.out;
    EXPECT_TRUE(r.out.find("CUDA") != std::string::npos || r.out.find("cuda") != std::string::npos) << cmd << r.out;
    EXPECT_NE(r.out.find("hint: --backend cuda needs an NVIDIA GPU"), std::string::npos) << cmd << r.out;
  }
}

}  // namespace
