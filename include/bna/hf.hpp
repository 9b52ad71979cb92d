// Hugging Face causal LMs on the CPU: GPT2LMHeadModel, Qwen2ForCausalLM, Qwen3ForCausalLM,
// LlamaForCausalLM (incl. rope_scaling llama3) and Glm4ForCausalLM, read from a model directory
// (config.json + safetensors, sharded or not; tokenizer.json via bna/tokenizer.hpp).
//
// Decisions a reader must know:
// * ONE decoder code path. The families differ only by the switches in Config: LayerNorm vs RMSNorm,
//   learned positions vs RoPE (half-split, or GLM's interleaved partial rotary), q/k/v(/o) biases,
//   per-head q/k RMSNorm (Qwen3), GLM's extra post-attention / post-MLP norms, GELU-tanh MLP vs
//   SwiGLU (separate or fused gate/up), tied embeddings.
// * fp32 compute; F32/BF16/F16 weights are converted to f32 at load. GEMMs are OpenBLAS sgemm
//   (through bna::nn). RoPE angles are computed as transformers does (fp32 inv_freq times fp32
//   position), so the references agree to rounding.
// * Attention always goes through bna::attn::plan/run on KV heads (GQA: K/V never repeated): dense
//   causal, or Butterfly, per layer. Butterfly keeps one topo::DecodeGraph per KV head (random
//   insertion: window, landmarks, cycles) holding every cached token; token i attends row i of that
//   graph as it was when i was appended, in one-shot prefill, chunked prefill and decode alike, so a
//   token sees the same keys however the sequence was fed (docs/hf.md).
// * Compressed butterfly (AttnKind::kCompressed): a query at position pos attends raw keys [c, pos],
//   c = max(0, pos - L + 1), plus the f32 means of the routed complete blocks ending at or before c
//   (the runtime's Path::kCompressed rule, docs/numerics.md), the routing being the butterfly block
//   layout built for the cache capacity (so it never changes as tokens arrive).
// * KV cache: contiguous [Hkv, capacity, dh] per dense / Butterfly layer; a compressed layer keeps only
//   two pools (src/hf/compressed_cache.hpp): a raw ring of max(L, Bs) rows and the block means
//   [Hkv, (capacity - L) / Bs, dh], O(L + T/Bs) rows per KV head. Capacity fixed at reset(); a prompt
//   longer than the capacity is an error, never a silent truncation. With AttentionOptions::kv_page
//   = P > 0 the dense layers keep K/V in pages of P tokens from a per-model pool instead, taken as the
//   cache fills, and attend over the pages in place (src/hf/paged_kv.hpp; same logits bit for bit).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "bna/butterfly.hpp"
#include "bna/status.hpp"

