// Random-walk mixing, resilience under random edge removal, epsilon-regularity, sampled vertex
// expansion and effective diameter on a Csr graph.
// Decisions: mixing evolves the exact distribution P^t e_s (no sampled walkers, so chi2 has no
// sampling floor) and measures it against the degree-proportional stationary law (defect 10 of the
// original compared with the uniform law, which a non-regular graph never reaches). Every sampled
// diagnostic draws from Rng(mix_seed(seed, stream)), so results depend only on the arguments.
#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <numeric>
#include <string>

#include "bna/analysis.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"

namespace bna::analysis {
namespace {

std::vector<int64_t> spread_sources(int64_t n, int64_t k, uint64_t seed) {
  k = std::min(k, n);
  Rng rng(mix_seed(seed, 0x5eed));
  const int64_t offset = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(n)));
  std::vector<int64_t> s(k);
  for (int64_t i = 0; i < k; ++i) s[i] = (offset + i * n / k) % n;
  return s;
}

// BFS distances from s (-1 unreachable); returns nodes reached.
int64_t bfs(const Csr& g, int64_t s, std::vector<int32_t>& dist, std::vector<int32_t>& queue) {
  std::fill(dist.begin(), dist.end(), -1);
  queue.resize(g.n);
  int64_t head = 0, tail = 0;
  queue[tail++] = static_cast<int32_t>(s);
  dist[s] = 0;
  while (head < tail) {
    const int32_t u = queue[head++];
    for (const int32_t* p = g.begin(u); p != g.end(u); ++p)
      if (dist[*p] < 0) { dist[*p] = dist[u] + 1; queue[tail++] = *p; }
  }
  return tail;
}

}  // namespace

Expected<MixingCurve> mixing_curve(const Csr& g, const MixingOptions& opt, const NormalizedSpectrum* normalized) {
  if (g.n < 2) return invalid_argument("analysis: mixing with T=" + std::to_string(g.n) + ", expected T >= 2");
  if (opt.steps < 0) return invalid_argument("analysis: steps=" + std::to_string(opt.steps) + ", expected >= 0");
  if (opt.num_sources < 1)
    return invalid_argument("analysis: num_sources=" + std::to_string(opt.num_sources) + ", expected >= 1");
  if (!(opt.epsilon > 0 && opt.epsilon < 1))
    return invalid_argument("analysis: epsilon=" + std::to_string(opt.epsilon) + ", expected 0 < epsilon < 1");
  MixingCurve mc;
  const int64_t n = g.n;
  const double two_m = 2.0 * static_cast<double>(g.num_edges());
  std::vector<double> pi(n, 0.0), inv_deg(n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    pi[i] = two_m > 0 ? g.degree(i) / two_m : 1.0 / n;
    inv_deg[i] = g.degree(i) > 0 ? 1.0 / g.degree(i) : 0.0;
  }
  mc.sources = spread_sources(n, opt.num_sources, opt.seed);
  const int64_t ns = static_cast<int64_t>(mc.sources.size());
  std::vector<double> chi(static_cast<size_t>(ns) * (opt.steps + 1)), tv(chi.size());
  // One source per task: each walks its own two buffers, O(steps * |E|) work.
  parallel_for_dynamic(0, ns, 1, [&](int64_t si) {
    std::vector<double> p(n, 0.0), q(n, 0.0);
    p[mc.sources[si]] = 1.0;
    for (int64_t t = 0; t <= opt.steps; ++t) {
      double c = 0, d = 0;
      for (int64_t i = 0; i < n; ++i) {
        if (pi[i] > 0) c += (p[i] - pi[i]) * (p[i] - pi[i]) / pi[i];
        d += std::fabs(p[i] - pi[i]);
      }
      chi[si * (opt.steps + 1) + t] = c;
      tv[si * (opt.steps + 1) + t] = 0.5 * d;
      if (t == opt.steps) break;
      for (int64_t i = 0; i < n; ++i) {
        double s = g.degree(i) == 0 ? p[i] : 0.0;  // isolated nodes keep their mass
        for (const int32_t* e = g.begin(i); e != g.end(i); ++e) s += p[*e] * inv_deg[*e];
        q[i] = opt.lazy ? 0.5 * (p[i] + s) : s;
      }
      p.swap(q);
    }
  });
  mc.chi2.assign(opt.steps + 1, 0.0);
  mc.tv.assign(opt.steps + 1, 0.0);
  for (int64_t si = 0; si < ns; ++si)
    for (int64_t t = 0; t <= opt.steps; ++t) {
      mc.chi2[t] = std::max(mc.chi2[t], chi[si * (opt.steps + 1) + t]);
      mc.tv[t] = std::max(mc.tv[t], tv[si * (opt.steps + 1) + t]);
    }
  for (int64_t t = 0; t <= opt.steps; ++t)
    if (mc.tv[t] <= opt.epsilon) { mc.t_mix = t; break; }
  NormalizedSpectrum ns_local;
  if (!normalized) {
    auto r = normalized_spectrum(g);
    if (!r) return r.status();
    ns_local = std::move(r).value();
    normalized = &ns_local;
  }
  mc.walk_gap = opt.lazy ? (1.0 - normalized->lambda2) / 2.0 : 1.0 - normalized->lambda2_abs;
  double pi_min = 1.0;
  for (double x : pi)
    if (x > 0) pi_min = std::min(pi_min, x);
  if (mc.walk_gap > 1e-12) {
    mc.relaxation_time = 1.0 / mc.walk_gap;
    mc.t_mix_bound = std::ceil(mc.relaxation_time * std::log(1.0 / (opt.epsilon * pi_min)));
  } else {
    mc.relaxation_time = mc.t_mix_bound = std::numeric_limits<double>::infinity();
  }
  return mc;
}

