// The one decoder path for every supported family (see include/bna/hf.hpp), its KV cache (full, paged
// for dense layers with kv_page > 0 (src/hf/paged_kv.hpp), or the compressed layers' two pools of
// src/hf/compressed_cache.hpp), sampling and generation.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>

#include "bna/attention.hpp"
#include "bna/decode_graph.hpp"
#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/io.hpp"
#include "bna/nn.hpp"
#include "bna/rng.hpp"
#include "bna/safetensors.hpp"
#include "bna/tensor.hpp"
#include "bna/topology.hpp"
#include "hf/compressed_cache.hpp"
#include "hf/paged_kv.hpp"

namespace bna::hf {

struct Layer {
  std::vector<float> ln1_w, ln1_b, ln2_w, ln2_b, post_attn_w, post_mlp_w;
  std::vector<float> wq, wk, wv, wo, bq, bk, bv, bo;  // W [out, in]
  std::vector<float> q_norm, k_norm;
  std::vector<float> w_gate, w_up, w_down, b_up, b_down;  // GELU MLP: w_up = c_fc, w_down = c_proj
  std::vector<float> k_cache, v_cache;                     // [Hkv, capacity, dh]; empty when pooled or paged
  // Paged dense layer (AttentionOptions::kv_page > 0): its page table into ModelWeights::pages.
  bool paged = false;
  detail::PageTable pages;
  // Compressed layers: the block routing (H = 1, built for the capacity), and the two pools unless
  // the options ask for the full-K/V reference mode.
  topo::BlockSparseLayout routing;
  std::optional<detail::CompressedPools> pools;
};

struct ModelWeights {
  Config cfg;
  std::vector<float> embed, pos_embed, lm_head, norm_w, norm_b;  // lm_head empty = tied to embed
  std::vector<Layer> layers;
  std::vector<float> inv_freq;  // [rotary_dim / 2]
  AttentionOptions attn;
  int64_t capacity = 0, pos = 0;
  detail::KvPagePool pages;  // pages of attn.kv_page tokens for the paged dense layers
  // Butterfly: one incremental graph per KV head (head h seeded head_seed(seed, h), so its draws are
  // those of head h of a multi-head DecodeGraph) holding every token in the cache. Row i is used as it
  // is right after token i was appended (its "snapshot"), in prefill and in decode alike. Per head, so
  // attention runs on each head's slice of the cache in place (no K/V copy per call).
  std::vector<topo::DecodeGraph> graphs;
};

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

struct Loader {
  const st::Checkpoint& ck;
  // Reads `name` as f32 with the expected shape; transpose2d swaps a [a, b] tensor into [b, a].
  Status get(const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& out,
             bool transpose2d = false) const {
    const st::TensorInfo* t = ck.find(name);
    if (t == nullptr) return not_found("model: tensor '" + name + "' is missing from the checkpoint");
    std::vector<int64_t> want = shape;
    if (transpose2d) std::swap(want[0], want[1]);
    if (t->shape != want) {
      return corrupt("model: tensor '" + name + "' has shape " + shape_str(t->shape) + ", expected " +
                     shape_str(want) + " from config.json");
    }
    std::vector<float> tmp(static_cast<size_t>(t->numel()));
    BNA_RETURN_IF_ERROR(st::read_f32(*t, tmp.data()));
    if (!transpose2d) {
      out = std::move(tmp);
    } else {
      const int64_t a = want[0], b = want[1];
      out.resize(tmp.size());
      for (int64_t i = 0; i < a; ++i)
        for (int64_t j = 0; j < b; ++j) out[j * a + i] = tmp[i * b + j];
    }
    return Status::ok();
  }
  bool has(const std::string& name) const { return ck.find(name) != nullptr; }
};

void layer_norm(const float* x, const float* w, const float* b, float* y, int64_t n, int64_t C, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * C;
    double mean = 0, var = 0;
    for (int64_t i = 0; i < C; ++i) mean += xr[i];
    mean /= C;
    for (int64_t i = 0; i < C; ++i) var += (xr[i] - mean) * (xr[i] - mean);
    var /= C;
    const float rstd = static_cast<float>(1.0 / std::sqrt(var + eps));
    for (int64_t i = 0; i < C; ++i) y[r * C + i] = (xr[i] - static_cast<float>(mean)) * rstd * w[i] + b[i];
  }
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, int64_t C, float eps) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * C;
    double ss = 0;
    for (int64_t i = 0; i < C; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float rstd = static_cast<float>(1.0 / std::sqrt(ss / C + eps));
    for (int64_t i = 0; i < C; ++i) y[r * C + i] = w[i] * (xr[i] * rstd);
  }
}

// transformers' inv_freq: fp32 1 / theta^(2i / rotary_dim), then the llama3 frequency rescale.
std::vector<float> make_inv_freq(const Config& c) {
  const int64_t half = c.rotary_dim / 2;
  std::vector<float> f(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    const float e = static_cast<float>(2 * i) / static_cast<float>(c.rotary_dim);
    f[i] = 1.0f / std::pow(static_cast<float>(c.rope_theta), e);
  }
  if (c.rope_llama3) {
    // fp32 arithmetic in transformers' operation order (x / tensor is reciprocal(tensor) * x there).
    const float factor = static_cast<float>(c.rope_factor), lo = static_cast<float>(c.rope_low_freq_factor);
    const float hi = static_cast<float>(c.rope_high_freq_factor);
    const float old_ctx = static_cast<float>(c.rope_original_max_positions);
    const float low_wl = old_ctx / lo, high_wl = old_ctx / hi;
    for (auto& v : f) {
      const float wl = (1.0f / v) * static_cast<float>(2 * M_PI);
      const float scaled = wl > low_wl ? v / factor : v;
      if (wl < high_wl || wl > low_wl) {
        v = scaled;
      } else {
        const float s = ((1.0f / wl) * old_ctx - lo) / (hi - lo);
        v = (1.0f - s) * scaled / factor + s * scaled;
      }
    }
  }
  return f;
}

