// Graph diagnostics: spectra (adjacency, normalised adjacency, Laplacian), random-walk mixing,
// resilience, epsilon-regularity, vertex expansion, effective diameter, causal (layered) reachability,
// Fiedler cuts, edge coverage and a composite quality report. Definitions: docs/analysis.md.
// Decisions a reader must know:
//  - Every undirected diagnostic runs on a `Csr`: the graph symmetrised (i->j implies j<->i), self-loops
//    removed, multi-edges collapsed to one unit-weight edge (a neighbour listed by two cycles, two heads
//    or both rows counts once). Heads are unioned unless one head is selected.
//  - Eigenvalues come from a dense solver (Eigen, T <= dense_max_T), from our thick-restart Lanczos
//    with full reorthogonalisation (T <= full_reorth_max_T or eigenvectors wanted), or from the
//    three-term Lanczos recurrence with Cullum-Willoughby ghost filtering (larger T, values only). All
//    report |lambda2| over BOTH ends of the spectrum, so bipartite graphs get gap 0 on every path.
//    Permutation graphs can stay implicit (BandedGraph): an O(T) matvec instead of O(T * window).
//  - Lanczos stops on eigenvalue ERROR BOUNDS, not residuals: min(r, r^2 / delta) per Ritz value
//    (residual and Kato-Temple bounds, delta from the neighbouring Ritz values). Every summary reports
//    the bound of its headline number (gap_error_bound, fiedler_error_bound).
//  - Causal analysis is directed: key j informs query i at a layer only when j < i is listed in row i
//    of that layer's graph; reach sets grow layer by layer through bitsets (cost in causal_reachability).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "bna/graph.hpp"
#include "bna/status.hpp"
#include "bna/topology.hpp"

