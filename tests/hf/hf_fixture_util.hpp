// Shared helpers of the hf tests: the fixture directory, Butterfly attention options and the
// prompt token ids stored with each family's reference logits.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

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

}  // namespace bna::hf::testing