// In-place RoPE on x [n, H, dh] at positions p0 + t.
void apply_rope(const Config& c, const std::vector<float>& inv, float* x, int64_t n, int64_t H, int64_t p0) {
  const int64_t dh = c.head_dim, half = c.rotary_dim / 2;
  std::vector<float> cs(half), sn(half);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < half; ++i) {
      const float ang = inv[i] * static_cast<float>(p0 + t);  // fp32 product, as transformers
      cs[i] = static_cast<float>(std::cos(static_cast<double>(ang)));
      sn[i] = static_cast<float>(std::sin(static_cast<double>(ang)));
    }
    for (int64_t h = 0; h < H; ++h) {
      float* v = x + (t * H + h) * dh;
      for (int64_t i = 0; i < half; ++i) {
        const int64_t a = c.rope_interleaved ? 2 * i : i, b = c.rope_interleaved ? 2 * i + 1 : i + half;
        const float x1 = v[a], x2 = v[b];
        v[a] = x1 * cs[i] - x2 * sn[i];
        v[b] = x2 * cs[i] + x1 * sn[i];
      }
    }
  }
}

inline float gelu_tanh(float x) {
  const float k = 0.7978845608028654f;
  return 0.5f * x * (1.0f + std::tanh(k * (x + 0.044715f * x * x * x)));
}
inline float silu(float x) { return x / (1.0f + std::exp(-x)); }

// y [n, out] = x [n, in] W^T + b, W [out, in]. One row (decode) goes to SGEMV: OpenBLAS's SGEMM packs
// the whole of W on every call, which at n = 1 costs more than the product (bench model, docs/hf.md).
void linear(const float* x, const std::vector<float>& w, const std::vector<float>& b, float* y, int64_t n,
            int64_t in, int64_t out) {
  if (n != 1) {
    nn::linear_fwd(x, w.data(), b.empty() ? nullptr : b.data(), y, n, in, out);
    return;
  }
  if (!b.empty()) std::copy(b.begin(), b.end(), y);
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(out), static_cast<int>(in), 1.0f, w.data(),
              static_cast<int>(in), x, 1, b.empty() ? 0.0f : 1.0f, y, 1);
}

// (Re)creates the Butterfly decode graph for the tokens already in the cache (none after reset()).
Status rebuild_graph(ModelWeights& W) {
  W.graphs.clear();
  if (W.attn.kind != AttnKind::kButterfly) return Status::ok();
  for (int64_t h = 0; h < W.cfg.n_kv_heads; ++h) {
    topo::DecodeGraphOptions go;
    go.n_heads = 1;
    go.num_cycles = W.attn.num_cycles;
    go.window = W.attn.window;
    go.landmark_stride = W.attn.landmark_stride;
    go.rule = topo::AppendRule::kRandomInsertion;
    go.seed = topo::head_seed(W.attn.seed, h);
    BNA_ASSIGN_OR_RETURN(topo::DecodeGraph g, topo::DecodeGraph::create(go));
    if (W.pos > 0) BNA_RETURN_IF_ERROR(g.append_many(W.pos));
    W.graphs.push_back(std::move(g));
  }
  return Status::ok();
}

bool listed_dense(const AttentionOptions& a, int64_t li) {
  return std::find(a.dense_layers.begin(), a.dense_layers.end(), li) != a.dense_layers.end();
}
bool is_compressed(const AttentionOptions& a, int64_t li) {
  return a.kind == AttnKind::kCompressed && !listed_dense(a, li);
}
bool uses_pools(const AttentionOptions& a, int64_t li) {
  return is_compressed(a, li) && !a.compressed.full_kv_reference;
}
// Dense layers page their K/V when kv_page > 0; Butterfly and compressed layers never do.
bool uses_pages(const AttentionOptions& a, int64_t li) {
  return a.kv_page > 0 && !is_compressed(a, li) && (a.kind == AttnKind::kDense || listed_dense(a, li));
}
detail::KvPagePool make_page_pool(const Config& c, int64_t kv_page) {
  return kv_page > 0 ? detail::KvPagePool(c.n_kv_heads, c.head_dim, kv_page) : detail::KvPagePool();
}

// The routing of every compressed layer of `a` for a cache of `cap` tokens (empty for other layers);
// a layer's stage is its ordinal among the compressed layers.
Expected<std::vector<topo::BlockSparseLayout>> build_routing(const Config& c, const AttentionOptions& a, int64_t cap) {
  std::vector<topo::BlockSparseLayout> r(static_cast<size_t>(c.layers));
  int64_t ordinal = 0;
  for (int64_t li = 0; li < c.layers; ++li) {
    if (!is_compressed(a, li)) continue;
    BNA_ASSIGN_OR_RETURN(r[li], detail::compressed_routing(a.compressed, cap, ordinal));
    ++ordinal;
  }
  return r;
}

void free_full(Layer& l) {
  std::vector<float>().swap(l.k_cache);
  std::vector<float>().swap(l.v_cache);
}

