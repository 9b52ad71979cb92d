// Quality metrics (src/hf/quality.cpp) and the model benchmark (src/hf/bench_model.cpp): the KL
// divergence against hand-computed values, top-k overlap, Butterfly vs dense on the fixture models
// (identical when the window covers the context, KL > 0 and finite when it does not), and
// bench_model on a tiny random config.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "bna/hf.hpp"
#include "bna/safetensors.hpp"
#include "hf/hf_fixture_util.hpp"

namespace bna::hf {
namespace {

using testing::butterfly;
using testing::fixture_ids;
using testing::kDir;

TEST(Kl, HandExample) {
  // P = softmax(0, a) with a = float(ln 2): P = (1, e^a) / (1 + e^a); Q = softmax(0, 0) = (1/2, 1/2).
  const float a = static_cast<float>(std::log(2.0));
  const std::vector<float> p{0.0f, a}, q{0.0f, 0.0f};
  const double ea = std::exp(static_cast<double>(a)), p1 = 1 / (1 + ea), p2 = ea / (1 + ea);
  const double want = p1 * std::log(p1 / 0.5) + p2 * std::log(p2 / 0.5);  // ~ (1/3)ln(2/3) + (2/3)ln(4/3)
  auto kl = kl_divergence(p, q);
  ASSERT_TRUE(kl.has_value());
  EXPECT_NEAR(*kl, want, 1e-15);
  EXPECT_NEAR(*kl, std::log(2.0) * 5.0 / 3.0 - std::log(3.0), 1e-7);  // the exact-ln2 value
  // KL(Q || P) differs (KL is not symmetric).
  auto rev = kl_divergence(q, p);
  ASSERT_TRUE(rev.has_value());
  EXPECT_NEAR(*rev, 0.5 * std::log(0.5 / p1) + 0.5 * std::log(0.5 / p2), 1e-15);
  EXPECT_GT(std::abs(*rev - *kl), 1e-3);
}

TEST(Kl, ExactZeroAndExtremes) {
  const std::vector<float> x{1.5f, -2.0f, 0.25f, 7.0f, -30.0f};
  auto z = kl_divergence(x, x);
  ASSERT_TRUE(z.has_value());
  EXPECT_EQ(*z, 0.0);
  // A shift of every logit leaves the distribution unchanged: 0 up to float64 rounding.
  std::vector<float> shifted = x;
  for (auto& v : shifted) v += 4.0f;  // exact in f32 for these values
  auto s = kl_divergence(x, shifted);
  ASSERT_TRUE(s.has_value());
  EXPECT_NEAR(*s, 0.0, 1e-14);
  // Probabilities that underflow in float64 (e^-2000) give finite terms, never NaN: KL ~ 2000.
  const std::vector<float> p{1000.0f, -1000.0f}, q{-1000.0f, 1000.0f};
  auto big = kl_divergence(p, q);
  ASSERT_TRUE(big.has_value());
  EXPECT_TRUE(std::isfinite(*big));
  EXPECT_NEAR(*big, 2000.0, 1e-9);
}

TEST(Kl, BadInput) {
  const std::vector<float> a{0.0f, 1.0f}, b{0.0f}, n{0.0f, NAN}, i{0.0f, -INFINITY};
  EXPECT_FALSE(kl_divergence(a, b).has_value());
  EXPECT_FALSE(kl_divergence(b, a).has_value());
  EXPECT_FALSE(kl_divergence({}, {}).has_value());
  auto e = kl_divergence(a, n);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.status().to_string().find("logit 1"), std::string::npos) << e.status().to_string();
  EXPECT_FALSE(kl_divergence(i, a).has_value());
}

TEST(TopK, Overlap) {
  const std::vector<float> a{5, 4, 3, 2, 1}, b{1, 2, 3, 4, 5};
  EXPECT_EQ(top_k_overlap(a, b, 1), 0);
  EXPECT_EQ(top_k_overlap(a, b, 3), 1);  // {0,1,2} vs {2,3,4}
  EXPECT_EQ(top_k_overlap(a, a, 4), 4);
  EXPECT_EQ(top_k_overlap(a, b, 99), 5);  // clamped to V
  const std::vector<float> ties{1, 1, 1, 0};
  EXPECT_EQ(top_k_overlap(ties, a, 2), 2);  // ties keep the lower ids {0, 1}
}

class Quality : public ::testing::TestWithParam<std::string> {};

TEST_P(Quality, IdenticalWhenTheWindowCoversTheContext) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids(fam);
  QualityOptions o;
  o.butterfly = butterfly(64, 8);
  o.positions = 0;
  o.greedy_tokens = 8;
  o.chunk = 7;
  auto r = compare_quality(*m, ids, o);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->kl.size(), ids.size());
  for (double k : r->kl) EXPECT_EQ(k, 0.0) << fam;
  EXPECT_EQ(r->kl_max, 0.0);
  EXPECT_EQ(r->top_k_overlap_mean, 1.0);
  EXPECT_EQ(r->top1_agreement, 1.0);
  EXPECT_EQ(r->ppl_dense, r->ppl_butterfly);
  EXPECT_GT(r->ppl_dense, 1.0);
  EXPECT_TRUE(std::isfinite(r->ppl_dense));
  EXPECT_EQ(r->greedy_parity, 1.0);
  EXPECT_EQ(r->first_divergence, -1);
  EXPECT_EQ(r->greedy_dense, r->greedy_butterfly);
  EXPECT_EQ(r->greedy_dense.size(), 8u);
  // The model's own options are restored (dense by default).
  EXPECT_EQ(m->attention().kind, AttnKind::kDense);
}

