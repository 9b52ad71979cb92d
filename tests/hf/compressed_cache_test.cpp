// Compressed butterfly in the HF model (src/hf/compressed_cache.cpp, docs/hf.md): the two-pool cache
// (raw ring + block means) against the full-K/V reference mode (the runtime's Path::kCompressed over
// the contiguous cache), prefill / chunked prefill / decode consistency, dense_layers, the memory bound
// and option errors.
//
// Exactness: the pools run the runtime's row math (same dot/axpy, same key order, same f32 block
// sums), so pools vs reference with the SAME call sequence must be bit-identical (compared with ==).
// Different call sequences (one-shot vs chunks vs decode) change the GEMM shapes of the projections
// (SGEMM blocking, SGEMV for one row), so those compare under 1e-4, the bound and cause of
// ChunkedPrefillAndDecodeMatchOneShot in hf_test.cpp; the attention rows themselves depend only on the
// position. The settings are sparse enough (L=5, Bs=3 over 24 tokens; L=16, Bs=8 over 150) that a
// wrong window or block cutoff moves the logits by far more than that (checked against dense).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bna/hf.hpp"
#include "bna/rng.hpp"
#include "hf/hf_fixture_util.hpp"

namespace bna::hf {
namespace {

using testing::fixture_ids;
using testing::kDir;

AttentionOptions compressed(int64_t L, int64_t Bs, bool reference = false, std::vector<int64_t> dense_layers = {}) {
  AttentionOptions o;
  o.kind = AttnKind::kCompressed;
  o.compressed.tail = L;
  o.compressed.block = Bs;
  o.compressed.full_kv_reference = reference;
  o.dense_layers = std::move(dense_layers);
  return o;
}

// Empties the cache, then sets the options (a compressed cache holding tokens cannot become another
// layout mid-sequence).
bool use(Model& m, const AttentionOptions& o) {
  if (!m.reset(m.capacity()).is_ok()) return false;
  const Status st = m.set_attention(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return st.is_ok();
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  BNA_ASSERT(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

std::vector<float> run(Model& m, const std::vector<int32_t>& ids, int64_t cap, size_t n_prefill, int64_t chunk) {
  return testing::prefill_then_decode(m, ids, cap, n_prefill, chunk);
}

Config tiny_config() {
  auto c = preset_config("qwen-tiny");
  BNA_ASSERT(c.has_value());
  return *c;
}

// ---- fixtures: pools == reference bit for bit, chunks and decode == one-shot ----------------------

class CompressedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(CompressedFixture, PoolsEqualFullKvReferenceAndChunkingDoesNotMatter) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const std::vector<int32_t> ids = fixture_ids(fam);
  const size_t T = ids.size(), N = 13;
  const int64_t cap = 40, L = 5, Bs = 3;

  ASSERT_TRUE(use(*m, compressed(L, Bs, true)));
  const std::vector<float> ref_one = run(*m, ids, cap, T, 0);
  const size_t ref_kv = m->kv_bytes();
  ASSERT_TRUE(use(*m, compressed(L, Bs)));
  const std::vector<float> one = run(*m, ids, cap, T, 0);
  ASSERT_EQ(one.size(), ref_one.size());
  EXPECT_EQ(max_abs_diff(one, ref_one), 0.0) << fam << ": pools vs full-K/V reference, one-shot";
  EXPECT_LT(m->kv_bytes(), ref_kv);

  // Chunks of 1, 3 (= Bs) and 7 (not a multiple of Bs, longer than L), each then decode: against
  // one-shot (GEMM rounding only) and against the reference fed the same way (bit for bit).
  for (int64_t chunk : {0, 1, 3, 7}) {
    ASSERT_TRUE(use(*m, compressed(L, Bs)));
    const std::vector<float> pools = run(*m, ids, cap, N, chunk);
    ASSERT_TRUE(use(*m, compressed(L, Bs, true)));
    const std::vector<float> ref = run(*m, ids, cap, N, chunk);
    ASSERT_EQ(pools.size(), one.size());
    const double e = max_abs_diff(pools, one);
    std::printf("[hf] %-6s compressed L=%lld Bs=%lld prefill %zu (chunk %lld) + decode %zu vs one-shot: max|diff|=%.3g\n",
                fam.c_str(), (long long)L, (long long)Bs, N, (long long)chunk, T - N, e);
    EXPECT_LE(e, 1e-4) << fam << " chunk " << chunk;
    EXPECT_EQ(max_abs_diff(pools, ref), 0.0) << fam << " chunk " << chunk << ": pools vs reference";
  }

  // The rule is really sparse here: dense attention gives different logits.
  ASSERT_TRUE(use(*m, AttentionOptions{}));
  const std::vector<float> dense = run(*m, ids, cap, T, 0);
  EXPECT_GT(max_abs_diff(dense, one), 1e-2) << fam;
}

INSTANTIATE_TEST_SUITE_P(Hf, CompressedFixture, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"),
                         [](const auto& info) { return info.param; });

// ---- random tiny Qwen: longer sequences, L < Bs, L = Bs = 1, a dense layer ------------------------

struct TailBlock {
  int64_t L, Bs;
};

class CompressedRandom : public ::testing::TestWithParam<TailBlock> {};

TEST_P(CompressedRandom, PoolsEqualReferenceAcrossChunkings) {
  const auto [L, Bs] = GetParam();
  Config c = tiny_config();
  c.vocab = 512;  // keeps the LM head cheap
  auto m = Model::random(c, 7);
  ASSERT_TRUE(m.has_value());
  Rng rng(11);
  std::vector<int32_t> ids(150);
  for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(512));
  const int64_t cap = 200;
  const std::vector<int64_t> dense_layers = {2};
  ASSERT_TRUE(use(*m, compressed(L, Bs, false, dense_layers)));
  const std::vector<float> one = run(*m, ids, cap, ids.size(), 0);
  // kv_bytes: layer 2 full, the others R = max(L, Bs) ring rows + (cap - L) / Bs means, K and V.
  const size_t row = static_cast<size_t>(c.n_kv_heads * c.head_dim) * sizeof(float) * 2;
  const size_t pooled = static_cast<size_t>(std::min(std::max(L, Bs), cap) + std::max<int64_t>(0, cap - L) / Bs);
  EXPECT_EQ(m->kv_bytes(), row * (3 * pooled + static_cast<size_t>(cap)));
  EXPECT_GT(m->graph_bytes(), 0u);  // routing layouts

  for (const auto& [n_prefill, chunk] : std::vector<std::pair<size_t, int64_t>>{{150, 37}, {140, 64}, {138, 0}}) {
    ASSERT_TRUE(use(*m, compressed(L, Bs, false, dense_layers)));
    const std::vector<float> pools = run(*m, ids, cap, n_prefill, chunk);
    ASSERT_TRUE(use(*m, compressed(L, Bs, true, dense_layers)));
    const std::vector<float> ref = run(*m, ids, cap, n_prefill, chunk);
    const double e = max_abs_diff(pools, one);
    std::printf("[hf] random L=%lld Bs=%lld prefill %zu (chunk %lld) + decode %zu vs one-shot: max|diff|=%.3g\n",
                (long long)L, (long long)Bs, n_prefill, (long long)chunk, ids.size() - n_prefill, e);
    EXPECT_EQ(max_abs_diff(pools, ref), 0.0) << "L=" << L << " Bs=" << Bs << " chunk " << chunk;
    EXPECT_LE(e, 1e-4) << "L=" << L << " Bs=" << Bs << " chunk " << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, CompressedRandom, ::testing::Values(TailBlock{16, 8}, TailBlock{3, 8}, TailBlock{1, 1}),
                         [](const auto& info) {
                           return "L" + std::to_string(info.param.L) + "_Bs" + std::to_string(info.param.Bs);
                         });

TEST(Compressed, EveryLayerDenseIsDense) {
  auto m = Model::load(kDir + "/qwen3");
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids("qwen3");
  ASSERT_TRUE(use(*m, AttentionOptions{}));
  const std::vector<float> dense = run(*m, ids, 32, ids.size(), 0);
  const size_t dense_kv = m->kv_bytes();
  std::vector<int64_t> all(static_cast<size_t>(m->config().layers));
  for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int64_t>(i);
  ASSERT_TRUE(use(*m, compressed(4, 2, false, all)));
  const std::vector<float> c = run(*m, ids, 32, ids.size(), 0);
  EXPECT_EQ(max_abs_diff(dense, c), 0.0);
  EXPECT_EQ(m->kv_bytes(), dense_kv);
  EXPECT_EQ(m->graph_bytes(), 0u);
}

// ---- memory: bounded, <= 1/10 of dense ---------------------------------------------------------

TEST(Compressed, RetainedKvIsBoundedAndATenthOfDense) {
  Config c = tiny_config();
  c.vocab = 64;
  auto m = Model::random(c, 1);
  ASSERT_TRUE(m.has_value());
  ASSERT_TRUE(m->reset(4096).is_ok());
  const size_t dense = m->kv_bytes();
  ASSERT_TRUE(use(*m, compressed(256, 64)));
  const size_t pools = m->kv_bytes();
  // 4 layers x K,V x 2 KV heads x (256 ring + 60 means) x 64 x 4 bytes.
  EXPECT_EQ(pools, size_t{4} * 2 * 2 * (256 + 60) * 64 * 4);
  EXPECT_LE(pools * 10, dense) << "pools " << pools << " dense " << dense;
  // Feeding tokens does not grow it (fixed pools, no O(T) rows).
  std::vector<int32_t> ids(700, 3);
  ASSERT_TRUE(m->forward(ids, false, 300).has_value());
  EXPECT_EQ(m->kv_bytes(), pools);
  // 128k context at the runtime's defaults (L=1024, Bs=64): 1024 + 2032 rows instead of 131072 per
  // KV head (computed, not allocated for dense: that would be 512 MiB).
  ASSERT_TRUE(use(*m, compressed(1024, 64)));
  ASSERT_TRUE(m->reset(131072).is_ok());
  const size_t dense128 = size_t{4} * 2 * 2 * 131072 * 64 * 4;
  EXPECT_EQ(m->kv_bytes(), size_t{4} * 2 * 2 * (1024 + 2032) * 64 * 4);
  EXPECT_LE(m->kv_bytes() * 10, dense128);
  std::printf("[hf] compressed KV: cap 4096 L=256 Bs=64 %zu of %zu bytes (%.3f); cap 131072 L=1024 Bs=64 %zu of %zu (%.4f)\n",
              pools, dense, double(pools) / dense, m->kv_bytes(), dense128, double(m->kv_bytes()) / dense128);
}

// ---- switching mid-sequence, errors -----------------------------------------------------------

TEST(Compressed, DenseThenCompressedMidSequenceMatchesCompressedFromTheStart) {
  auto m = Model::load(kDir + "/llama3");
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids("llama3");
  const AttentionOptions co = compressed(5, 3);
  ASSERT_TRUE(m->set_attention(co).is_ok());
  const std::vector<float> ref = run(*m, ids, 32, ids.size(), 0);
  // 4 tokens dense (each attends [0, pos], as under L=5), then compressed: set_attention compresses
  // the full caches into the pools and the rest must match compressed from the start.
  ASSERT_TRUE(use(*m, AttentionOptions{}));
  ASSERT_TRUE(m->reset(32).is_ok());
  auto a = m->forward(std::span<const int32_t>(ids.data(), 4), true);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(m->set_attention(co).is_ok());
  auto b = m->forward(std::span<const int32_t>(ids.data() + 4, ids.size() - 4), true);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  a->insert(a->end(), b->begin(), b->end());
  EXPECT_LE(max_abs_diff(*a, ref), 1e-4);

  // Back to dense with tokens in the pools: refused, options and cache unchanged.
  const Status st = m->set_attention(AttentionOptions{});
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("reset() first"), std::string::npos) << st.to_string();
  EXPECT_EQ(m->attention().kind, AttnKind::kCompressed);
  EXPECT_EQ(m->position(), static_cast<int64_t>(ids.size()));
  // Another L with tokens in the pools: refused too; after reset() both work.
  EXPECT_FALSE(m->set_attention(compressed(6, 3)).is_ok());
  ASSERT_TRUE(m->reset(32).is_ok());
  EXPECT_TRUE(m->set_attention(compressed(6, 3)).is_ok());
  EXPECT_TRUE(m->set_attention(AttentionOptions{}).is_ok());
}

TEST(Compressed, OptionErrorsNameTheValue) {
  Config c = tiny_config();
  c.vocab = 64;
  auto m = Model::random(c, 1);
  ASSERT_TRUE(m.has_value());
  auto msg = [&](const AttentionOptions& o) {
    const Status st = m->set_attention(o);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    return st.message();
  };
  EXPECT_NE(msg(compressed(0, 64)).find("L=0"), std::string::npos);
  EXPECT_NE(msg(compressed(-3, 64)).find("L=-3"), std::string::npos);
  EXPECT_NE(msg(compressed(16, 0)).find("Bs=0"), std::string::npos);
  AttentionOptions o = compressed(16, 8);
  o.compressed.partner_count = -1;
  EXPECT_NE(msg(o).find("partner_count=-1"), std::string::npos);
  o = compressed(16, 8);
  o.compressed.sink_count = -2;
  EXPECT_NE(msg(o).find("sink_count=-2"), std::string::npos);
  o = compressed(16, 8);
  o.compressed.rule = static_cast<topo::PartnerRule>(99);
  EXPECT_NE(msg(o).find("99"), std::string::npos);
  o = compressed(16, 8, false, {4});
  EXPECT_NE(msg(o).find("dense layer 4"), std::string::npos);
  EXPECT_EQ(m->attention().kind, AttnKind::kDense);  // unchanged by the failures
  // Bad options of another kind are not checked (they are not used).
  AttentionOptions bf;
  bf.kind = AttnKind::kButterfly;
  bf.compressed.tail = 0;
  EXPECT_TRUE(m->set_attention(bf).is_ok());

  auto k = parse_attn_kind("compressed");
  ASSERT_TRUE(k.has_value());
  EXPECT_EQ(*k, AttnKind::kCompressed);
  EXPECT_STREQ(attn_kind_name(*k), "compressed");
  auto bad = parse_attn_kind("compresed");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("compressed"), std::string::npos);

  // A prompt beyond the capacity is an error, as for the full cache.
  ASSERT_TRUE(use(*m, compressed(16, 8)));
  ASSERT_TRUE(m->reset(10).is_ok());
  std::vector<int32_t> ids(11, 1);
  EXPECT_FALSE(m->forward(ids).has_value());
}

TEST(Compressed, QualityAgainstDense) {
  auto m = Model::load(kDir + "/qwen2");
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids("qwen2");
  QualityOptions qo;
  qo.greedy_tokens = 4;
  qo.chunk = 7;
  qo.positions = 0;
  // A tail covering text + continuation: compressed attends every raw key, KL ~ 0 (different kernels).
  qo.butterfly = compressed(64, 8);
  auto r = compare_quality(*m, ids, qo);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_LE(r->kl_max, 1e-8);
  EXPECT_EQ(r->top1_agreement, 1.0);
  EXPECT_EQ(m->attention().kind, AttnKind::kDense);  // restored
  qo.butterfly = compressed(4, 2);
  r = compare_quality(*m, ids, qo);
  ASSERT_TRUE(r.has_value()) << r.status().to_string();
  EXPECT_GT(r->kl_mean, 1e-4);
}

}  // namespace
}  // namespace bna::hf