// Appends tokens p0..Tk-1 to the decode graph and returns the ABI graph [Hkv, Tk, D] whose row i
// (p0 <= i < Tk) is row i of the decode graph at size i + 1: the row token i gets in decode, so
// one-shot prefill, chunked prefill and decode attend the same keys. Rows i < p0 are never queried
// in this call; they hold the current graph's rows so the ABI stays well formed (band + landmarks +
// cycle neighbours + self, which the planner can still run as streams).
Expected<graph::GraphAbi> snapshot_rows(topo::DecodeGraph& g, int64_t p0, int64_t Tk) {
  const int64_t H = g.heads();
  std::vector<std::vector<int32_t>> idx(static_cast<size_t>(H * Tk));
  std::vector<std::vector<uint8_t>> typ(idx.size());
  std::vector<int32_t> ri;
  std::vector<uint8_t> rt;
  auto take = [&](int64_t h, int64_t i) {
    ri.resize(static_cast<size_t>(g.max_row_len()));
    rt.resize(ri.size());
    const int64_t len = g.row(h, i, ri.data(), rt.data());
    idx[h * Tk + i].assign(ri.begin(), ri.begin() + len);
    typ[h * Tk + i].assign(rt.begin(), rt.begin() + len);
  };
  for (int64_t i = p0; i < Tk; ++i) {
    BNA_RETURN_IF_ERROR(g.append());
    for (int64_t h = 0; h < H; ++h) take(h, i);
  }
  for (int64_t h = 0; h < H; ++h)
    for (int64_t i = 0; i < p0; ++i) take(h, i);
  graph::GraphAbi abi;
  abi.H = H;
  abi.T = Tk;
  abi.D = 1;
  for (const auto& r : idx) abi.D = std::max<int64_t>(abi.D, static_cast<int64_t>(r.size()));
  abi.neigh_idx.assign(static_cast<size_t>(H * Tk * abi.D), -1);
  abi.edge_type.assign(abi.neigh_idx.size(), static_cast<uint8_t>(graph::EdgeType::kPad));
  for (size_t r = 0; r < idx.size(); ++r) {
    std::copy(idx[r].begin(), idx[r].end(), abi.neigh_idx.begin() + static_cast<int64_t>(r) * abi.D);
    std::copy(typ[r].begin(), typ[r].end(), abi.edge_type.begin() + static_cast<int64_t>(r) * abi.D);
  }
  const topo::DecodeGraphOptions& o = g.options();
  abi.meta.strategy = topo::append_rule_name(o.rule);
  abi.meta.window = o.window;
  abi.meta.landmark_stride = o.landmark_stride;
  abi.meta.num_cycles = static_cast<int>(o.num_cycles);
  abi.meta.seed = o.seed;
  abi.meta.include_self = o.include_self;
  return abi;
}

}  // namespace

std::vector<float> rope_inv_freq(const Config& c) { return c.learned_pos ? std::vector<float>{} : make_inv_freq(c); }

Model::Model() : w_(std::make_unique<ModelWeights>()) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;
const Config& Model::config() const { return w_->cfg; }
const AttentionOptions& Model::attention() const { return w_->attn; }
int64_t Model::position() const { return w_->pos; }
int64_t Model::capacity() const { return w_->capacity; }
size_t Model::kv_bytes() const {
  size_t b = 0;
  for (const auto& l : w_->layers) {
    b += (l.k_cache.size() + l.v_cache.size()) * sizeof(float);
    if (l.pools) b += l.pools->bytes();
  }
  return b + w_->pages.bytes();
}

size_t Model::graph_bytes() const {
  size_t b = 0;
  for (const auto& l : w_->layers) b += detail::routing_bytes(l.routing);
  // prev/next int32 per node, per head and cycle.
  for (const auto& g : w_->graphs) b += static_cast<size_t>(g.options().num_cycles * g.size()) * 2 * sizeof(int32_t);
  return b;
}

Expected<Model> Model::random(const Config& c, uint64_t seed) {
  auto bad = [](const std::string& what) { return invalid_argument("random model: " + what); };
  if (c.vocab < 1 || c.hidden < 1 || c.layers < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.head_dim < 2 ||
      c.intermediate < 1 || c.max_positions < 1) {
    return bad("vocab=" + std::to_string(c.vocab) + " hidden=" + std::to_string(c.hidden) + " layers=" +
               std::to_string(c.layers) + " heads=" + std::to_string(c.n_heads) + " kv_heads=" +
               std::to_string(c.n_kv_heads) + " head_dim=" + std::to_string(c.head_dim) + " intermediate=" +
               std::to_string(c.intermediate) + " max_positions=" + std::to_string(c.max_positions) +
               ", expected all >= 1 (head_dim >= 2)");
  }
  if (c.n_heads % c.n_kv_heads != 0)
    return bad("kv_heads=" + std::to_string(c.n_kv_heads) + " does not divide heads=" + std::to_string(c.n_heads));
  if (!c.learned_pos && (c.rotary_dim < 2 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim))
    return bad("rotary_dim=" + std::to_string(c.rotary_dim) + ", expected even in [2, head_dim=" +
               std::to_string(c.head_dim) + "]");
  Model m;
  ModelWeights& W = *m.w_;
  W.cfg = c;
  Rng rng(seed);
  auto mat = [&](int64_t n) {
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& e : v) e = static_cast<float>(0.02 * rng.normal());
    return v;
  };
  auto ones = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n), 1.0f); };
  auto zeros = [](int64_t n) { return std::vector<float>(static_cast<size_t>(n), 0.0f); };
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate, V = c.vocab;
  W.embed = mat(V * C);
  W.lm_head = mat(V * C);
  W.norm_w = ones(C);
  if (c.layer_norm) W.norm_b = zeros(C);
  if (c.learned_pos) W.pos_embed = mat(c.max_positions * C);
  W.layers.resize(static_cast<size_t>(c.layers));
  for (Layer& l : W.layers) {
    l.wq = mat(Hq * dh * C);
    l.wk = mat(Hkv * dh * C);
    l.wv = mat(Hkv * dh * C);
    l.wo = mat(C * Hq * dh);
    if (c.qkv_bias) { l.bq = zeros(Hq * dh); l.bk = zeros(Hkv * dh); l.bv = zeros(Hkv * dh); }
    if (c.o_bias) l.bo = zeros(C);
    if (c.qk_norm) { l.q_norm = ones(dh); l.k_norm = ones(dh); }
    l.ln1_w = ones(C);
    l.ln2_w = ones(C);
    if (c.layer_norm) { l.ln1_b = zeros(C); l.ln2_b = zeros(C); }
    if (c.sandwich_norm) { l.post_attn_w = ones(C); l.post_mlp_w = ones(C); }
    if (!c.gelu_mlp) l.w_gate = mat(I * C);
    l.w_up = mat(I * C);
    l.w_down = mat(C * I);
    if (c.gelu_mlp) { l.b_up = zeros(I); l.b_down = zeros(C); }
  }
  if (!c.learned_pos) W.inv_freq = make_inv_freq(c);
  BNA_RETURN_IF_ERROR(m.reset(std::min<int64_t>(c.max_positions, 2048)));
  return m;
}

