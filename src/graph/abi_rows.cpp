// Row construction for the graph ABI: build_head, build_heads, stack_heads.
// Two parallel passes over all (head, row) pairs: pass 1 computes every row length (D = the max),
// pass 2 writes each row and its padding straight into the [H, T, D] output, so memory is exactly
// H*T*D*5 bytes plus O(T) scratch per thread. Rows without rewires take a structured path: the
// cycle set is a sorted list of <= 2C nodes, the window is a contiguous range (landmarks inside it
// are upgraded in place) and the remaining landmarks are an arithmetic sequence, so no per-entry
// dedup lookups are needed. Rows with rewires take a generic path with a per-thread stamp array
// (generation counter + slot position), which implements the first-insertion/priority-upgrade rule
// literally. Both paths produce identical rows (tests compare them to a naive reference).
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <string>

#include "bna/graph.hpp"

namespace bna::graph {
namespace {

using Perms = std::vector<std::vector<int32_t>>;
// Below this many rows (or entries) a parallel region costs more than it saves, badly so on a
// loaded machine where the second thread may not be scheduled for a while.
constexpr int64_t kParallelMin = 1 << 14;

// Cycle neighbour union of every node of one head, CSR with a fixed stride of 2C.
struct CycleNeighbours {
  int64_t stride = 0;              // 2 * number of cycles
  std::vector<int32_t> nb;         // [T, stride], first cnt[i] entries valid, ascending, unique
  std::vector<uint8_t> cnt;        // [T]  (C <= 127 enforced)
  const int32_t* of(int64_t i) const { return nb.data() + i * stride; }
};

Status check_perm(const std::vector<int32_t>& perm, int64_t T, size_t h, size_t c, std::vector<uint8_t>& seen) {
  if (static_cast<int64_t>(perm.size()) != T)
    return invalid_argument("graph: head " + std::to_string(h) + " cycle " + std::to_string(c) + ": perm length " +
                            std::to_string(perm.size()) + ", expected T=" + std::to_string(T));
  std::fill(seen.begin(), seen.end(), 0);
  for (size_t p = 0; p < perm.size(); ++p) {
    const int32_t v = perm[p];
    if (v < 0 || v >= T)
      return invalid_argument("graph: head " + std::to_string(h) + " cycle " + std::to_string(c) + " position " +
                              std::to_string(p) + ": node " + std::to_string(v) + " out of range [0, " +
                              std::to_string(T) + ")");
    if (seen[v])
      return invalid_argument("graph: head " + std::to_string(h) + " cycle " + std::to_string(c) + " position " +
                              std::to_string(p) + ": node " + std::to_string(v) +
                              " repeated, expected a permutation of 0..T-1");
    seen[v] = 1;
  }
  return Status::ok();
}

CycleNeighbours cycle_neighbours(const Perms& perms, int64_t T) {
  CycleNeighbours cn;
  cn.stride = 2 * static_cast<int64_t>(perms.size());
  cn.nb.resize(static_cast<size_t>(T * cn.stride));
  cn.cnt.assign(static_cast<size_t>(T), 0);
  if (perms.empty()) return cn;
  // prev/next per cycle, written as the raw 2C candidates of each node; then sort + dedup per node.
  for (size_t c = 0; c < perms.size(); ++c) {
    const int32_t* p = perms[c].data();
#pragma omp parallel for schedule(static) if (T >= kParallelMin)
    for (int64_t pos = 0; pos < T; ++pos) {
      const int32_t node = p[pos];
      const int32_t nxt = p[pos + 1 == T ? 0 : pos + 1];
      const int32_t prv = p[pos == 0 ? T - 1 : pos - 1];
      cn.nb[node * cn.stride + 2 * c] = prv;
      cn.nb[node * cn.stride + 2 * c + 1] = nxt;
    }
  }
#pragma omp parallel for schedule(static) if (T >= kParallelMin)
  for (int64_t i = 0; i < T; ++i) {
    int32_t* b = cn.nb.data() + i * cn.stride;
    std::sort(b, b + cn.stride);
    cn.cnt[i] = static_cast<uint8_t>(std::unique(b, b + cn.stride) - b);
  }
  return cn;
}

struct HeadInput {
  CycleNeighbours cyc;
  const Perms* rewire = nullptr;  // [T] lists or null
};

struct Params {
  int64_t T, W, S;
  bool self;
};

// Count of x in sorted a[0..n) with lo <= x < hi.
inline int64_t count_in(const int32_t* a, int64_t n, int64_t lo, int64_t hi) {
  int64_t k = 0;
  for (int64_t t = 0; t < n; ++t) k += (a[t] >= lo && a[t] < hi);
  return k;
}

inline bool contains(const int32_t* a, int64_t n, int64_t x) {
  for (int64_t t = 0; t < n; ++t)
    if (a[t] == x) return true;
  return false;
}

// Structured row length (no rewires).
int64_t structured_len(const Params& p, const int32_t* cn, int64_t c, int64_t i) {
  const int64_t lo = p.W > 0 ? std::max<int64_t>(0, i - p.W) : i;
  int64_t len = c + (i - lo) - count_in(cn, c, lo, i);
  if (p.S > 0) {
    len += (lo + p.S - 1) / p.S;
    for (int64_t t = 0; t < c; ++t) len -= (cn[t] < lo && cn[t] % p.S == 0);
  }
  if (p.self && !contains(cn, c, i)) ++len;
  return len;
}

// Structured row write; returns the length. out/ty have room for the row.
int64_t structured_write(const Params& p, const int32_t* cn, int64_t c, int64_t i, int32_t* out, uint8_t* ty) {
  int64_t len = 0;
  for (int64_t t = 0; t < c; ++t) {
    out[len] = cn[t];
    ty[len++] = static_cast<uint8_t>(EdgeType::kCycle);
  }
  const int64_t lo = p.W > 0 ? std::max<int64_t>(0, i - p.W) : i;
  // Window [lo, i) minus cycle neighbours, in segments between the (sorted) cycle neighbours.
  int64_t a = lo;
  const int64_t win_start = len;
  for (int64_t t = 0; t <= c && a < i; ++t) {
    const int64_t b = t < c ? std::clamp<int64_t>(cn[t], a, i) : i;
    for (int64_t j = a; j < b; ++j) out[len + (j - a)] = static_cast<int32_t>(j);
    len += b - a;
    a = t < c ? std::max<int64_t>(a, static_cast<int64_t>(cn[t]) + 1) : i;
  }
  std::memset(ty + win_start, static_cast<int>(EdgeType::kWindow), static_cast<size_t>(len - win_start));
  if (p.S > 0) {
    // Landmarks inside the window were entered as WINDOW first and upgrade in place.
    for (int64_t k = win_start; k < len; ++k)
      if (out[k] % p.S == 0) ty[k] = static_cast<uint8_t>(EdgeType::kLandmark);
    for (int64_t j = 0; j < lo; j += p.S) {
      if (contains(cn, c, j)) continue;
      out[len] = static_cast<int32_t>(j);
      ty[len++] = static_cast<uint8_t>(EdgeType::kLandmark);
    }
  }
  if (p.self && !contains(cn, c, i)) {
    out[len] = static_cast<int32_t>(i);
    ty[len++] = static_cast<uint8_t>(EdgeType::kWindow);
  }
  return len;
}

// Generic row builder: literal first-insertion order with priority upgrade, via a stamp array.
struct Scratch {
  std::vector<uint32_t> stamp;  // [T] generation at which node was inserted
  std::vector<int32_t> slot;    // [T] its position in the row
  uint32_t gen = 0;
  void next_row() {
    if (++gen == 0) {  // wrapped: clear and restart
      std::fill(stamp.begin(), stamp.end(), 0);
      gen = 1;
    }
  }
};

template <bool kWrite>
int64_t generic_row(const Params& p, const int32_t* cn, int64_t c, const std::vector<int32_t>& rw, int64_t i,
                    Scratch& s, int32_t* out, uint8_t* ty) {
  s.next_row();
  int64_t len = 0;
  auto add = [&](int64_t j, EdgeType t) {
    if (s.stamp[j] == s.gen) {
      if constexpr (kWrite) {
        uint8_t& cur = ty[s.slot[j]];
        if (edge_priority(t) > edge_priority(static_cast<EdgeType>(cur))) cur = static_cast<uint8_t>(t);
      }
      return;
    }
    s.stamp[j] = s.gen;
    s.slot[j] = static_cast<int32_t>(len);
    if constexpr (kWrite) {
      out[len] = static_cast<int32_t>(j);
      ty[len] = static_cast<uint8_t>(t);
    }
    ++len;
  };
  for (int64_t t = 0; t < c; ++t) add(cn[t], EdgeType::kCycle);
  if (p.W > 0)
    for (int64_t j = std::max<int64_t>(0, i - p.W); j < i; ++j) add(j, EdgeType::kWindow);
  if (p.S > 0)
    for (int64_t j = 0; j < i; j += p.S) add(j, EdgeType::kLandmark);
  for (int32_t j : rw) add(j, EdgeType::kRewire);
  if (p.self) add(i, EdgeType::kWindow);
  return len;
}

Status check_rules(const RowRules& r) {
  if (r.T < 1 || r.T > INT32_MAX)
    return invalid_argument("graph: T=" + std::to_string(r.T) + ", expected 1 <= T <= 2147483647");
  if (r.window < 0) return invalid_argument("graph: window=" + std::to_string(r.window) + ", expected window >= 0");
  if (r.landmark_stride < 0)
    return invalid_argument("graph: landmark_stride=" + std::to_string(r.landmark_stride) +
                            ", expected landmark_stride >= 0 (0 = no landmarks)");
  return Status::ok();
}

}  // namespace

Status allocate_arrays(GraphAbi& g) {
  if (g.H < 1 || g.T < 1 || g.D < 1)
    return invalid_argument("graph: H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) + " D=" +
                            std::to_string(g.D) + ", expected all >= 1");
  if (g.H > INT64_MAX / g.T || g.H * g.T > INT64_MAX / 8 / g.D)
    return out_of_range("graph: H*T*D overflows for H=" + std::to_string(g.H) + " T=" + std::to_string(g.T) +
                        " D=" + std::to_string(g.D));
  const size_t n = static_cast<size_t>(g.H * g.T * g.D);
  try {
    // Reuses existing capacity: only growth beyond the current size touches (zeroes) memory.
    g.neigh_idx.resize(n);
    g.edge_type.resize(n);
  } catch (const std::exception&) {
    g.neigh_idx = {};
    g.edge_type = {};
    return out_of_range("graph: cannot allocate " + std::to_string(n * 5) + " bytes for H=" + std::to_string(g.H) +
                        " T=" + std::to_string(g.T) + " D=" + std::to_string(g.D));
  }
  return Status::ok();
}

const char* edge_type_name(EdgeType t) {
  switch (t) {
    case EdgeType::kPad: return "pad";
    case EdgeType::kCycle: return "cycle";
    case EdgeType::kWindow: return "window";
    case EdgeType::kLandmark: return "landmark";
    case EdgeType::kRewire: return "rewire";
  }
  return "unknown";
}

int edge_priority(EdgeType t) {
  switch (t) {
    case EdgeType::kWindow: return 0;
    case EdgeType::kLandmark: return 1;
    case EdgeType::kRewire: return 2;
    case EdgeType::kCycle: return 3;
    default: return -1;
  }
}

Expected<GraphAbi> build_heads(const RowRules& rules, const std::vector<Perms>& cycle_perms_by_head,
                               const std::vector<Perms>* rewire_by_head) {
  GraphAbi g;
  BNA_RETURN_IF_ERROR(build_heads_into(g, rules, cycle_perms_by_head, rewire_by_head));
  return g;
}

Status build_heads_into(GraphAbi& g, const RowRules& rules, const std::vector<Perms>& cycle_perms_by_head,
                        const std::vector<Perms>* rewire_by_head) {
  BNA_RETURN_IF_ERROR(check_rules(rules));
  const int64_t H = static_cast<int64_t>(cycle_perms_by_head.size());
  const int64_t T = rules.T;
  if (H < 1) return invalid_argument("graph: cycle_perms_by_head has 0 heads, expected >= 1");
  if (rewire_by_head && static_cast<int64_t>(rewire_by_head->size()) != H)
    return invalid_argument("graph: rewire_by_head has " + std::to_string(rewire_by_head->size()) +
                            " heads, expected H=" + std::to_string(H));
  try {
    std::vector<HeadInput> heads(static_cast<size_t>(H));
    {
      std::vector<uint8_t> seen(static_cast<size_t>(T));
      for (int64_t h = 0; h < H; ++h) {
        const Perms& perms = cycle_perms_by_head[h];
        if (perms.size() > 127)
          return invalid_argument("graph: head " + std::to_string(h) + " has " + std::to_string(perms.size()) +
                                  " cycles, expected at most 127");
        for (size_t c = 0; c < perms.size(); ++c) BNA_RETURN_IF_ERROR(check_perm(perms[c], T, h, c, seen));
        if (rewire_by_head) {
          const Perms& rw = (*rewire_by_head)[h];
          if (!rw.empty() && static_cast<int64_t>(rw.size()) != T)
            return invalid_argument("graph: head " + std::to_string(h) + " rewire has " +
                                    std::to_string(rw.size()) + " lists, expected 0 or T=" + std::to_string(T));
          for (size_t i = 0; i < rw.size(); ++i)
            for (size_t k = 0; k < rw[i].size(); ++k)
              if (rw[i][k] < 0 || rw[i][k] >= T)
                return invalid_argument("graph: head " + std::to_string(h) + " rewire row " + std::to_string(i) +
                                        " entry " + std::to_string(k) + ": node " + std::to_string(rw[i][k]) +
                                        " out of range [0, " + std::to_string(T) + ")");
          if (!rw.empty()) heads[h].rewire = &rw;
        }
        heads[h].cyc = cycle_neighbours(perms, T);
      }
    }
    const Params p{T, rules.window, rules.landmark_stride, rules.include_self};
    const int64_t rows = H * T;
    constexpr int64_t kGrain = 64;

    // Pass 1: row lengths -> D.
    int64_t D = 1;
#pragma omp parallel reduction(max : D) if (rows >= kParallelMin)
    {
      Scratch s;
      bool have_scratch = false;
#pragma omp for schedule(dynamic, 1)
      for (int64_t r0 = 0; r0 < rows; r0 += kGrain) {
        const int64_t r1 = std::min(rows, r0 + kGrain);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t h = r / T, i = r % T;
          const HeadInput& hi = heads[h];
          const int32_t* cn = hi.cyc.of(i);
          const int64_t c = hi.cyc.cnt.empty() ? 0 : hi.cyc.cnt[i];
          int64_t len;
          if (hi.rewire && !(*hi.rewire)[i].empty()) {
            if (!have_scratch) {
              s.stamp.assign(static_cast<size_t>(T), 0);
              s.slot.assign(static_cast<size_t>(T), 0);
              have_scratch = true;
            }
            len = generic_row<false>(p, cn, c, (*hi.rewire)[i], i, s, nullptr, nullptr);
          } else {
            len = structured_len(p, cn, c, i);
          }
          D = std::max(D, len);
        }
      }
    }

    // Pass 2: write rows + padding into g's arrays (grown only if too small; first-touch page faults
    // of fresh memory cost more than the row writes on small VMs, so reuse pays).
    g.H = H;
    g.T = T;
    g.D = D;
    BNA_RETURN_IF_ERROR(allocate_arrays(g));
#pragma omp parallel if (rows * D >= kParallelMin * 16)
    {
      Scratch s;
      bool have_scratch = false;
#pragma omp for schedule(dynamic, 1)
      for (int64_t r0 = 0; r0 < rows; r0 += kGrain) {
        const int64_t r1 = std::min(rows, r0 + kGrain);
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t h = r / T, i = r % T;
          const HeadInput& hi = heads[h];
          const int32_t* cn = hi.cyc.of(i);
          const int64_t c = hi.cyc.cnt.empty() ? 0 : hi.cyc.cnt[i];
          int32_t* out = g.neigh_idx.data() + r * D;
          uint8_t* ty = g.edge_type.data() + r * D;
          int64_t len;
          if (hi.rewire && !(*hi.rewire)[i].empty()) {
            if (!have_scratch) {
              s.stamp.assign(static_cast<size_t>(T), 0);
              s.slot.assign(static_cast<size_t>(T), 0);
              have_scratch = true;
            }
            len = generic_row<true>(p, cn, c, (*hi.rewire)[i], i, s, out, ty);
          } else {
            len = structured_write(p, cn, c, i, out, ty);
          }
          std::fill(out + len, out + D, -1);
          std::memset(ty + len, static_cast<int>(EdgeType::kPad), static_cast<size_t>(D - len));
        }
      }
    }

