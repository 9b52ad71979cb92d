// Seeded RNG with the same stream on every platform.
// Algorithm: xoshiro256** (Blackman & Vigna, 2018); the 256-bit state is seeded from a 64-bit seed
// by four SplitMix64 outputs. Derived draws are defined here exactly so any port can reproduce them:
//   next_u64()            raw xoshiro256** output;
//   uniform_below(n)      Lemire's multiply-shift with rejection (unbiased), n >= 1;
//   uniform01()           (next_u64() >> 11) * 2^-53, in [0, 1);
//   normal()              Box-Muller on two uniform01 draws (u1 taken as 1 - u so log never sees 0);
//   shuffle(v)            Fisher-Yates from the back: for i = n-1 .. 1, swap(v[i], v[uniform_below(i+1)]).
// Streams do not match the original's torch/numpy generators (see docs/design.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace bna {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { reseed(seed); }
  void reseed(uint64_t seed);
  uint64_t next_u64();
  uint64_t uniform_below(uint64_t n);
  double uniform01() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  double normal();
  template <class T> void shuffle(std::vector<T>& v) {
    for (std::size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform_below(i)]);
  }

 private:
  uint64_t s_[4];
};

// SplitMix64 step: also used to derive independent sub-seeds (seed, stream) -> seed.
uint64_t splitmix64(uint64_t& state);
uint64_t mix_seed(uint64_t seed, uint64_t stream);

}  // namespace bna
