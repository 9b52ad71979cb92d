// The reference GPT on the CPU: parameter table, init, forward, backward and KV-cache decoding.
// All parameters live in one flat f32 buffer (and the gradients in a second one of the same layout),
// so the optimizer, clipping and checkpoints treat the model as a list of named slices.
// Attention goes through bna::attn: q/k/v are scattered from the fused QKV projection [B*T, (Hq+2Hkv)dh]
// into [B, H, T, dh], run() / run_backward() are called per layer with a cached plan, and the output
// is gathered back to token-major [B*T, C]. KV-cache decoding plans only a prefill from position 0
// (the same plan as forward at that length); every later row attends its row of the layer's fixed
// T = seq_len structure directly in the cache (model/cached_attention.hpp): O(Hq * keys * dh) per
// token and layer, no truncated graph, no plan, no copy of the cache.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <tuple>

#include <omp.h>

#include "bna/model.hpp"
#include "bna/nn.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/topology.hpp"
#include "model/cached_attention.hpp"
#include "nn/par.hpp"

namespace bna::model {

namespace {
std::string S(int64_t v) { return std::to_string(v); }
}  // namespace

// ---- per-layer attention structures ------------------------------------------------------------

struct LayerAttn {
  AttnSpec spec;
  int64_t layer = 0;
  graph::GraphAbi full;               // graph: T = seq_len
  topo::BlockSparseLayout full_bsr;   // block: T = seq_len
  // Truncated copies for shorter sequences (by T) and plans (by B, Tq, Tk, q_offset). Plans point into
  // these maps (node-stable); both are cleared together when they grow past a few entries.
  std::map<int64_t, graph::GraphAbi> trunc;
  std::map<int64_t, topo::BlockSparseLayout> trunc_bsr;
  std::map<std::tuple<int64_t, int64_t, int64_t, int64_t>, attn::Plan> plans;
  std::string last_path;
  int64_t max_row_keys = 0;  // graph: D; block: the most key blocks of any row * Bs; dense: 0 (= length)
};

namespace {

// First t rows of g with entries >= t dropped (rows stay in order, pads at the end, same D).
graph::GraphAbi truncate_graph(const graph::GraphAbi& g, int64_t t) {
  graph::GraphAbi r;
  r.H = g.H; r.T = t; r.D = g.D;
  r.meta = g.meta;
  r.meta.cycle_perms.clear();  // permutations of the full length no longer describe these rows
  r.neigh_idx.assign(static_cast<size_t>(g.H * t * g.D), -1);
  r.edge_type.assign(static_cast<size_t>(g.H * t * g.D), 0);
  for (int64_t h = 0; h < g.H; ++h)
    for (int64_t i = 0; i < t; ++i) {
      const int32_t* src = g.row(h, i);
      const uint8_t* ty = g.row_types(h, i);
      int32_t* dst = r.neigh_idx.data() + (h * t + i) * g.D;
      uint8_t* dty = r.edge_type.data() + (h * t + i) * g.D;
      int64_t n = 0;
      for (int64_t d = 0; d < g.D && src[d] >= 0; ++d)
        if (src[d] < t) { dst[n] = src[d]; dty[n] = ty[d]; ++n; }
    }
  return r;
}

// First ceil(t / Bs) block rows of L (their entries are <= the row's block, so all stay in range).
topo::BlockSparseLayout truncate_bsr(const topo::BlockSparseLayout& L, int64_t t) {
  topo::BlockSparseLayout r;
  r.H = L.H; r.T = t; r.block_size = L.block_size;
  r.n_blocks = (t + L.block_size - 1) / L.block_size;
  for (int64_t h = 0; h < L.H; ++h) {
    r.head_base.push_back(static_cast<int64_t>(r.indices.size()));
    r.indptr.push_back(0);
    for (int64_t b = 0; b < r.n_blocks; ++b) {
      for (const int32_t* p = L.row_begin(h, b); p != L.row_end(h, b); ++p) r.indices.push_back(*p);
      r.indptr.push_back(static_cast<int32_t>(r.indices.size() - r.head_base.back()));
    }
  }
  return r;
}

Status build_layer(LayerAttn& la, const GptConfig& cfg, int64_t hkv) {
  const AttnSpec& s = la.spec;
  const int64_t T = cfg.seq_len;
  if (s.kind == AttnKind::kGraph) {
    std::vector<std::vector<std::vector<int32_t>>> perms(static_cast<size_t>(hkv));
    if (s.cycles > 0) {
      topo::TopologyOptions to;
      to.n_heads = hkv;
      BNA_ASSIGN_OR_RETURN(to.strategy, topo::parse_strategy(s.strategy));
      to.num_cycles = s.cycles;
      to.seed = cfg.seed + 1337 * static_cast<uint64_t>(la.layer);
      to.window = s.window;
      to.landmark_stride = s.landmark_stride;
      BNA_ASSIGN_OR_RETURN(auto topo, topo::Topology::create(to));
      BNA_ASSIGN_OR_RETURN(auto cyc, topo.cycles(T));
      for (int64_t h = 0; h < hkv; ++h)
        for (auto& p : cyc[h]) perms[h].push_back(std::move(p));
    }
    graph::RowRules rr;
    rr.T = T;
    rr.window = s.window;
    rr.landmark_stride = s.landmark_stride;
    rr.include_self = true;
    BNA_ASSIGN_OR_RETURN(la.full, graph::build_heads(rr, perms));
    la.full.meta.window = s.window;
    la.full.meta.landmark_stride = s.landmark_stride;
    la.full.meta.num_cycles = static_cast<int>(s.cycles);
    la.full.meta.strategy = s.cycles > 0 ? s.strategy : "none";
    la.full.meta.seed = cfg.seed + 1337 * static_cast<uint64_t>(la.layer);
  } else if (s.kind == AttnKind::kBlock) {
    topo::ButterflyOptions bo;
    bo.layer = la.layer;
    BNA_ASSIGN_OR_RETURN(bo.rule, topo::parse_partner_rule(s.rule));
    bo.partner_count = s.partner_count;
    bo.local_blocks = s.local_blocks;
    bo.sink_count = s.sink_count;
    BNA_ASSIGN_OR_RETURN(la.full_bsr, topo::butterfly_block_layout(T, s.block_size, hkv, bo));
  }
  if (s.kind == AttnKind::kGraph) la.max_row_keys = la.full.D;
  if (s.kind == AttnKind::kBlock) {
    const topo::BlockSparseLayout& L = la.full_bsr;
    for (int64_t h = 0; h < L.H; ++h)
      for (int64_t b = 0; b < L.n_blocks; ++b)
        la.max_row_keys = std::max<int64_t>(la.max_row_keys, (L.row_end(h, b) - L.row_begin(h, b)) * L.block_size);
  }
  return Status::ok();
}

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

// ---- saved activations --------------------------------------------------------------------------

struct LayerAct {
  std::vector<float> x_in, ln1, ln1_mean, ln1_rstd, q, k, v, att, lse, atty, x_mid, ln2, ln2_mean, ln2_rstd,
      fc_pre, fc_act;
};

struct Activations {
  int64_t B = 0, T = 0;
  bool has_targets = false;
  int64_t counted = 0;
  std::vector<int32_t> idx, targets;
  std::vector<LayerAct> layers;
  std::vector<float> x_final, lnf, lnf_mean, lnf_rstd, logits, losses;
  std::vector<float> qkv, dqkv;  // scratch [B*T, (Hq+2Hkv)dh]
  // KV-cache decoding scratch, grown on demand: per thread G * keys scores and one key list.
  std::vector<float> dec_scores;
  std::vector<int32_t> dec_keys;
};

// ---- construction -------------------------------------------------------------------------------

Gpt::Gpt() = default;
Gpt::Gpt(Gpt&&) noexcept = default;
Gpt& Gpt::operator=(Gpt&&) noexcept = default;
Gpt::~Gpt() = default;

Expected<Gpt> Gpt::create(const GptConfig& cfg_in) {
  BNA_RETURN_IF_ERROR(validate_config(cfg_in));
  Gpt m;
  m.cfg_ = cfg_in;
  GptConfig& c = m.cfg_;
  if (c.n_kv_heads == 0) c.n_kv_heads = c.n_heads;
  if (c.attn.empty()) c.attn.push_back(AttnSpec{});
  if (c.attn.size() == 1 && c.n_layers > 1) c.attn.assign(static_cast<size_t>(c.n_layers), c.attn[0]);
  const int64_t C = c.d_model, V = c.vocab_size, dh = C / c.n_heads;
  const int64_t qkv_out = (c.n_heads + 2 * c.n_kv_heads) * dh;
  int64_t off = 0;
  auto add = [&](std::string name, std::vector<int64_t> shape, bool decay) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    m.params_.push_back(ParamInfo{std::move(name), std::move(shape), off, n, decay});
    off += n;
  };
  add("wte", {V, C}, false);
  add("wpe", {c.seq_len, C}, false);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "h." + S(l) + ".";
    add(p + "ln1.w", {C}, false);
    add(p + "ln1.b", {C}, false);
    add(p + "attn.qkv", {qkv_out, C}, true);
    add(p + "attn.proj", {C, C}, true);
    add(p + "ln2.w", {C}, false);
    add(p + "ln2.b", {C}, false);
    add(p + "mlp.fc", {4 * C, C}, true);
    add(p + "mlp.proj", {C, 4 * C}, true);
  }
  add("lnf.w", {C}, false);
  add("lnf.b", {C}, false);
  add("head", {V, C}, true);
  m.w_.assign(static_cast<size_t>(off), 0.0f);
  m.g_.assign(static_cast<size_t>(off), 0.0f);
  Rng rng(c.seed);
  for (const ParamInfo& p : m.params_) {
    float* w = m.w_.data() + p.offset;
    const bool ln_gain = p.shape.size() == 1 && p.name.size() >= 2 && p.name.compare(p.name.size() - 2, 2, ".w") == 0;
    if (p.shape.size() == 1) {
      std::fill(w, w + p.numel, ln_gain ? 1.0f : 0.0f);  // LayerNorm gain 1, bias 0
    } else {
      for (int64_t i = 0; i < p.numel; ++i) w[i] = static_cast<float>(0.02 * rng.normal());
    }
  }
  m.act_ = std::make_unique<Activations>();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    auto la = std::make_unique<LayerAttn>();
    la->spec = c.attn[static_cast<size_t>(l)];
    la->layer = l;
    BNA_RETURN_IF_ERROR(build_layer(*la, c, c.n_kv_heads));
    m.layers_.push_back(std::move(la));
  }
  return m;
}