namespace bna::analysis {

// ---- graph representation ---------------------------------------------------------------------
// Undirected simple graph: neighbours of i are cols[offsets[i] .. offsets[i+1]), ascending, no i.
struct Csr {
  int64_t n = 0;
  std::vector<int64_t> offsets{0};  // [n + 1]
  std::vector<int32_t> cols;        // [2 * num_edges]
  int64_t degree(int64_t i) const { return offsets[i + 1] - offsets[i]; }
  int64_t num_edges() const { return static_cast<int64_t>(cols.size()) / 2; }
  const int32_t* begin(int64_t i) const { return cols.data() + offsets[i]; }
  const int32_t* end(int64_t i) const { return cols.data() + offsets[i + 1]; }
};

// From an undirected edge list on n nodes; self-loops dropped, duplicates collapsed.
// Errors: n < 0, an endpoint outside [0, n).
Expected<Csr> csr_from_edges(int64_t n, const std::vector<std::pair<int32_t, int32_t>>& edges);
// Permutation graph: the edges perm[p] -- perm[(p+1) mod T] of every cycle plus, when window > 0,
// every pair (i, j) with i - window <= j < i (original index space). Errors: bad perm, window < 0.
Expected<Csr> csr_from_perms(const std::vector<topo::Perm>& cycles, int64_t T, int64_t window);
// ABI graph: every listed i -> j (j != i, j != -1) becomes the undirected edge {i, j}; head < 0 unions
// all heads, else only that head. Errors: head >= H, an index outside [-1, T).
Expected<Csr> csr_from_abi(const graph::GraphAbi& g, int64_t head = -1);

// Banded permutation graph, stored implicitly: i ~ j for 0 < |i - j| <= band (the causal window seen
// from both ends), plus the `extra` neighbours (cycle edges that the band does not already contain).
// The same simple graph as csr_from_perms(cycles, T, band), but a matvec costs O(T + |extra|) instead of
// O(T * band): the band sum is a sliding window restarted from a direct sum every 2 * band + 1 rows.
struct BandedGraph {
  int64_t n = 0;
  int64_t band = 0;
  std::vector<int64_t> offsets{0};  // [n + 1] into extra
  std::vector<int32_t> extra;       // per row ascending, |j - i| > band, symmetric, no duplicates
  int64_t band_degree(int64_t i) const {
    const int64_t lo = i - band < 0 ? 0 : i - band, hi = i + band > n - 1 ? n - 1 : i + band;
    return hi - lo;
  }
  int64_t degree(int64_t i) const { return band_degree(i) + offsets[i + 1] - offsets[i]; }
  int64_t num_edges() const;
};
// Errors: as csr_from_perms (bad perm, T < 1, window < 0).
Expected<BandedGraph> banded_from_perms(const std::vector<topo::Perm>& cycles, int64_t T, int64_t window);
// The explicit CSR of the same graph (for the dense path, walks and tests).
Csr csr_from_banded(const BandedGraph& g);
// y = A x for the unnormalised adjacency; x, y [n] float64, not aliased. Large graphs use the thread
// pool; results do not depend on the thread count (each y[i] is summed in a fixed order).
void adjacency_matvec(const Csr& g, const double* x, double* y);
void adjacency_matvec(const BandedGraph& g, const double* x, double* y);

// ---- spectra ----------------------------------------------------------------------------------
enum class EigenMethod { kAuto, kDense, kLanczos };
const char* eigen_method_name(EigenMethod m);  // "auto", "dense", "lanczos"

struct SpectralOptions {
  EigenMethod method = EigenMethod::kAuto;
  int64_t dense_max_T = 1024;  // kAuto: dense when T <= this; kDense refuses T > 4096
  int64_t krylov_dim = 64;     // Lanczos basis size between thick restarts (>= 8)
  int64_t max_matvecs = 20000; // Lanczos budget; not converged -> result.converged = false
  // Lanczos converges when the error bound of every reported eigenvalue is <= tol * max(1, |theta|max)
  // (|theta|max over the reported values: ~degree for A and L, 1 for N). The bound of a Ritz value theta
  // with residual r = ||Op y - theta y|| is min(r, r^2 / delta), delta = min over the neighbouring Ritz
  // values theta' of |theta - theta'| - r' (the quadratic, Kato-Temple, bound only when delta > 0). For
  // a gap to relative accuracy rho, take tol <= rho * gap / (2 * max(1, |lambda|max)).
  double tol = 1e-9;
  uint64_t seed = 0;           // Lanczos start vector
  // Lanczos without eigenvectors on T > this: the three-term recurrence without reorthogonalisation,
  // spurious (ghost) Ritz values removed by the Cullum-Willoughby test, O(T) memory and O(T) work per
  // step. It sees distinct eigenvalues only (a multiplicity > 1 is invisible to it). Up to this T (and
  // whenever eigenvectors are wanted): thick-restart Lanczos with full reorthogonalisation, O(T * krylov_dim).
  int64_t full_reorth_max_T = 16384;
  // Columns of the recurrence above (1..4): block Lanczos with this many interleaved vectors, so a
  // cluster of up to block_size nearly equal eigenvalues converges at the rate set by its distance to
  // the rest of the spectrum; the operator pass loads the block's values of a row together. Same bounds
  // and semantics (docs/analysis.md). 1 (default): the single-vector recurrence — at T = 1M on a
  // 2-core box a block of 2 takes ~30% fewer steps but each costs 2.5-3x (the gathered block leaves the
  // last-level cache), so it is 1.5x slower there. matvecs counts columns (block_size per step; a
  // budget is checked after whole steps).
  int block_size = 1;
};

// Bounds hold under the usual Lanczos premise that no eigenvalue beyond a reported one was missed by the
// Krylov space (a random start vector; tests check them against the dense solver). Dense: 0.
struct EigenInfo {
  std::string method;          // "dense", "lanczos", "trivial"
  int64_t matvecs = 0;         // Lanczos operator applications
  double max_residual = 0;     // largest ||A y - theta y|| over the reported Ritz pairs (0 for dense)
  double max_error_bound = 0;  // largest |theta - lambda| bound over the reported eigenvalues
  bool converged = true;       // max_error_bound <= tol * max(1, |theta|max)
};

// Unnormalised adjacency A. lambda2_abs = max |lambda| over all eigenvalues except lambda1 (the
// second largest and the smallest, signed values kept). T = 1: all 0.
struct AdjacencySpectrum {
  int64_t nodes = 0;
  double degree_mean = 0, degree_min = 0, degree_max = 0;
  double lambda1 = 0, lambda2 = 0, lambda_min = 0;  // largest, second largest, smallest (signed)
  double lambda2_abs = 0;                           // max(|lambda2|, |lambda_min|)
  double spectral_gap = 0;                          // lambda1 - lambda2_abs
  double gap_error_bound = 0;  // |spectral_gap - exact gap| <= this: e(lambda1) + max(e(lambda2), e(lambda_min))
  double expansion_ratio = 0;                       // degree_mean / max(lambda2_abs, 1e-12)
  EigenInfo info;
};
Expected<AdjacencySpectrum> adjacency_spectrum(const Csr& g, const SpectralOptions& opt = {});

// Normalised adjacency N = D^-1/2 A D^-1/2 (isolated nodes scaled by 0). lambda1 is 1 for any graph
// with an edge; gap = max(0, 1 - lambda2_abs / |lambda1|), 0 when |lambda1| < 1e-12. This is also the
// absolute spectral gap of the simple random walk D^-1 A (same spectrum).
struct NormalizedSpectrum {
  int64_t nodes = 0;
  double lambda1 = 0, lambda2 = 0, lambda_min = 0, lambda2_abs = 0;
  double spectral_gap = 0;
  double gap_error_bound = 0;  // |spectral_gap - exact gap| <= this: max(e(lambda2), e(lambda_min)) (lambda1 = 1 exact)
  EigenInfo info;
};
Expected<NormalizedSpectrum> normalized_spectrum(const Csr& g, const SpectralOptions& opt = {});

// Laplacian L = D - A. fiedler_value = max(lambda2(L), 0) with its unit eigenvector (the
// constant-orthogonal direction); Cheeger bounds on the edge expansion
// h = min_{|S| <= T/2} |E(S, S^c)| / |S|:  lambda2 / 2 <= h <= sqrt(2 * dmax * lambda2).
// sweep_expansion is the best h over the T-1 prefix cuts of the Fiedler order (an upper bound on h
// that itself satisfies the Cheeger upper bound). T <= 1: zeros.
struct LaplacianSpectrum {
  int64_t nodes = 0;
  double fiedler_value = 0, lambda_max = 0, degree_max = 0;
  double fiedler_error_bound = 0;  // |fiedler_value - exact lambda2(L)| <= this
  double cheeger_lower = 0, cheeger_upper = 0, sweep_expansion = 0;
  std::vector<double> fiedler_vector;  // [T]
  bool is_well_connected = false;      // fiedler_value > 0.01
  EigenInfo info;
};
Expected<LaplacianSpectrum> laplacian_spectrum(const Csr& g, const SpectralOptions& opt = {});

// The same three summaries on the implicit banded graph: the dense path (T <= dense_max_T or kDense)
// runs on csr_from_banded(g); the Lanczos path uses the O(T) matvec. Results equal the Csr overloads on
// csr_from_banded(g) (tests check both paths).
Expected<AdjacencySpectrum> adjacency_spectrum(const BandedGraph& g, const SpectralOptions& opt = {});
Expected<NormalizedSpectrum> normalized_spectrum(const BandedGraph& g, const SpectralOptions& opt = {});
Expected<LaplacianSpectrum> laplacian_spectrum(const BandedGraph& g, const SpectralOptions& opt = {});

// All eigenvalues, ascending, of the chosen operator (dense Eigen solve): for histograms and tests.
// Errors: T > 4096 (use the Lanczos summaries above), built without Eigen.
enum class Operator { kAdjacency, kNormalized, kLaplacian };
Expected<std::vector<double>> dense_eigenvalues(const Csr& g, Operator op);

// ---- random walks -----------------------------------------------------------------------------
// Exact distribution of a random walk started at e_s, compared with the stationary law
// pi(i) = deg(i) / 2|E| (not the uniform law). chi2(t) = sum_i (p_t(i) - pi(i))^2 / pi(i) and
// tv(t) = 1/2 sum_i |p_t(i) - pi(i)| over nodes with pi > 0, worst over the sampled sources.
// lazy: P = (I + D^-1 A) / 2 (converges on bipartite graphs), else P = D^-1 A. Isolated nodes stay.
struct MixingOptions {
  int64_t steps = 64;        // t = 0 .. steps
  int64_t num_sources = 8;   // evenly spread sources (all nodes when T is smaller), seeded offset
  bool lazy = true;
  double epsilon = 0.25;     // t_mix(epsilon): first t with tv <= epsilon
  uint64_t seed = 0;
};
struct MixingCurve {
  std::vector<double> chi2;  // [steps + 1], worst source
  std::vector<double> tv;    // [steps + 1], worst source
  int64_t t_mix = -1;        // first t with tv <= epsilon; -1 if not within `steps`
  // Spectral bound (Levin-Peres 12.4): t_mix(eps) <= ceil(t_rel * ln(1 / (eps * pi_min))),
  // t_rel = 1 / gap of the walk (lazy: (1 - lambda2(N)) / 2, else 1 - lambda2_abs(N)).
  double walk_gap = 0, relaxation_time = 0, t_mix_bound = 0;
  std::vector<int64_t> sources;
};
// Errors: T < 2, steps < 0, num_sources < 1, epsilon outside (0, 1). `normalized` (optional) saves
// the eigensolve when the caller has it already.
Expected<MixingCurve> mixing_curve(const Csr& g, const MixingOptions& opt = {},
                                   const NormalizedSpectrum* normalized = nullptr);

// ---- robustness and structure -----------------------------------------------------------------
// Each trial deletes every edge independently with probability f (Rng(mix_seed(seed, trial))) and
// measures the largest connected component as a fraction of T.
struct ResiliencePoint {
  double drop_fraction = 0;
  double largest_component_mean = 0, largest_component_min = 0;
  double connected_rate = 0;  // trials where the surviving graph is connected
  double min_degree_mean = 0;
};
// Errors: a fraction outside [0, 1], trials < 1.
Expected<std::vector<ResiliencePoint>> resilience(const Csr& g, const std::vector<double>& drop_fractions,
                                                  int64_t trials = 32, uint64_t seed = 0);

// Epsilon-regularity over k contiguous clusters (the first T mod k get one extra node, as
// cycle_regular_partition). For each unordered cluster pair, deviation = |e(A,B) - exp| / exp with
// exp = |A||B| * inter-cluster density. max_deviation is the max over pairs (the original reported
// the max of per-cluster mean deviations, which hides one bad pair; kept as max_cluster_mean_deviation).
struct Regularity {
  int64_t num_clusters = 0;
  std::vector<int64_t> sizes;
  std::vector<double> density;  // [k, k] edge density between clusters (diagonal: inside a cluster)
  double global_density = 0;    // inter-cluster edges / inter-cluster pairs
  double mean_deviation = 0, max_deviation = 0, max_cluster_mean_deviation = 0;
  bool is_epsilon_regular = false;  // max_deviation < epsilon
};
// Errors: num_clusters < 2 or > T, epsilon <= 0.
Expected<Regularity> regularity(const Csr& g, int64_t num_clusters = 8, double epsilon = 0.25);

// Vertex expansion |N(S) \ S| / |S| over uniformly random subsets S (seeded) of sizes 1, 2, 4, ...
// <= T/2 plus T/2 itself.
struct Expansion {
  std::vector<int64_t> sizes;
  std::vector<double> mean_by_size, min_by_size;
  double min_expansion = 0, mean_expansion = 0;
};
// Errors: T < 2, samples_per_size < 1.
Expected<Expansion> vertex_expansion(const Csr& g, int64_t samples_per_size = 16, uint64_t seed = 0);

// BFS from min(num_sources, T) distinct seeded sources. effective_diameter = 90th percentile
// (nearest rank) of the finite positive distances; max_distance over reachable pairs.
struct Diameter {
  int64_t sources = 0;
  double effective_diameter = 0, mean_distance = 0, median_distance = 0;
  int64_t max_distance = 0;
  bool is_connected = true;  // no sampled BFS missed a node
};
Expected<Diameter> effective_diameter(const Csr& g, int64_t num_sources = 64, uint64_t seed = 0);

struct Components {
  int64_t count = 0, largest = 0;
  std::vector<int32_t> label;  // [T] component id
};
Components connected_components(const Csr& g);

// ---- causal analysis --------------------------------------------------------------------------
// Predecessor rows of one layer: preds of i are the distinct j < i listed in row i (any head).
struct CausalRows {
  int64_t T = 0;
  std::vector<int64_t> offsets{0};  // [T + 1]
  std::vector<int32_t> preds;
};
// Errors: an index outside [-1, T). Entries j >= i are dropped (the causal mask removes them).
Expected<CausalRows> causal_rows_from_abi(const graph::GraphAbi& g);

// R_0(i) = {i}; R_l(i) = R_{l-1}(i) U union_{j in preds_l(i)} R_{l-1}(j). coverage_L(i) =
// |R_L(i) \ {i}| / i for i >= 1 (position 0 is excluded from every summary).
// Cost: triangular bitset rows (row i: floor(i/64) + 1 words), two generations, T^2 / 8 bytes in all
// (T = 65,536: 512 MiB); a run of consecutive predecessors (a window) costs 2 row ORs, words that are
// all ones or all zero at the front of a row are implicit. T > max_T is refused.
struct ReachabilityOptions {
  int64_t max_layers = 16;
  double position_threshold = 0.95;  // a position "sees its prefix" when coverage >= this
  double fraction_threshold = 0.95;  // ... and the layer count needs this fraction of positions
  int64_t max_T = 32768;
};
struct Reachability {
  int64_t T = 0;
  std::vector<double> mean_coverage;     // [layers] for L = 1 .. layers
  std::vector<double> min_coverage;      // [layers]
  std::vector<double> fraction_seeing;   // [layers] fraction of i >= 1 with coverage >= threshold
  int64_t layers_to_p95 = -1;            // first L with fraction_seeing >= fraction_threshold, -1 none
  int64_t layers_to_full = -1;           // first L with every coverage == 1 (causal diameter), -1 none
};
using LayerRowsFn = std::function<Expected<CausalRows>(int64_t layer)>;
// Layer l uses layer_rows(l) (l = 0 .. max_layers-1); stops early once every prefix is full.
// Errors: T < 1 or > max_T, max_layers < 1, a layer's rows with a different T, errors of layer_rows.
Expected<Reachability> causal_reachability(int64_t T, const LayerRowsFn& layer_rows,
                                           const ReachabilityOptions& opt = {});
// Convenience: layer l uses layers[l mod layers.size()] (one graph = the same graph every layer).
Expected<Reachability> causal_reachability(const std::vector<graph::GraphAbi>& layers,
                                           const ReachabilityOptions& opt = {});

// Directed distances along causal edges j -> i (j in preds(i)) of ONE graph repeated every layer, by
// forward BFS from min(num_sources, T-1) seeded sources s < T-1, over targets i > s.
struct CausalDiameter {
  int64_t max_distance = 0;
  double mean_distance = 0, median_distance = 0, p90_distance = 0;
  double unreachable_fraction = 0;
};
Expected<CausalDiameter> causal_diameter(const CausalRows& rows, int64_t num_sources = 64, uint64_t seed = 0);

// ---- cuts and coverage ------------------------------------------------------------------------
struct BridgeEdge {
  int32_t u = 0, v = 0;  // u < v
  double score = 0;      // |f(u) - f(v)|
};
struct FiedlerBridges {
  int64_t cut_size = 0;               // edges crossing the sign cut of the Fiedler vector
  int64_t negative_side = 0;          // |{i : f(i) < 0}|
  std::vector<BridgeEdge> cut_edges;  // existing crossing edges, largest |f(u) - f(v)| first (top num)
  std::vector<BridgeEdge> proposed;   // non-edges pairing the i-th most negative with the i-th most positive
};
// Errors: fiedler.size() != T. T <= 2 gives an empty result.
Expected<FiedlerBridges> fiedler_bridges(const Csr& g, const std::vector<double>& fiedler, int64_t num = 10);

// Pair coverage over the T(T-1)/2 unordered pairs {j < i}. Full: the pair is covered when i lists j or
// j lists i. causal_only: only when the later token's row i lists j — the one direction the causal mask
// lets attention use. From permutations both counts coincide (each cycle edge is listed in both rows).
struct EdgeCoverage {
  int64_t covered = 0, total_pairs = 0;
  double fraction = 0;  // covered / total (1 when T <= 1)
  bool causal_only = false;
};
Expected<EdgeCoverage> edge_coverage(const graph::GraphAbi& g, bool causal_only, int64_t head = -1);
Expected<EdgeCoverage> edge_coverage(const std::vector<topo::Perm>& cycles, int64_t T, bool causal_only);

// ---- composite report -------------------------------------------------------------------------
struct QualityOptions {
  SpectralOptions spectral;
  MixingOptions mixing;
  int64_t expansion_samples = 16;
  int64_t diameter_sources = 64;
  std::vector<double> drop_fractions{0.1, 0.3, 0.5};
  int64_t resilience_trials = 16;
  bool causal = true;              // reachability + causal diameter (T <= reach.max_T)
  ReachabilityOptions reach;
  uint64_t seed = 0;
};
struct QualityReport {
  int64_t nodes = 0, edges = 0;
  double degree_mean = 0, degree_std = 0;
  int64_t degree_min = 0, degree_max = 0;
  Components components;
  AdjacencySpectrum adjacency;
  NormalizedSpectrum normalized;
  LaplacianSpectrum laplacian;
  MixingCurve mixing;
  Expansion expansion;
  Diameter diameter;
  std::vector<ResiliencePoint> resilience;
  bool has_causal = false;
  Reachability reach;
  CausalDiameter causal;
  EdgeCoverage coverage_full, coverage_causal;
  // 0.4 min(gap_N / 0.5, 1) + 0.3 min(min_expansion / 5, 1) + 0.3 min(log2 T / effective_diameter, 1)
  double quality_score = 0;
  bool is_good_expander = false;  // normalised gap >= 0.1
};
// The graph's heads are unioned. Errors: T < 2, and those of the parts.
Expected<QualityReport> quality_report(const graph::GraphAbi& g, const QualityOptions& opt = {});

// ---- pictures (self-written SVG, no dependencies) ----------------------------------------------
struct PlotSeries {
  std::string name;
  std::vector<double> x, y;  // equal lengths; non-finite points (and y <= 0 on a log axis) are skipped
};
struct PlotSpec {
  std::string title, x_label, y_label;
  bool log_y = false;
  bool steps = false;  // draw each series as a histogram outline (x = left bin edges + last right edge)
  std::vector<PlotSeries> series;
  int width = 720, height = 440;
};
// A standalone SVG document: axes with ticks, one coloured polyline per series, a legend.
std::string svg_plot(const PlotSpec& spec);
// Histogram outlines of several samples over common bins (nbins >= 1), as a PlotSpec ready for svg_plot.
PlotSpec histogram_spec(const std::string& title, const std::string& x_label,
                        const std::vector<std::pair<std::string, std::vector<double>>>& samples, int nbins);

}  // namespace bna::analysis