    g.meta = GraphMeta{};
    g.meta.window = rules.window;
    g.meta.landmark_stride = rules.landmark_stride;
    g.meta.include_self = rules.include_self;
    int num_cycles = 0;
    for (const Perms& ps : cycle_perms_by_head) num_cycles = std::max(num_cycles, static_cast<int>(ps.size()));
    g.meta.num_cycles = num_cycles;
    g.meta.cycle_perms = cycle_perms_by_head;
    return Status::ok();
  } catch (const std::bad_alloc&) {
    return out_of_range("graph: out of memory building H=" + std::to_string(H) + " T=" + std::to_string(T) +
                        " rows");
  }
}

Expected<GraphAbi> build_head(const RowRules& rules, const Perms& cycle_perms, const Perms* rewire) {
  std::vector<Perms> by_head{cycle_perms};
  if (rewire) {
    std::vector<Perms> rw{*rewire};
    return build_heads(rules, by_head, &rw);
  }
  return build_heads(rules, by_head, nullptr);
}

Expected<GraphAbi> stack_heads(const std::vector<GraphAbi>& heads) {
  if (heads.empty()) return invalid_argument("graph: stack_heads got 0 graphs, expected >= 1");
  const int64_t T = heads[0].T;
  int64_t H = 0, D = 1;
  bool perms_complete = true;
  for (size_t k = 0; k < heads.size(); ++k) {
    const GraphAbi& g = heads[k];
    if (g.T != T)
      return invalid_argument("graph: stack_heads graph " + std::to_string(k) + " has T=" + std::to_string(g.T) +
                              ", expected T=" + std::to_string(T) + " like graph 0");
    if (g.H < 1 || g.D < 1 || static_cast<int64_t>(g.neigh_idx.size()) != g.H * g.T * g.D ||
        g.edge_type.size() != g.neigh_idx.size())
      return invalid_argument("graph: stack_heads graph " + std::to_string(k) + " has H=" + std::to_string(g.H) +
                              " T=" + std::to_string(g.T) + " D=" + std::to_string(g.D) + " but " +
                              std::to_string(g.neigh_idx.size()) + " indices / " +
                              std::to_string(g.edge_type.size()) + " types, expected H*T*D of each");
    H += g.H;
    D = std::max(D, g.D);
    perms_complete = perms_complete && static_cast<int64_t>(g.meta.cycle_perms.size()) == g.H;
  }
  try {
    GraphAbi out;
    out.H = H;
    out.T = T;
    out.D = D;
    out.meta = heads[0].meta;
    out.meta.cycle_perms.clear();
    BNA_RETURN_IF_ERROR(allocate_arrays(out));
    int64_t h0 = 0;
    for (const GraphAbi& g : heads) {
      const int64_t rows = g.H * T;
#pragma omp parallel for schedule(static) if (rows * D >= kParallelMin * 16)
      for (int64_t r = 0; r < rows; ++r) {
        int32_t* o = out.neigh_idx.data() + (h0 * T + r) * D;
        uint8_t* ot = out.edge_type.data() + (h0 * T + r) * D;
        std::memcpy(o, g.neigh_idx.data() + r * g.D, static_cast<size_t>(g.D) * 4);
        std::memcpy(ot, g.edge_type.data() + r * g.D, static_cast<size_t>(g.D));
        std::fill(o + g.D, o + D, -1);
        std::memset(ot + g.D, static_cast<int>(EdgeType::kPad), static_cast<size_t>(D - g.D));
      }
      if (perms_complete)
        out.meta.cycle_perms.insert(out.meta.cycle_perms.end(), g.meta.cycle_perms.begin(), g.meta.cycle_perms.end());
      out.meta.num_cycles = std::max(out.meta.num_cycles, g.meta.num_cycles);
      h0 += g.H;
    }
    return out;
  } catch (const std::bad_alloc&) {
    return out_of_range("graph: out of memory stacking H=" + std::to_string(H) + " T=" + std::to_string(T) +
                        " D=" + std::to_string(D));
  }
}

}  // namespace bna::graph