namespace bna::hf {

enum class Family { kGpt2, kQwen2, kQwen3, kLlama, kGlm4 };
const char* family_name(Family f);        // "gpt2", "qwen2", "qwen3", "llama", "glm4"
const char* supported_architectures();    // "GPT2LMHeadModel, Qwen2ForCausalLM, ..."

struct Config {
  Family family = Family::kLlama;
  std::string architecture;  // as in config.json
  int64_t vocab = 0, hidden = 0, layers = 0, n_heads = 0, n_kv_heads = 0, head_dim = 0, intermediate = 0;
  int64_t max_positions = 0;  // learned position table size (GPT-2) or max_position_embeddings
  float norm_eps = 1e-5f;
  // Switches of the one decoder path.
  bool layer_norm = false;      // LayerNorm with bias (GPT-2), else RMSNorm
  bool learned_pos = false;     // GPT-2 position table, else RoPE
  bool qkv_bias = false;        // q/k/v projection biases
  bool o_bias = false;          // output projection bias
  bool mlp_bias = false;        // MLP biases (GPT-2)
  bool qk_norm = false;         // per-head RMSNorm of q and k before RoPE (Qwen3)
  bool sandwich_norm = false;   // post_self_attn_layernorm / post_mlp_layernorm (GLM-4)
  bool gelu_mlp = false;        // GELU-tanh MLP (GPT-2), else SwiGLU
  bool fused_gate_up = false;   // gate_up_proj [2I, C] (GLM-4)
  bool rope_interleaved = false;  // pairs (2i, 2i+1) (GLM-4), else (i, i + rotary_dim/2)
  int64_t rotary_dim = 0;       // head_dim * partial_rotary_factor
  double rope_theta = 10000.0;
  bool rope_llama3 = false;     // rope_scaling / rope_parameters rope_type "llama3"
  double rope_factor = 1, rope_low_freq_factor = 1, rope_high_freq_factor = 4;
  int64_t rope_original_max_positions = 8192;
  std::vector<int32_t> eos_ids;
};

// Parses config.json text. Errors: kUnimplemented for an unknown architecture (listing the supported
// ones) or an unsupported rope type / activation; kCorrupt for missing or inconsistent sizes (naming
// the field and value, e.g. "num_attention_heads=4 does not divide hidden_size=66").
Expected<Config> parse_config(const std::string& json_text);

// RoPE inverse frequencies [rotary_dim / 2] exactly as transformers computes them in fp32 (llama3
// rescaling included); empty for learned positions.
std::vector<float> rope_inv_freq(const Config& c);

enum class AttnKind { kDense, kButterfly, kCompressed };
Expected<AttnKind> parse_attn_kind(const std::string& s);  // "dense" | "butterfly" | "compressed"
const char* attn_kind_name(AttnKind k);                    // the inverse of parse_attn_kind

// Compressed butterfly (docs/hf.md): raw tail L, block means of Bs tokens routed by the butterfly
// block layout of each compressed layer (topo::butterfly_block_layout over the cache capacity, one
// layout shared by every KV head; stage = the layer's ordinal among the compressed layers, so
// ceil(log2 N) consecutive compressed layers run every stage).
struct CompressedOptions {
  int64_t tail = 1024;   // L >= 1 raw tokens attended exactly (the runtime's compressed_tail)
  int64_t block = 64;    // Bs >= 1 tokens per summary (the runtime's compressed_block)
  topo::PartnerRule rule = topo::PartnerRule::kCausalShift;
  int64_t partner_count = 1, local_blocks = 1, sink_count = 1;  // >= 0 (topo::ButterflyOptions)
  // Reference mode for tests: compressed layers keep the full contiguous cache and run the runtime's
  // Path::kCompressed (attn::plan/run) over all of K/V. Same logits, O(T) memory.
  bool full_kv_reference = false;
};

struct AttentionOptions {
  AttnKind kind = AttnKind::kDense;
  std::vector<int64_t> dense_layers;  // layers kept dense when kind is kButterfly or kCompressed
  int64_t window = 64, landmark_stride = 64, num_cycles = 1;  // Butterfly graph
  uint64_t seed = 0;
  int64_t kv_page = 0;  // > 0: dense layers keep K/V in pages of this many tokens, allocated as the cache fills (0 = one contiguous [Hkv, capacity, dh] buffer per layer)
  CompressedOptions compressed;       // used when kind is kCompressed
};

struct SamplingOptions {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int64_t top_k = 0;         // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};

struct ModelWeights;  // f32 parameters, converted at load

class Model {
 public:
  // Loads config.json and the safetensors of `dir`. Errors: those of parse_config and
  // st::Checkpoint::open_dir, a missing tensor (naming it), a tensor whose shape disagrees with the
  // config (naming tensor, shape and expected shape), an unsupported dtype.
  static Expected<Model> load(const std::string& dir);
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  const Config& config() const;
  // Errors (kInvalidArgument, naming the value): window/stride/cycles/dense layer out of range;
  // compressed tail L < 1, block Bs < 1, negative partner/local/sink counts, an unknown partner rule.
  // With tokens in the cache, switching keeps them: Butterfly graphs are rebuilt, full caches are
  // compressed into the two pools; a compressed layer cannot go back to a full cache (its old raw rows
  // are gone): kInvalidArgument, reset() first. kv_page < 0 is kInvalidArgument; changing kv_page or
  // which layers are dense copies the cached tokens between contiguous buffers and pages. On any error
  // the options are unchanged.
  Status set_attention(const AttentionOptions& opt);
  const AttentionOptions& attention() const;