TEST_P(Quality, PositiveFiniteKlWhenSparse) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids(fam);
  QualityOptions o;
  o.butterfly = butterfly(2, 6, 1, 5);
  o.positions = 16;
  o.greedy_tokens = 6;
  o.chunk = 0;
  o.top_k = 5;
  auto r = compare_quality(*m, ids, o);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->kl.size(), 16u);
  EXPECT_EQ(r->first_position, static_cast<int64_t>(ids.size()) - 16);
  for (double k : r->kl) {
    EXPECT_TRUE(std::isfinite(k)) << fam;
    EXPECT_GE(k, 0.0) << fam;  // Gibbs; a negative value would mean unnormalised log-probs
  }
  EXPECT_GT(r->kl_mean, 0.0) << fam;
  EXPECT_GE(r->kl_max, r->kl_mean);
  EXPECT_GE(r->kl_argmax, r->first_position);
  EXPECT_LT(r->kl_argmax, static_cast<int64_t>(ids.size()));
  EXPECT_GT(r->top_k_overlap_mean, 0.0);
  EXPECT_LE(r->top_k_overlap_mean, 1.0);
  EXPECT_TRUE(std::isfinite(r->ppl_butterfly));
  EXPECT_NE(r->ppl_dense, r->ppl_butterfly) << fam;
  EXPECT_GE(r->greedy_parity, 0.0);
  EXPECT_LE(r->greedy_parity, 1.0);
  if (r->first_divergence >= 0) {
    EXPECT_NE(r->greedy_dense[r->first_divergence], r->greedy_butterfly[r->first_divergence]);
    EXPECT_DOUBLE_EQ(r->greedy_parity, r->first_divergence / 6.0);
  }
  // The KL at the last position equals a direct computation from two forwards.
  ASSERT_TRUE(m->set_attention(AttentionOptions{}).is_ok());
  ASSERT_TRUE(m->reset(64).is_ok());
  auto d = m->forward(ids);
  ASSERT_TRUE(m->set_attention(o.butterfly).is_ok());
  ASSERT_TRUE(m->reset(64).is_ok());
  auto b = m->forward(ids);
  ASSERT_TRUE(d.has_value() && b.has_value());
  auto kl = kl_divergence(*d, *b);
  ASSERT_TRUE(kl.has_value());
  EXPECT_NEAR(r->kl.back(), *kl, 1e-6 * std::max(1.0, *kl)) << fam;
}

INSTANTIATE_TEST_SUITE_P(Hf, Quality, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"),
                         [](const auto& info) { return info.param; });

TEST(Quality, BadInput) {
  auto m = Model::load(kDir + "/qwen2");
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> one{3};
  EXPECT_FALSE(compare_quality(*m, one, QualityOptions{}).has_value());
  const std::vector<int32_t> ids = fixture_ids("qwen2");
  QualityOptions o;
  o.top_k = 0;
  auto e = compare_quality(*m, ids, o);
  ASSERT_FALSE(e.has_value());
  EXPECT_NE(e.status().to_string().find("top_k=0"), std::string::npos);
  o.top_k = 3;
  o.butterfly.num_cycles = 0;
  EXPECT_FALSE(compare_quality(*m, ids, o).has_value());
}

