// Shared helpers of the hf tests: the fixture directory, Butterfly attention options, the prompt
// token ids stored with each family's reference logits, and all logits of a prefill-then-decode run.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "bna/hf.hpp"
#include "bna/safetensors.hpp"

namespace bna::hf::testing {

inline const std::string kDir = std::string(BNA_FIXTURES_DIR) + "/hf";

inline AttentionOptions butterfly(int64_t window, int64_t stride, int64_t cycles = 1, uint64_t seed = 0) {
  AttentionOptions o;
  o.kind = AttnKind::kButterfly;
  o.window = window;
  o.landmark_stride = stride;
  o.num_cycles = cycles;
  o.seed = seed;
  return o;
}

inline std::vector<int32_t> fixture_ids(const std::string& fam) {
  auto f = st::File::open(kDir + "/" + fam + "/reference.safetensors");
  BNA_ASSERT(f.has_value());
  const st::TensorInfo* t = f->find("input_ids");
  BNA_ASSERT(t != nullptr);
  std::vector<int64_t> i64(t->numel());
  std::memcpy(i64.data(), t->data, t->nbytes);
  return {i64.begin(), i64.end()};
}

// All logits [T, V] of ids fed as a prefill of `n_prefill` tokens in chunks of `chunk` (0 = one call),
// then one token at a time. The cache is reset to `cap` first (the model's attention options stay).
inline std::vector<float> prefill_then_decode(Model& m, const std::vector<int32_t>& ids, int64_t cap, size_t n_prefill,
                                              int64_t chunk) {
  EXPECT_TRUE(m.reset(cap).is_ok());
  auto pre = m.forward(std::span<const int32_t>(ids.data(), n_prefill), true, chunk);
  EXPECT_TRUE(pre.has_value()) << pre.status().to_string();
  if (!pre) return {};
  std::vector<float> all = *pre;
  for (size_t t = n_prefill; t < ids.size(); ++t) {
    auto d = m.forward(std::span<const int32_t>(&ids[t], 1));
    EXPECT_TRUE(d.has_value()) << d.status().to_string();
    if (!d) return {};
    all.insert(all.end(), d->begin(), d->end());
  }
  return all;
}

}  // namespace bna::hf::testing
