// The composite quality report: every undirected diagnostic on the union of the graph's heads, plus
// the causal ones on its rows, and one score. Decision: the mixing curve reuses the normalised
// spectrum computed for the report, so each eigenproblem is solved once.
#include <cmath>
#include <string>

#include "bna/analysis.hpp"

namespace bna::analysis {

Expected<QualityReport> quality_report(const graph::GraphAbi& g, const QualityOptions& opt) {
  if (g.T < 2) return invalid_argument("analysis: quality report with T=" + std::to_string(g.T) + ", expected T >= 2");
  BNA_ASSIGN_OR_RETURN(Csr csr, csr_from_abi(g));
  QualityReport r;
  r.nodes = csr.n;
  r.edges = csr.num_edges();
  r.degree_min = csr.n ? csr.degree(0) : 0;
  double sum = 0, sq = 0;
  for (int64_t i = 0; i < csr.n; ++i) {
    const double d = static_cast<double>(csr.degree(i));
    sum += d;
    sq += d * d;
    r.degree_min = std::min<int64_t>(r.degree_min, csr.degree(i));
    r.degree_max = std::max<int64_t>(r.degree_max, csr.degree(i));
  }
  r.degree_mean = sum / csr.n;
  r.degree_std = std::sqrt(std::max(0.0, sq / csr.n - r.degree_mean * r.degree_mean));
  r.components = connected_components(csr);
  r.components.label.clear();  // the report keeps counts only
  BNA_ASSIGN_OR_RETURN(r.adjacency, adjacency_spectrum(csr, opt.spectral));
  BNA_ASSIGN_OR_RETURN(r.normalized, normalized_spectrum(csr, opt.spectral));
  BNA_ASSIGN_OR_RETURN(r.laplacian, laplacian_spectrum(csr, opt.spectral));
  BNA_ASSIGN_OR_RETURN(r.mixing, mixing_curve(csr, opt.mixing, &r.normalized));
  BNA_ASSIGN_OR_RETURN(r.expansion, vertex_expansion(csr, opt.expansion_samples, opt.seed));
  BNA_ASSIGN_OR_RETURN(r.diameter, effective_diameter(csr, opt.diameter_sources, opt.seed));
  BNA_ASSIGN_OR_RETURN(r.resilience, resilience(csr, opt.drop_fractions, opt.resilience_trials, opt.seed));
  BNA_ASSIGN_OR_RETURN(r.coverage_full, edge_coverage(g, false));
  BNA_ASSIGN_OR_RETURN(r.coverage_causal, edge_coverage(g, true));
  if (opt.causal && g.T <= opt.reach.max_T) {
    std::vector<graph::GraphAbi> one{g};
    BNA_ASSIGN_OR_RETURN(r.reach, causal_reachability(one, opt.reach));
    BNA_ASSIGN_OR_RETURN(CausalRows rows, causal_rows_from_abi(g));
    BNA_ASSIGN_OR_RETURN(r.causal, causal_diameter(rows, opt.diameter_sources, opt.seed));
    r.has_causal = true;
  }
  const double gap_score = std::min(r.normalized.spectral_gap / 0.5, 1.0);
  const double exp_score = std::min(r.expansion.min_expansion / 5.0, 1.0);
  const double diam_score = r.diameter.effective_diameter <= 0
                                ? 1.0
                                : std::min(std::log2(std::max<double>(g.T, 2)) / r.diameter.effective_diameter, 1.0);
  r.quality_score = 0.4 * gap_score + 0.3 * exp_score + 0.3 * diam_score;
  r.is_good_expander = r.normalized.spectral_gap >= 0.1;
  return r;
}

}  // namespace bna::analysis