const ParamInfo* Gpt::find_param(std::string_view name) const {
  for (const ParamInfo& p : params_)
    if (p.name == name) return &p;
  return nullptr;
}

void Gpt::zero_grad() { std::fill(g_.begin(), g_.end(), 0.0f); }

std::string Gpt::attention_path(int64_t layer) const {
  if (layer < 0 || layer >= static_cast<int64_t>(layers_.size())) return "";
  return layers_[layer]->last_path;
}

// ---- attention ----------------------------------------------------------------------------------

Expected<const attn::Plan*> Gpt::plan_for(int64_t l, int64_t B, int64_t Tq, int64_t Tk, int64_t q_offset) {
  LayerAttn& la = *layers_[l];
  const auto key = std::make_tuple(B, Tq, Tk, q_offset);
  auto it = la.plans.find(key);
  if (it != la.plans.end()) {
    la.last_path = attn::path_name(it->second.path);
    return &it->second;
  }
  if (la.plans.size() >= 16) {  // forward at many lengths (evaluation, uncached generation); keep it small
    la.plans.clear();
    la.trunc.clear();
    la.trunc_bsr.clear();
  }
  attn::Shape sh;
  sh.B = B; sh.Hq = cfg_.n_heads; sh.Hkv = cfg_.n_kv_heads; sh.Tq = Tq; sh.Tk = Tk;
  sh.dh = cfg_.d_model / cfg_.n_heads; sh.q_offset = q_offset; sh.dtype = DType::kF32;
  attn::Options opt;
  attn::GraphSource src;
  BNA_RETURN_IF_ERROR(layer_source(l, Tk, src, opt));
  BNA_ASSIGN_OR_RETURN(attn::Plan p, attn::plan(src, sh, opt));
  auto ins = la.plans.emplace(key, std::move(p)).first;
  la.last_path = attn::path_name(ins->second.path);
  return &ins->second;
}

