// Butterfly block schedule: partner rules, stage meta and role rows (see include/bna/butterfly.hpp).
// Rows are built without a hash set: locals occupy positions 1..min(local, b) in descending order, so a
// partner or sink inside the local range is found at position b - c; only the (few) partners need a
// scan. Sinks are causally filtered (s <= b), the one deliberate difference from upstream.
#include "bna/butterfly.hpp"

#include <climits>
#include <string>

namespace bna::topo {

namespace {

constexpr const char* kRuleNames[kNumPartnerRules] = {"xor", "causal_shift", "bit_reversal",
                                                      "benes", "fixed_stride", "random"};

bool rule_valid(PartnerRule r) {
  const int v = static_cast<int>(r);
  return v >= 0 && v < kNumPartnerRules;
}

}  // namespace

const char* partner_rule_name(PartnerRule r) {
  return rule_valid(r) ? kRuleNames[static_cast<int>(r)] : "unknown";
}

Expected<PartnerRule> parse_partner_rule(std::string_view s) {
  for (int i = 0; i < kNumPartnerRules; ++i)
    if (s == kRuleNames[i]) return static_cast<PartnerRule>(i);
  std::string names;
  for (int i = 0; i < kNumPartnerRules; ++i) names += std::string(i ? ", " : "") + kRuleNames[i];
  return invalid_argument("butterfly: rule='" + std::string(s) + "', expected one of " + names);
}

int64_t butterfly_width(int64_t n) {
  if (n <= 1) return 1;
  int64_t w = 0;
  while ((int64_t{1} << w) < n) ++w;
  return w;
}

int64_t bit_reverse(int64_t value, int64_t width) {
  BNA_ASSERT(width >= 0 && width <= 62);
  int64_t r = 0;
  for (int64_t i = 0; i < width; ++i)
    if (value & (int64_t{1} << i)) r |= int64_t{1} << (width - 1 - i);
  return r;
}

int64_t butterfly_stage_count(int64_t num_blocks, PartnerRule rule) {
  const int64_t w = butterfly_width(num_blocks);
  if (rule == PartnerRule::kBenes) return 2 * w - 2 > 1 ? 2 * w - 2 : 1;
  return w;
}

StageMeta butterfly_stage_meta(int64_t num_blocks, int64_t layer, PartnerRule rule) {
  StageMeta m;
  m.stage_count = butterfly_stage_count(num_blocks, rule);
  m.stage = ((layer % m.stage_count) + m.stage_count) % m.stage_count;
  return m;
}

std::vector<int64_t> butterfly_partner_bits(int64_t stage, int64_t stage_count, int64_t width,
                                            int64_t partner_count, PartnerRule rule) {
  std::vector<int64_t> bits;
  if (width <= 0 || partner_count <= 0) return bits;
  bits.reserve(static_cast<size_t>(partner_count));
  for (int64_t o = 0; o < partner_count; ++o) {
    if (rule == PartnerRule::kBenes) {
      const int64_t count = stage_count > 0 ? stage_count : 1;
      const int64_t p = (stage + o) % count;
      bits.push_back(p < width ? p : 2 * width - 2 - p);
    } else {
      bits.push_back((stage + o) % width);
    }
  }
  return bits;
}

int64_t butterfly_partner_block(int64_t b, int64_t k, int64_t N, PartnerRule rule) {
  const int64_t w = butterfly_width(N);
  if (k < 0 || k >= (w > 1 ? w : 1)) return -1;
  int64_t p = -1;
  switch (rule) {
    case PartnerRule::kCausalShift: p = b - (int64_t{1} << k); break;
    case PartnerRule::kXor:
    case PartnerRule::kBenes: p = b ^ (int64_t{1} << k); break;
    case PartnerRule::kBitReversal: p = bit_reverse(bit_reverse(b, w) ^ (int64_t{1} << k), w); break;
    case PartnerRule::kFixedStride: p = b - 1; break;
    case PartnerRule::kRandom: {
      if (b <= 0) return -1;
      // Upstream's hash in Python integers taken mod 2^32: the low 32 bits of the 64-bit wrap agree.
      const uint64_t h = (static_cast<uint64_t>(b) * 2654435761ull + static_cast<uint64_t>(k) * 374761393ull) &
                         0xffffffffull;
      p = static_cast<int64_t>(h % static_cast<uint64_t>(b));
      break;
    }
  }
  if (p < 0 || p >= N || p > b) return -1;
  return p;
}

Status validate_butterfly_options(const ButterflyOptions& o) {
  if (o.num_blocks < 1 || o.num_blocks > INT32_MAX)
    return invalid_argument("butterfly: num_blocks=" + std::to_string(o.num_blocks) +
                            ", expected 1 <= num_blocks <= 2147483647");
  if (o.layer < 0)
    return invalid_argument("butterfly: layer=" + std::to_string(o.layer) + ", expected layer >= 0");
  if (!rule_valid(o.rule))
    return invalid_argument("butterfly: rule=" + std::to_string(static_cast<int>(o.rule)) +
                            ", expected a PartnerRule value in [0, " + std::to_string(kNumPartnerRules) + ")");
  if (o.partner_count < 0)
    return invalid_argument("butterfly: partner_count=" + std::to_string(o.partner_count) +
                            ", expected partner_count >= 0");
  if (o.local_blocks < 0)
    return invalid_argument("butterfly: local_blocks=" + std::to_string(o.local_blocks) +
                            ", expected local_blocks >= 0");
  if (o.sink_count < 0)
    return invalid_argument("butterfly: sink_count=" + std::to_string(o.sink_count) +
                            ", expected sink_count >= 0");
  return Status::ok();
}

std::string butterfly_roles_string(uint8_t roles) {
  static constexpr const char* kNames[4] = {"self", "local", "partner", "sink"};
  std::string s;
  for (int i = 0; i < 4; ++i)
    if (roles & (1u << i)) s += std::string(s.empty() ? "" : "|") + kNames[i];
  return s;
}

Expected<ButterflyPlan> butterfly_plan(const ButterflyOptions& opt) {
  BNA_RETURN_IF_ERROR(validate_butterfly_options(opt));
  ButterflyPlan p;
  p.opt = opt;
  p.width = butterfly_width(opt.num_blocks);
  p.stage = butterfly_stage_meta(opt.num_blocks, opt.layer, opt.rule);
  p.partner_bits = butterfly_partner_bits(p.stage.stage, p.stage.stage_count, p.width, opt.partner_count, opt.rule);
  p.sink_blocks = opt.sink_count < opt.num_blocks ? opt.sink_count : opt.num_blocks;
  return p;
}

void butterfly_row(int64_t b, const ButterflyPlan& plan, std::vector<ButterflyEntry>& out) {
  const int64_t N = plan.opt.num_blocks;
  BNA_ASSERT(b >= 0 && b < N);
  out.clear();
  out.push_back({static_cast<int32_t>(b), kRoleSelf});
  const int64_t n_local = plan.opt.local_blocks < b ? plan.opt.local_blocks : b;
  for (int64_t d = 1; d <= n_local; ++d) out.push_back({static_cast<int32_t>(b - d), kRoleLocal});
  const size_t partners_begin = out.size();
  // Position of block c if it is already in the row (self, a local, or a partner), else -1.
  auto find = [&](int64_t c, size_t scan_end) -> int64_t {
    if (c <= b && c >= b - n_local) return b - c;
    for (size_t i = partners_begin; i < scan_end; ++i)
      if (out[i].block == c) return static_cast<int64_t>(i);
    return -1;
  };
  for (int64_t k : plan.partner_bits) {
    const int64_t p = butterfly_partner_block(b, k, N, plan.opt.rule);
    if (p < 0) continue;
    const int64_t at = find(p, out.size());
    if (at >= 0) out[at].roles |= kRolePartner;
    else out.push_back({static_cast<int32_t>(p), kRolePartner});
  }
  const size_t partners_end = out.size();
  for (int64_t s = 0; s < plan.sink_blocks && s <= b; ++s) {  // causal sink filter (upstream fix)
    const int64_t at = find(s, partners_end);
    if (at >= 0) out[at].roles |= kRoleSink;
    else out.push_back({static_cast<int32_t>(s), kRoleSink});
  }
}

Expected<std::vector<ButterflyEntry>> butterfly_row(int64_t block, const ButterflyOptions& opt) {
  BNA_ASSIGN_OR_RETURN(ButterflyPlan plan, butterfly_plan(opt));
  if (block < 0 || block >= opt.num_blocks)
    return out_of_range("butterfly: block=" + std::to_string(block) + ", expected 0 <= block < num_blocks=" +
                        std::to_string(opt.num_blocks));
  std::vector<ButterflyEntry> row;
  butterfly_row(block, plan, row);
  return row;
}

}  // namespace bna::topo