  // Empties the KV cache and sets its capacity in tokens (>= 1; GPT-2: <= max_positions). The
  // compressed routing layouts are built for this capacity.
  Status reset(int64_t capacity);
  int64_t position() const;  // tokens in the cache
  int64_t capacity() const;
  // Bytes the KV cache holds: full caches 2*Hkv*capacity*dh f32 per dense / Butterfly layer, and per
  // compressed layer its two pools, 2*Hkv*(max(L, Bs) + (capacity - L)/Bs)*dh f32 (allocated at reset).
  // A paged dense layer (kv_page = P > 0) holds 2*Hkv*P*dh f32 per page in use: ceil(position() / P).
  size_t kv_bytes() const;
  size_t graph_bytes() const;  // Butterfly decode graphs and compressed routing layouts (0 for dense)

  // A model of config `c` with random weights (no files): matrices N(0, 0.02), norm weights 1,
  // biases 0, untied LM head. For speed measurements only. Errors: invalid sizes in c (named).
  static Expected<Model> random(const Config& c, uint64_t seed);

  // Appends ids to the cache and returns logits f32 [n, V] (all_logits) or [1, V] (the last token).
  // chunk > 0 splits the ids into prefill chunks of that many tokens. Errors: an id out of
  // [0, vocab), more tokens than the free capacity (naming both), empty ids.
  Expected<std::vector<float>> forward(std::span<const int32_t> ids, bool all_logits = false, int64_t chunk = 0);