const graph::GraphAbi* Gpt::layer_graph(int64_t l) const {
  if (l < 0 || l >= static_cast<int64_t>(layers_.size()) || layers_[l]->spec.kind != AttnKind::kGraph) return nullptr;
  return &layers_[l]->full;
}

Expected<attn::Plan> Gpt::plan_layer(int64_t l, int64_t B, int64_t T, DType dtype, attn::Backend backend) {
  if (l < 0 || l >= cfg_.n_layers) return invalid_argument("gpt plan_layer: layer " + S(l) + " out of range");
  if (T < 1 || T > cfg_.seq_len) return invalid_argument("gpt plan_layer: T=" + S(T) + ", expected [1, seq_len]");
  attn::Shape sh;
  sh.B = B; sh.Hq = cfg_.n_heads; sh.Hkv = cfg_.n_kv_heads; sh.Tq = T; sh.Tk = T;
  sh.dh = cfg_.d_model / cfg_.n_heads; sh.dtype = dtype;
  attn::Options opt;
  opt.backend = backend;
  attn::GraphSource src;
  BNA_RETURN_IF_ERROR(layer_source(l, T, src, opt));
  return attn::plan(src, sh, opt);
}

// The graph source of layer l at Tk keys (truncated copies cached) and its forced path, if any.
Status Gpt::layer_source(int64_t l, int64_t Tk, attn::GraphSource& src, attn::Options& opt) {
  LayerAttn& la = *layers_[l];
  switch (la.spec.kind) {
    case AttnKind::kDense: src.dense = true; break;
    case AttnKind::kGraph:
      if (Tk == cfg_.seq_len) {
        src.abi = &la.full;
      } else {
        auto t = la.trunc.find(Tk);
        if (t == la.trunc.end()) t = la.trunc.emplace(Tk, truncate_graph(la.full, Tk)).first;
        src.abi = &t->second;
      }
      if (!la.spec.path.empty()) {
        BNA_ASSIGN_OR_RETURN(auto p, attn::parse_path(la.spec.path));
        opt.force_path = p;
      }
      break;
    case AttnKind::kBlock:
      if (Tk == cfg_.seq_len) {
        src.blocks = &la.full_bsr;
      } else {
        auto t = la.trunc_bsr.find(Tk);
        if (t == la.trunc_bsr.end()) t = la.trunc_bsr.emplace(Tk, truncate_bsr(la.full_bsr, Tk)).first;
        src.blocks = &t->second;
      }
      break;
  }
  return Status::ok();
}