Expected<Model> Model::load(const std::string& dir) {
  BNA_ASSIGN_OR_RETURN(std::string text, io::read_file(dir + "/config.json"));
  BNA_ASSIGN_OR_RETURN(Config c, parse_config(text));
  BNA_ASSIGN_OR_RETURN(st::Checkpoint ck, st::Checkpoint::open_dir(dir));
  Model m;
  ModelWeights& W = *m.w_;
  W.cfg = c;
  Loader L{ck};
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate, V = c.vocab;
  const bool gpt2 = c.family == Family::kGpt2;
  // GPT-2 files exist with and without the "transformer." prefix.
  const std::string base = gpt2 ? (L.has("transformer.wte.weight") ? "transformer." : "") : "model.";
  if (gpt2) {
    BNA_RETURN_IF_ERROR(L.get(base + "wte.weight", {V, C}, W.embed));
    BNA_RETURN_IF_ERROR(L.get(base + "wpe.weight", {c.max_positions, C}, W.pos_embed));
    BNA_RETURN_IF_ERROR(L.get(base + "ln_f.weight", {C}, W.norm_w));
    BNA_RETURN_IF_ERROR(L.get(base + "ln_f.bias", {C}, W.norm_b));
  } else {
    BNA_RETURN_IF_ERROR(L.get("model.embed_tokens.weight", {V, C}, W.embed));
    BNA_RETURN_IF_ERROR(L.get("model.norm.weight", {C}, W.norm_w));
  }
  if (L.has("lm_head.weight")) BNA_RETURN_IF_ERROR(L.get("lm_head.weight", {V, C}, W.lm_head));
  W.layers.resize(static_cast<size_t>(c.layers));
  for (int64_t li = 0; li < c.layers; ++li) {
    Layer& l = W.layers[li];
    const std::string p = base + (gpt2 ? "h." : "layers.") + std::to_string(li) + ".";
    if (gpt2) {
      // Conv1D stores [in, out]; fused c_attn is [C, 3C] = q | k | v.
      std::vector<float> qkv, bqkv;
      BNA_RETURN_IF_ERROR(L.get(p + "attn.c_attn.weight", {3 * C, C}, qkv, true));
      BNA_RETURN_IF_ERROR(L.get(p + "attn.c_attn.bias", {3 * C}, bqkv));
      l.wq.assign(qkv.begin(), qkv.begin() + C * C);
      l.wk.assign(qkv.begin() + C * C, qkv.begin() + 2 * C * C);
      l.wv.assign(qkv.begin() + 2 * C * C, qkv.end());
      l.bq.assign(bqkv.begin(), bqkv.begin() + C);
      l.bk.assign(bqkv.begin() + C, bqkv.begin() + 2 * C);
      l.bv.assign(bqkv.begin() + 2 * C, bqkv.end());
      BNA_RETURN_IF_ERROR(L.get(p + "attn.c_proj.weight", {C, C}, l.wo, true));
      BNA_RETURN_IF_ERROR(L.get(p + "attn.c_proj.bias", {C}, l.bo));
      BNA_RETURN_IF_ERROR(L.get(p + "ln_1.weight", {C}, l.ln1_w));
      BNA_RETURN_IF_ERROR(L.get(p + "ln_1.bias", {C}, l.ln1_b));
      BNA_RETURN_IF_ERROR(L.get(p + "ln_2.weight", {C}, l.ln2_w));
      BNA_RETURN_IF_ERROR(L.get(p + "ln_2.bias", {C}, l.ln2_b));
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.c_fc.weight", {I, C}, l.w_up, true));
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.c_fc.bias", {I}, l.b_up));
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.c_proj.weight", {C, I}, l.w_down, true));
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.c_proj.bias", {C}, l.b_down));
      continue;
    }
    const std::string a = p + "self_attn.";
    BNA_RETURN_IF_ERROR(L.get(a + "q_proj.weight", {Hq * dh, C}, l.wq));
    BNA_RETURN_IF_ERROR(L.get(a + "k_proj.weight", {Hkv * dh, C}, l.wk));
    BNA_RETURN_IF_ERROR(L.get(a + "v_proj.weight", {Hkv * dh, C}, l.wv));
    BNA_RETURN_IF_ERROR(L.get(a + "o_proj.weight", {C, Hq * dh}, l.wo));
    if (c.qkv_bias) {
      BNA_RETURN_IF_ERROR(L.get(a + "q_proj.bias", {Hq * dh}, l.bq));
      BNA_RETURN_IF_ERROR(L.get(a + "k_proj.bias", {Hkv * dh}, l.bk));
      BNA_RETURN_IF_ERROR(L.get(a + "v_proj.bias", {Hkv * dh}, l.bv));
    }
    if (c.o_bias) BNA_RETURN_IF_ERROR(L.get(a + "o_proj.bias", {C}, l.bo));
    if (c.qk_norm) {
      BNA_RETURN_IF_ERROR(L.get(a + "q_norm.weight", {dh}, l.q_norm));
      BNA_RETURN_IF_ERROR(L.get(a + "k_norm.weight", {dh}, l.k_norm));
    }
    BNA_RETURN_IF_ERROR(L.get(p + "input_layernorm.weight", {C}, l.ln1_w));
    BNA_RETURN_IF_ERROR(L.get(p + "post_attention_layernorm.weight", {C}, l.ln2_w));
    if (c.sandwich_norm) {
      BNA_RETURN_IF_ERROR(L.get(p + "post_self_attn_layernorm.weight", {C}, l.post_attn_w));
      BNA_RETURN_IF_ERROR(L.get(p + "post_mlp_layernorm.weight", {C}, l.post_mlp_w));
    }
    if (c.fused_gate_up) {
      std::vector<float> gu;
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.gate_up_proj.weight", {2 * I, C}, gu));
      l.w_gate.assign(gu.begin(), gu.begin() + I * C);
      l.w_up.assign(gu.begin() + I * C, gu.end());
    } else {
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.gate_proj.weight", {I, C}, l.w_gate));
      BNA_RETURN_IF_ERROR(L.get(p + "mlp.up_proj.weight", {I, C}, l.w_up));
    }
    BNA_RETURN_IF_ERROR(L.get(p + "mlp.down_proj.weight", {C, I}, l.w_down));
  }
  if (!c.learned_pos) W.inv_freq = make_inv_freq(c);
  BNA_RETURN_IF_ERROR(m.reset(std::min<int64_t>(c.max_positions > 0 ? c.max_positions : 2048, 2048)));
  return m;
}

