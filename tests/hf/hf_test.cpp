// Hugging Face model tests: our dense forward against transformers' logits for tiny random models of
// every supported family (tests/fixtures/hf, made by tools/hf_fixtures.py), chunked prefill and
// decode against the one-shot forward, Butterfly attention, sampling, and bad input.
//
// Tolerance rule for a full model (docs/hf.md): the numerics.md rule applied to the logits, with
// transformers run in float64 as the oracle (ref64) and in float32 as the low-precision reference
// (ref32):  max|ours - ref64| <= 2 max|ref32 - ref64| + 1e-5  and the same on the mean.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "bna/hf.hpp"
#include "bna/io.hpp"
#include "bna/safetensors.hpp"
#include "bna/tokenizer.hpp"

namespace bna::hf {
namespace {

const std::string kDir = std::string(BNA_FIXTURES_DIR) + "/hf";

struct Ref {
  std::vector<int32_t> ids;
  std::vector<double> l64;
  std::vector<float> l32;
  std::vector<double> inv_freq;
};

Ref load_ref(const std::string& fam) {
  auto f = st::File::open(kDir + "/" + fam + "/reference.safetensors");
  BNA_ASSERT(f.has_value());
  Ref r;
  const st::TensorInfo* ids = f->find("input_ids");
  std::vector<int64_t> i64(ids->numel());
  std::memcpy(i64.data(), ids->data, ids->nbytes);
  r.ids.assign(i64.begin(), i64.end());
  const st::TensorInfo* a = f->find("logits_f64");
  r.l64.resize(a->numel());
  std::memcpy(r.l64.data(), a->data, a->nbytes);
  const st::TensorInfo* b = f->find("logits_f32");
  r.l32.resize(b->numel());
  std::memcpy(r.l32.data(), b->data, b->nbytes);
  if (const st::TensorInfo* fr = f->find("inv_freq")) {
    r.inv_freq.resize(fr->numel());
    std::memcpy(r.inv_freq.data(), fr->data, fr->nbytes);
  }
  return r;
}

class Family : public ::testing::TestWithParam<std::string> {};

TEST_P(Family, DenseLogitsMatchTransformers) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value()) << fam << ": " << m.status().to_string();
  const Ref r = load_ref(fam);
  ASSERT_TRUE(m->reset(64).is_ok());
  auto got = m->forward(r.ids, true);
  ASSERT_TRUE(got.has_value()) << got.status().to_string();
  ASSERT_EQ(got->size(), r.l64.size());
  double max_e = 0, mean_e = 0, max_lp = 0, mean_lp = 0;
  for (size_t i = 0; i < r.l64.size(); ++i) {
    ASSERT_TRUE(std::isfinite((*got)[i])) << fam << " logit " << i;
    const double e = std::abs((*got)[i] - r.l64[i]), lp = std::abs(r.l32[i] - r.l64[i]);
    max_e = std::max(max_e, e);
    max_lp = std::max(max_lp, lp);
    mean_e += e;
    mean_lp += lp;
  }
  mean_e /= r.l64.size();
  mean_lp /= r.l64.size();
  std::printf("[hf] %-6s T=%zu V=%lld max|ours-ref64|=%.3g (bound %.3g) mean=%.3g (bound %.3g) max|ref32-ref64|=%.3g\n",
              fam.c_str(), r.ids.size(), static_cast<long long>(m->config().vocab), max_e, 2 * max_lp + 1e-5,
              mean_e, 2 * mean_lp + 1e-5, max_lp);
  EXPECT_LE(max_e, 2 * max_lp + 1e-5) << fam;
  EXPECT_LE(mean_e, 2 * mean_lp + 1e-5) << fam;
}

TEST_P(Family, RopeFrequenciesMatchTransformers) {
  const std::string fam = GetParam();
  const Ref r = load_ref(fam);
  if (r.inv_freq.empty()) GTEST_SKIP() << fam << " has learned positions";
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const std::vector<float> f = rope_inv_freq(m->config());
  ASSERT_EQ(f.size(), r.inv_freq.size()) << fam;
  for (size_t i = 0; i < f.size(); ++i) EXPECT_EQ(static_cast<double>(f[i]), r.inv_freq[i]) << fam << " " << i;
}