Expected<std::vector<ResiliencePoint>> resilience(const Csr& g, const std::vector<double>& fractions, int64_t trials,
                                                  uint64_t seed) {
  if (trials < 1) return invalid_argument("analysis: trials=" + std::to_string(trials) + ", expected >= 1");
  for (double f : fractions)
    if (!(f >= 0 && f <= 1))
      return invalid_argument("analysis: drop fraction " + std::to_string(f) + ", expected in [0, 1]");
  std::vector<ResiliencePoint> out;
  const int64_t n = g.n;
  for (size_t fi = 0; fi < fractions.size(); ++fi) {
    const double f = fractions[fi];
    std::vector<double> largest(trials), mindeg(trials);
    std::vector<uint8_t> connected(trials);
    parallel_for_dynamic(0, trials, 1, [&](int64_t tr) {
      // Stream by trial only: the same draws for every fraction (common random numbers), so the curve
      // over fractions is monotone and a fraction's result does not depend on the list it came in.
      Rng rng(mix_seed(seed, static_cast<uint64_t>(tr)));
      std::vector<int32_t> parent(n), size(n, 1), deg(n, 0);
      std::iota(parent.begin(), parent.end(), 0);
      auto find = [&](int32_t x) {
        while (parent[x] != x) { parent[x] = parent[parent[x]]; x = parent[x]; }
        return x;
      };
      for (int64_t i = 0; i < n; ++i)
        for (const int32_t* p = g.begin(i); p != g.end(i); ++p) {
          if (*p <= i) continue;  // each undirected edge once, in CSR order: the draw sequence is fixed
          if (rng.uniform01() < f) continue;
          ++deg[i];
          ++deg[*p];
          int32_t a = find(static_cast<int32_t>(i)), b = find(*p);
          if (a == b) continue;
          if (size[a] < size[b]) std::swap(a, b);
          parent[b] = a;
          size[a] += size[b];
        }
      int64_t best = 0;
      for (int64_t i = 0; i < n; ++i)
        if (parent[i] == i) best = std::max<int64_t>(best, size[i]);
      largest[tr] = n ? static_cast<double>(best) / n : 1.0;
      connected[tr] = best == n;
      mindeg[tr] = n ? *std::min_element(deg.begin(), deg.end()) : 0;
    });
    ResiliencePoint rp;
    rp.drop_fraction = f;
    rp.largest_component_min = *std::min_element(largest.begin(), largest.end());
    for (int64_t t = 0; t < trials; ++t) {
      rp.largest_component_mean += largest[t] / trials;
      rp.connected_rate += connected[t] / static_cast<double>(trials);
      rp.min_degree_mean += mindeg[t] / trials;
    }
    out.push_back(rp);
  }
  return out;
}

