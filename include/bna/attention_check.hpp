// Spot check of a forward result against the float64 oracle of docs/numerics.md, on a sample of
// query rows (a full float64 reference costs O(T^2 dh) and is for tests only). Used by `bna demo`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/status.hpp"

namespace bna::attn {

// One sampled query row: query head hq and query index i (absolute position q_offset + i).
struct RowRef {
  int64_t hq = 0, i = 0;
};

// FA3 rule over the sampled rows, on out and on lse separately:
//   max|got - ref64| <= 2 max|ref_lp - ref64| + floor, and the same for the means.
struct RowCheckReport {
  int64_t rows = 0, keys = 0;  // rows checked, allowed keys summed over them
  double out_max_err = 0, out_max_bound = 0, out_mean_err = 0, out_mean_bound = 0;
  double lse_max_err = 0, lse_max_bound = 0, lse_mean_err = 0, lse_mean_bound = 0;
  bool pass = false;
  std::string why;  // the first failure, empty when pass
};

// Host arrays, B = 1, contiguous: q [Hq,Tq,dh], k/v [Hkv,Tk,dh], out [Hq,Tq,dh], lse [Hq,Tq], all
// holding the values the kernel saw or produced, already converted to float (bf16/f16 decoded).
// s.dtype selects the output rounding of ref_lp and the floor. The graph is a GraphSource with
// `abi` (rows as sets, causally filtered, typed for edge bias) or `dense`; other sources are an
// error. Errors: a row out of range, a graph whose H or T does not match s.
Expected<RowCheckReport> check_rows(const GraphSource& g, const Shape& s, const Options& opt, const float* q,
                                    const float* k, const float* v, const float* out, const float* lse,
                                    const std::vector<RowRef>& rows);

// Allowed (query, key) pairs of an ABI graph under causality (entries j <= i), over all heads: the
// useful work of one forward is 4 * dh * pairs FLOPs per query head sharing the row.
int64_t allowed_pairs(const graph::GraphAbi& g);

}  // namespace bna::attn