Status Model::set_attention(const AttentionOptions& o) {
  if (o.window < 0 || o.landmark_stride < 0 || o.num_cycles < 1) {
    return invalid_argument("attention: window=" + std::to_string(o.window) + " landmark_stride=" +
                            std::to_string(o.landmark_stride) + " num_cycles=" + std::to_string(o.num_cycles) +
                            ", expected window >= 0, landmark_stride >= 0, num_cycles >= 1");
  }
  if (o.kv_page < 0)
    return invalid_argument("attention: kv_page=" + std::to_string(o.kv_page) + ", expected >= 0 (0 = contiguous)");
  for (int64_t l : o.dense_layers) {
    if (l < 0 || l >= w_->cfg.layers) {
      return invalid_argument("attention: dense layer " + std::to_string(l) + " out of range [0, " +
                              std::to_string(w_->cfg.layers) + ")");
    }
  }
  const CompressedOptions& co = o.compressed;
  if (o.kind == AttnKind::kCompressed) {
    if (co.tail < 1 || co.block < 1) {
      return invalid_argument("attention: compressed tail L=" + std::to_string(co.tail) + " block Bs=" +
                              std::to_string(co.block) + ", expected L >= 1 and Bs >= 1");
    }
    if (co.partner_count < 0 || co.local_blocks < 0 || co.sink_count < 0) {
      return invalid_argument("attention: compressed partner_count=" + std::to_string(co.partner_count) +
                              " local_blocks=" + std::to_string(co.local_blocks) + " sink_count=" +
                              std::to_string(co.sink_count) + ", expected all >= 0");
    }
    if (static_cast<int>(co.rule) < 0 || static_cast<int>(co.rule) >= topo::kNumPartnerRules) {
      return invalid_argument("attention: compressed partner rule value " + std::to_string(static_cast<int>(co.rule)) +
                              ", expected 0.." + std::to_string(topo::kNumPartnerRules - 1));
    }
  }
  ModelWeights& W = *w_;
  // Everything that can fail is checked before anything changes.
  BNA_ASSIGN_OR_RETURN(std::vector<topo::BlockSparseLayout> routing, build_routing(W.cfg, o, W.capacity));
  auto same_pools = [&](const detail::CompressedPools& P) { return P.L == co.tail && P.Bs == co.block; };
  for (int64_t li = 0; li < W.cfg.layers; ++li) {
    const Layer& l = W.layers[li];
    if (W.pos > 0 && l.pools && !(uses_pools(o, li) && same_pools(*l.pools))) {
      return invalid_argument("attention: layer " + std::to_string(li) + " holds a compressed cache (L=" +
                                 std::to_string(l.pools->L) + ", Bs=" + std::to_string(l.pools->Bs) + ") of " +
                                 std::to_string(W.pos) + " tokens whose older raw rows are gone; it cannot become " +
                                 (uses_pools(o, li)   ? "a compressed cache of other L/Bs"
                                  : uses_pages(o, li) ? "a paged cache"
                                                      : "a full cache") +
                                 " mid-sequence (reset() first)");
    }
  }
  const Config& c = W.cfg;
  // Each layer's storage moves to the one `o` asks for (full, paged, two pools), keeping its tokens.
  // A new page size takes a new pool; the old one is empty once every paged layer has moved.
  const bool new_pages = o.kv_page != W.attn.kv_page;
  detail::KvPagePool fresh = new_pages ? make_page_pool(c, o.kv_page) : detail::KvPagePool();
  detail::KvPagePool& target_pool = new_pages ? fresh : W.pages;
  // A paged layer's tokens as a contiguous [Hkv, pos, dh] copy (moves out of the pages).
  auto unpage = [&](Layer& l, std::vector<float>& k, std::vector<float>& v) {
    k.assign(static_cast<size_t>(c.n_kv_heads * W.pos * c.head_dim), 0.0f);
    v.assign(k.size(), 0.0f);
    detail::paged_to_full(W.pages, l.pages, k.data(), v.data(), W.pos, W.pos);
  };
  auto drop_pages = [&](Layer& l) {
    detail::paged_truncate(W.pages, l.pages, 0);
    l.paged = false;
  };
  for (int64_t li = 0; li < c.layers; ++li) {
    Layer& l = W.layers[li];
    l.routing = std::move(routing[li]);
    if (uses_pools(o, li)) {
      if (l.pools && same_pools(*l.pools)) continue;
      l.pools = detail::make_pools(c.n_kv_heads, c.head_dim, W.capacity, co);
      if (W.pos > 0 && l.paged) {
        std::vector<float> k, v;
        unpage(l, k, v);
        detail::pools_from_full(*l.pools, k.data(), v.data(), W.pos, W.pos);
      } else if (W.pos > 0) {
        detail::pools_from_full(*l.pools, l.k_cache.data(), l.v_cache.data(), W.capacity, W.pos);
      }
      free_full(l);
      drop_pages(l);
    } else if (uses_pages(o, li)) {
      if (l.paged && !new_pages) continue;
      detail::PageTable table;  // l.pools is empty when W.pos > 0 (refused above)
      if (W.pos > 0 && l.paged) {
        std::vector<float> k, v;
        unpage(l, k, v);
        detail::paged_from_full(target_pool, table, k.data(), v.data(), W.pos, W.pos);
      } else if (W.pos > 0) {
        detail::paged_from_full(target_pool, table, l.k_cache.data(), l.v_cache.data(), W.capacity, W.pos);
      }
      free_full(l);
      drop_pages(l);
      l.pools.reset();
      l.pages = std::move(table);
      l.paged = true;
    } else if (l.pools || l.paged) {  // to a full cache; l.pools only when W.pos == 0
      l.pools.reset();
      l.k_cache.assign(static_cast<size_t>(c.n_kv_heads * W.capacity * c.head_dim), 0.0f);
      l.v_cache.assign(l.k_cache.size(), 0.0f);
      if (l.paged) detail::paged_to_full(W.pages, l.pages, l.k_cache.data(), l.v_cache.data(), W.capacity, W.pos);
      drop_pages(l);
    }
  }
  if (new_pages) W.pages = std::move(fresh);
  W.attn = o;
  return rebuild_graph(W);
}

