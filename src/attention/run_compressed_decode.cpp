// Planner and runtime pieces of the compressed and decode paths (hooked into plan()/run() of
// attention.cpp). Workspace after the generic staging and per-thread scratch:
//   kCompressed: summaries k, v [n_blocks, Hkv, dh] of one batch element (unused with a cache);
//   kDecode:     row key lists idx int32 [Hkv, Tq, max_keys], types uint8, lengths int32 [Hkv, Tq],
//                then split partials [Hq, Tq, n_splits, dh + 2].
// Decode rows depend only on the graph, so they are built once per run() and serve every batch element.
#include <omp.h>

#include <algorithm>
#include <string>

#include "attention/cpu/compressed.hpp"
#include "attention/cpu/decode.hpp"
#include "attention/runtime.hpp"
#include "bna/threads.hpp"

namespace bna::attn {

struct CompressedCache::Impl {
  std::vector<cpu::CompressedSummaries> per_batch;
};

CompressedCache::CompressedCache() : impl_(std::make_unique<Impl>()) {}
CompressedCache::~CompressedCache() = default;
CompressedCache::CompressedCache(CompressedCache&&) noexcept = default;
CompressedCache& CompressedCache::operator=(CompressedCache&&) noexcept = default;
void CompressedCache::reset() {
  if (!impl_) impl_ = std::make_unique<Impl>();
  impl_->per_batch.clear();
}
int64_t CompressedCache::blocks() const {
  return impl_ && !impl_->per_batch.empty() ? impl_->per_batch[0].n_blocks : 0;
}

namespace {

std::string S(int64_t v) { return std::to_string(v); }

struct DecodeLayout {
  int64_t max_keys = 0, rows = 0;
  size_t idx = 0, type = 0, len = 0, part = 0, total = 0;  // offsets in floats
};

DecodeLayout decode_layout(const Shape& s, int64_t max_keys, int64_t n_splits) {
  DecodeLayout L;
  L.max_keys = max_keys;
  L.rows = s.Hkv * s.Tq;
  L.idx = 0;
  L.type = L.idx + round16(static_cast<size_t>(L.rows * max_keys));
  L.len = L.type + round16(static_cast<size_t>((L.rows * max_keys + 3) / 4));
  L.part = L.len + round16(static_cast<size_t>(L.rows));
  L.total = L.part + round16(cpu::decode_partial_floats(s.Hq, s.Tq, s.dh, n_splits));
  return L;
}


}  // namespace

Status plan_compressed(const topo::BlockSparseLayout& routing, const Shape& s, const Options& o, Plan& p, PlanState& st) {
  if (o.compressed_tail < 1)
    return invalid_argument("attention: compressed_tail=" + S(o.compressed_tail) + ", expected >= 1");
  if (o.compressed_block != routing.block_size)
    return invalid_argument("attention: compressed_block=" + S(o.compressed_block) + " but the routing layout has Bs=" +
                            S(routing.block_size) + " (they must be equal)");
  if (o.use_edge_bias)
    return invalid_argument("attention: use_edge_bias=true on the compressed path, expected false (summaries have no edge type)");
  const int64_t max_keys = cpu::compressed_max_keys(routing, o.compressed_tail, s.Tk);
  const int64_t last = s.q_offset + s.Tq - 1;
  st.compressed_blocks = std::max<int64_t>(0, last - o.compressed_tail + 1) / routing.block_size;
  st.max_keys_per_row = max_keys;
  st.scratch_floats_per_thread = round16(cpu::compressed_scratch_floats_per_thread(max_keys));
  st.path_floats = 2 * round16(static_cast<size_t>(st.compressed_blocks * s.Hkv * s.dh));
  p.path = Path::kCompressed;
  p.reason = "forced compressed: raw tail L=" + S(o.compressed_tail) + " + routed block means (Bs=" +
             S(routing.block_size) + ", <= " + S(max_keys) + " keys per row)";
  return {};
}

Status plan_decode(const GraphSource& g, const Shape& s, const Options& o, Plan& p, PlanState& st) {
  (void)o;
  int64_t max_keys = 0;
  if (g.decode) {
    const topo::DecodeGraph& dg = *g.decode;
    if (dg.heads() != s.Hkv)
      return invalid_argument("attention: decode graph H=" + S(dg.heads()) + " but Hkv=" + S(s.Hkv) + " (the graph lives on KV heads)");
    if (dg.size() != s.Tk)
      return invalid_argument("attention: k has Tk=" + S(s.Tk) + " but decode graph T=" + S(dg.size()) + " (append tokens, then plan)");
    max_keys = dg.max_row_len();
  } else {
    max_keys = g.abi->D;
  }
  const int threads = std::max(1, omp_get_max_threads());
  st.max_keys_per_row = max_keys;
  st.decode_splits = cpu::decode_num_splits(s.Hkv * s.Tq, max_keys, threads);
  st.scratch_floats_per_thread = round16(cpu::decode_scratch_floats_per_thread(s.dh, max_keys, st.decode_splits));
  st.path_floats = decode_layout(s, max_keys, st.decode_splits).total;
  p.path = Path::kDecode;
  p.reason = std::string(g.decode ? "decode graph" : "forced decode on an ABI graph") + ": Tq=" + S(s.Tq) + " rows of <= " +
             S(max_keys) + " keys, split-K x" + S(st.decode_splits) + " with LSE merge";
  return {};
}

Status prepare_path(const Plan& plan, float* path) {
  const PlanState& st = *plan.state;
  const Shape& s = plan.shape;
  if (plan.path != Path::kDecode) return {};
  if (st.src.decode && st.src.decode->size() != s.Tk)
    return invalid_argument("attention: decode graph has T=" + S(st.src.decode->size()) + " tokens but the plan has Tk=" +
                            S(s.Tk) + "; re-plan after appending");
  if (st.src.decode && st.src.decode->max_row_len() > st.max_keys_per_row)
    return internal_error("attention: decode graph rows grew past the planned bound");
  const DecodeLayout L = decode_layout(s, st.max_keys_per_row, st.decode_splits);
  int32_t* idx = reinterpret_cast<int32_t*>(path + L.idx);
  uint8_t* ty = reinterpret_cast<uint8_t*>(path + L.type);
  int32_t* len = reinterpret_cast<int32_t*>(path + L.len);
  const int64_t M = L.max_keys;
  // Serial when small (a decode step has a handful of rows): a thread team costs more than it saves.
#pragma omp parallel for schedule(static) if (L.rows * M > (1 << 15))
  for (int64_t r = 0; r < L.rows; ++r) {
    const int64_t h = r / s.Tq, pos = s.q_offset + r % s.Tq;
    int32_t* ri = idx + r * M;
    uint8_t* rt = ty + r * M;
    int64_t n = 0;
    if (st.src.decode) {
      const int64_t all = st.src.decode->row(h, pos, ri, rt);
      for (int64_t c = 0; c < all; ++c)
        if (ri[c] <= pos) { ri[n] = ri[c]; rt[n++] = rt[c]; }
    } else {
      const graph::GraphAbi& g = *st.src.abi;
      const int32_t* gi = g.row(h, pos);
      const uint8_t* gt = g.row_types(h, pos);
      for (int64_t c = 0; c < g.D && gi[c] >= 0; ++c)
        if (gi[c] <= pos) { ri[n] = gi[c]; rt[n++] = gt[c]; }
    }
    len[r] = static_cast<int32_t>(n);
  }
  return {};
}

Status run_path_batch(const Plan& plan, const cpu::Problem& p, int64_t b, float* path, const cpu::FwdScratch& fs,
                      CompressedCache* cache) {
  const PlanState& st = *plan.state;
  const Shape& s = plan.shape;
  if (plan.path == Path::kDecode) {
    const DecodeLayout L = decode_layout(s, st.max_keys_per_row, st.decode_splits);
    cpu::DecodeRows rows{reinterpret_cast<int32_t*>(path + L.idx), reinterpret_cast<uint8_t*>(path + L.type),
                         reinterpret_cast<int32_t*>(path + L.len), L.max_keys};
    cpu::decode_fwd(p, rows, st.decode_splits, path + L.part, fs);
    return {};
  }
  const topo::BlockSparseLayout& routing = *st.src.blocks;
  const int64_t Bs = routing.block_size;
  cpu::SummaryView view;
  if (cache) {
    cpu::CompressedSummaries& cs = cache->impl()->per_batch[static_cast<size_t>(b)];
    BNA_RETURN_IF_ERROR(cpu::extend_summaries(cs, p.k, p.v, s.Hkv, s.Tk, s.dh, Bs));
    view = cpu::view_of(cs);
  } else {
    const int64_t n = st.compressed_blocks;
    float* sk = path;
    float* sv = path + round16(static_cast<size_t>(n * s.Hkv * s.dh));
    cpu::summarise_blocks(p.k, p.v, s.Hkv, s.Tk, s.dh, Bs, 0, n, sk, sv);
    view = {sk, sv, s.Hkv, s.dh, Bs, n};
  }
  return cpu::compressed_fwd(p, routing, plan.options.compressed_tail, view, &fs);
}

Status run_compressed(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v,
                      const TensorView& out, const TensorView& lse, CompressedCache& cache, void* workspace) {
  if (!plan.state) return invalid_argument("attention: plan has no state (use attn::plan to build it)");
  if (plan.path != Path::kCompressed)
    return invalid_argument(std::string("attention: run_compressed on a plan of path ") + path_name(plan.path) +
                            ", expected compressed");
  const Shape& s = plan.shape;
  if (!cache.impl()) cache.reset();
  auto& pb = cache.impl()->per_batch;
  if (pb.empty()) pb.resize(static_cast<size_t>(s.B));
  if (static_cast<int64_t>(pb.size()) != s.B)
    return invalid_argument("attention: compressed cache holds B=" + S(static_cast<int64_t>(pb.size())) +
                            " sequences but the plan has B=" + S(s.B) + " (reset() for a new batch)");
  const int64_t Bs = plan.state->src.blocks->block_size;
  const cpu::CompressedSummaries& c0 = pb[0];
  if (c0.Bs != 0 && (c0.Bs != Bs || c0.Hkv != s.Hkv || c0.dh != s.dh))
    return invalid_argument("attention: compressed cache built for Bs=" + S(c0.Bs) + " Hkv=" + S(c0.Hkv) + " dh=" +
                            S(c0.dh) + ", the plan has Bs=" + S(Bs) + " Hkv=" + S(s.Hkv) + " dh=" + S(s.dh));
  return run_impl(plan, q, k, v, out, lse, workspace, &cache);
}

}  // namespace bna::attn
