// Training the reference GPT on the CPU: AdamW, cosine schedule with warmup, gradient clipping by
// global norm, gradient accumulation, evaluation, checkpoints and resume.
//
// Decisions a reader must know:
//   * Weight decay applies to the linear weight matrices (attention QKV and output, both MLP matrices)
//     and the untied LM head. LayerNorm gains/biases and the token and position embeddings are not
//     decayed (ParamInfo::decay). The original decayed every parameter.
//   * AdamW is PyTorch's formulation: w *= 1 - lr*wd (decayed params), m = b1 m + (1-b1) g,
//     v = b2 v + (1-b2) g^2, w -= (lr / (1-b1^t)) * m / (sqrt(v) / sqrt(1-b2^t) + eps).
//   * Schedule (step s = 1..steps): s <= warmup: lr*s/warmup; else
//     lr_min + (lr - lr_min) * 0.5 * (1 + cos(pi * (s - warmup) / max(1, steps - warmup))).
//   * Clipping: global L2 norm in float64 over every gradient, scaled by max_norm / (norm + 1e-6)
//     when norm > max_norm (PyTorch's clip_grad_norm_).
//   * Determinism: micro-batch a of step s is batch index s*accum + a of the data stream (data.hpp),
//     so a resumed run draws exactly the batches of the uninterrupted one; with the same thread count,
//     its losses are bit-identical (tested).
//   * Checkpoints: one safetensors file (weights by parameter name, optimizer moments as
//     "optim.m.<name>", "optim.v.<name>") with metadata "bna.format" = "gpt-checkpoint-1", "config"
//     (GptConfig JSON), "step", "optim" (JSON), plus the caller's entries; written atomically.
//   * Throughput: tokens/s on each log line = tokens of the steps since the previous log line / the
//     time those steps took (eval and checkpoint time excluded), i.e. measured over the window it reports.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bna/data.hpp"
#include "bna/model.hpp"
#include "bna/status.hpp"
#include "bna/tokenizer.hpp"