 private:
  Model();
  std::unique_ptr<ModelWeights> w_;
};

// Draws a token from logits [V]: greedy, or temperature softmax restricted to the top_k largest and
// the smallest set of probability >= top_p. rng_state advances (one uniform draw per call).
int32_t sample(std::span<const float> logits, const SamplingOptions& opt, uint64_t* rng_state);

struct GenerateStats {
  double prefill_s = 0;      // prompt forward
  double first_token_s = 0;  // prompt forward + the first draw (time to first token)
  double decode_s = 0;       // the decode forwards after the first token
  int64_t decode_steps = 0;  // forwards of one token
};

// Prefill (in chunks of `chunk` tokens, 0 = all at once) then decode up to max_new tokens, stopping at
// a config eos id. Returns the new ids. The cache is reset to prompt + max_new tokens first. stats, when
// given, receives the wall-clock split. The same code runs a CudaModel (bna/hf_cuda.hpp).
Expected<std::vector<int32_t>> generate(Model& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SamplingOptions& opt, int64_t chunk = 0,
                                        GenerateStats* stats = nullptr);

// ---- quality of Butterfly against dense on the same model (src/hf/quality.cpp) -------------------

// KL(P || Q) in nats over the full vocabulary, P = softmax(p_logits), Q = softmax(q_logits), both
// log-softmaxes computed in float64: sum_i P_i (log P_i - log Q_i). 0 exactly when the logits are
// equal; never NaN for finite logits. Errors: sizes differ or are 0, a non-finite logit (named).
Expected<double> kl_divergence(std::span<const float> p_logits, std::span<const float> q_logits);

// |top-k(a) ∩ top-k(b)| (ties broken by the lower id). k is clamped to the vocabulary size.
int64_t top_k_overlap(std::span<const float> a, std::span<const float> b, int64_t k);

struct QualityOptions {
  // The sparse side compared with dense: kind kButterfly or kCompressed (kDense is taken as
  // kButterfly, as before compressed existed).
  AttentionOptions butterfly;
  int64_t top_k = 10;            // for the top-k overlap
  int64_t positions = 256;       // last positions of the text compared by KL / top-k (0 = all)
  int64_t greedy_tokens = 32;    // greedy decode after the text, dense vs Butterfly
  int64_t chunk = 256;           // prefill chunk (bounds the [chunk, V] logits held at once)
};

struct QualityReport {
  int64_t tokens = 0;            // T, the text's tokens
  int64_t first_position = 0;    // first position compared by KL / top-k
  std::vector<double> kl;        // KL(dense || Butterfly) per compared position, nats
  double kl_mean = 0, kl_max = 0;
  int64_t kl_argmax = 0;         // absolute position of kl_max
  double top_k_overlap_mean = 0; // mean |top-k ∩ top-k| / k over compared positions
  double top1_agreement = 0;     // fraction of compared positions with the same argmax
  double ppl_dense = 0, ppl_butterfly = 0;  // exp(mean NLL of ids[t+1] at t), t = 0..T-2
  std::vector<int32_t> greedy_dense, greedy_butterfly;
  int64_t first_divergence = -1; // first index where the greedy continuations differ; -1 = none
  double greedy_parity = 0;      // agreeing prefix / greedy_tokens (1 = identical)
};

// Runs the text through the model dense and then with Butterfly / compressed attention (each from an empty cache
// of capacity T + greedy_tokens, prefilled in chunks), then decodes greedily from each. Only the
// dense logits of the compared positions are held ([positions, V] f32). The model's attention options
// are restored afterwards and its cache is left reset. Errors: fewer than 2 tokens, options out of
// range (named), model errors. The same code runs a CudaModel (bna/hf_cuda.hpp, one-call prefill).
Expected<QualityReport> compare_quality(Model& m, std::span<const int32_t> ids, const QualityOptions& opt);

// ---- model speed (src/hf/bench_model.cpp) ------------------------------------------------------

// A Qwen2-like config (RMSNorm, RoPE theta 1e6, q/k/v bias, SwiGLU, GQA, untied head) by name:
// "qwen-tiny" (hidden 256, 4 layers, 4 heads / 2 KV, dh 64, I 704, V 4096) or "qwen-0.5b-like"
// (Qwen2.5-0.5B's shape: hidden 896, 24 layers, 14 heads / 2 KV, dh 64, I 4864, V 151936).
// Errors: an unknown name (listing the known ones).
// "qwen-1b-like": Qwen3-1.7B's attention shape (hidden 2048, 16 heads / 8 KV, dh 128, I 6144, V 151936)
// with 16 layers (about 1.4B parameters with the untied head).
Expected<Config> preset_config(const std::string& name);
// Parameters of a config (embeddings, head untied, every layer's weights and biases).
int64_t count_params(const Config& c);

struct ModelBenchOptions {
  std::vector<int64_t> contexts = {1024, 2048};
  int64_t decode_tokens = 32;
  int64_t chunk = 0;             // prefill chunk (0 = one call)
  AttentionOptions butterfly;    // kind is forced to kButterfly
  AttentionOptions compressed;   // kind is forced to kCompressed (its CompressedOptions are used)
  std::vector<AttnKind> kinds = {AttnKind::kDense, AttnKind::kButterfly, AttnKind::kCompressed};  // records per context
  int repeats = 1;               // prefill/decode runs per (attention, context); the median is kept
  uint64_t seed = 0;
};

struct ModelBenchRecord {
  std::string attention;         // "dense" | "butterfly" | "compressed"
  int64_t context = 0;
  double prefill_s = 0, prefill_tok_s = 0;  // median over repeats
  double ttft_s = 0;             // prefill + the first sampled token
  double decode_tok_s = 0;       // decode_tokens one at a time after the prefill
  int64_t peak_rss_bytes = 0;    // process VmHWM after this record (reset before it where Linux allows)
  bool peak_rss_reset = false;   // whether VmHWM could be reset before the record
  size_t kv_bytes = 0;           // retained KV cache (capacity context + decode_tokens): full, or the two pools
  size_t graph_bytes = 0;        // retained Butterfly graph / compressed routing state
  size_t device_bytes = 0;       // CUDA backend: device bytes the model held after the record (all of them)
};

struct ModelBenchReport {
  Config config;
  int64_t params = 0;
  int threads = 1;
  std::string device = "cpu";    // "cpu", or the CUDA device's name
  std::vector<ModelBenchRecord> records;
};

// Prefill / decode speed of `m` (reset per record) for each of opt.kinds at each context, on random
// token ids. Errors: contexts < 2 or beyond the config's positions, decode_tokens < 1, repeats < 1,
// chunk < 0, no kinds, invalid attention options (named). The loop is shared with bench_model_cuda
// (bna/hf_cuda.hpp).
Expected<ModelBenchReport> bench_model(Model& m, const ModelBenchOptions& opt);

}  // namespace bna::hf