Status Gpt::attn_forward(int64_t l, int64_t B, int64_t Tq, int64_t Tk, int64_t q_offset, const float* q,
                         const float* k, const float* v, float* out, float* lse) {
  const auto t0 = Clock::now();
  BNA_ASSIGN_OR_RETURN(const attn::Plan* p, plan_for(l, B, Tq, Tk, q_offset));
  const int64_t Hq = cfg_.n_heads, Hkv = cfg_.n_kv_heads, dh = cfg_.d_model / Hq;
  TensorView qv(const_cast<float*>(q), DType::kF32, bna::Shape{B, Hq, Tq, dh});
  TensorView kv(const_cast<float*>(k), DType::kF32, bna::Shape{B, Hkv, Tk, dh});
  TensorView vv(const_cast<float*>(v), DType::kF32, bna::Shape{B, Hkv, Tk, dh});
  TensorView ov(out, DType::kF32, bna::Shape{B, Hq, Tq, dh});
  TensorView lv(lse, DType::kF32, bna::Shape{B, Hq, Tq});
  Status st = attn::run(*p, qv, kv, vv, ov, lv);
  attn_ms_ += ms_since(t0);
  return st;
}

Status Gpt::attn_backward(int64_t l, int64_t B, int64_t T, const float* q, const float* k, const float* v,
                          const float* out, const float* lse, const float* dout, float* dq, float* dk,
                          float* dv) {
  const auto t0 = Clock::now();
  BNA_ASSIGN_OR_RETURN(const attn::Plan* p, plan_for(l, B, T, T, 0));
  const int64_t Hq = cfg_.n_heads, Hkv = cfg_.n_kv_heads, dh = cfg_.d_model / Hq;
  auto view = [](const float* d, bna::Shape s) { return TensorView(const_cast<float*>(d), DType::kF32, s); };
  Status st = attn::run_backward(*p, view(q, {B, Hq, T, dh}), view(k, {B, Hkv, T, dh}), view(v, {B, Hkv, T, dh}),
                                 view(out, {B, Hq, T, dh}), view(lse, {B, Hq, T}), view(dout, {B, Hq, T, dh}),
                                 view(dq, {B, Hq, T, dh}), view(dk, {B, Hkv, T, dh}), view(dv, {B, Hkv, T, dh}));
  attn_ms_ += ms_since(t0);
  return st;
}

// ---- forward ------------------------------------------------------------------------------------

namespace {

// qkv [B*T, (Hq+2Hkv)dh] -> q [B, Hq, T, dh], k, v [B, Hkv, T, dh].
void split_qkv(const float* qkv, float* q, float* k, float* v, int64_t B, int64_t T, int64_t Hq, int64_t Hkv,
               int64_t dh) {
  const int64_t row = (Hq + 2 * Hkv) * dh;
  nn::detail::par_rows(B * T, row, [&](int64_t bt) {
    const int64_t b = bt / T, t = bt % T;
    const float* src = qkv + bt * row;
    for (int64_t h = 0; h < Hq; ++h) std::memcpy(q + ((b * Hq + h) * T + t) * dh, src + h * dh, dh * 4);
    for (int64_t h = 0; h < Hkv; ++h) {
      std::memcpy(k + ((b * Hkv + h) * T + t) * dh, src + (Hq + h) * dh, dh * 4);
      std::memcpy(v + ((b * Hkv + h) * T + t) * dh, src + (Hq + Hkv + h) * dh, dh * 4);
    }
  });
}

void merge_qkv(const float* dq, const float* dk, const float* dv, float* dqkv, int64_t B, int64_t T, int64_t Hq,
               int64_t Hkv, int64_t dh) {
  const int64_t row = (Hq + 2 * Hkv) * dh;
  nn::detail::par_rows(B * T, row, [&](int64_t bt) {
    const int64_t b = bt / T, t = bt % T;
    float* dst = dqkv + bt * row;
    for (int64_t h = 0; h < Hq; ++h) std::memcpy(dst + h * dh, dq + ((b * Hq + h) * T + t) * dh, dh * 4);
    for (int64_t h = 0; h < Hkv; ++h) {
      std::memcpy(dst + (Hq + h) * dh, dk + ((b * Hkv + h) * T + t) * dh, dh * 4);
      std::memcpy(dst + (Hq + Hkv + h) * dh, dv + ((b * Hkv + h) * T + t) * dh, dh * 4);
    }
  });
}

// [B, H, T, dh] <-> [B*T, H*dh]
void heads_to_tokens(const float* x, float* y, int64_t B, int64_t H, int64_t T, int64_t dh) {
  nn::detail::par_rows(B * T, H * dh, [&](int64_t bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t h = 0; h < H; ++h) std::memcpy(y + bt * H * dh + h * dh, x + ((b * H + h) * T + t) * dh, dh * 4);
  });
}
void tokens_to_heads(const float* y, float* x, int64_t B, int64_t H, int64_t T, int64_t dh) {
  nn::detail::par_rows(B * T, H * dh, [&](int64_t bt) {
    const int64_t b = bt / T, t = bt % T;
    for (int64_t h = 0; h < H; ++h) std::memcpy(x + ((b * H + h) * T + t) * dh, y + bt * H * dh + h * dh, dh * 4);
  });
}

void add_inplace(float* y, const float* x, int64_t n) {
  nn::detail::par_rows((n + 4095) / 4096, 4096, [&](int64_t c) {
    const int64_t e = std::min(n, (c + 1) * 4096);
    for (int64_t i = c * 4096; i < e; ++i) y[i] += x[i];
  });
}

