// Scratch sizing shared by the CPU forward kernels: per thread, room for the larger of one TileAttn
// (tile.hpp) and one QTile (micro_tile.hpp), plus a key list.
#include <algorithm>

#include "attention/cpu/kernels.hpp"
#include "attention/cpu/micro_tile.hpp"
#include "attention/cpu/tile.hpp"

namespace bna::cpu {

size_t fwd_scratch_floats_per_thread(int64_t dh, int64_t max_keys_per_row) {
  // Key lists hold int64 positions plus a type byte, a float bias and a float score per key:
  // 3 int64 slots per key.
  const int64_t extra = 3 * max_keys_per_row + 16;
  return std::max(tile_scratch_floats(dh, extra), qtile_scratch_floats(dh, extra));
}

}  // namespace bna::cpu
