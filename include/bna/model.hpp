// The reference GPT (pre-LayerNorm GPT-2 shape) with attention chosen per layer, hand-written forward
// and backward on the CPU (f32, OpenBLAS SGEMM, OpenMP), attention through bna::attn plan/run/run_backward.
//
//   x = wte[idx] + wpe[pos]
//   per layer l:  x += Wo · attn_l(LN1(x))        (Wqkv, Wo bias-free)
//                 x += W2 · gelu_tanh(W1 · LN2(x))  (4C hidden, bias-free)
//   logits = Whead · LNf(x)                        (untied head, bias-free)
// Init: every linear and embedding weight ~ N(0, 0.02) drawn from bna::Rng(seed) in parameter order;
// LayerNorm gain 1, bias 0. Loss: mean token cross-entropy over targets >= 0.
//
// Attention per layer (AttnSpec):
//   dense      causal dense attention;
//   graph      a token graph (window W, landmarks every S, `cycles` Hamiltonian cycles of `strategy`,
//              from bna::topo::Topology with seed cfg.seed + 1337*l) run through the planner
//              (any path it picks, or `path` to force one); cycles = 0 builds window (+ landmarks) rows;
//   block      block butterfly: BSR layout of bna::topo::butterfly_block_layout with layer = l, so
//              layer l uses stage l mod stage_count (the per-layer stage schedule).
// Graphs are built once for T = seq_len. A shorter sequence (t tokens) uses the first t rows with
// entries >= t dropped (all of them are masked by causality anyway), so a prefix sees exactly the rows
// the full sequence gives it: generation with and without a KV cache attends the same keys (decode()
// reads row p of the T = seq_len structure directly).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bna/attention.hpp"
#include "bna/butterfly.hpp"
#include "bna/graph.hpp"
#include "bna/rng.hpp"
#include "bna/status.hpp"

namespace bna::model {

enum class AttnKind { kDense, kGraph, kBlock };
const char* attn_kind_name(AttnKind k);  // "dense", "graph", "block"

struct AttnSpec {
  AttnKind kind = AttnKind::kDense;
  // graph
  int64_t window = 64;
  int64_t landmark_stride = 64;  // 0 = none
  int64_t cycles = 1;            // 0 = no cycle neighbours
  std::string strategy = "random";  // random | regular_partition | edge_disjoint | covering
  std::string path;              // "" = planner's choice, else a bna::attn path name to force
  // block
  int64_t block_size = 64;
  std::string rule = "xor";
  int64_t partner_count = 1, local_blocks = 1, sink_count = 1;
};
// Text form used by the CLI and stored in checkpoints, e.g. "dense",
// "graph:w=64,s=64,c=1,strategy=random", "graph:w=32,s=0,c=0", "block:bs=64,rule=xor,p=1,local=1,sink=1".
std::string attn_spec_string(const AttnSpec& s);
Expected<AttnSpec> parse_attn_spec(std::string_view text);

struct GptConfig {
  int64_t vocab_size = 256;
  int64_t seq_len = 256;   // longest sequence (positions)
  int64_t n_layers = 2;
  int64_t n_heads = 4;     // query heads Hq
  int64_t n_kv_heads = 0;  // Hkv; 0 = n_heads (GQA when smaller; must divide n_heads)
  int64_t d_model = 64;    // C; dh = C / Hq
  uint64_t seed = 0;
  std::vector<AttnSpec> attn;  // one per layer, or one entry applied to every layer
};
Status validate_config(const GptConfig& c);
std::string config_to_json(const GptConfig& c);
Expected<GptConfig> config_from_json(std::string_view json);

// One named parameter tensor inside the flat parameter buffer.
struct ParamInfo {
  std::string name;  // "wte", "wpe", "h.0.ln1.w", "h.0.ln1.b", "h.0.attn.qkv", "h.0.attn.proj", "h.0.ln2.w",
                     // "h.0.ln2.b", "h.0.mlp.fc", "h.0.mlp.proj", "lnf.w", "lnf.b", "head"
  std::vector<int64_t> shape;
  int64_t offset = 0, numel = 0;
  bool decay = false;  // AdamW weight decay applies (linear weight matrices and the head only)
};

struct Activations;  // saved forward state (defined in src/model)
struct LayerAttn;    // per-layer graph / layout and plan cache

class Gpt {
 public:
  // Builds the parameter table and the per-layer attention structures, initialises weights.
  static Expected<Gpt> create(const GptConfig& cfg);
  Gpt(Gpt&&) noexcept;
  Gpt& operator=(Gpt&&) noexcept;
  ~Gpt();

  const GptConfig& config() const { return cfg_; }
  const std::vector<ParamInfo>& params() const { return params_; }
  const ParamInfo* find_param(std::string_view name) const;
  int64_t num_params() const { return static_cast<int64_t>(w_.size()); }
  float* weights() { return w_.data(); }
  const float* weights() const { return w_.data(); }
  float* grads() { return g_.data(); }
  const float* grads() const { return g_.data(); }
  void zero_grad();