template <class T> void fit(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) != n) v.resize(static_cast<size_t>(n));
}

}  // namespace

Expected<float> Gpt::forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T) {
  const GptConfig& c = cfg_;
  if (B < 1) return invalid_argument("gpt forward: B=" + S(B) + ", expected B >= 1");
  if (T < 1 || T > c.seq_len)
    return invalid_argument("gpt forward: T=" + S(T) + ", expected 1 <= T <= seq_len=" + S(c.seq_len));
  const int64_t n = B * T, C = c.d_model, V = c.vocab_size, Hq = c.n_heads, Hkv = c.n_kv_heads, dh = C / Hq;
  const int64_t qkv_out = (Hq + 2 * Hkv) * dh;
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= V)
      return invalid_argument("gpt forward: token " + S(idx[i]) + " at position " + S(i) + ", expected [0, " + S(V) + ")");
    if (targets != nullptr && targets[i] >= V)
      return invalid_argument("gpt forward: target " + S(targets[i]) + " at position " + S(i) + ", expected < " + S(V));
  }
  Activations& a = *act_;
  a.B = B; a.T = T;
  a.has_targets = targets != nullptr;
  a.idx.assign(idx, idx + n);
  if (targets != nullptr) a.targets.assign(targets, targets + n);
  a.layers.resize(static_cast<size_t>(c.n_layers));
  fit(a.qkv, n * qkv_out);
  const float* W = w_.data();
  auto P = [&](const std::string& name) { return W + find_param(name)->offset; };
  std::vector<float> x(static_cast<size_t>(n * C));
  nn::embedding_fwd(idx, P("wte"), P("wpe"), x.data(), n, T, C);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LayerAct& L = a.layers[l];
    const std::string p = "h." + S(l) + ".";
    L.x_in = x;
    fit(L.ln1, n * C); fit(L.ln1_mean, n); fit(L.ln1_rstd, n);
    nn::layernorm_fwd(x.data(), P(p + "ln1.w"), P(p + "ln1.b"), L.ln1.data(), L.ln1_mean.data(), L.ln1_rstd.data(), n, C);
    nn::linear_fwd(L.ln1.data(), P(p + "attn.qkv"), nullptr, a.qkv.data(), n, C, qkv_out);
    fit(L.q, n * Hq * dh); fit(L.k, n * Hkv * dh); fit(L.v, n * Hkv * dh);
    split_qkv(a.qkv.data(), L.q.data(), L.k.data(), L.v.data(), B, T, Hq, Hkv, dh);
    fit(L.att, n * Hq * dh); fit(L.lse, B * Hq * T);
    BNA_RETURN_IF_ERROR(attn_forward(l, B, T, T, 0, L.q.data(), L.k.data(), L.v.data(), L.att.data(), L.lse.data()));
    fit(L.atty, n * C);
    heads_to_tokens(L.att.data(), L.atty.data(), B, Hq, T, dh);
    std::vector<float> y(static_cast<size_t>(n * C));
    nn::linear_fwd(L.atty.data(), P(p + "attn.proj"), nullptr, y.data(), n, C, C);
    add_inplace(x.data(), y.data(), n * C);
    L.x_mid = x;
    fit(L.ln2, n * C); fit(L.ln2_mean, n); fit(L.ln2_rstd, n);
    nn::layernorm_fwd(x.data(), P(p + "ln2.w"), P(p + "ln2.b"), L.ln2.data(), L.ln2_mean.data(), L.ln2_rstd.data(), n, C);
    fit(L.fc_pre, n * 4 * C); fit(L.fc_act, n * 4 * C);
    nn::linear_fwd(L.ln2.data(), P(p + "mlp.fc"), nullptr, L.fc_pre.data(), n, C, 4 * C);
    nn::gelu_fwd(L.fc_pre.data(), L.fc_act.data(), n * 4 * C);
    nn::linear_fwd(L.fc_act.data(), P(p + "mlp.proj"), nullptr, y.data(), n, 4 * C, C);
    add_inplace(x.data(), y.data(), n * C);
  }
  a.x_final = std::move(x);
  fit(a.lnf, n * C); fit(a.lnf_mean, n); fit(a.lnf_rstd, n);
  nn::layernorm_fwd(a.x_final.data(), P("lnf.w"), P("lnf.b"), a.lnf.data(), a.lnf_mean.data(), a.lnf_rstd.data(), n, C);
  fit(a.logits, n * V);
  nn::linear_fwd(a.lnf.data(), P("head"), nullptr, a.logits.data(), n, C, V);
  if (targets == nullptr) return 0.0f;
  fit(a.losses, n);
  a.counted = nn::softmax_cross_entropy_fwd(a.logits.data(), targets, a.logits.data(), a.losses.data(), n, V);
  if (a.counted == 0) return invalid_argument("gpt forward: every target is negative (nothing to score)");
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += a.losses[i];
  return static_cast<float>(sum / static_cast<double>(a.counted));
}

const float* Gpt::logits() const { return act_->logits.data(); }

