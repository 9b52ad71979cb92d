// Incremental decode graph (contract in bna/decode_graph.hpp). State per head and cycle is a doubly
// linked cycle (prev/next arrays, push_back amortised O(1)); rows are derived on demand with the
// structured ABI rule of src/graph/abi_rows.cpp (no rewires), which tests compare against
// graph::build_heads entry for entry.
#include "bna/decode_graph.hpp"

#include <algorithm>
#include <string>

namespace bna::topo {

const char* append_rule_name(AppendRule r) {
  return r == AppendRule::kRandomInsertion ? "random_insertion" : "online_insertion";
}

Expected<DecodeGraph> DecodeGraph::create(const DecodeGraphOptions& o) {
  auto bad = [](const std::string& got, const std::string& want) {
    return invalid_argument("decode_graph: " + got + ", expected " + want);
  };
  if (o.n_heads < 1) return bad("n_heads=" + std::to_string(o.n_heads), "n_heads >= 1");
  if (o.num_cycles < 1 || o.num_cycles > 63) return bad("num_cycles=" + std::to_string(o.num_cycles), "1 <= num_cycles <= 63");
  if (o.window < 0) return bad("window=" + std::to_string(o.window), "window >= 0");
  if (o.landmark_stride < 0) return bad("landmark_stride=" + std::to_string(o.landmark_stride), "landmark_stride >= 0");
  if (o.rule == AppendRule::kOnlineInsertion) {
    if (o.num_cycles != 1) return bad("num_cycles=" + std::to_string(o.num_cycles) + " with online_insertion", "num_cycles = 1");
    if (o.routing_dim < 1) return bad("routing_dim=" + std::to_string(o.routing_dim) + " with online_insertion", "routing_dim >= 1");
  }
  DecodeGraph g(o);
  g.next_.resize(static_cast<size_t>(o.n_heads * o.num_cycles));
  g.prev_.resize(g.next_.size());
  if (o.rule == AppendRule::kRandomInsertion) {
    for (int64_t h = 0; h < o.n_heads; ++h) g.rng_.emplace_back(head_seed(o.seed, h));
  } else {
    g.online_.resize(static_cast<size_t>(o.n_heads));
    g.routing_.resize(static_cast<size_t>(o.n_heads));
  }
  return g;
}

Status DecodeGraph::append(const float* routing) {
  const bool online = opt_.rule == AppendRule::kOnlineInsertion;
  if (online && routing == nullptr)
    return invalid_argument("decode_graph: append without routing vectors, expected f32 [n_heads, routing_dim] for online_insertion");
  if (!online && routing != nullptr)
    return invalid_argument("decode_graph: routing vectors given, expected none for random_insertion");
  if (T_ >= INT32_MAX) return invalid_argument("decode_graph: size " + std::to_string(T_) + " at the int32 index limit");
  const int64_t t = T_, C = opt_.num_cycles, d = opt_.routing_dim;
  const int32_t t32 = static_cast<int32_t>(t);
  for (int64_t h = 0; h < opt_.n_heads; ++h) {
    for (int64_t c = 0; c < C; ++c) {
      std::vector<int32_t>& nx = next_[static_cast<size_t>(h * C + c)];
      std::vector<int32_t>& pv = prev_[static_cast<size_t>(h * C + c)];
      nx.push_back(t32);
      pv.push_back(t32);
      if (t == 0) continue;
      int32_t a = 0;
      if (online) {
        std::vector<float>& r = routing_[static_cast<size_t>(h)];
        r.insert(r.end(), routing + h * d, routing + (h + 1) * d);
        OnlineInsertion& oi = online_[static_cast<size_t>(h)];
        BNA_RETURN_IF_ERROR(oi.insert_next(r.data(), t + 1, d));
        const Perm& p = oi.perm();
        const auto at = std::find(p.begin(), p.end(), t32) - p.begin();
        a = p[static_cast<size_t>(at == 0 ? t : at - 1)];
      } else {
        a = static_cast<int32_t>(rng_[static_cast<size_t>(h)].uniform_below(static_cast<uint64_t>(t)));
      }
      const int32_t b = nx[static_cast<size_t>(a)];
      nx[static_cast<size_t>(a)] = t32;
      pv[static_cast<size_t>(t)] = a;
      nx[static_cast<size_t>(t)] = b;
      pv[static_cast<size_t>(b)] = t32;
    }
    if (online && t == 0) {
      std::vector<float>& r = routing_[static_cast<size_t>(h)];
      r.insert(r.end(), routing + h * d, routing + (h + 1) * d);
      BNA_RETURN_IF_ERROR(online_[static_cast<size_t>(h)].insert_next(r.data(), 1, d));
    }
  }
  ++T_;
  return Status::ok();
}

Status DecodeGraph::append_many(int64_t n, const float* routing) {
  if (n < 0) return invalid_argument("decode_graph: append_many n=" + std::to_string(n) + ", expected n >= 0");
  const int64_t stride = opt_.n_heads * opt_.routing_dim;
  for (int64_t x = 0; x < n; ++x) BNA_RETURN_IF_ERROR(append(routing ? routing + x * stride : nullptr));
  return Status::ok();
}

int64_t DecodeGraph::max_row_len() const {
  const int64_t S = opt_.landmark_stride;
  return 2 * opt_.num_cycles + opt_.window + (S > 0 ? (T_ + S - 1) / S : 0) + 1;
}

int64_t DecodeGraph::row(int64_t h, int64_t i, int32_t* idx, uint8_t* type) const {
  BNA_ASSERT(h >= 0 && h < opt_.n_heads && i >= 0 && i < T_);
  constexpr auto kCycle = static_cast<uint8_t>(graph::EdgeType::kCycle);
  constexpr auto kWindow = static_cast<uint8_t>(graph::EdgeType::kWindow);
  constexpr auto kLandmark = static_cast<uint8_t>(graph::EdgeType::kLandmark);
  const int64_t C = opt_.num_cycles, W = opt_.window, S = opt_.landmark_stride;
  // Cycle neighbours: ascending union of every cycle's prev and next (<= 2C <= 126 entries).
  int32_t cn[128];
  int64_t c = 0;
  for (int64_t k = 0; k < C; ++k) {
    cn[c++] = prev_[static_cast<size_t>(h * C + k)][static_cast<size_t>(i)];
    cn[c++] = next_[static_cast<size_t>(h * C + k)][static_cast<size_t>(i)];
  }
  std::sort(cn, cn + c);
  c = std::unique(cn, cn + c) - cn;
  auto in_cn = [&](int64_t x) { return std::binary_search(cn, cn + c, static_cast<int32_t>(x)); };
  int64_t len = 0;
  for (int64_t k = 0; k < c; ++k) { idx[len] = cn[k]; type[len++] = kCycle; }
  // Past window [lo, i) minus cycle neighbours; landmarks inside it upgrade to LANDMARK.
  const int64_t lo = W > 0 ? std::max<int64_t>(0, i - W) : i;
  for (int64_t j = lo; j < i; ++j) {
    if (in_cn(j)) continue;
    idx[len] = static_cast<int32_t>(j);
    type[len++] = (S > 0 && j % S == 0) ? kLandmark : kWindow;
  }
  if (S > 0)
    for (int64_t j = 0; j < lo; j += S) {
      if (in_cn(j)) continue;
      idx[len] = static_cast<int32_t>(j);
      type[len++] = kLandmark;
    }
  if (opt_.include_self && !in_cn(i)) { idx[len] = static_cast<int32_t>(i); type[len++] = kWindow; }
  return len;
}

void DecodeGraph::cycle_neighbours(int64_t h, int64_t c, int64_t i, int32_t* prev, int32_t* next) const {
  BNA_ASSERT(h >= 0 && h < opt_.n_heads && c >= 0 && c < opt_.num_cycles && i >= 0 && i < T_);
  const size_t k = static_cast<size_t>(h * opt_.num_cycles + c);
  *prev = prev_[k][static_cast<size_t>(i)];
  *next = next_[k][static_cast<size_t>(i)];
}

Perm DecodeGraph::cycle(int64_t h, int64_t c) const {
  BNA_ASSERT(h >= 0 && h < opt_.n_heads && c >= 0 && c < opt_.num_cycles);
  const std::vector<int32_t>& nx = next_[static_cast<size_t>(h * opt_.num_cycles + c)];
  Perm p;
  p.reserve(static_cast<size_t>(T_));
  if (T_ == 0) return p;
  int32_t node = 0;
  for (int64_t k = 0; k < T_; ++k, node = nx[static_cast<size_t>(node)]) p.push_back(node);
  return p;
}

Expected<graph::GraphAbi> DecodeGraph::to_abi() const {
  if (T_ < 1) return invalid_argument("decode_graph: to_abi at size 0, expected at least one token");
  graph::RowRules rules;
  rules.T = T_;
  rules.window = opt_.window;
  rules.landmark_stride = opt_.landmark_stride;
  rules.include_self = opt_.include_self;
  std::vector<std::vector<std::vector<int32_t>>> cycles(static_cast<size_t>(opt_.n_heads));
  for (int64_t h = 0; h < opt_.n_heads; ++h)
    for (int64_t c = 0; c < opt_.num_cycles; ++c) cycles[static_cast<size_t>(h)].push_back(cycle(h, c));
  BNA_ASSIGN_OR_RETURN(graph::GraphAbi g, graph::build_heads(rules, cycles));
  g.meta.strategy = append_rule_name(opt_.rule);
  g.meta.window = opt_.window;
  g.meta.landmark_stride = opt_.landmark_stride;
  g.meta.num_cycles = static_cast<int>(opt_.num_cycles);
  g.meta.seed = opt_.seed;
  g.meta.include_self = opt_.include_self;
  return g;
}

}  // namespace bna::topo