  // Forward over idx [B, T] (T <= seq_len, ids in [0, V)). With targets [B, T] (entries < 0 ignored)
  // returns the mean loss over counted targets and keeps the activations for backward(); without
  // targets returns 0. logits() then holds [B, T, V] (softmax probabilities after a loss forward).
  Expected<float> forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T);
  // Backward of the last forward with targets: grads() += d(loss_scale * mean loss)/d(weights).
  Status backward(float loss_scale = 1.0f);
  // Logits [B, T, V] of the last forward without targets.
  const float* logits() const;

  // ---- generation with a KV cache ------------------------------------------------------------
  struct KvCache {
    int64_t capacity = 0, length = 0;
    std::vector<std::vector<float>> k, v;  // per layer [Hkv, capacity, dh]; rows >= length are never read
  };
  KvCache new_cache() const;
  // Appends tokens [n] at positions cache.length .. +n-1 (<= seq_len) and writes the logits of the
  // last one [V] into logits_out. The first call may pass the whole prompt (prefill).
  // A prefill from position 0 with n > 1 runs the planned kernels (the plan forward() uses at T = n).
  // Every other call attends each new row p in the cache directly: the keys of row p of the layer's
  // graph or block layout at T = seq_len that are <= p (dense: 0..p), i.e. what forward() attends at
  // any length > p. A decode step costs O(Hq * keys * dh) per layer (keys = that row's degree, bounded
  // by the graph's D), with no plan, no truncated graph and no copy of the cache.
  // Errors (the cache is left unchanged): n < 1, a token outside [0, V), a cache not made by this
  // model's new_cache() (kInvalidArgument); positions past seq_len (kOutOfRange).
  Status decode(KvCache& cache, const int32_t* tokens, int64_t n, float* logits_out);

  // Total ms spent in attention forward/backward since creation (for the ablation report).
  double attention_ms() const { return attn_ms_; }
  // The plan path chosen for layer l at length T (for logs); "" before any forward.
  std::string attention_path(int64_t layer) const;
  // Layer l's token graph at T = seq_len (graph layers), else nullptr.
  const graph::GraphAbi* layer_graph(int64_t l) const;
  // A fresh plan of layer l's attention over [B, T] (Tq = Tk = T) with this dtype and backend, on the
  // same graph the CPU forward uses (model::CudaGpt plans its layers with it).
  Expected<attn::Plan> plan_layer(int64_t l, int64_t B, int64_t T, DType dtype, attn::Backend backend);

 private:
  Gpt();
  Status attn_forward(int64_t l, int64_t B, int64_t Tq, int64_t Tk, int64_t q_offset, const float* q,
                      const float* k, const float* v, float* out, float* lse);
  Status attn_backward(int64_t l, int64_t B, int64_t T, const float* q, const float* k, const float* v,
                       const float* out, const float* lse, const float* dout, float* dq, float* dk, float* dv);
  Expected<const attn::Plan*> plan_for(int64_t l, int64_t B, int64_t Tq, int64_t Tk, int64_t q_offset);
  Status layer_source(int64_t l, int64_t Tk, attn::GraphSource& src, attn::Options& opt);

  GptConfig cfg_;
  std::vector<ParamInfo> params_;
  std::vector<float> w_, g_;
  std::unique_ptr<Activations> act_;
  std::vector<std::unique_ptr<LayerAttn>> layers_;
  double attn_ms_ = 0;
};

// Model FLOPs per trained token at length T (llm.c / PaLM convention): 6 * matrix parameters (every
// 2-D weight but the wte / wpe lookups) for forward + backward, plus 6 * L * C * T for causal dense
// attention (half of 12 L C T), whatever each layer's attention is (dense-equivalent FLOPs).
int64_t matrix_params(const Gpt& m);
double flops_per_token(const Gpt& m, int64_t T);

// ---- sampling and generation --------------------------------------------------------------------
struct SampleOptions {
  float temperature = 1.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // > 0: keep the k largest logits (ties with the k-th kept)
  float top_p = 1.0f;        // < 1: keep the smallest most-probable set whose mass reaches top_p
  uint64_t seed = 0;
};
// One token from logits [V]: softmax(logits / temperature) restricted by top-k then top-p, then the
// inverse CDF at one Rng::uniform01() draw over the kept ids in descending probability (ties: lower id).
int32_t sample_token(const float* logits, int64_t V, const SampleOptions& o, Rng& rng);

// prompt + max_new sampled tokens. use_cache: prefill the prompt into a KV cache and decode one token
// at a time; otherwise recompute the whole prefix every step (the reference). Errors: empty prompt,
// ids out of range, prompt + max_new > seq_len (the model has no positions past it).
Expected<std::vector<int32_t>> generate(Gpt& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SampleOptions& o, bool use_cache);

}  // namespace bna::model
