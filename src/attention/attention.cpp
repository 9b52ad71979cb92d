// Attention plan/run runtime (CPU backend): validates shapes against the graph, picks the path,
// sizes one workspace, and at run time converts bf16/f16 to f32 once per batch element and calls
// the f32 kernels of src/attention/cpu/. Decisions: the planner never falls back silently when a
// path is forced (error instead), and every automatic choice records its reason in Plan::reason.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attention/cpu/gqa_pack.hpp"
#include "attention/cpu/tile.hpp"
#include "attention/cuda_dispatch.hpp"  // [cuda-dispatch]
#include "attention/runtime.hpp"
#include "bna/threads.hpp"

namespace bna::attn {
namespace {

constexpr int64_t kMaxStreamsExtras = 8;  // above this many scattered keys per row, gather wins
constexpr int64_t kMaxHeadDim = 1024;     // head dims the CPU backend accepts (CUDA: 64 and 128)

std::string S(int64_t v) { return std::to_string(v); }

Status check_shape(const Shape& s) {
  if (s.B < 1) return invalid_argument("attention: B=" + S(s.B) + ", expected B >= 1");
  if (s.Hq < 1) return invalid_argument("attention: Hq=" + S(s.Hq) + ", expected Hq >= 1");
  if (s.Hkv < 1) return invalid_argument("attention: Hkv=" + S(s.Hkv) + ", expected Hkv >= 1");
  if (s.Hq % s.Hkv != 0)
    return invalid_argument("attention: Hq=" + S(s.Hq) + " is not a multiple of Hkv=" + S(s.Hkv));
  if (s.Tq < 1) return invalid_argument("attention: Tq=" + S(s.Tq) + ", expected Tq >= 1");
  if (s.Tk < 1) return invalid_argument("attention: Tk=" + S(s.Tk) + ", expected Tk >= 1");
  // Any head dim in range runs on the CPU (scalar tails past the SIMD width); the cap keeps the
  // per-thread scratch (O(dh) per key slot) and int32 key offsets far from overflow.
  if (s.dh < 1 || s.dh > kMaxHeadDim)
    return invalid_argument("attention: dh=" + S(s.dh) + ", expected 1 <= dh <= " + S(kMaxHeadDim));
  if (s.q_offset < 0 || s.q_offset + s.Tq > s.Tk)
    return invalid_argument("attention: q_offset=" + S(s.q_offset) + " with Tq=" + S(s.Tq) + ", expected 0 <= q_offset <= Tk - Tq = " + S(s.Tk - s.Tq));
  return {};
}

Status check_abi(const graph::GraphAbi& g, const Shape& s) {
  if (g.H != s.Hkv) return invalid_argument("attention: graph H=" + S(g.H) + " but Hkv=" + S(s.Hkv) + " (the graph lives on KV heads)");
  if (g.T != s.Tk) return invalid_argument("attention: k has Tk=" + S(s.Tk) + " but graph T=" + S(g.T));
  if (g.D < 1) return invalid_argument("attention: graph D=" + S(g.D) + ", expected D >= 1");
  const size_t n = static_cast<size_t>(g.H * g.T * g.D);
  if (g.neigh_idx.size() != n || g.edge_type.size() != n)
    return invalid_argument("attention: graph arrays hold " + S(g.neigh_idx.size()) + "/" + S(g.edge_type.size()) + " entries, expected H*T*D=" + S(n));
  for (size_t e = 0; e < n; ++e) {
    const int32_t j = g.neigh_idx[e];
    if (j < -1 || j >= g.T || g.edge_type[e] >= graph::kNumEdgeTypes) {
      const int64_t row = static_cast<int64_t>(e) / g.D;
      return invalid_argument("attention: graph head " + S(row / g.T) + " row " + S(row % g.T) + " col " + S(e % g.D) + ": index " + S(j) + " type " + S(g.edge_type[e]) + ", expected index in [-1, " + S(g.T) + ") and type < 5");
    }
  }
  return {};
}

Status check_perms(const topo::PermsOnly& P, const Shape& s, const Options& o) {
  if (P.H != s.Hkv) return invalid_argument("attention: perms H=" + S(P.H) + " but Hkv=" + S(s.Hkv) + " (cycles live on KV heads)");
  if (P.T != s.Tk) return invalid_argument("attention: k has Tk=" + S(s.Tk) + " but perms T=" + S(P.T));
  if (P.num_cycles < 1) return invalid_argument("attention: perms num_cycles=" + S(P.num_cycles) + ", expected >= 1");
  if (o.permute_window < 0) return invalid_argument("attention: permute_window=" + S(o.permute_window) + ", expected >= 0");
  const size_t n = static_cast<size_t>(P.H * P.num_cycles * P.T);
  if (P.perm.size() != n || P.inv.size() != n)
    return invalid_argument("attention: perms arrays hold " + S(P.perm.size()) + "/" + S(P.inv.size()) + " entries, expected H*num_cycles*T=" + S(n));
  for (int64_t hc = 0; hc < P.H * P.num_cycles; ++hc) {
    const int32_t* perm = P.perm.data() + hc * P.T;
    const int32_t* inv = P.inv.data() + hc * P.T;
    for (int64_t r = 0; r < P.T; ++r)
      if (perm[r] < 0 || perm[r] >= P.T || inv[perm[r]] != r)
        return invalid_argument("attention: perms head " + S(hc / P.num_cycles) + " cycle " + S(hc % P.num_cycles) + " rank " + S(r) + ": perm=" + S(perm[r]) + " is not a permutation with matching inv");
  }
  return {};
}

// routing = true (compressed): the layout may be longer than Tk (one layout built for the longest
// sequence serves every prefix: chunked prefill, decode) and may have H = 1 (shared by all heads).
Status check_blocks(const topo::BlockSparseLayout& L, const Shape& s, bool routing = false) {
  if (L.H != s.Hkv && !(routing && L.H == 1))
    return invalid_argument("attention: block layout H=" + S(L.H) + " but Hkv=" + S(s.Hkv) + (routing ? " (expected Hkv or 1)" : ""));
  if (routing && L.T < s.Tk)
    return invalid_argument("attention: k has Tk=" + S(s.Tk) + " but the routing block layout has T=" + S(L.T) + ", expected T >= Tk");
  if (!routing && L.T != s.Tk) return invalid_argument("attention: k has Tk=" + S(s.Tk) + " but block layout T=" + S(L.T));
  if (L.block_size < 1) return invalid_argument("attention: block layout Bs=" + S(L.block_size) + ", expected >= 1");
  const int64_t N = (L.T + L.block_size - 1) / L.block_size;
  if (L.n_blocks != N) return invalid_argument("attention: block layout N=" + S(L.n_blocks) + ", expected ceil(T/Bs)=" + S(N));
  if (static_cast<int64_t>(L.indptr.size()) != L.H * (N + 1) || static_cast<int64_t>(L.head_base.size()) != L.H)
    return invalid_argument("attention: block layout indptr/head_base sizes " + S(L.indptr.size()) + "/" + S(L.head_base.size()) + ", expected H*(N+1)=" + S(L.H * (N + 1)) + "/H=" + S(L.H));
  for (int64_t h = 0; h < L.H; ++h)
    for (int64_t b = 0; b < N; ++b) {
      const int64_t beg = L.head_base[h] + L.indptr[h * (N + 1) + b], end = L.head_base[h] + L.indptr[h * (N + 1) + b + 1];
      if (beg < 0 || end < beg || end > static_cast<int64_t>(L.indices.size()))
        return invalid_argument("attention: block layout head " + S(h) + " block " + S(b) + ": row [" + S(beg) + ", " + S(end) + ") outside indices of size " + S(L.indices.size()));
      for (int64_t e = beg; e < end; ++e)
        if (L.indices[e] < 0 || L.indices[e] >= N)
          return invalid_argument("attention: block layout head " + S(h) + " block " + S(b) + ": key block " + S(L.indices[e]) + " out of range [0, " + S(N) + ")");
    }
  return {};
}

}  // namespace

const char* path_name(Path p) {
  switch (p) {
    case Path::kDense: return "dense";
    case Path::kGather: return "gather";
    case Path::kPermuteWindow: return "permute_window";
    case Path::kStreams: return "streams";
    case Path::kBlockSparse: return "block_sparse";
    case Path::kCompressed: return "compressed";
    case Path::kDecode: return "decode";
  }
  return "?";
}

Expected<Path> parse_path(std::string_view s) {
  for (Path p : {Path::kDense, Path::kGather, Path::kPermuteWindow, Path::kStreams, Path::kBlockSparse,
                 Path::kCompressed, Path::kDecode})
    if (s == path_name(p)) return p;
  return invalid_argument("attention: path '" + std::string(s) +
                          "', expected one of dense, gather, permute_window, streams, block_sparse, compressed, decode");
}

const char* backend_name(Backend b) { return b == Backend::kCpu ? "cpu" : "cuda"; }

Expected<Backend> parse_backend(std::string_view s) {
  if (s == "cpu") return Backend::kCpu;
  if (s == "cuda") return Backend::kCuda;
  return invalid_argument("attention: backend '" + std::string(s) + "', expected cpu or cuda");
}

namespace {
std::string strides_string(const TensorView& t) {
  std::string r = "[";
  for (int d = 0; d < t.shape.rank; ++d) r += (d ? ", " : "") + std::to_string(t.strides[d]);
  return r + "]";
}
}  // namespace

bool strided_views_ok(const Plan& plan) {
  return plan.options.backend == Backend::kCuda && (plan.path == Path::kDense || plan.path == Path::kStreams) &&
         plan.shape.Tq == plan.shape.Tk && plan.shape.q_offset == 0;
}

Status check_tensor(const TensorView& t, const char* name, DType dtype, int64_t d0, int64_t d1, int64_t d2, int64_t d3,
                    bool allow_strided) {
  const bna::Shape want{d0, d1, d2, d3};
  if (t.data == nullptr) return invalid_argument(std::string("attention: ") + name + " is null");
  if (t.dtype != dtype)
    return invalid_argument(std::string("attention: ") + name + " has dtype " + dtype_name(t.dtype) + ", expected " + dtype_name(dtype));
  if (!(t.shape == want))
    return invalid_argument(std::string("attention: ") + name + " has shape " + t.shape.to_string() + ", expected " + want.to_string());
  if (allow_strided && t.strides[3] == 1) return {};
  if (!t.is_contiguous())
    return invalid_argument(std::string("attention: ") + name + " has strides " + strides_string(t) + ", expected contiguous " +
                            strides_string(TensorView(nullptr, t.dtype, t.shape)) +
                            (allow_strided ? " or a contiguous last dim" : " (strides: backend cuda, dense or streams, Tq == Tk)"));
  return {};
}

Status check_lse(const TensorView& t, const Shape& s) {
  const bna::Shape want{s.B, s.Hq, s.Tq};
  if (t.data == nullptr) return invalid_argument("attention: lse is null");
  if (t.dtype != DType::kF32) return invalid_argument(std::string("attention: lse has dtype ") + dtype_name(t.dtype) + ", expected f32");
  if (!(t.shape == want)) return invalid_argument("attention: lse has shape " + t.shape.to_string() + ", expected " + want.to_string());
  if (!t.is_contiguous())
    return invalid_argument("attention: lse has strides " + strides_string(t) + ", expected contiguous " +
                            strides_string(TensorView(nullptr, t.dtype, t.shape)));
  return {};
}

WorkspaceGuard::~WorkspaceGuard() { std::free(owned); }

Status acquire_workspace(const Plan& plan, void* user, WorkspaceGuard& ws) {
  const PlanState& st = *plan.state;
  if (omp_get_max_threads() > st.threads)
    return invalid_argument("attention: " + S(omp_get_max_threads()) + " threads but the plan sized its workspace for " + S(st.threads) + "; re-plan after set_num_threads");
  if (user) {
    if (reinterpret_cast<uintptr_t>(user) % 64 != 0) return invalid_argument("attention: workspace is not 64-byte aligned");
    ws.base = static_cast<float*>(user);
    return {};
  }
  if (plan.workspace_bytes == 0) return {};
  ws.owned = std::aligned_alloc(64, (plan.workspace_bytes + 63) & ~size_t(63));
  if (!ws.owned) return unavailable("attention: cannot allocate a workspace of " + S(plan.workspace_bytes) + " bytes");
  ws.base = static_cast<float*>(ws.owned);
  return {};
}

cpu::Problem make_problem(const Plan& plan) {
  const Shape& s = plan.shape;
  cpu::Problem p;
  p.Hq = s.Hq; p.Hkv = s.Hkv; p.Tq = s.Tq; p.Tk = s.Tk; p.dh = s.dh; p.q_offset = s.q_offset;
  p.scale = plan.options.scale > 0.0f ? plan.options.scale : 1.0f / std::sqrt(static_cast<float>(s.dh));
  p.edge_bias = plan.options.use_edge_bias ? plan.options.edge_bias.data() : nullptr;
  return p;
}

Expected<Plan> plan(const GraphSource& graph, const Shape& shape, const Options& opt) {
  BNA_RETURN_IF_ERROR(check_shape(shape));
  // [cuda-dispatch] backend cuda shares this planner; cuda_finish_plan (cuda_dispatch.cpp) checks and uploads.
  if (!(opt.scale >= 0.0f) || !std::isfinite(opt.scale))
    return invalid_argument("attention: scale=" + std::to_string(opt.scale) + ", expected a finite scale >= 0 (0 = 1/sqrt(dh))");
  if (opt.use_edge_bias)
    for (int e = 0; e < 5; ++e)
      if (!std::isfinite(opt.edge_bias[e]))
        return invalid_argument("attention: edge_bias[" + S(e) + "] is not finite");
  const int nsrc = (graph.abi != nullptr) + (graph.perms != nullptr) + (graph.blocks != nullptr) +
                   (graph.topology != nullptr) + (graph.decode != nullptr) + (graph.dense ? 1 : 0);
  if (nsrc != 1)
    return invalid_argument("attention: graph source sets " + S(nsrc) + " of abi/perms/blocks/topology/decode/dense, expected exactly one");

  Plan p;
  p.shape = shape;
  p.options = opt;
  auto st = std::make_shared<PlanState>();
  st->src = graph;
  const bool forced = opt.force_path.has_value();
  auto cannot = [&](const std::string& why) {
    return invalid_argument(std::string("attention: force_path=") + path_name(*opt.force_path) + " cannot apply: " + why);
  };
  if (forced && *opt.force_path == Path::kCompressed && graph.blocks == nullptr)
    return cannot("compressed needs GraphSource::blocks as its routing layout");
  if (forced && *opt.force_path == Path::kDecode && graph.abi == nullptr && graph.decode == nullptr)
    return cannot("decode needs GraphSource::decode or GraphSource::abi");
  bool path_sized = false;  // compressed / decode size their own scratch (plan_compressed, plan_decode)

  if (graph.dense) {
    if (forced && *opt.force_path != Path::kDense) return cannot("the graph source is dense");
    p.path = Path::kDense;
    p.reason = forced ? "forced dense" : "dense graph source";
  } else if (graph.perms) {
    BNA_RETURN_IF_ERROR(check_perms(*graph.perms, shape, opt));
    if (forced && *opt.force_path != Path::kPermuteWindow) return cannot("the graph source is perms-only");
    p.path = Path::kPermuteWindow;
    p.reason = "perms-only graph (" + S(graph.perms->num_cycles) + " cycle(s), w=" + S(opt.permute_window) + ")";
    const int64_t w = std::min<int64_t>(opt.permute_window, shape.Tk - 1);
    st->max_keys_per_row = std::max<int64_t>(cpu::kBq + 2 * w, graph.perms->num_cycles * (2 * w + 1));
  } else if (graph.decode) {
    if (forced && *opt.force_path != Path::kDecode) return cannot("the graph source is a decode graph (decode only)");
    BNA_RETURN_IF_ERROR(plan_decode(graph, shape, opt, p, *st));
    path_sized = true;
  } else if (graph.blocks && forced && *opt.force_path == Path::kCompressed) {
    BNA_RETURN_IF_ERROR(check_blocks(*graph.blocks, shape, /*routing=*/true));
    BNA_RETURN_IF_ERROR(plan_compressed(*graph.blocks, shape, opt, p, *st));
    path_sized = true;
  } else if (graph.blocks) {
    BNA_RETURN_IF_ERROR(check_blocks(*graph.blocks, shape));
    if (forced && *opt.force_path != Path::kBlockSparse) return cannot("the graph source is a block layout");
    p.path = Path::kBlockSparse;
    p.reason = "block layout (Bs=" + S(graph.blocks->block_size) + ")";
  } else if (graph.topology) {
    if (forced && *opt.force_path != Path::kStreams) return cannot("the graph source is a topology (streams only)");
    const topo::TopologyOptions& to = graph.topology->options();
    if (!to.include_self) return invalid_argument("attention: topology has include_self=false, expected self loops for streams");
    if (to.n_heads != shape.Hkv)
      return invalid_argument("attention: topology has n_heads=" + S(to.n_heads) + ", expected Hkv=" + S(shape.Hkv));
    BNA_ASSIGN_OR_RETURN(topo::PermsOnly perms, graph.topology->construct_perms_only(shape.Tk));
    BNA_ASSIGN_OR_RETURN(cpu::StreamsGraph sg, cpu::streams_from_perms(perms, to.window, to.landmark_stride));
    p.path = Path::kStreams;
    p.reason = std::string(forced ? "forced streams" : "topology") + ": band + landmarks + cycle neighbours (W=" +
               S(sg.W) + ", S=" + S(sg.S) + ", C=" + S(sg.C) + "), no ABI";
    st->max_keys_per_row = sg.C;
    st->streams = std::move(sg);
  } else {
    const graph::GraphAbi& g = *graph.abi;
    BNA_RETURN_IF_ERROR(check_abi(g, shape));
    if (forced && *opt.force_path != Path::kGather && *opt.force_path != Path::kStreams &&
        *opt.force_path != Path::kDecode)
      return cannot("the graph source is an ABI graph (gather, streams or decode)");
    if (forced && *opt.force_path == Path::kDecode) {
      BNA_RETURN_IF_ERROR(plan_decode(graph, shape, opt, p, *st));
      path_sized = true;
    }
    const bool want_gather = forced && *opt.force_path == Path::kGather;
    std::string why_not;
    if (!want_gather && !path_sized) {
      auto sg = cpu::streams_from_abi(g, g.meta.window, g.meta.landmark_stride);
      if (!sg) {
        why_not = sg.status().message();
      } else if (sg->C > kMaxStreamsExtras && !forced) {
        why_not = "C=" + S(sg->C) + " extra keys per row > " + S(kMaxStreamsExtras);
      } else {
        p.path = Path::kStreams;
        p.reason = (forced ? "forced streams" : "ABI rows = band + landmarks + extras") + std::string(" (W=") +
                   S(sg->W) + ", S=" + S(sg->S) + ", C=" + S(sg->C) + ")";
        st->max_keys_per_row = sg->C;
        st->streams = std::move(sg).value();
      }
      if (!why_not.empty() && forced) return cannot(why_not);
    }
    if (!st->streams && !path_sized) {
      p.path = Path::kGather;
      p.reason = want_gather ? "forced gather" : "ABI graph, streams rejected: " + why_not;
      st->max_keys_per_row = g.D;
    }
  }

  if (p.path == Path::kStreams && st->streams)
    st->path_floats = cpu::streams_workspace_floats(shape.Hkv, shape.Tk, shape.dh, st->streams->S);
  st->threads = std::max(1, omp_get_max_threads());
  if (opt.backend == Backend::kCpu && (p.path == Path::kDense || p.path == Path::kStreams)) {
    // Small Tq (decode, short chunks): pack the G query heads of a KV head into one query tile.
    st->gqa_pack = cpu::gqa_pack_heads(shape.Hq, shape.Hkv, shape.Tq, st->threads);
    if (st->gqa_pack > 1) {
      const int64_t G = shape.Hq / shape.Hkv, packs = (G + st->gqa_pack - 1) / st->gqa_pack;
      p.reason += "; GQA-packed decode tiles: " + S(st->gqa_pack) + " query heads x Tq=" + S(shape.Tq) +
                  " per tile (" + S(packs) + " pack(s) of G=" + S(G) + " per KV head)";
    }
  }
  if (!path_sized) st->scratch_floats_per_thread = round16(cpu::fwd_scratch_floats_per_thread(shape.dh, st->max_keys_per_row));
  if (shape.dtype != DType::kF32) {
    // q, o, dout, dq: q_elems each; k, v, dk, dv: kv_elems each (backward uses all eight).
    st->staging_floats = 4 * round16(q_elems(shape)) + 4 * round16(kv_elems(shape));
  }
  p.workspace_bytes = (st->staging_floats + st->scratch_floats_per_thread * st->threads + st->path_floats) * sizeof(float);
  if (opt.backend == Backend::kCuda) BNA_RETURN_IF_ERROR(cuda_finish_plan(p, *st));  // [cuda-dispatch]
  p.state = std::move(st);
  return p;
}

Status run(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
           const TensorView& lse, void* workspace) {
  return run_impl(plan, q, k, v, out, lse, workspace, nullptr);
}

Status run_impl(const Plan& plan, const TensorView& q, const TensorView& k, const TensorView& v, const TensorView& out,
                const TensorView& lse, void* workspace, CompressedCache* cache) {
  if (!plan.state) return invalid_argument("attention: plan has no state (use attn::plan to build it)");
  const Shape& s = plan.shape;
  const bool sv = strided_views_ok(plan);
  BNA_RETURN_IF_ERROR(check_tensor(q, "q", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(k, "k", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(v, "v", s.dtype, s.B, s.Hkv, s.Tk, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_tensor(out, "out", s.dtype, s.B, s.Hq, s.Tq, s.dh, sv));
  BNA_RETURN_IF_ERROR(check_lse(lse, s));
  if (plan.options.backend == Backend::kCuda) return cuda_run(plan, q, k, v, out, lse, workspace);  // [cuda-dispatch]
  const PlanState& st = *plan.state;
  WorkspaceGuard ws;
  BNA_RETURN_IF_ERROR(acquire_workspace(plan, workspace, ws));
  const bool f32 = s.dtype == DType::kF32;
  const int64_t nq = q_elems(s), nkv = kv_elems(s);
  float* qs = ws.base;
  float* ks = qs + round16(nq);
  float* vs = ks + round16(nkv);
  float* os = vs + round16(nkv);
  cpu::FwdScratch fs{ws.base + st.staging_floats, st.scratch_floats_per_thread};
  float* path_ws = ws.base + st.staging_floats + st.scratch_floats_per_thread * st.threads;
  const bool own_path = plan.path == Path::kCompressed || plan.path == Path::kDecode;
  if (own_path) BNA_RETURN_IF_ERROR(prepare_path(plan, path_ws));
  cpu::Problem p = make_problem(plan);
  const size_t esz = dtype_size(s.dtype);
  for (int64_t b = 0; b < s.B; ++b) {
    const char* qb = static_cast<const char*>(q.data) + b * nq * esz;
    const char* kb = static_cast<const char*>(k.data) + b * nkv * esz;
    const char* vb = static_cast<const char*>(v.data) + b * nkv * esz;
    char* ob = static_cast<char*>(out.data) + b * nq * esz;
    if (f32) {
      p.q = reinterpret_cast<const float*>(qb);
      p.k = reinterpret_cast<const float*>(kb);
      p.v = reinterpret_cast<const float*>(vb);
      p.o = reinterpret_cast<float*>(ob);
    } else {
      convert_to_float(s.dtype, qb, qs, nq);
      convert_to_float(s.dtype, kb, ks, nkv);
      convert_to_float(s.dtype, vb, vs, nkv);
      p.q = qs; p.k = ks; p.v = vs; p.o = os;
    }
    p.lse = lse.as<float>() + b * s.Hq * s.Tq;
    p.gqa_pack = st.gqa_pack;
    switch (plan.path) {
      case Path::kDense: cpu::dense_fwd(p, fs); break;
      case Path::kGather: cpu::gather_fwd(p, *st.src.abi, fs); break;
      case Path::kStreams: cpu::streams_fwd(p, *st.streams, fs, path_ws); break;
      case Path::kPermuteWindow:
        cpu::permute_window_fwd(p, *st.src.perms, plan.options.permute_window, plan.options.multi_cycle_mode,
                                plan.options.circular, fs);
        break;
      case Path::kBlockSparse: cpu::block_sparse_fwd(p, *st.src.blocks, fs); break;
      case Path::kCompressed:
      case Path::kDecode: BNA_RETURN_IF_ERROR(run_path_batch(plan, p, b, path_ws, fs, cache)); break;
      default: return unimplemented(std::string("attention: path ") + path_name(plan.path) + " has no CPU kernel");
    }
    if (!f32) convert_from_float(s.dtype, os, ob, nq);
  }
  return {};
}

}  // namespace bna::attn