Expected<Regularity> regularity(const Csr& g, int64_t k, double epsilon) {
  if (k < 2 || k > g.n)
    return invalid_argument("analysis: num_clusters=" + std::to_string(k) + ", expected 2 <= num_clusters <= T=" +
                            std::to_string(g.n));
  if (!(epsilon > 0)) return invalid_argument("analysis: epsilon=" + std::to_string(epsilon) + ", expected > 0");
  Regularity r;
  r.num_clusters = k;
  r.sizes.assign(k, g.n / k);
  for (int64_t c = 0; c < g.n % k; ++c) ++r.sizes[c];
  std::vector<int64_t> cluster(g.n);
  for (int64_t c = 0, i = 0; c < k; ++c)
    for (int64_t s = 0; s < r.sizes[c]; ++s) cluster[i++] = c;
  std::vector<double> count(k * k, 0.0);
  for (int64_t i = 0; i < g.n; ++i)
    for (const int32_t* p = g.begin(i); p != g.end(i); ++p)
      if (*p > i) {
        const int64_t a = cluster[i], b = cluster[*p];
        count[a * k + b] += 1;
        if (a != b) count[b * k + a] += 1;
      }
  double inter_edges = 0, inter_pairs = 0;
  r.density.assign(k * k, 0.0);
  for (int64_t a = 0; a < k; ++a)
    for (int64_t b = 0; b < k; ++b) {
      const double pairs = a == b ? r.sizes[a] * (r.sizes[a] - 1) / 2.0 : double(r.sizes[a]) * r.sizes[b];
      r.density[a * k + b] = pairs > 0 ? count[a * k + b] / pairs : 0.0;
      if (a < b) { inter_edges += count[a * k + b]; inter_pairs += pairs; }
    }
  r.global_density = inter_pairs > 0 ? inter_edges / inter_pairs : 0.0;
  std::vector<double> row_sum(k, 0.0);
  double sum = 0;
  int64_t npairs = 0;
  for (int64_t a = 0; a < k; ++a)
    for (int64_t b = a + 1; b < k; ++b) {
      const double expect = double(r.sizes[a]) * r.sizes[b] * r.global_density;
      const double dev = expect > 0 ? std::fabs(count[a * k + b] - expect) / expect : (count[a * k + b] > 0 ? 1.0 : 0.0);
      sum += dev;
      ++npairs;
      r.max_deviation = std::max(r.max_deviation, dev);
      row_sum[a] += dev;
      row_sum[b] += dev;
    }
  r.mean_deviation = npairs ? sum / npairs : 0.0;
  for (int64_t a = 0; a < k; ++a) r.max_cluster_mean_deviation = std::max(r.max_cluster_mean_deviation, row_sum[a] / (k - 1));
  r.is_epsilon_regular = r.max_deviation < epsilon;
  return r;
}