Status Model::reset(int64_t cap) {
  const Config& c = w_->cfg;
  if (cap < 1) return invalid_argument("model: KV capacity " + std::to_string(cap) + ", expected >= 1");
  if (c.learned_pos && cap > c.max_positions) {
    return invalid_argument("model: KV capacity " + std::to_string(cap) + " exceeds n_positions=" +
                            std::to_string(c.max_positions));
  }
  BNA_ASSIGN_OR_RETURN(std::vector<topo::BlockSparseLayout> routing, build_routing(c, w_->attn, cap));
  w_->pages = make_page_pool(c, w_->attn.kv_page);  // frees every page
  for (int64_t li = 0; li < c.layers; ++li) {
    Layer& l = w_->layers[li];
    l.routing = std::move(routing[li]);
    l.pages.clear();
    l.paged = uses_pages(w_->attn, li);
    if (uses_pools(w_->attn, li)) {
      free_full(l);
      l.pools = detail::make_pools(c.n_kv_heads, c.head_dim, cap, w_->attn.compressed);
    } else if (l.paged) {
      free_full(l);
      l.pools.reset();
    } else {
      l.pools.reset();
      l.k_cache.assign(static_cast<size_t>(c.n_kv_heads * cap * c.head_dim), 0.0f);
      l.v_cache.assign(l.k_cache.size(), 0.0f);
    }
  }
  w_->capacity = cap;
  w_->pos = 0;
  return rebuild_graph(*w_);
}

