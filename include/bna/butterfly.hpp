// Staged Butterfly block topology: nodes are blocks of Bs tokens (N = ceil(T / Bs)) and layer l uses
// stage l mod stage_count of a communication schedule. Block b's row is
//   self, local blocks b-1 .. b-local (descending), partners (in partner-bit order), sinks (ascending),
// deduplicated (first position kept, roles merged). Every entry is causal (<= b); unlike upstream,
// sink blocks are causally filtered too (upstream listed sink 1 in block 0's row; see docs/butterfly.md).
// The partner formulas, the stage schedule and the 32-bit hash of the random rule reproduce upstream
// exactly, so rows match upstream's for every rule, apart from that sink fix.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bna/block_layout.hpp"
#include "bna/graph.hpp"
#include "bna/status.hpp"

namespace bna::topo {

enum class PartnerRule { kXor, kCausalShift, kBitReversal, kBenes, kFixedStride, kRandom };
inline constexpr int kNumPartnerRules = 6;
// "xor", "causal_shift", "bit_reversal", "benes", "fixed_stride", "random"; "unknown" for a bad value.
const char* partner_rule_name(PartnerRule r);
// Error names the string and lists the accepted names.
Expected<PartnerRule> parse_partner_rule(std::string_view s);

// ceil(log2 n); 1 when n <= 1.
int64_t butterfly_width(int64_t n);
// The low `width` bits of `value` reversed (higher bits dropped). width in [0, 62].
int64_t bit_reverse(int64_t value, int64_t width);

struct StageMeta {
  int64_t stage = 0;        // layer mod stage_count (non-negative also for negative layers)
  int64_t stage_count = 1;  // max(1, 2w-2) for benes, else w (w = butterfly_width(N))
};
StageMeta butterfly_stage_meta(int64_t num_blocks, int64_t layer, PartnerRule rule);
int64_t butterfly_stage_count(int64_t num_blocks, PartnerRule rule);

// The bit of each of the partner_count partners of `stage`; empty if width or partner_count <= 0.
// Benes: phase p = (stage + o) mod stage_count, bit p if p < w else 2w-2-p (bits 0..w-1..1 over a
// period). Other rules: (stage + o) mod w. Bits repeat when partner_count exceeds the period.
std::vector<int64_t> butterfly_partner_bits(int64_t stage, int64_t stage_count, int64_t width,
                                            int64_t partner_count, PartnerRule rule);

// The partner of block b for bit k, or -1 when there is none: k outside [0, max(1, w)), or the
// candidate fails the causal filter 0 <= partner < N and partner <= b. Candidates:
//   causal_shift b - 2^k; xor, benes b ^ 2^k; bit_reversal rev(rev(b) ^ 2^k) = b ^ 2^(w-1-k);
//   fixed_stride b - 1; random h mod b (none for b <= 0), h = (b*2654435761 + k*374761393) mod 2^32.
int64_t butterfly_partner_block(int64_t block, int64_t bit, int64_t num_blocks, PartnerRule rule);

struct ButterflyOptions {
  int64_t num_blocks = 0;  // N >= 1 (butterfly_block_layout derives it: 0 or ceil(T / Bs))
  int64_t layer = 0;       // >= 0; stage = layer mod stage_count
  PartnerRule rule = PartnerRule::kXor;
  int64_t partner_count = 1;  // >= 0
  int64_t local_blocks = 4;   // >= 0: blocks b-1 .. b-local_blocks
  int64_t sink_count = 1;     // >= 0: blocks 0 .. min(sink_count, N)-1 (causally filtered)
};
// Errors name the field and value: N < 1 or N > INT32_MAX, layer < 0, negative counts, a rule value
// outside the enum.
Status validate_butterfly_options(const ButterflyOptions& opt);

// Role bits of a row entry; an entry reached by several rules carries all of them.
enum ButterflyRole : uint8_t { kRoleSelf = 1, kRoleLocal = 2, kRolePartner = 4, kRoleSink = 8 };
struct ButterflyEntry {
  int32_t block = 0;
  uint8_t roles = 0;  // ButterflyRole bits
};
// "self|local|partner|sink" subset in that order, e.g. "local|partner".
std::string butterfly_roles_string(uint8_t roles);

// Everything the rows of one layer need, computed once.
struct ButterflyPlan {
  ButterflyOptions opt;
  int64_t width = 1;
  StageMeta stage;
  std::vector<int64_t> partner_bits;
  int64_t sink_blocks = 0;  // min(sink_count, N)
};
Expected<ButterflyPlan> butterfly_plan(const ButterflyOptions& opt);

// Row of block b in role order (self, local descending, partners in bit order, sinks ascending),
// deduplicated, every entry in [0, b]. `out` is cleared first. b must be in [0, N) (BNA_ASSERT).
void butterfly_row(int64_t block, const ButterflyPlan& plan, std::vector<ButterflyEntry>& out);
// Checked convenience form: errors for invalid options or block outside [0, N).
Expected<std::vector<ButterflyEntry>> butterfly_row(int64_t block, const ButterflyOptions& opt);

// BSR layout of one layer: T tokens in N = ceil(T / Bs) blocks, Hkv identical heads (heads stored one
// after another), each row the butterfly row sorted ascending. opt.num_blocks must be 0 or N.
// Errors: T < 1, Bs < 1, Hkv < 1, invalid options, N mismatch, more than INT32_MAX entries.
Expected<BlockSparseLayout> butterfly_block_layout(int64_t T, int64_t block_size, int64_t Hkv,
                                                   const ButterflyOptions& opt);

// Token-level graph ABI of the same layer (for analysis and pictures), Hkv identical heads:
// token i of block b lists, for each block of b's row in role order, that block's tokens j <= i in
// ascending order. Edge types follow upstream's MLX mapping: any partner role -> REWIRE, else any sink
// role -> LANDMARK, else (self, local) -> WINDOW. meta.strategy = "butterfly", num_cycles = 0 (no
// Hamiltonian backbone: validate with enforce_hamiltonian = false). D = longest row.
// Errors as butterfly_block_layout, plus Hkv*T*D over 2^31 entries.
Expected<graph::GraphAbi> butterfly_token_graph(int64_t T, int64_t block_size, int64_t Hkv,
                                                const ButterflyOptions& opt);

}  // namespace bna::topo