// ---- backward -----------------------------------------------------------------------------------

Status Gpt::backward(float loss_scale) {
  Activations& a = *act_;
  if (!a.has_targets || a.B == 0) return invalid_argument("gpt backward: no forward with targets to differentiate");
  const GptConfig& c = cfg_;
  const int64_t B = a.B, T = a.T, n = B * T, C = c.d_model, V = c.vocab_size, Hq = c.n_heads, Hkv = c.n_kv_heads;
  const int64_t dh = C / Hq, qkv_out = (Hq + 2 * Hkv) * dh;
  const float* W = w_.data();
  float* G = g_.data();
  auto P = [&](const std::string& name) { return W + find_param(name)->offset; };
  auto D = [&](const std::string& name) { return G + find_param(name)->offset; };

  std::vector<float> dloss(static_cast<size_t>(n), loss_scale / static_cast<float>(a.counted));
  // probs -> dlogits in place (the forward's logits buffer is consumed).
  nn::softmax_cross_entropy_bwd(a.logits.data(), a.targets.data(), dloss.data(), a.logits.data(), n, V);
  a.has_targets = false;
  std::vector<float> dlnf(static_cast<size_t>(n * C));
  nn::linear_bwd(a.lnf.data(), P("head"), a.logits.data(), dlnf.data(), D("head"), nullptr, n, C, V);
  std::vector<float> dx(static_cast<size_t>(n * C), 0.0f);
  nn::layernorm_bwd(a.x_final.data(), P("lnf.w"), a.lnf_mean.data(), a.lnf_rstd.data(), dlnf.data(), dx.data(),
                    D("lnf.w"), D("lnf.b"), n, C);
  std::vector<float> dbig(static_cast<size_t>(n * 4 * C)), dsmall(static_cast<size_t>(n * C));
  std::vector<float> dq(static_cast<size_t>(n * Hq * dh)), dk(static_cast<size_t>(n * Hkv * dh)),
      dv(static_cast<size_t>(n * Hkv * dh)), dout(static_cast<size_t>(n * Hq * dh));
  fit(a.dqkv, n * qkv_out);
  for (int64_t l = c.n_layers - 1; l >= 0; --l) {
    LayerAct& L = a.layers[l];
    const std::string p = "h." + S(l) + ".";
    // MLP: x_out = x_mid + gelu(ln2 W1^T) W2^T
    nn::linear_bwd(L.fc_act.data(), P(p + "mlp.proj"), dx.data(), dbig.data(), D(p + "mlp.proj"), nullptr, n, 4 * C, C);
    nn::gelu_bwd(L.fc_pre.data(), dbig.data(), dbig.data(), n * 4 * C);
    nn::linear_bwd(L.ln2.data(), P(p + "mlp.fc"), dbig.data(), dsmall.data(), D(p + "mlp.fc"), nullptr, n, C, 4 * C);
    nn::layernorm_bwd(L.x_mid.data(), P(p + "ln2.w"), L.ln2_mean.data(), L.ln2_rstd.data(), dsmall.data(), dx.data(),
                      D(p + "ln2.w"), D(p + "ln2.b"), n, C);
    // Attention: x_mid = x_in + attn(ln1) Wo^T
    nn::linear_bwd(L.atty.data(), P(p + "attn.proj"), dx.data(), dsmall.data(), D(p + "attn.proj"), nullptr, n, C, C);
    tokens_to_heads(dsmall.data(), dout.data(), B, Hq, T, dh);
    BNA_RETURN_IF_ERROR(attn_backward(l, B, T, L.q.data(), L.k.data(), L.v.data(), L.att.data(), L.lse.data(),
                                      dout.data(), dq.data(), dk.data(), dv.data()));
    merge_qkv(dq.data(), dk.data(), dv.data(), a.dqkv.data(), B, T, Hq, Hkv, dh);
    nn::linear_bwd(L.ln1.data(), P(p + "attn.qkv"), a.dqkv.data(), dsmall.data(), D(p + "attn.qkv"), nullptr, n, C, qkv_out);
    nn::layernorm_bwd(L.x_in.data(), P(p + "ln1.w"), L.ln1_mean.data(), L.ln1_rstd.data(), dsmall.data(), dx.data(),
                      D(p + "ln1.w"), D(p + "ln1.b"), n, C);
  }
  nn::embedding_bwd(a.idx.data(), dx.data(), D("wte"), D("wpe"), n, T, C);
  return Status::ok();
}

// ---- KV-cache decoding --------------------------------------------------------------------------

Gpt::KvCache Gpt::new_cache() const {
  KvCache kc;
  kc.capacity = cfg_.seq_len;
  const int64_t dh = cfg_.d_model / cfg_.n_heads;
  kc.k.assign(static_cast<size_t>(cfg_.n_layers), std::vector<float>(static_cast<size_t>(cfg_.n_kv_heads * kc.capacity * dh), 0.0f));
  kc.v = kc.k;
  return kc;
}