TEST(BenchModel, TinyRandomConfig) {
  EXPECT_FALSE(preset_config("qwen-huge").has_value());
  auto c = preset_config("qwen-tiny");
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->hidden, 256);
  c->vocab = 64; c->hidden = 32; c->layers = 2; c->n_heads = 4; c->n_kv_heads = 2; c->head_dim = 8;
  c->intermediate = 48; c->rotary_dim = 8;
  Config bad = *c;
  bad.n_kv_heads = 3;
  EXPECT_FALSE(Model::random(bad, 1).has_value());
  auto m = Model::random(*c, 1);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  ModelBenchOptions o;
  o.contexts = {40, 17};
  o.decode_tokens = 3;
  o.butterfly = butterfly(4, 8);
  o.compressed.compressed.tail = 8;
  o.compressed.compressed.block = 4;
  auto r = bench_model(*m, o);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->records.size(), 6u);
  const char* kinds[] = {"dense", "butterfly", "compressed"};
  for (size_t i = 0; i < 6; ++i) {
    const auto& x = r->records[i];
    EXPECT_EQ(x.attention, kinds[i % 3]);
    EXPECT_EQ(x.context, i < 3 ? 40 : 17);
    EXPECT_GT(x.prefill_tok_s, 0);
    EXPECT_GT(x.decode_tok_s, 0);
    EXPECT_GE(x.ttft_s, x.prefill_s);
    EXPECT_GT(x.peak_rss_bytes, 0);
    // KV: 2 layers * (K + V) * Hkv * rows * dh * 4 bytes; rows = context + decode for dense and
    // Butterfly, L + (capacity - L) / Bs for compressed (the two pools).
    const int64_t cap = x.context + 3;
    const int64_t rows = x.attention == "compressed" ? 8 + (cap - 8) / 4 : cap;
    EXPECT_EQ(x.kv_bytes, size_t(2 * 2 * 2 * rows * 8 * 4)) << x.attention;
    EXPECT_EQ(x.graph_bytes > 0, x.attention != "dense");
  }
  o.kinds = {AttnKind::kCompressed};
  r = bench_model(*m, o);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  ASSERT_EQ(r->records.size(), 2u);
  EXPECT_EQ(r->records[0].attention, "compressed");
  o.compressed.compressed.block = 0;
  EXPECT_FALSE(bench_model(*m, o).has_value());
  o.compressed.compressed.block = 4;
  o.kinds.clear();
  EXPECT_FALSE(bench_model(*m, o).has_value());
  o.kinds = {AttnKind::kDense, AttnKind::kButterfly, AttnKind::kCompressed};
  o.decode_tokens = 0;
  EXPECT_FALSE(bench_model(*m, o).has_value());
  o.decode_tokens = 1;
  o.contexts = {1};
  EXPECT_FALSE(bench_model(*m, o).has_value());
}

}  // namespace
}  // namespace bna::hf

namespace bna::hf {
namespace {

TEST(Generate, StatsSplitPrefillAndDecode) {
  auto c = preset_config("qwen-tiny");
  ASSERT_TRUE(c.has_value());
  c->vocab = 64; c->hidden = 32; c->layers = 2; c->n_heads = 4; c->n_kv_heads = 2; c->head_dim = 8;
  c->intermediate = 48; c->rotary_dim = 8;
  auto m = Model::random(*c, 2);
  ASSERT_TRUE(m.has_value());
  ASSERT_TRUE(m->set_attention(butterfly(2, 4)).is_ok());
  const std::vector<int32_t> prompt{1, 5, 9, 13, 17, 21, 25, 29, 33};
  GenerateStats st;
  auto out = generate(*m, prompt, 6, SamplingOptions{}, 4, &st);
  ASSERT_TRUE(out.has_value()) << out.status().to_string();
  ASSERT_EQ(out->size(), 6u);  // a random config has no eos ids
  EXPECT_EQ(st.decode_steps, 5);
  EXPECT_GT(st.prefill_s, 0.0);
  EXPECT_GE(st.first_token_s, st.prefill_s);
  EXPECT_GT(st.decode_s, 0.0);
  // The same continuation without stats (the stats do not change the run).
  auto again = generate(*m, prompt, 6, SamplingOptions{}, 4);
  ASSERT_TRUE(again.has_value());
  EXPECT_EQ(*again, *out);
}

}  // namespace
}  // namespace bna::hf