Expected<Expansion> vertex_expansion(const Csr& g, int64_t samples, uint64_t seed) {
  if (g.n < 2) return invalid_argument("analysis: expansion with T=" + std::to_string(g.n) + ", expected T >= 2");
  if (samples < 1) return invalid_argument("analysis: samples_per_size=" + std::to_string(samples) + ", expected >= 1");
  Expansion e;
  const int64_t half = g.n / 2;
  for (int64_t s = 1; s <= half; s *= 2) e.sizes.push_back(s);
  if (e.sizes.back() != half) e.sizes.push_back(half);
  const int64_t nsz = static_cast<int64_t>(e.sizes.size());
  std::vector<double> vals(nsz * samples);
  parallel_for_dynamic(0, nsz * samples, 1, [&](int64_t task) {
    const int64_t size = e.sizes[task / samples];
    Rng rng(mix_seed(seed, static_cast<uint64_t>(task)));
    std::vector<uint8_t> mark(g.n, 0);  // 1 in S, 2 boundary
    std::vector<int32_t> members;
    // Floyd's sampling of `size` distinct nodes.
    for (int64_t j = g.n - size; j < g.n; ++j) {
      int64_t t = static_cast<int64_t>(rng.uniform_below(static_cast<uint64_t>(j + 1)));
      if (mark[t]) t = j;
      mark[t] = 1;
      members.push_back(static_cast<int32_t>(t));
    }
    int64_t boundary = 0;
    for (int32_t u : members)
      for (const int32_t* p = g.begin(u); p != g.end(u); ++p)
        if (mark[*p] == 0) { mark[*p] = 2; ++boundary; }
    vals[task] = static_cast<double>(boundary) / size;
  });
  e.min_expansion = 1e300;
  for (int64_t si = 0; si < nsz; ++si) {
    double mn = 1e300, mean = 0;
    for (int64_t k = 0; k < samples; ++k) {
      mn = std::min(mn, vals[si * samples + k]);
      mean += vals[si * samples + k] / samples;
    }
    e.min_by_size.push_back(mn);
    e.mean_by_size.push_back(mean);
    e.min_expansion = std::min(e.min_expansion, mn);
    e.mean_expansion += mean / nsz;
  }
  return e;
}

Expected<Diameter> effective_diameter(const Csr& g, int64_t num_sources, uint64_t seed) {
  if (num_sources < 1)
    return invalid_argument("analysis: num_sources=" + std::to_string(num_sources) + ", expected >= 1");
  Diameter d;
  if (g.n <= 1) return d;
  std::vector<int64_t> src(g.n);
  std::iota(src.begin(), src.end(), 0);
  Rng rng(mix_seed(seed, 0xd1a));
  rng.shuffle(src);
  src.resize(std::min(num_sources, g.n));
  d.sources = static_cast<int64_t>(src.size());
  // Histogram of distances per source (distances < T), merged afterwards.
  std::vector<std::vector<int64_t>> hist(src.size());
  std::vector<uint8_t> full(src.size());
  parallel_for_dynamic(0, d.sources, 1, [&](int64_t k) {
    std::vector<int32_t> dist(g.n), queue;
    full[k] = bfs(g, src[k], dist, queue) == g.n;
    auto& h = hist[k];
    for (int32_t x : dist)
      if (x > 0) {
        if (static_cast<int64_t>(h.size()) <= x) h.resize(x + 1, 0);
        ++h[x];
      }
  });
  std::vector<int64_t> total;
  for (const auto& h : hist) {
    if (total.size() < h.size()) total.resize(h.size(), 0);
    for (size_t x = 0; x < h.size(); ++x) total[x] += h[x];
  }
  for (uint8_t f : full) d.is_connected = d.is_connected && f;
  int64_t count = 0;
  double sum = 0;
  for (size_t x = 0; x < total.size(); ++x) {
    count += total[x];
    sum += double(x) * total[x];
    if (total[x]) d.max_distance = static_cast<int64_t>(x);
  }
  if (count == 0) return d;
  d.mean_distance = sum / count;
  auto quantile = [&](double q) {  // nearest rank
    const int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * count)));
    int64_t acc = 0;
    for (size_t x = 0; x < total.size(); ++x) {
      acc += total[x];
      if (acc >= rank) return static_cast<double>(x);
    }
    return static_cast<double>(total.size() - 1);
  };
  d.median_distance = quantile(0.5);
  d.effective_diameter = quantile(0.9);
  return d;
}

}  // namespace bna::analysis
