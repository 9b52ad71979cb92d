// Topology runtime: option validation, per-head cycle generation and the perms-only fast path.
// Head h of every call uses a fresh Rng(head_seed(seed, h)); heads run in parallel and never share a
// generator, so results are independent of the thread count and of previous calls.
// covering may reach its target with a different cycle count per head; shorter heads are topped up
// with random cycles from their own stream so every head has the same count (PermsOnly is [H, k, T]).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "bna/threads.hpp"
#include "bna/topology.hpp"

namespace bna::topo {

namespace {

constexpr Strategy kAllStrategies[] = {Strategy::kRandom,           Strategy::kGreedy,
                                       Strategy::kOnlineInsertion,  Strategy::kRegularPartition,
                                       Strategy::kEdgeDisjoint,     Strategy::kCovering};

Status check_routing_entries(const TopologyOptions& opt, int64_t T, const std::vector<Routing>* routing) {
  const char* name = strategy_name(opt.strategy);
  if (routing == nullptr) {
    return invalid_argument(std::string("topology: strategy ") + name +
                            " needs routing vectors (one f32 [T, d] matrix per head), got none");
  }
  if (static_cast<int64_t>(routing->size()) != opt.n_heads) {
    return invalid_argument("topology: routing has " + std::to_string(routing->size()) +
                            " entries, expected n_heads=" + std::to_string(opt.n_heads));
  }
  for (int64_t h = 0; h < opt.n_heads; ++h) {
    const Routing& r = (*routing)[h];
    if (r.data == nullptr || r.T != T || r.d < 1) {
      return invalid_argument("topology: routing[" + std::to_string(h) + "] is [T=" + std::to_string(r.T) +
                              ", d=" + std::to_string(r.d) + "]" + (r.data ? "" : " with null data") +
                              ", expected non-null f32 [T=" + std::to_string(T) + ", d >= 1]");
    }
  }
  return Status::ok();
}

// Cycles of one head. `rng` is the head's fresh generator (left advanced for covering's top-up).
Expected<std::vector<Perm>> head_cycles(const TopologyOptions& opt, int64_t T, int64_t h, const Routing* r,
                                        Rng& rng) {
  const int64_t k = opt.num_cycles;
  std::vector<Perm> out;
  switch (opt.strategy) {
    case Strategy::kRandom:
      if (k > 1 && opt.edge_disjoint) return cycles_edge_disjoint(T, k, rng);
      for (int64_t c = 0; c < k; ++c) out.push_back(cycle_random(T, rng));
      return out;
    case Strategy::kEdgeDisjoint:
      return cycles_edge_disjoint(T, k, rng);
    case Strategy::kRegularPartition:
      for (int64_t c = 0; c < k; ++c) out.push_back(cycle_regular_partition(T, opt.regular_num_clusters, rng));
      return out;
    case Strategy::kCovering:
      return cycles_covering(T, k, opt.coverage_target, rng).cycles;
    case Strategy::kGreedy:
      for (int64_t c = 0; c < k; ++c) {
        const int64_t start = (997 * c + h) % T;
        BNA_ASSIGN_OR_RETURN(Perm p, cycle_greedy(r->data, T, r->d, start));
        out.push_back(std::move(p));
      }
      return out;
    case Strategy::kOnlineInsertion: {
      BNA_ASSIGN_OR_RETURN(Perm p, cycle_online_insertion(r->data, T, r->d));
      out.push_back(std::move(p));
      return out;
    }
  }
  return internal_error("topology: unhandled strategy");
}

// All heads in parallel; the first failing head's error (lowest h) is returned.
Expected<std::vector<std::vector<Perm>>> all_head_cycles(const TopologyOptions& opt, int64_t T,
                                                         const std::vector<Routing>* routing) {
  if (T < 1) return invalid_argument("topology: T=" + std::to_string(T) + ", expected T >= 1");
  if (strategy_needs_routing(opt.strategy)) BNA_RETURN_IF_ERROR(check_routing_entries(opt, T, routing));
  const int64_t H = opt.n_heads;
  std::vector<std::vector<Perm>> cycles(static_cast<size_t>(H));
  std::vector<Status> status(static_cast<size_t>(H));
  std::vector<Rng> rngs;
  rngs.reserve(static_cast<size_t>(H));
  for (int64_t h = 0; h < H; ++h) rngs.emplace_back(head_seed(opt.seed, h));
  parallel_for(0, H, [&](int64_t h) {
    const Routing* r = strategy_needs_routing(opt.strategy) ? &(*routing)[h] : nullptr;
    auto res = head_cycles(opt, T, h, r, rngs[h]);
    if (res.has_value()) cycles[h] = std::move(res).value();
    else status[h] = res.status();
  });
  for (const Status& st : status) BNA_RETURN_IF_ERROR(st);
  if (opt.strategy == Strategy::kCovering) {
    size_t kmax = 0;
    for (const auto& c : cycles) kmax = std::max(kmax, c.size());
    for (int64_t h = 0; h < H; ++h)
      while (cycles[h].size() < kmax) cycles[h].push_back(cycle_random(T, rngs[h]));
  }
  return cycles;
}

}  // namespace

const char* strategy_name(Strategy s) {
  switch (s) {
    case Strategy::kRandom: return "random";
    case Strategy::kGreedy: return "greedy";
    case Strategy::kOnlineInsertion: return "online_insertion";
    case Strategy::kRegularPartition: return "regular_partition";
    case Strategy::kEdgeDisjoint: return "edge_disjoint";
    case Strategy::kCovering: return "covering";
  }
  return "unknown";
}

Expected<Strategy> parse_strategy(std::string_view s) {
  std::string names;
  for (Strategy st : kAllStrategies) {
    if (s == strategy_name(st)) return st;
    names += names.empty() ? "" : ", ";
    names += strategy_name(st);
  }
  return invalid_argument("topology: strategy '" + std::string(s) + "' is unknown, expected one of " + names);
}

bool strategy_needs_routing(Strategy s) { return s == Strategy::kGreedy || s == Strategy::kOnlineInsertion; }

Expected<Topology> Topology::create(const TopologyOptions& opt) {
  auto bad = [](const std::string& what, const std::string& expected) {
    return invalid_argument("topology: " + what + ", expected " + expected);
  };
  if (opt.n_heads < 1) return bad("n_heads=" + std::to_string(opt.n_heads), "n_heads >= 1");
  if (opt.num_cycles < 1) return bad("num_cycles=" + std::to_string(opt.num_cycles), "num_cycles >= 1");
  if (opt.window < 0) return bad("window=" + std::to_string(opt.window), "window >= 0");
  if (opt.landmark_stride < 0) {
    return bad("landmark_stride=" + std::to_string(opt.landmark_stride), "landmark_stride >= 0 (0 = no landmarks)");
  }
  if (opt.regular_num_clusters < 1) {
    return bad("regular_num_clusters=" + std::to_string(opt.regular_num_clusters), "regular_num_clusters >= 1");
  }
  if (!(opt.coverage_target >= 0.0 && opt.coverage_target <= 1.0)) {
    return bad("coverage_target=" + std::to_string(opt.coverage_target), "0 <= coverage_target <= 1");
  }
  if (opt.strategy == Strategy::kOnlineInsertion && opt.num_cycles != 1) {
    return bad("num_cycles=" + std::to_string(opt.num_cycles) + " with strategy online_insertion",
               "num_cycles = 1 (insertion from [0] is deterministic, extra cycles would repeat it)");
  }
  bool known = false;
  for (Strategy st : kAllStrategies) known |= st == opt.strategy;
  if (!known) return bad("strategy code " + std::to_string(static_cast<int>(opt.strategy)), "a Strategy value");
  return Topology(opt);
}

Expected<std::vector<std::vector<Perm>>> Topology::cycles(int64_t T, const std::vector<Routing>* routing) const {
  return all_head_cycles(opt_, T, routing);
}

Expected<PermsOnly> Topology::construct_perms_only(int64_t T) const {
  if (strategy_needs_routing(opt_.strategy)) {
    return invalid_argument(std::string("topology: construct_perms_only does not support strategy ") +
                            strategy_name(opt_.strategy) + " (it needs routing vectors); use cycles() or construct()");
  }
  if (T < 1) return invalid_argument("topology: T=" + std::to_string(T) + ", expected T >= 1");
  if (T > INT32_MAX) return invalid_argument("topology: T=" + std::to_string(T) + ", expected T <= 2^31-1 (int32 ids)");
  const int64_t H = opt_.n_heads;
  PermsOnly out;
  out.H = H;
  out.T = T;
  std::vector<std::vector<Perm>> per_head;
  if (opt_.strategy == Strategy::kCovering) {
    // Covering needs every head's count before the buffer can be shaped.
    BNA_ASSIGN_OR_RETURN(per_head, all_head_cycles(opt_, T, nullptr));
    out.num_cycles = static_cast<int64_t>(per_head[0].size());
  } else {
    out.num_cycles = opt_.num_cycles;
  }
  const int64_t k = out.num_cycles;
  out.perm.resize(static_cast<size_t>(H * k * T));
  out.inv.resize(static_cast<size_t>(H * k * T));
  std::vector<Status> status(static_cast<size_t>(H));
  const bool independent_random =
      opt_.strategy == Strategy::kRandom && !(opt_.num_cycles > 1 && opt_.edge_disjoint);
  parallel_for(0, H, [&](int64_t h) {
    if (independent_random) {  // same draws as head_cycles, written in place (no per-cycle vectors)
      Rng rng(head_seed(opt_.seed, h));
      for (int64_t c = 0; c < k; ++c) {
        int32_t* perm = out.perm.data() + (h * k + c) * T;
        int32_t* inv = out.inv.data() + (h * k + c) * T;
        cycle_random_into(perm, T, rng);
        for (int64_t p = 0; p < T; ++p) inv[perm[p]] = static_cast<int32_t>(p);
      }
      return;
    }
    std::vector<Perm> local;
    if (per_head.empty()) {
      Rng rng(head_seed(opt_.seed, h));
      auto res = head_cycles(opt_, T, h, nullptr, rng);
      if (!res.has_value()) {
        status[h] = res.status();
        return;
      }
      local = std::move(res).value();
    }
    const std::vector<Perm>& cyc = per_head.empty() ? local : per_head[h];
    for (int64_t c = 0; c < k; ++c) {
      int32_t* perm = out.perm.data() + (h * k + c) * T;
      int32_t* inv = out.inv.data() + (h * k + c) * T;
      std::memcpy(perm, cyc[c].data(), static_cast<size_t>(T) * sizeof(int32_t));
      for (int64_t p = 0; p < T; ++p) inv[perm[p]] = static_cast<int32_t>(p);
    }
  });
  for (const Status& st : status) BNA_RETURN_IF_ERROR(st);
  return out;
}

}  // namespace bna::topo