namespace bna::train {

struct AdamWOptions {
  float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f, weight_decay = 0.1f;
};

class AdamW {
 public:
  AdamW() = default;
  AdamW(int64_t num_params, const AdamWOptions& o) : opt(o), m(num_params, 0.0f), v(num_params, 0.0f) {}
  // One update of model.weights() from model.grads() at learning rate lr.
  void step(model::Gpt& model, float lr);
  AdamWOptions opt;
  int64_t t = 0;  // updates done
  std::vector<float> m, v;
};

struct Schedule {
  float lr = 3e-4f, lr_min = 3e-5f;
  int64_t warmup = 0, steps = 1;
};
float lr_at(const Schedule& s, int64_t step);  // step is 1-based

// Returns the global norm before clipping; scales g in place when max_norm > 0 and norm > max_norm.
double clip_grad_norm(float* g, int64_t n, double max_norm);

// Batch `index` of a deterministic stream (see data.hpp).
using BatchFn = std::function<Status(uint64_t index, data::Batch& out)>;

struct EvalResult {
  double loss = 0, ppl = 0;
  int64_t tokens = 0;
  data::TaskScore score;  // filled when scoring was asked for
  double accuracy() const { return score.examples ? static_cast<double>(score.exact) / score.examples : 0.0; }
};
// Mean loss over `batches` batches (indices 0..batches-1 of fn) and, with score_task, exact-match scores.
Expected<EvalResult> evaluate(model::Gpt& m, const BatchFn& fn, int64_t batches, bool score_task);

struct TrainOptions {
  int64_t steps = 100;
  int64_t accum = 1;       // micro-batches per step
  Schedule schedule;       // schedule.steps is set to steps
  AdamWOptions adamw;
  double grad_clip = 1.0;  // <= 0: no clipping
  int64_t log_every = 10;
  int64_t eval_every = 0;  // 0: only at the end
  int64_t eval_batches = 4;
  bool score_task = false;
  int64_t ckpt_every = 0;  // 0: only at the end (when out_dir is set)
  std::string out_dir;     // checkpoint "ckpt.safetensors" and "metrics.jsonl"; "" = none
  bool resume = false;     // continue from out_dir/ckpt.safetensors when it exists
  int64_t stop_after = -1; // testing: stop after this step as if killed (no final checkpoint)
  std::map<std::string, std::string> metadata;  // stored in checkpoints (tokenizer, data spec, ...)
  // Run the steps and evaluation on the GPU (model::CudaGpt, include/bna/model_cuda.hpp): same
  // schedule, clipping, AdamW and data order; checkpoints download weights and moments first, so they
  // are the CPU format and resume on either backend. Not bit-reproducible (GPU atomics).
  bool cuda = false;
  double peak_tflops = 989.4;  // for the MFU of GPU log lines (H100 SXM dense bf16)
};

struct LogRecord {
  int64_t step = 0, steps = 0;
  double loss = 0, lr = 0, grad_norm = 0;
  double tokens_per_s = 0;  // over the steps since the previous record
  double mfu = 0;           // GPU runs: (6 * matrix params + 6 * L * C * T) * tokens_per_s / peak
  double elapsed_s = 0;     // training time so far in this process
  std::optional<EvalResult> eval;
};

struct TrainResult {
  std::vector<float> losses;  // one per step run in this call (mean over micro-batches)
  int64_t start_step = 0, end_step = 0;
  double tokens_per_s = 0;    // over every step of this call
  std::optional<EvalResult> final_eval;
};

// Trains m in place. eval_fn may be empty (no evaluation). on_log (may be empty) receives every log
// record; the same records are written to out_dir/metrics.jsonl (rewritten atomically each time; on
// resume the lines after the checkpoint's step are dropped). Errors: bad options, a data or model error,
// a checkpoint whose config differs from m's.
Expected<TrainResult> train(model::Gpt& m, const BatchFn& train_fn, const BatchFn& eval_fn, const TrainOptions& opt,
                            const std::function<void(const LogRecord&)>& on_log = {});

// ---- checkpoints ---------------------------------------------------------------------------------
Status save_checkpoint(const std::string& path, const model::Gpt& m, const AdamW* opt, int64_t step,
                       const std::map<std::string, std::string>& metadata = {});
struct Checkpoint {
  model::GptConfig config;
  int64_t step = 0;
  std::map<std::string, std::string> metadata;
};
// Reads config and metadata; with model != nullptr also loads the weights (shapes checked against the
// model's config), and with opt != nullptr the optimizer state (an error when the file has none).
// Errors: kNotFound, kCorrupt (not a GPT checkpoint, missing or mis-shaped tensor, bad config).
Expected<Checkpoint> load_checkpoint(const std::string& path, model::Gpt* model = nullptr, AdamW* opt = nullptr);
// Opens a checkpoint and builds its model.
Expected<model::Gpt> load_model(const std::string& path, Checkpoint* info = nullptr);

// ---- data specs (what the CLI trains and evaluates on; stored in checkpoints as JSON) ------------
struct DataSpec {
  std::string kind = "task";      // task | text | tokens
  data::TaskOptions task;         // kind == task (task.T is the sequence length)
  std::string path;               // text file (UTF-8) or token file (.bin)
  std::string tokenizer = "byte"; // text: byte | char | json:<path> (a Hugging Face tokenizer.json, e.g. GPT-2 BPE)
  double val_fraction = 0.1;      // text and tokens: the last fraction is validation
};
std::string data_spec_to_json(const DataSpec& d);
Expected<DataSpec> data_spec_from_json(std::string_view json);

struct DataStreams {
  int64_t vocab_size = 0;
  bool is_task = false;
  std::unique_ptr<tok::Tokenizer> tokenizer;  // text only
  std::string tokenizer_state;                // "byte", "char:<the vocabulary's characters>", "json:<file text>", "" (none)
  std::shared_ptr<data::TokenSource> train, val;
  BatchFn train_fn, eval_fn;  // batches of B sequences of T tokens; eval uses a separate seed stream
};
// Errors: unknown kind or tokenizer, missing/unreadable files, an empty dataset, a validation or training
// part shorter than T + 1 tokens, task options that do not fit T.
Expected<DataStreams> open_data(const DataSpec& d, int64_t B, int64_t T, uint64_t seed);
// Rebuilds a tokenizer from DataStreams::tokenizer_state (as stored in checkpoint metadata "tokenizer").
Expected<std::unique_ptr<tok::Tokenizer>> tokenizer_from_state(std::string_view state);

}  // namespace bna::train