Expected<std::vector<float>> Model::forward(std::span<const int32_t> ids, bool all_logits, int64_t chunk) {
  ModelWeights& W = *w_;
  const Config& c = W.cfg;
  const int64_t n_all = static_cast<int64_t>(ids.size());
  if (n_all == 0) return invalid_argument("model: forward of 0 tokens");
  if (W.pos + n_all > W.capacity) {
    return invalid_argument("model: " + std::to_string(n_all) + " tokens do not fit the KV cache (" +
                            std::to_string(W.pos) + " of " + std::to_string(W.capacity) + " used)");
  }
  for (int64_t i = 0; i < n_all; ++i) {
    if (ids[i] < 0 || ids[i] >= c.vocab) {
      return invalid_argument("model: token id " + std::to_string(ids[i]) + " at " + std::to_string(i) +
                              " out of range [0, " + std::to_string(c.vocab) + ")");
    }
  }
  if (chunk > 0 && chunk < n_all) {
    std::vector<float> out;
    for (int64_t s = 0; s < n_all; s += chunk) {
      const int64_t e = std::min(n_all, s + chunk);
      BNA_ASSIGN_OR_RETURN(std::vector<float> part, forward(ids.subspan(s, e - s), all_logits, 0));
      if (all_logits) out.insert(out.end(), part.begin(), part.end());
      else out = std::move(part);
    }
    return out;
  }
  const int64_t n = n_all, C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate;
  const int64_t p0 = W.pos, Tk = p0 + n;
  std::vector<float> x(n * C), h(n * C), q(n * Hq * dh), k(n * Hkv * dh), v(n * Hkv * dh), att(n * Hq * dh);
  std::vector<float> qh(Hq * n * dh), oh(Hq * n * dh), lse(Hq * n);
  std::vector<float> g(n * I), u(n * I), tmp(n * C);
  for (int64_t t = 0; t < n; ++t) {
    std::memcpy(&x[t * C], &W.embed[ids[t] * C], C * sizeof(float));
    if (c.learned_pos)
      for (int64_t i = 0; i < C; ++i) x[t * C + i] += W.pos_embed[(p0 + t) * C + i];
  }
  // Butterfly: every token is appended to the decode graph. When the window covers every key
  // (Tk <= W + 1) every row is dense and the dense path runs. Decode (n = 1) plans the decode graph
  // itself (its newest row is the snapshot); prefill plans the snapshot rows as an ABI graph.
  std::vector<graph::GraphAbi> abis;  // per KV head (prefill)
  bool sparse = false;
  // A failure after the graphs grew re-syncs them to the cache (the draws are a function of the seed
  // and the token count only), so an error never leaves a graph ahead of the KV cache.
  struct GraphSync {
    ModelWeights& W;
    bool done = false;
    ~GraphSync() {
      if (!done && !W.graphs.empty() && W.graphs[0].size() != W.pos) (void)rebuild_graph(W);
    }
  } sync{W};
  // Likewise pages appended by a failed call go back to the pool.
  struct PageSync {
    ModelWeights& W;
    bool done = false;
    ~PageSync() {
      if (done) return;
      for (Layer& l : W.layers)
        if (l.paged) detail::paged_truncate(W.pages, l.pages, W.pos);
    }
  } page_sync{W};
  if (!W.graphs.empty()) {
    sparse = Tk > W.attn.window + 1;
    for (topo::DecodeGraph& gr : W.graphs) {
      if (!sparse || n == 1) {
        BNA_RETURN_IF_ERROR(gr.append_many(n));
      } else {
        BNA_ASSIGN_OR_RETURN(graph::GraphAbi one, snapshot_rows(gr, p0, Tk));
        abis.push_back(std::move(one));
      }
    }
  }
  // Attention runs per KV head on its slice of the cache, [1, 1, Tk, dh] at k_cache + h*capacity*dh
  // (contiguous in place), with its G = Hq / Hkv query heads. The plans depend only on the graph and
  // the shape, so they are made once per call and shared by the layers.
  const int64_t G = Hq / Hkv;
  attn::Shape as;
  as.B = 1; as.Hq = G; as.Hkv = 1; as.Tq = n; as.Tk = Tk; as.dh = dh; as.q_offset = p0;
  as.dtype = DType::kF32;
  attn::GraphSource dense_src;
  dense_src.dense = true;
  BNA_ASSIGN_OR_RETURN(attn::Plan dense_plan, attn::plan(dense_src, as));
  std::vector<attn::Plan> sparse_plans;
  if (sparse) {
    for (int64_t hh = 0; hh < Hkv; ++hh) {
      attn::GraphSource src;
      if (!abis.empty()) src.abi = &abis[hh];
      else src.decode = &W.graphs[hh];
      BNA_ASSIGN_OR_RETURN(attn::Plan pl, attn::plan(src, as));
      sparse_plans.push_back(std::move(pl));
    }
  }
  for (int64_t li = 0; li < c.layers; ++li) {
    Layer& l = W.layers[li];
    if (c.layer_norm) layer_norm(x.data(), l.ln1_w.data(), l.ln1_b.data(), h.data(), n, C, c.norm_eps);
    else rms_norm(x.data(), l.ln1_w.data(), h.data(), n, C, c.norm_eps);
    linear(h.data(), l.wq, l.bq, q.data(), n, C, Hq * dh);
    linear(h.data(), l.wk, l.bk, k.data(), n, C, Hkv * dh);
    linear(h.data(), l.wv, l.bv, v.data(), n, C, Hkv * dh);
    if (c.qk_norm) {
      rms_norm(q.data(), l.q_norm.data(), q.data(), n * Hq, dh, c.norm_eps);
      rms_norm(k.data(), l.k_norm.data(), k.data(), n * Hkv, dh, c.norm_eps);
    }
    if (!c.learned_pos) {
      apply_rope(c, W.inv_freq, q.data(), n, Hq, p0);
      apply_rope(c, W.inv_freq, k.data(), n, Hkv, p0);
    }
    // q to [Hq, n, dh].
    for (int64_t t = 0; t < n; ++t)
      for (int64_t hh = 0; hh < Hq; ++hh)
        std::memcpy(&qh[(hh * n + t) * dh], &q[(t * Hq + hh) * dh], dh * sizeof(float));
    if (l.pools) {
      // Compressed layer: attention over the two pools and this chunk's k, v [n, Hkv, dh].
      BNA_RETURN_IF_ERROR(detail::compressed_attend(*l.pools, l.routing, qh.data(), k.data(), v.data(), p0, n, G,
                                                    1.0f / std::sqrt(static_cast<float>(dh)), oh.data()));
    }
    if (l.paged) {
      // Paged dense layer: append the chunk to the pages, attend over them in place.
      detail::paged_append(W.pages, l.pages, k.data(), v.data(), p0, n);
      detail::paged_attend(W.pages, l.pages, qh.data(), p0, n, G, 1.0f / std::sqrt(static_cast<float>(dh)),
                           oh.data(), lse.data());
    }
    // Full cache: append to [Hkv, capacity, dh].
    for (int64_t t = 0; t < n && !l.pools && !l.paged; ++t)
      for (int64_t hh = 0; hh < Hkv; ++hh) {
        std::memcpy(&l.k_cache[(hh * W.capacity + p0 + t) * dh], &k[(t * Hkv + hh) * dh], dh * sizeof(float));
        std::memcpy(&l.v_cache[(hh * W.capacity + p0 + t) * dh], &v[(t * Hkv + hh) * dh], dh * sizeof(float));
      }
    // Compressed layer in the full-K/V reference mode: the runtime's Path::kCompressed over the cache.
    std::optional<attn::Plan> ref_plan;
    if (!l.pools && is_compressed(W.attn, li)) {
      attn::GraphSource src;
      src.blocks = &l.routing;
      attn::Options ro;
      ro.force_path = attn::Path::kCompressed;
      ro.compressed_tail = W.attn.compressed.tail;
      ro.compressed_block = W.attn.compressed.block;
      BNA_ASSIGN_OR_RETURN(ref_plan, attn::plan(src, as, ro));
    }
    const bool dense_layer = !sparse || listed_dense(W.attn, li);
    for (int64_t hh = 0; hh < Hkv && !l.pools && !l.paged; ++hh) {
      const attn::Plan& plan = ref_plan ? *ref_plan : dense_layer ? dense_plan : sparse_plans[hh];
      const TensorView tq(&qh[hh * G * n * dh], DType::kF32, bna::Shape{1, G, n, dh});
      const TensorView tk(&l.k_cache[hh * W.capacity * dh], DType::kF32, bna::Shape{1, 1, Tk, dh});
      const TensorView tv(&l.v_cache[hh * W.capacity * dh], DType::kF32, bna::Shape{1, 1, Tk, dh});
      const TensorView to(&oh[hh * G * n * dh], DType::kF32, bna::Shape{1, G, n, dh});
      const TensorView tl(&lse[hh * G * n], DType::kF32, bna::Shape{1, G, n});
      BNA_RETURN_IF_ERROR(attn::run(plan, tq, tk, tv, to, tl));
    }
    for (int64_t t = 0; t < n; ++t)
      for (int64_t hh = 0; hh < Hq; ++hh)
        std::memcpy(&att[(t * Hq + hh) * dh], &oh[(hh * n + t) * dh], dh * sizeof(float));
    linear(att.data(), l.wo, l.bo, tmp.data(), n, Hq * dh, C);
    if (c.sandwich_norm) rms_norm(tmp.data(), l.post_attn_w.data(), tmp.data(), n, C, c.norm_eps);
    for (int64_t i = 0; i < n * C; ++i) x[i] += tmp[i];
    // MLP.
    if (c.layer_norm) layer_norm(x.data(), l.ln2_w.data(), l.ln2_b.data(), h.data(), n, C, c.norm_eps);
    else rms_norm(x.data(), l.ln2_w.data(), h.data(), n, C, c.norm_eps);
    if (c.gelu_mlp) {
      linear(h.data(), l.w_up, l.b_up, u.data(), n, C, I);
      for (auto& e : u) e = gelu_tanh(e);
      linear(u.data(), l.w_down, l.b_down, tmp.data(), n, I, C);
    } else {
      linear(h.data(), l.w_gate, {}, g.data(), n, C, I);
      linear(h.data(), l.w_up, {}, u.data(), n, C, I);
      for (int64_t i = 0; i < n * I; ++i) u[i] *= silu(g[i]);
      linear(u.data(), l.w_down, {}, tmp.data(), n, I, C);
    }
    if (c.sandwich_norm) rms_norm(tmp.data(), l.post_mlp_w.data(), tmp.data(), n, C, c.norm_eps);
    for (int64_t i = 0; i < n * C; ++i) x[i] += tmp[i];
  }
  W.pos = Tk;
  sync.done = true;
  page_sync.done = true;
  const int64_t r0 = all_logits ? 0 : n - 1, rows = n - r0;
  if (c.layer_norm) layer_norm(&x[r0 * C], W.norm_w.data(), W.norm_b.data(), h.data(), rows, C, c.norm_eps);
  else rms_norm(&x[r0 * C], W.norm_w.data(), h.data(), rows, C, c.norm_eps);
  std::vector<float> logits(static_cast<size_t>(rows * c.vocab));
  const std::vector<float>& head = W.lm_head.empty() ? W.embed : W.lm_head;
  linear(h.data(), head, {}, logits.data(), rows, C, c.vocab);
  return logits;
}

