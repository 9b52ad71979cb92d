// Butterfly graph consistency between prefill and decode (docs/hf.md): token i attends row i of the
// model's decode graph as it was when i was appended, so one-shot prefill, chunked prefill and
// prefill + token-by-token decode see the same keys and give the same logits.
//
// Tolerance 1e-4 on the logits: the same bound and cause as ChunkedPrefillAndDecodeMatchOneShot in
// hf_test.cpp (the one-shot run, the chunks and the decode steps take different attention paths -
// streams/gather vs decode split-K - and different GEMM shapes, so f32 sums round differently).
// The graph is sparse enough (W=3, S=5, T=24) that a row mismatch moves logits by far more.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "bna/hf.hpp"
#include "bna/safetensors.hpp"
#include "hf/hf_fixture_util.hpp"

namespace bna::hf {
namespace {

using testing::butterfly;
using testing::fixture_ids;
using testing::kDir;

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  BNA_ASSERT(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, static_cast<double>(std::abs(a[i] - b[i])));
  return m;
}

class Consistency : public ::testing::TestWithParam<std::string> {};

TEST_P(Consistency, PrefillThenDecodeMatchesOneShotButterfly) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const std::vector<int32_t> ids = fixture_ids(fam);
  const size_t T = ids.size(), V = m->config().vocab, N = 13;
  const AttentionOptions bf = butterfly(3, 5, 2, 11);
  ASSERT_TRUE(m->set_attention(bf).is_ok());
  ASSERT_TRUE(m->reset(40).is_ok());
  auto one_shot = m->forward(ids, true);
  ASSERT_TRUE(one_shot.has_value()) << one_shot.status().to_string();
  EXPECT_GT(m->graph_bytes(), 0u);

  for (int64_t chunk : {0, 5, 1}) {
    ASSERT_TRUE(m->reset(40).is_ok());
    auto pre = m->forward(std::span<const int32_t>(ids.data(), N), true, chunk);
    ASSERT_TRUE(pre.has_value()) << pre.status().to_string();
    std::vector<float> all = *pre;
    for (size_t t = N; t < T; ++t) {
      auto d = m->forward(std::span<const int32_t>(&ids[t], 1));
      ASSERT_TRUE(d.has_value()) << d.status().to_string();
      all.insert(all.end(), d->begin(), d->end());
    }
    ASSERT_EQ(all.size(), T * V);
    const double e = max_abs_diff(all, *one_shot);
    std::printf("[hf] %-6s butterfly prefill %zu (chunk %lld) + decode %zu vs one-shot: max|diff|=%.3g\n", fam.c_str(), N,
                static_cast<long long>(chunk), T - N, e);
    EXPECT_LE(e, 1e-4) << fam << " prefill " << N << " (chunk " << chunk << ") + decode "
                                                  << T - N << " vs one-shot " << T;
  }

  // The graph is really sparse here: dense attention gives different late logits.
  ASSERT_TRUE(m->set_attention(AttentionOptions{}).is_ok());
  ASSERT_TRUE(m->reset(40).is_ok());
  auto dense = m->forward(ids, true);
  ASSERT_TRUE(dense.has_value());
  EXPECT_EQ(m->graph_bytes(), 0u);
  EXPECT_GT(max_abs_diff(*dense, *one_shot), 1e-2) << fam;
}

TEST_P(Consistency, SetAttentionMidSequenceKeepsGraphInStep) {
  const std::string fam = GetParam();
  auto m = Model::load(kDir + "/" + fam);
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = fixture_ids(fam);
  const AttentionOptions bf = butterfly(2, 4, 1, 3);
  // Reference: Butterfly from the start.
  ASSERT_TRUE(m->set_attention(bf).is_ok());
  ASSERT_TRUE(m->reset(32).is_ok());
  auto ref = m->forward(ids, true);
  ASSERT_TRUE(ref.has_value());
  // Switching to Butterfly after 2 tokens (all rows dense there since W=2 covers them) rebuilds the
  // graph over the cached tokens with the same draws.
  ASSERT_TRUE(m->set_attention(AttentionOptions{}).is_ok());
  ASSERT_TRUE(m->reset(32).is_ok());
  auto a = m->forward(std::span<const int32_t>(ids.data(), 2), true);
  ASSERT_TRUE(a.has_value());
  ASSERT_TRUE(m->set_attention(bf).is_ok());
  auto b = m->forward(std::span<const int32_t>(ids.data() + 2, ids.size() - 2), true);
  ASSERT_TRUE(b.has_value()) << b.status().to_string();
  a->insert(a->end(), b->begin(), b->end());
  EXPECT_LE(max_abs_diff(*a, *ref), 1e-4) << fam;
}

INSTANTIATE_TEST_SUITE_P(Hf, Consistency, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace bna::hf
