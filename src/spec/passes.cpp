// IR passes: normalize, validate, lower (bna::topo::Topology for every strategy), permute-window and
// dispatch specialization. Lowering checks T and H up front and the edge-disjoint feasibility bound
// k <= floor((T-1)/2) before any work, so no input fails deep inside a builder. Routing vectors for
// greedy / online insertion come from the spec's .npy file or from the documented seeded generator.
// Lowering builds cycles only (perms + inverses) and derives D and the metrics from the row rules
// (src/spec/rules.cpp): the [H, T, D] rows are never built, they are 10.9 GiB at T = 65,536.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "bna/npy.hpp"
#include "bna/rng.hpp"
#include "bna/spec.hpp"
#include "bna/threads.hpp"
#include "spec/internal.hpp"

namespace bna::spec {
namespace {

using detail::field_error;
using detail::resolve_path;

// Routing matrices for all heads: storage[h] holds f32 [T, d].
Status make_routing(const GraphSpec& s, int64_t T, int64_t H, std::vector<std::vector<float>>& storage,
                    std::vector<topo::Routing>& routing) {
  storage.assign(static_cast<size_t>(H), {});
  routing.assign(static_cast<size_t>(H), {});
  if (!s.routing.npy_path.empty()) {
    const std::string path = resolve_path(s, s.routing.npy_path);
    auto arr = io::read_npy(path);
    if (!arr) return field_error(s, "routing", "routing file '" + path + "': " + arr.status().message());
    const auto& sh = arr->shape;
    const bool per_head = sh.size() == 3;
    if (arr->type != io::NpyType::kF32 || (sh.size() != 2 && sh.size() != 3) || (per_head && sh[0] != H) ||
        sh[sh.size() - 2] != T || sh.back() < 1) {
      std::string shape = "[";
      for (size_t i = 0; i < sh.size(); ++i) shape += (i ? ", " : "") + std::to_string(sh[i]);
      return field_error(s, "routing",
                         "routing file '" + path + "' is " + io::npy_type_descr(arr->type) + " " + shape +
                             "], expected <f4 [T=" + std::to_string(T) + ", d] or [H=" + std::to_string(H) +
                             ", T=" + std::to_string(T) + ", d]");
    }
    const int64_t d = sh.back();
    const float* base = reinterpret_cast<const float*>(arr->bytes.data());
    for (int64_t h = 0; h < H; ++h) {
      const float* src = base + (per_head ? h * T * d : 0);
      storage[h].assign(src, src + T * d);
      routing[h] = {storage[h].data(), T, d};
    }
    return Status::ok();
  }
  const int64_t d = s.routing.dim;
  const uint64_t seed = s.routing.seed_set ? s.routing.seed : s.seed;
  parallel_for(0, H, [&](int64_t h) {
    Rng rng(mix_seed(seed, static_cast<uint64_t>(h)));
    std::vector<float>& v = storage[h];
    v.resize(static_cast<size_t>(T * d));
    for (float& x : v) x = static_cast<float>(rng.normal());
    routing[h] = {v.data(), T, d};
  });
  return Status::ok();
}

}  // namespace

Status detail::field_error(const GraphSpec& s, const char* field, const std::string& what) {
  auto it = s.locs.find(field);
  if (it == s.locs.end() || s.source_name.empty()) return invalid_argument("spec: " + what);
  return invalid_argument(s.source_name + ":" + std::to_string(it->second.line) + ":" +
                          std::to_string(it->second.col) + ": " + what);
}

std::string detail::resolve_path(const GraphSpec& s, const std::string& p) {
  std::filesystem::path path(p);
  if (path.is_absolute() || s.base_dir.empty()) return p;
  return (std::filesystem::path(s.base_dir) / path).string();
}

GraphSpec normalize(GraphSpec s) {
  if (s.window_schedule) s.window_size = static_cast<int64_t>(s.window_schedule->start);
  if (!s.permute_window_enabled) s.permute_window_size = 0;
  const GraphSpec d;
  const bool random_multi = s.strategy == topo::Strategy::kRandom && s.num_cycles > 1;
  if (!random_multi) s.edge_disjoint = d.edge_disjoint;
  if (s.strategy != topo::Strategy::kRegularPartition) s.regular_num_clusters = d.regular_num_clusters;
  if (s.strategy != topo::Strategy::kCovering) s.coverage_target = d.coverage_target;
  if (!topo::strategy_needs_routing(s.strategy)) {
    s.routing = RoutingSpec{};
  } else if (!s.routing.npy_path.empty()) {
    s.routing.dim = RoutingSpec{}.dim;
    s.routing.seed = 0;
    s.routing.seed_set = false;
  } else if (!s.routing.seed_set) {
    s.routing.seed = s.seed;
    s.routing.seed_set = true;
  }
  return s;
}

Status validate(const GraphSpec& s) {
  auto bad = [&](const char* field, const std::string& what) { return field_error(s, field, what); };
  if (s.degree && *s.degree < 1) return bad("degree", "degree=" + std::to_string(*s.degree) + ", expected >= 1");
  if (s.num_cycles < 1) return bad("num_cycles", ":k=" + std::to_string(s.num_cycles) + ", expected >= 1");
  if (s.num_cycles > 4096)
    return bad("num_cycles", ":k=" + std::to_string(s.num_cycles) + ", expected <= 4096 cycles per head");
  if (s.strategy == topo::Strategy::kOnlineInsertion && s.num_cycles != 1)
    return bad("num_cycles", ":k=" + std::to_string(s.num_cycles) +
                                 " with online_insertion, which builds exactly one cycle per head (use :k 1)");
  if (s.window_size < 0) return bad("window_size", "window=" + std::to_string(s.window_size) + ", expected >= 0");
  if (s.landmark_stride < 0)
    return bad("landmark_stride", "stride=" + std::to_string(s.landmark_stride) + ", expected >= 1 or none");
  if (s.permute_window_enabled && s.permute_window_size < 1)
    return bad("permute_window_size", "permute window=" + std::to_string(s.permute_window_size) +
                                          ", expected >= 1 when enabled (or :enabled false)");
  if (s.permute_window_size < 0)
    return bad("permute_window_size", "permute window=" + std::to_string(s.permute_window_size) + ", expected >= 0");
  if (s.permute_window_size > (int64_t{1} << 20))
    return bad("permute_window_size", "permute window=" + std::to_string(s.permute_window_size) + ", expected <= 2^20");
  if (s.regular_num_clusters < 1)
    return bad("regular_num_clusters", ":clusters=" + std::to_string(s.regular_num_clusters) + ", expected >= 1");
  if (!(s.coverage_target >= 0 && s.coverage_target <= 1))
    return bad("coverage_target", ":coverage=" + std::to_string(s.coverage_target) + ", expected in [0, 1]");
  if (topo::strategy_needs_routing(s.strategy) && s.routing.npy_path.empty() &&
      (s.routing.dim < 1 || s.routing.dim > 65536))
    return bad("routing_dim", ":routing_dim=" + std::to_string(s.routing.dim) + ", expected in [1, 65536]");
  return Status::ok();
}

Expected<Lowered> lower(const GraphSpec& s, int64_t T, int64_t H) {
  if (T < 1 || T > INT32_MAX) return invalid_argument("spec: T=" + std::to_string(T) + ", expected 1 <= T <= 2^31-1");
  if (H < 1 || H > 65536) return invalid_argument("spec: H=" + std::to_string(H) + ", expected 1 <= H <= 65536");
  const bool disjoint = s.strategy == topo::Strategy::kEdgeDisjoint ||
                        (s.strategy == topo::Strategy::kRandom && s.edge_disjoint && s.num_cycles > 1);
  if (disjoint) {
    const int64_t kmax = T <= 2 ? 1 : topo::max_edge_disjoint_cycles(T);
    if (s.num_cycles > kmax)
      return field_error(s, "num_cycles",
                         ":k=" + std::to_string(s.num_cycles) + " edge-disjoint cycles need T >= " +
                             std::to_string(2 * s.num_cycles + 1) + ", got T=" + std::to_string(T) +
                             " (at most " + std::to_string(kmax) + "); lower :k or set :edge_disjoint false");
  }
  topo::TopologyOptions opt;
  opt.n_heads = H;
  opt.strategy = s.strategy;
  opt.num_cycles = s.num_cycles;
  opt.edge_disjoint = s.edge_disjoint;
  opt.regular_num_clusters = s.regular_num_clusters;
  opt.seed = s.seed;
  opt.window = s.window_size;
  opt.landmark_stride = s.landmark_stride;
  opt.include_self = true;
  opt.enforce_hamiltonian = true;
  opt.coverage_target = s.coverage_target;
  BNA_ASSIGN_OR_RETURN(topo::Topology topology, topo::Topology::create(opt));

  Lowered out;
  if (topo::strategy_needs_routing(s.strategy)) {
    std::vector<std::vector<float>> storage;
    std::vector<topo::Routing> routing;
    BNA_RETURN_IF_ERROR(make_routing(s, T, H, storage, routing));
    BNA_ASSIGN_OR_RETURN(auto cp, topology.cycles(T, &routing));
    if (static_cast<int64_t>(cp.size()) != H || cp[0].empty())
      return internal_error("spec: topology returned cycles for " + std::to_string(cp.size()) + " heads, expected " +
                            std::to_string(H));
    const int64_t k = static_cast<int64_t>(cp[0].size());
    for (int64_t h = 0; h < H; ++h)
      if (static_cast<int64_t>(cp[h].size()) != k)
        return internal_error("spec: head " + std::to_string(h) + " has " + std::to_string(cp[h].size()) +
                              " cycles, head 0 has " + std::to_string(k));
    topo::PermsOnly& p = out.perms;
    p.H = H;
    p.T = T;
    p.num_cycles = k;
    p.perm.resize(static_cast<size_t>(H * k * T));
    p.inv.resize(p.perm.size());
    parallel_for(0, H * k, [&](int64_t hc) {
      const topo::Perm& src = cp[hc / k][hc % k];
      int32_t* dst = p.perm.data() + hc * T;
      int32_t* inv = p.inv.data() + hc * T;
      for (int64_t i = 0; i < T; ++i) {
        dst[i] = src[i];
        if (src[i] >= 0 && src[i] < T) inv[src[i]] = static_cast<int32_t>(i);
      }
    });
  } else {
    BNA_ASSIGN_OR_RETURN(out.perms, topology.construct_perms_only(T));
  }
  const topo::PermsOnly& p = out.perms;
  const int64_t k = p.num_cycles;
  if (p.H != H || p.T != T || k < 1 || static_cast<int64_t>(p.perm.size()) != H * k * T || p.inv.size() != p.perm.size())
    return internal_error("spec: topology returned perms [H=" + std::to_string(p.H) + ", k=" + std::to_string(k) +
                          ", T=" + std::to_string(p.T) + "], expected H=" + std::to_string(H) + ", T=" + std::to_string(T));
  if (k > kMaxAbiCycles)
    return field_error(s, "num_cycles",
                       std::string(topo::strategy_name(s.strategy)) + " built " + std::to_string(k) +
                           " cycles per head, expected at most " + std::to_string(kMaxAbiCycles) +
                           " (the graph ABI's limit); lower :k");
  // Every cycle must be Hamiltonian: a permutation of 0..T-1 (which its inverse confirms).
  std::vector<Status> bad(static_cast<size_t>(H * k));
  parallel_for(0, H * k, [&](int64_t hc) {
    std::vector<uint8_t> seen;
    bad[hc] = detail::check_perm_pair(p.perm.data() + hc * T, p.inv.data() + hc * T, T, seen);
  });
  for (int64_t hc = 0; hc < H * k; ++hc)
    if (!bad[hc].is_ok())
      return internal_error("spec: topology cycle " + std::to_string(hc % k) + " of head " + std::to_string(hc / k) +
                            " is not a Hamiltonian cycle: " + bad[hc].message());

  out.rules.T = T;
  out.rules.window = s.window_size;
  out.rules.landmark_stride = s.landmark_stride;
  out.rules.include_self = true;
  out.meta.strategy = topo::strategy_name(s.strategy);
  out.meta.window = s.window_size;
  out.meta.landmark_stride = s.landmark_stride;
  out.meta.num_cycles = static_cast<int>(k);
  out.meta.seed = s.seed;
  out.meta.include_self = true;

  const detail::RuleRowStats stats = detail::rule_row_stats(p, out.rules);
  out.D = stats.D;
  if (s.degree && out.D > *s.degree)
    return field_error(s, "degree",
                       "degree=" + std::to_string(*s.degree) + " but the graph for T=" + std::to_string(T) +
                           " has D=" + std::to_string(out.D) + " neighbour slots (window " +
                           std::to_string(s.window_size) + ", landmarks every " + std::to_string(s.landmark_stride) +
                           ", " + std::to_string(k) +
                           " cycle(s), self); raise (degree N), remove it, or shrink window/landmarks");
  out.metrics = detail::rule_metrics_from(p, out.rules, stats, /*bfs_hops=*/4, kMetricsSources);
  return out;
}

std::vector<int32_t> derive_window_idx(int64_t T, int64_t w) {
  const int64_t W = 2 * w + 1;
  std::vector<int32_t> idx(static_cast<size_t>(T * W));
  parallel_for(0, T, [&](int64_t t) {
    int32_t* row = idx.data() + t * W;
    for (int64_t c = 0; c < W; ++c) row[c] = static_cast<int32_t>(std::clamp<int64_t>(t + c - w, 0, T - 1));
  });
  return idx;
}

PermuteWindow specialize_permute_window(const GraphSpec& s, int64_t T, size_t max_bytes) {
  PermuteWindow pw;
  if (!s.permute_window_enabled) return pw;
  pw.enabled = true;
  pw.half_width = s.permute_window_size;
  pw.W = 2 * pw.half_width + 1;
  if (static_cast<double>(T) * static_cast<double>(pw.W) * 4.0 <= static_cast<double>(max_bytes))
    pw.window_idx = derive_window_idx(T, pw.half_width);
  return pw;
}

Dispatch specialize_dispatch(const GraphSpec& s) {
  const std::string k = std::to_string(s.num_cycles);
  if (s.permute_window_enabled) {
    const std::string w = std::to_string(s.permute_window_size);
    return {"permute_window", "permute_window enabled in the spec: each head attends a band of half-width " + w +
                                  " (W=" + std::to_string(2 * s.permute_window_size + 1) + ") along its " + k +
                                  " cycle order(s), from perm/inv_perm"};
  }
  const bool has_streams = s.window_size > 0 || s.landmark_stride > 0;
  if (has_streams && s.num_cycles <= kStreamsMaxCycles) {
    std::string parts;
    if (s.window_size > 0) parts += "causal window W=" + std::to_string(s.window_size);
    if (s.landmark_stride > 0)
      parts += std::string(parts.empty() ? "" : " + ") + "landmarks every S=" + std::to_string(s.landmark_stride);
    return {"streams", "rows are " + parts + " plus at most " + std::to_string(2 * s.num_cycles) +
                           " cycle neighbours and self: contiguous streams and a short gather list"};
  }
  if (!has_streams)
    return {"gather", "no window and no landmarks: every neighbour is a scattered cycle neighbour, gathered per row"};
  return {"gather", k + " cycles give up to " + std::to_string(2 * s.num_cycles) +
                        " scattered neighbours per row (streams handles at most " +
                        std::to_string(2 * kStreamsMaxCycles) + "), so rows are gathered"};
}

}  // namespace bna::spec