namespace {

// Keys of the query at position pos on KV head h: row pos of the layer's structure at T = seq_len
// with entries > pos dropped, the rows forward() attends at any length >= pos + 1 (model.hpp).
// Writes them to keys and returns their count; dense returns pos + 1 and writes nothing (keys 0..pos).
int64_t row_keys(const LayerAttn& la, int64_t h, int64_t pos, int32_t* keys) {
  switch (la.spec.kind) {
    case AttnKind::kDense: return pos + 1;
    case AttnKind::kGraph: {
      const graph::GraphAbi& g = la.full;
      const int32_t* r = g.row(h, pos);
      int64_t n = 0;
      for (int64_t d = 0; d < g.D && r[d] >= 0; ++d)
        if (r[d] <= pos) keys[n++] = r[d];
      return n;
    }
    case AttnKind::kBlock: {
      const topo::BlockSparseLayout& L = la.full_bsr;
      const int64_t Bs = L.block_size;
      int64_t n = 0;
      for (const int32_t* b = L.row_begin(h, pos / Bs); b != L.row_end(h, pos / Bs); ++b)
        for (int64_t j = *b * Bs, e = std::min<int64_t>((*b + 1) * Bs, pos + 1); j < e; ++j) keys[n++] = static_cast<int32_t>(j);
      return n;
    }
  }
  return 0;
}

// Element operations above which the rows of a decode call are spread over the threads. A decode step
// of a sparse layer (a few KV heads x ~100 keys x dh) stays serial: on a loaded machine waking the
// team costs more than the work (see nn/par.hpp).
constexpr int64_t kParallelAttendWork = int64_t{1} << 20;

// Queries q [Hq, n, dh] at positions t0 .. t0+n-1 against layer l's cache rows (keys up to t0+n-1
// already written) -> out [Hq, n, dh]. Work items are (query row, KV head).
void cached_layer_attention(const LayerAttn& la, const Gpt::KvCache& cache, int64_t l, int64_t t0, int64_t n,
                            int64_t Hq, int64_t Hkv, int64_t dh, const float* q, float* out, Activations& a) {
  const int64_t G = Hq / Hkv, items = n * Hkv;
  const int64_t max_keys = la.spec.kind == AttnKind::kDense ? t0 + n : std::min(la.max_row_keys, t0 + n);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
  const bool par = items > 1 && items * G * max_keys * dh * 2 > kParallelAttendWork;
  const int threads = par ? std::max(1, omp_get_max_threads()) : 1;
  const size_t score_floats = static_cast<size_t>(G * std::max<int64_t>(max_keys, 1));
  if (a.dec_scores.size() < threads * score_floats) a.dec_scores.resize(threads * score_floats);
  if (a.dec_keys.size() < static_cast<size_t>(threads * max_keys)) a.dec_keys.resize(static_cast<size_t>(threads * max_keys));
  const float* ck = cache.k[static_cast<size_t>(l)].data();
  const float* cv = cache.v[static_cast<size_t>(l)].data();
  float* scores_base = a.dec_scores.data();
  int32_t* keys_base = a.dec_keys.data();
  const bool dense = la.spec.kind == AttnKind::kDense;
#pragma omp parallel for schedule(dynamic, 1) if (par)
  for (int64_t it = 0; it < items; ++it) {
    const int tid = par ? omp_get_thread_num() : 0;
    const int64_t i = it / Hkv, h = it % Hkv, pos = t0 + i;
    int32_t* keys = keys_base + tid * max_keys;
    const int64_t nk = row_keys(la, h, pos, keys);
    const int64_t hq0 = h * G;
    detail::attend_cached_row(q + (hq0 * n + i) * dh, n * dh, G, ck + h * cache.capacity * dh,
                              cv + h * cache.capacity * dh, dh, dense ? nullptr : keys, nk, scale,
                              scores_base + tid * score_floats, out + (hq0 * n + i) * dh, n * dh);
  }
}

}  // namespace

