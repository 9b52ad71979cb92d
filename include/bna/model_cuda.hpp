// The reference GPT (include/bna/model.hpp) trained on the GPU: the same parameters, layers and
// attention per layer, forward and backward on device 0, with AdamW, clipping and the bf16 weight
// copies updated in place.
//
// Decisions a reader must know:
// * Mixed precision (llm.c's recipe): f32 master weights, gradients, AdamW moments, residual stream,
//   LayerNorm statistics and the products feeding them; bf16 copies of the weights and bf16 GEMM
//   inputs (LayerNorm outputs, attention in/out, GELU output and its saved pre-activation, every
//   gradient fed to a GEMM) and bf16 logits (the loss and its gradient use f32 math on them, as
//   PyTorch autocast does). GEMMs are cuBLAS / cuBLASLt with f32 accumulation (GELU and its gradient
//   in the GEMM epilogues); dW accumulates in f32 (beta = 1), so micro-batches sum as on the CPU.
// * Attention: each layer's plan comes from Gpt::plan_layer with Backend::kCuda and bf16 (dense
//   causal, the streams kernel for window + landmark + cycle graphs, block-sparse for block layers,
//   gather or permute-window where the planner or `path=` picks them), forward and backward through
//   attn::run / run_backward on device pointers: strided views of the QKV GEMM output for dense and
//   streams, contiguous copies for the other paths.
// * The embedding and LayerNorm parameter gradients, and attention dK/dV wherever several work items
//   add to one key (GQA, landmarks, T > 2048), are summed with atomics, so two runs may differ in the
//   last bits; everything else is deterministic.
// * Same math as the CPU model within the numerics policy (tests/model_cuda): the weights go up from
//   a Gpt and come back with download_weights(), so checkpoints stay the CPU format.
// In a build without CUDA every entry point returns kUnavailable.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bna/model.hpp"
#include "bna/status.hpp"
#include "bna/train.hpp"

namespace bna::model {

class CudaGpt {
 public:
  // Uploads m's weights. m must outlive the CudaGpt (its layer graphs are planned on demand).
  // Errors: no device (kUnavailable), dh = d_model / n_heads not 64 or 128 (kUnimplemented, named),
  // out of device memory.
  static Expected<CudaGpt> create(Gpt& m);
  CudaGpt(CudaGpt&&) noexcept;
  CudaGpt& operator=(CudaGpt&&) noexcept;
  ~CudaGpt();

  // As Gpt::forward (idx, targets: HOST [B, T]); returns the mean loss over counted targets (0 without
  // targets). Activations stay on the device for backward(). for_backward = false (evaluation) skips
  // the loss gradient the cross-entropy otherwise writes (one bf16 [B*T, V] pass); backward() then
  // refuses, as after a forward without targets.
  Expected<float> forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T, bool for_backward = true);
  // As Gpt::backward: device grads += d(loss_scale * mean loss)/dW.
  Status backward(float loss_scale = 1.0f);
  Status zero_grad();
  // Global L2 norm of the gradients (f64 sum of squares), clipping to max_norm (> 0) as
  // train::clip_grad_norm, then one AdamW update at lr (train::AdamW's formula and decay flags).
  // Returns the norm before clipping.
  Expected<double> step(float lr, const train::AdamWOptions& opt, double max_norm);
  int64_t steps_done() const;

  // AdamW state (moments [num_params] in m's layout, updates done) to and from the host, for
  // checkpoints and resume (train::train with TrainOptions::cuda).
  Status download_optimizer(std::vector<float>& m, std::vector<float>& v) const;
  Status upload_optimizer(const std::vector<float>& m, const std::vector<float>& v, int64_t t);
  // Logits [B, T, V] of the last forward (bf16 on the device, widened to f32 on the host); an error
  // before any forward.
  Status logits(std::vector<float>& out) const;
  Status download_weights(Gpt& m) const;            // device masters -> m.weights()
  Status download_grads(std::vector<float>& g) const;  // [num_params] in m's layout
  size_t device_bytes() const;                      // everything held on the device

  struct Impl;

 private:
  CudaGpt();
  std::unique_ptr<Impl> impl_;
};

}  // namespace bna::model
