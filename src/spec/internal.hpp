// Helpers shared by the src/spec translation units (not part of the public API).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "bna/spec.hpp"

namespace bna::spec::detail {

// SHA-256 of bytes as 64 lowercase hex digits (OpenSSL EVP).
std::string sha256_hex(std::string_view bytes);

// A path from the spec, resolved against the spec file's directory unless absolute.
std::string resolve_path(const GraphSpec& s, const std::string& p);

// "<source>:<line>:<col>: what" when the field has a location, else "spec: what".
Status field_error(const GraphSpec& s, const char* field, const std::string& what);

// perm is a permutation of 0..T-1 and inv its inverse; else kCorrupt naming the first bad position
// ("position 5: node 9 repeated, ..."). seen is scratch (resized to T).
Status check_perm_pair(const int32_t* perm, const int32_t* inv, int64_t T, std::vector<uint8_t>& seen);

// Sums of the rows the rules give (src/spec/rules.cpp): D = max(1, deg_max); entry counts by type.
struct RuleRowStats {
  int64_t D = 1, deg_sum = 0, deg_min = INT64_MAX, deg_max = 0;
  int64_t shortcut = 0, cycle = 0, window = 0, landmark = 0;  // shortcut: CYCLE entries with |j-i| > 1
};
RuleRowStats rule_row_stats(const topo::PermsOnly& perms, const graph::RowRules& rules);
// rule_metrics given the row stats (lower() needs D for the degree check before the BFS).
graph::GraphMetrics rule_metrics_from(const topo::PermsOnly& perms, const graph::RowRules& rules,
                                      const RuleRowStats& stats, int bfs_hops, int64_t max_sources);

}  // namespace bna::spec::detail