TEST_P(Family, ChunkedPrefillAndDecodeMatchOneShot) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const Ref r = load_ref(fam);
  ASSERT_TRUE(m->reset(64).is_ok());
  auto full = m->forward(r.ids, true);
  ASSERT_TRUE(full.has_value());
  // Chunks of 5 (T=24 is not a multiple), then the last 3 tokens one at a time.
  ASSERT_TRUE(m->reset(64).is_ok());
  const size_t T = r.ids.size(), V = m->config().vocab;
  auto pre = m->forward(std::span<const int32_t>(r.ids.data(), T - 3), true, 5);
  ASSERT_TRUE(pre.has_value()) << pre.status().to_string();
  std::vector<float> all = *pre;
  for (size_t t = T - 3; t < T; ++t) {
    auto d = m->forward(std::span<const int32_t>(&r.ids[t], 1));
    ASSERT_TRUE(d.has_value());
    all.insert(all.end(), d->begin(), d->end());
  }
  ASSERT_EQ(all.size(), T * V);
  double max_e = 0;
  for (size_t i = 0; i < all.size(); ++i) max_e = std::max(max_e, static_cast<double>(std::abs(all[i] - (*full)[i])));
  EXPECT_LE(max_e, 1e-4) << fam << ": chunked/decode vs one-shot";
  EXPECT_EQ(m->position(), static_cast<int64_t>(T));
}

TEST_P(Family, ButterflyAttention) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const Ref r = load_ref(fam);
  ASSERT_TRUE(m->reset(64).is_ok());
  auto dense = m->forward(r.ids, true);
  ASSERT_TRUE(dense.has_value());
  // A window covering the whole prompt is dense attention exactly.
  AttentionOptions wide{.kind = AttnKind::kButterfly, .window = 64, .landmark_stride = 0};
  ASSERT_TRUE(m->set_attention(wide).is_ok());
  ASSERT_TRUE(m->reset(64).is_ok());
  auto same = m->forward(r.ids, true);
  ASSERT_TRUE(same.has_value());
  EXPECT_EQ(*same, *dense);
  // A sparse graph: runs, finite, changes later rows only.
  AttentionOptions sparse{.kind = AttnKind::kButterfly, .window = 3, .landmark_stride = 5, .num_cycles = 1, .seed = 7};
  ASSERT_TRUE(m->set_attention(sparse).is_ok());
  ASSERT_TRUE(m->reset(64).is_ok());
  auto bf = m->forward(r.ids, true, 7);
  ASSERT_TRUE(bf.has_value()) << bf.status().to_string();
  const size_t V = m->config().vocab;
  double diff_last = 0;
  for (size_t i = 0; i < bf->size(); ++i) ASSERT_TRUE(std::isfinite((*bf)[i]));
  for (size_t i = (r.ids.size() - 1) * V; i < bf->size(); ++i) diff_last = std::max(diff_last, double(std::abs((*bf)[i] - (*dense)[i])));
  EXPECT_GT(diff_last, 0.0) << fam;
  // Rows 0..3 see every key either way (window 3 + self).
  for (size_t i = 0; i < 4 * V; ++i) EXPECT_NEAR((*bf)[i], (*dense)[i], 1e-5) << fam << " " << i;
  // Keeping every layer dense restores dense attention.
  sparse.dense_layers.clear();
  for (int64_t l = 0; l < m->config().layers; ++l) sparse.dense_layers.push_back(l);
  ASSERT_TRUE(m->set_attention(sparse).is_ok());
  ASSERT_TRUE(m->reset(64).is_ok());
  auto back = m->forward(r.ids, true);
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, *dense);
}

