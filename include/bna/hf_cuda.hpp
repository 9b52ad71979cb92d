// The Hugging Face decoder on the GPU: the same families, switches and attention choices as
// bna::hf::Model (include/bna/hf.hpp), with bf16 weights and activations on the device.
//
// Decisions a reader must know:
// * Families: all of bna::hf::Model's, on one forward with the Config switches: the Llama path (Qwen2,
//   Qwen3, Llama 3, GLM-4: RMSNorm, RoPE half-split or GLM's interleaved partial rotary, q/k/v bias,
//   q/k norm, sandwich norms, SwiGLU) and GPT-2 (LayerNorm with bias, learned positions added at the
//   embedding, fused c_attn with bias and no RoPE, o-proj bias, GELU-tanh MLP with biases, tied head).
//   head_dim must be 64 or 128 (the CUDA attention kernels; GPT-2's real models have 64). GPT-2's
//   learned positions cap the cache at n_positions tokens, as on the CPU.
// * Precision: weights bf16 (f32/f16 checkpoints are rounded to bf16 at load; GPT-2's position table
//   too); the residual stream, norm weights, biases, the q/k/v projection output, GPT-2's c_fc output
//   (before its bias and GELU) and the logits are f32; GEMM inputs, q, the KV cache, the attention
//   output and the MLP activations are bf16. GEMMs: cuBLAS, f32 accumulation.
// * Attention: bna::cuda kernels straight on the cache [Hkv, capacity, dh] (no copy): a call of up to
//   64 / (Hq / Hkv) tokens after position 0 runs the split-K decode kernels; any other call runs the
//   forward kernels (dense causal or streams) for its n queries against all p0 + n cached keys
//   (q_offset = p0), so chunked prefill runs the same kernels (their rows equal one-shot prefill's
//   bit for bit; the GEMMs of other shapes may round differently). Compressed layers take a prompt in one call at position 0, then one token per call.
// * Paged KV (AttentionOptions::kv_page = P, a power of two): dense layers keep K/V in pages of P
//   tokens ([2][Hkv][P][dh] bf16: K rows, then V rows) taken from a model-wide pool as the cache
//   fills, one device page table per layer; the attention kernels read through the table. The pool
//   grows by slabs (at least the pages a call needs, else at most doubling, capped at 4096 pages) and
//   keeps them across reset(); kv_bytes() counts the pages in use, device_bytes() the slabs.
// * Butterfly: the CPU model's graph exactly: one random-insertion topo::DecodeGraph per KV head
//   (seed head_seed(seed, h)); token i attends its window, landmarks and the cycle neighbours it got
//   when it was appended (stored as the streams "extras" row i, uploaded once), in prefill and decode
//   alike. So CPU and GPU Butterfly attend the same keys, and prefill rows equal decode rows.
// * Every byte the model holds on the device (weights, cache, graph rows, activations, cuBLAS
//   workspace) is counted by device_bytes(); nothing is allocated inside a forward once the
//   activation buffers have grown to the longest call.
// In a build without CUDA every entry point returns kUnavailable ("built without CUDA").
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bna/hf.hpp"
#include "bna/status.hpp"

namespace bna::hf {

class CudaModel {
 public:
  // As Model::load, onto device 0. Errors: those of Model::load, a head_dim the kernels do not cover
  // (kUnimplemented, naming it), no device or out of device memory (kUnavailable / kInternal).
  static Expected<CudaModel> load(const std::string& dir);
  // Random weights on the device (speed only): matrices (and GPT-2's position table) N(0, 0.02) from a
  // counter-based generator, norm weights 1, biases 0, untied head. Not the same numbers as Model::random.
  static Expected<CudaModel> random(const Config& c, uint64_t seed);
  CudaModel(CudaModel&&) noexcept;
  CudaModel& operator=(CudaModel&&) noexcept;
  ~CudaModel();

  const Config& config() const;
  Status set_attention(const AttentionOptions& opt);  // errors as Model::set_attention
  const AttentionOptions& attention() const;
  // Empties the cache; capacity >= 1, and <= n_positions with learned positions (GPT-2; else
  // kInvalidArgument naming both, the model unchanged).
  Status reset(int64_t capacity);
  int64_t position() const;
  int64_t capacity() const;
  size_t kv_bytes() const;      // device bytes of the KV cache
  size_t graph_bytes() const;   // host decode graphs + the device extras rows (0 for dense)
  size_t device_bytes() const;  // everything the model holds on the device now

  // As Model::forward (logits f32 [n, V] or [1, V], copied to the host; the call synchronises).
  // chunk > 0 splits ids into calls of at most chunk tokens (chunked prefill), as Model::forward.
  // Errors: those of Model::forward, plus more than one token per call after position 0 with
  // compressed layers (kUnimplemented, named).
  Expected<std::vector<float>> forward(std::span<const int32_t> ids, bool all_logits = false, int64_t chunk = 0);
  // forward() of ids, then the greedy next token (hf::sample at temperature 0: argmax, lowest id on
  // ties) drawn on the device: only 4 bytes come back instead of V logits. Errors as forward().
  Expected<int32_t> forward_greedy(std::span<const int32_t> ids);

  struct Impl;

 private:
  CudaModel();
  std::unique_ptr<Impl> impl_;
};

// generate() on the GPU, the same code as for Model (src/hf/model.cpp): the cache is reset to
// prompt + max_new tokens, the prompt is prefilled in one call (chunk 0) or in chunks, then up to
// max_new tokens are drawn on the host. Errors: those of generate(Model&) and of forward (a chunk > 1
// with compressed layers is kUnimplemented).
Expected<std::vector<int32_t>> generate(CudaModel& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SamplingOptions& opt, int64_t chunk = 0,
                                        GenerateStats* stats = nullptr);

// compare_quality() on the GPU, the same code as for Model (src/hf/quality.cpp), prefilling in
// opt.chunk chunks, except with compressed layers: then the text is one call and each pass holds the
// logits of all T tokens, f32 [T, V] on the device and on the host. Errors: those of
// compare_quality(Model&).
Expected<QualityReport> compare_quality(CudaModel& m, std::span<const int32_t> ids, const QualityOptions& opt);

// bench_model() on the GPU, the same loop (src/hf/bench_loop.hpp): the same records (prefill is one
// call; decode one token per call; one untimed warm-up run per record), with device_bytes the model's
// device footprint after the record and report.device the GPU's name. peak_rss_bytes is not measured
// (0). opt.chunk > 0 prefills in chunks. Errors: those of bench_model, and a chunk > 1 with compressed
// layers (kUnimplemented, naming it).
Expected<ModelBenchReport> bench_model_cuda(CudaModel& m, const ModelBenchOptions& opt);

}  // namespace bna::hf