Status Gpt::decode(KvCache& cache, const int32_t* tokens, int64_t n, float* logits_out) {
  const GptConfig& c = cfg_;
  const int64_t C = c.d_model, V = c.vocab_size, Hq = c.n_heads, Hkv = c.n_kv_heads, dh = C / Hq;
  const int64_t qkv_out = (Hq + 2 * Hkv) * dh, t0 = cache.length, Tk = t0 + n;
  if (n < 1) return invalid_argument("gpt decode: n=" + S(n) + ", expected n >= 1");
  if (static_cast<int64_t>(cache.k.size()) != c.n_layers || static_cast<int64_t>(cache.v.size()) != c.n_layers ||
      cache.capacity != c.seq_len)
    return invalid_argument("gpt decode: cache was not made by this model's new_cache()");
  for (int64_t l = 0; l < c.n_layers; ++l)
    if (static_cast<int64_t>(cache.k[l].size()) != Hkv * cache.capacity * dh ||
        static_cast<int64_t>(cache.v[l].size()) != Hkv * cache.capacity * dh)
      return invalid_argument("gpt decode: cache layer " + S(l) + " holds " + S(static_cast<int64_t>(cache.k[l].size())) +
                              " floats, expected Hkv*capacity*dh=" + S(Hkv * cache.capacity * dh));
  if (t0 < 0 || Tk > c.seq_len)
    return out_of_range("gpt decode: position " + S(Tk - 1) + " beyond seq_len=" + S(c.seq_len) + " (the model has no position embedding past it)");
  for (int64_t i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= V)
      return invalid_argument("gpt decode: token " + S(tokens[i]) + ", expected [0, " + S(V) + ")");
  const float* W = w_.data();
  auto P = [&](const std::string& name) { return W + find_param(name)->offset; };
  // A prefill from position 0 runs the planned kernels on the same plan as forward() at T = n;
  // everything else (decode steps, chunks appended later) attends rows in the cache directly.
  const bool planned_prefill = t0 == 0 && n > 1;
  std::vector<float> x(static_cast<size_t>(n * C)), h(static_cast<size_t>(n * C)), y(static_cast<size_t>(n * C));
  std::vector<float> mean(n), rstd(n), qkv(static_cast<size_t>(n * qkv_out)), q(static_cast<size_t>(n * Hq * dh));
  std::vector<float> att(q.size()), lse(static_cast<size_t>(Hq * n));
  std::vector<float> kk(planned_prefill ? static_cast<size_t>(Hkv * n * dh) : 0), vv(kk.size());
  std::vector<float> big(static_cast<size_t>(n * 4 * C)), big2(big.size());
  nn::embedding_fwd(tokens, P("wte"), nullptr, x.data(), n, n, C);
  const float* wpe = P("wpe");
  for (int64_t i = 0; i < n; ++i)
    for (int64_t ch = 0; ch < C; ++ch) x[i * C + ch] += wpe[(t0 + i) * C + ch];
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const std::string p = "h." + S(l) + ".";
    nn::layernorm_fwd(x.data(), P(p + "ln1.w"), P(p + "ln1.b"), h.data(), mean.data(), rstd.data(), n, C);
    nn::linear_fwd(h.data(), P(p + "attn.qkv"), nullptr, qkv.data(), n, C, qkv_out);
    float* ck = cache.k[l].data();
    float* cv = cache.v[l].data();
    for (int64_t i = 0; i < n; ++i) {
      const float* src = qkv.data() + i * qkv_out;
      for (int64_t hh = 0; hh < Hq; ++hh) std::memcpy(q.data() + (hh * n + i) * dh, src + hh * dh, dh * 4);
      for (int64_t hh = 0; hh < Hkv; ++hh) {
        std::memcpy(ck + (hh * cache.capacity + t0 + i) * dh, src + (Hq + hh) * dh, dh * 4);
        std::memcpy(cv + (hh * cache.capacity + t0 + i) * dh, src + (Hq + Hkv + hh) * dh, dh * 4);
      }
    }
    if (planned_prefill) {
      // The cache rows are [Hkv, capacity, dh]; the planned kernels want [1, Hkv, n, dh] contiguous.
      for (int64_t hh = 0; hh < Hkv; ++hh) {
        std::memcpy(kk.data() + hh * n * dh, ck + hh * cache.capacity * dh, n * dh * 4);
        std::memcpy(vv.data() + hh * n * dh, cv + hh * cache.capacity * dh, n * dh * 4);
      }
      BNA_RETURN_IF_ERROR(attn_forward(l, 1, n, n, 0, q.data(), kk.data(), vv.data(), att.data(), lse.data()));
    } else {
      const auto ta = Clock::now();
      cached_layer_attention(*layers_[l], cache, l, t0, n, Hq, Hkv, dh, q.data(), att.data(), *act_);
      attn_ms_ += ms_since(ta);
    }
    heads_to_tokens(att.data(), h.data(), 1, Hq, n, dh);
    nn::linear_fwd(h.data(), P(p + "attn.proj"), nullptr, y.data(), n, C, C);
    add_inplace(x.data(), y.data(), n * C);
    nn::layernorm_fwd(x.data(), P(p + "ln2.w"), P(p + "ln2.b"), h.data(), mean.data(), rstd.data(), n, C);
    nn::linear_fwd(h.data(), P(p + "mlp.fc"), nullptr, big.data(), n, C, 4 * C);
    nn::gelu_fwd(big.data(), big2.data(), n * 4 * C);
    nn::linear_fwd(big2.data(), P(p + "mlp.proj"), nullptr, y.data(), n, 4 * C, C);
    add_inplace(x.data(), y.data(), n * C);
  }
  cache.length = Tk;
  const float* last = x.data() + (n - 1) * C;
  nn::layernorm_fwd(last, P("lnf.w"), P("lnf.b"), h.data(), mean.data(), rstd.data(), 1, C);
  nn::linear_fwd(h.data(), P("head"), nullptr, logits_out, 1, C, V);
  return Status::ok();
}

int64_t matrix_params(const Gpt& m) {
  int64_t n = 0;
  for (const ParamInfo& p : m.params())
    if (p.shape.size() == 2 && p.name != "wpe" && p.name != "wte") n += p.numel;
  return n;
}

double flops_per_token(const Gpt& m, int64_t T) {
  const GptConfig& c = m.config();
  return 6.0 * static_cast<double>(matrix_params(m)) + 6.0 * static_cast<double>(c.n_layers * c.d_model * T);
}

}  // namespace bna::model