namespace {
uint64_t splitmix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
}  // namespace

int32_t sample(std::span<const float> logits, const SamplingOptions& o, uint64_t* state) {
  const int64_t V = static_cast<int64_t>(logits.size());
  if (o.temperature <= 0.0f) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  std::vector<int32_t> idx(V);
  std::iota(idx.begin(), idx.end(), 0);
  std::stable_sort(idx.begin(), idx.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = V;
  if (o.top_k > 0) keep = std::min<int64_t>(keep, o.top_k);
  std::vector<double> p(keep);
  const double mx = logits[idx[0]];
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) sum += p[i] = std::exp((logits[idx[i]] - mx) / o.temperature);
  if (o.top_p < 1.0f) {
    double cum = 0;
    int64_t k2 = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cum += p[i] / sum;
      if (cum >= o.top_p) { k2 = i + 1; break; }
    }
    keep = k2;
    sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += p[i];
  }
  const double r = static_cast<double>(splitmix(state) >> 11) * 0x1.0p-53 * sum;
  double acc = 0;
  for (int64_t i = 0; i < keep; ++i) {
    acc += p[i];
    if (r < acc) return idx[i];
  }
  return idx[keep - 1];
}

namespace {

// The generation loop of both backends: `prefill(prompt)` returns the prompt's last-token logits, the
// rest is m.forward of one token, which Model and CudaModel share.
template <class M, class Prefill>
Expected<std::vector<int32_t>> generate_loop(M& m, std::span<const int32_t> prompt, int64_t max_new,
                                             const SamplingOptions& opt, GenerateStats* stats, Prefill&& prefill) {
  using clock = std::chrono::steady_clock;
  if (prompt.empty()) return invalid_argument("generate: empty prompt");
  if (max_new < 0) return invalid_argument("generate: max_new_tokens " + std::to_string(max_new) + " < 0");
  BNA_RETURN_IF_ERROR(m.reset(static_cast<int64_t>(prompt.size()) + std::max<int64_t>(max_new, 1)));
  GenerateStats st;
  const auto t0 = clock::now();
  BNA_ASSIGN_OR_RETURN(std::vector<float> logits, prefill(prompt));
  st.prefill_s = std::chrono::duration<double>(clock::now() - t0).count();
  std::vector<int32_t> out;
  uint64_t state = opt.seed;
  const auto& eos = m.config().eos_ids;
  auto t1 = clock::now();
  for (int64_t i = 0; i < max_new; ++i) {
    const int32_t t = sample(logits, opt, &state);
    if (i == 0) {
      t1 = clock::now();
      st.first_token_s = std::chrono::duration<double>(t1 - t0).count();
    }
    out.push_back(t);
    if (std::find(eos.begin(), eos.end(), t) != eos.end() || i + 1 == max_new) break;
    BNA_ASSIGN_OR_RETURN(logits, m.forward(std::span<const int32_t>(&t, 1)));
    ++st.decode_steps;
  }
  if (st.decode_steps > 0) st.decode_s = std::chrono::duration<double>(clock::now() - t1).count();
  if (stats != nullptr) *stats = st;
  return out;
}

}  // namespace

Expected<std::vector<int32_t>> generate(Model& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SamplingOptions& opt, int64_t chunk, GenerateStats* stats) {
  return generate_loop(m, prompt, max_new, opt, stats,
                       [&](std::span<const int32_t> ids) { return m.forward(ids, false, chunk); });
}

// Defined here rather than next to CudaModel so that both builds share it: without CUDA the stub's
// reset() returns its kUnavailable.
Expected<std::vector<int32_t>> generate(CudaModel& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SamplingOptions& opt, int64_t chunk, GenerateStats* stats) {
  return generate_loop(m, prompt, max_new, opt, stats,
                       [&](std::span<const int32_t> ids) { return m.forward(ids, false, chunk); });
}

}  // namespace bna::hf
