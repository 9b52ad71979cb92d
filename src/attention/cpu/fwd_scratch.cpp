// Scratch sizing shared by the CPU forward kernels (one TileAttn plus a key list per thread).
#include "attention/cpu/kernels.hpp"
#include "attention/cpu/tile.hpp"

namespace bna::cpu {

size_t fwd_scratch_floats_per_thread(int64_t dh, int64_t max_keys_per_row) {
  // Key lists hold int64 positions plus a type byte or a float bias per key: 2 int64 slots per key.
  const int64_t extra = 2 * max_keys_per_row + 8;
  return tile_scratch_floats(dh, extra);
}

}  // namespace bna::cpu