TEST_P(Family, TokenizerAndGenerate) {
  const std::string fam = GetParam();
  auto tk = tok::load_tokenizer_json(kDir + "/" + fam + "/tokenizer.json");
  ASSERT_TRUE(tk.has_value()) << tk.status().to_string();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  EXPECT_LE((*tk)->vocab_size(), m->config().vocab);
  const auto ids = (*tk)->encode("The quick brown fox");
  auto g1 = generate(*m, ids, 6, {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .seed = 3});
  auto g2 = generate(*m, ids, 6, {.temperature = 0.8f, .top_k = 20, .top_p = 0.9f, .seed = 3});
  ASSERT_TRUE(g1.has_value()) << g1.status().to_string();
  EXPECT_EQ(*g1, *g2);  // same seed, same tokens
  auto greedy = generate(*m, ids, 4, {});
  ASSERT_TRUE(greedy.has_value());
  // Greedy equals the argmax of a one-shot forward over prompt + generated prefix.
  std::vector<int32_t> seq = ids;
  seq.insert(seq.end(), greedy->begin(), greedy->end() - 1);
  ASSERT_TRUE(m->reset(64).is_ok());
  auto lg = m->forward(seq, true);
  ASSERT_TRUE(lg.has_value());
  const size_t V = m->config().vocab;
  for (size_t i = 0; i < greedy->size(); ++i) {
    const float* row = lg->data() + (ids.size() - 1 + i) * V;
    EXPECT_EQ((*greedy)[i], std::max_element(row, row + V) - row) << fam << " step " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, Family, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"),
                         [](const auto& info) { return info.param; });

TEST(Hf, Sampling) {
  std::vector<float> l = {0.0f, 3.0f, 1.0f, 3.0f};
  uint64_t s = 1;
  EXPECT_EQ(sample(l, {}, &s), 1);  // greedy: lowest id on ties
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sample(l, {.temperature = 1.0f, .top_k = 2, .seed = 0}, &s);
    EXPECT_TRUE(t == 1 || t == 3);
  }
  for (int i = 0; i < 50; ++i) {
    const int32_t t = sample(l, {.temperature = 1.0f, .top_p = 0.3f}, &s);
    EXPECT_EQ(t, 1);
  }
}

std::string tmpdir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("bna_hf_test_" + std::to_string(::getpid())) / name;
  std::filesystem::create_directories(d);
  return d.string();
}

TEST(Hf, BadInput) {
  auto c = parse_config(R"({"architectures":["MambaForCausalLM"]})");
  ASSERT_FALSE(c.has_value());
  EXPECT_EQ(c.status().code(), StatusCode::kUnimplemented);
  EXPECT_NE(c.status().message().find("Qwen3ForCausalLM"), std::string::npos);
  EXPECT_FALSE(parse_config("{").has_value());
  EXPECT_FALSE(parse_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":66,)"
                            R"("num_hidden_layers":1,"num_attention_heads":4,"intermediate_size":8})").has_value());
  EXPECT_FALSE(parse_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":"x"})").has_value());
  EXPECT_EQ(parse_config(R"({"architectures":["LlamaForCausalLM"],"vocab_size":10,"hidden_size":8,)"
                         R"("num_hidden_layers":1,"num_attention_heads":2,"intermediate_size":8,)"
                         R"("rope_scaling":{"rope_type":"yarn"}})").status().code(), StatusCode::kUnimplemented);
  // A checkpoint whose tensor disagrees with the config, and one with a missing tensor.
  namespace fs = std::filesystem;
  const std::string d = tmpdir("bad_shape");
  fs::copy_file(kDir + "/qwen2/config.json", d + "/config.json", fs::copy_options::overwrite_existing);
  std::vector<float> x(10, 1.0f);
  ASSERT_TRUE(st::write(d + "/model.safetensors", {{"model.embed_tokens.weight", st::Dtype::kF32, {2, 5}, x.data()}}).is_ok());
  auto m = Model::load(d);
  ASSERT_FALSE(m.has_value());
  EXPECT_NE(m.status().message().find("model.embed_tokens.weight"), std::string::npos);
  EXPECT_NE(m.status().message().find("[384, 64]"), std::string::npos);
  const std::string d2 = tmpdir("missing");
  fs::copy_file(kDir + "/qwen2/config.json", d2 + "/config.json", fs::copy_options::overwrite_existing);
  std::vector<float> e(384 * 64, 0.5f);
  ASSERT_TRUE(st::write(d2 + "/model.safetensors", {{"model.embed_tokens.weight", st::Dtype::kF32, {384, 64}, e.data()}}).is_ok());
  auto m2 = Model::load(d2);
  ASSERT_FALSE(m2.has_value());
  EXPECT_EQ(m2.status().code(), StatusCode::kNotFound);
  // Prompt longer than the cache; id out of range.
  auto ok = Model::load(kDir + "/gpt2");
  ASSERT_TRUE(ok.has_value());
  ASSERT_TRUE(ok->reset(4).is_ok());
  std::vector<int32_t> five = {1, 2, 3, 4, 5};
  EXPECT_FALSE(ok->forward(five).has_value());
  std::vector<int32_t> bad = {100000};
  EXPECT_FALSE(ok->forward(bad).has_value());
  EXPECT_FALSE(ok->reset(100000).is_ok());  // beyond n_positions
}

}  // namespace
}  // namespace bna::hf
