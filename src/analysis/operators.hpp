// Internal: the fused three-term Lanczos step on the implicit banded graph (adjacency, normalised
// adjacency or Laplacian), which is also the plain banded matvec (cu = 0).
// Decisions: one pass over the rows computes the band sum by a sliding window that restarts from a
// direct sum every 2 * band + 1 rows (no scratch arrays; at most ~3 (2 band + 1) roundings per entry,
// not growing with T), adds the cycle extras with software prefetch a fixed number of rows ahead (the
// gathers are random over an [T] vector that does not stay in cache at T = 1M), and reduces the dot
// products the Lanczos recurrence needs in fixed chunks of rows (results do not depend on threads).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "bna/analysis.hpp"

namespace bna::analysis::detail {

// Per-solve data of the kernel: the extras as fixed slots per row (-1 padded; no offsets to stream, when
// a row has at most kMaxSlots extras), the degrees (Laplacian) and deg^-1/2 (normalised).
constexpr int64_t kMaxSlots = 8;
struct BandedPlan {
  int64_t num_slots = 0;
  std::vector<int32_t> slots;   // [n, num_slots] or empty (then the CSR offsets are used)
  std::vector<double> degree;   // [n] for the Laplacian and the normalised adjacency
  std::vector<double> dscale;   // [n] deg^-1/2 (0 for isolated nodes), normalised adjacency only
};
BandedPlan make_banded_plan(const BandedGraph& g, Operator op);

// u <- sx * (Op x) - cu * u, in place ([n] each, u not read when cu == 0, x and u not aliased), where
// Op is A, D^-1/2 A D^-1/2 or D - A. plan may be null (built on the fly for N and L). Returns
// {x . u, q . u} with the second 0 when q is null.
std::pair<double, double> banded_step(const BandedGraph& g, Operator op, const BandedPlan* plan, const double* x,
                                      double sx, double* u, double cu, const double* q);

// The block step on nb interleaved columns (1 <= nb <= 4): x and u are [n, nb] row-major (column c of
// row i at i * nb + c), S and C nb x nb row-major: u <- (Op x) S - u C in place (u not read when C is
// null); G (nb x nb, row-major) <- x^T u. The b columns of a row share the cache line each band entry
// and each random cycle gather loads, so one block step costs far less than nb single steps.
void banded_block_step(const BandedGraph& g, Operator op, const BandedPlan* plan, int nb, const double* x,
                       const double* S, double* u, const double* C, double* G);

}  // namespace bna::analysis::detail
