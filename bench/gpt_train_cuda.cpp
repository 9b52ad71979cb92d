// GPT training throughput on the GPU (model::CudaGpt) and its model-FLOPs utilisation. Plain main.
// FLOPs per token follow bench/gpt_train.cpp (llm.c / PaLM convention): 6 * (matrix parameters:
// every 2-D weight but the wte/wpe lookups) + 6 * L * C * T (causal dense attention, half of
// 12 L C T), whatever the layer's attention (so a sparse layer's MFU is "dense-equivalent").
// MFU = FLOPs/token * tokens/s / peak, peak = 989.4 TFLOP/s (H100 SXM dense bf16; --peak to change).
// A step is zero_grad + accum x (forward + backward, loss scaled 1/accum) + clip + AdamW: --accum is
// gradient accumulation (GPT-2 small trains on ~0.5M-token steps, llm.c's setting), so the optimizer's
// fixed cost is shared by accum * batch * T tokens. The step's grad-norm read-back synchronises, so
// wall time covers the GPU work. Usage:
//   bna_gpt_train_cuda [--layers 12] [--d-model 768] [--heads 12] [--vocab 50257] [--T 1024]
//                      [--batch 8] [--accum 1] [--steps 10] [--attn SPEC] [--peak TFLOPS] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "bna/model_cuda.hpp"
#include "bna/rng.hpp"
#include "gpt_bench_flags.hpp"

using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  GptBenchFlags f;
  f.layers = 12; f.d_model = 768; f.heads = 12; f.vocab = 50257; f.batch = 8; f.steps = 10;  // GPT-2 small
  if (int rc = parse_gpt_bench_flags(argc, argv, f, true); rc != 0) return rc;
  const int64_t layers = f.layers, C = f.d_model, heads = f.heads, V = f.vocab, T = f.T, B = f.batch, steps = f.steps;
  const int64_t accum = f.accum;
  if (accum < 1 || B < 1 || steps < 1) { std::fprintf(stderr, "error: --accum, --batch and --steps must be >= 1\n"); return 2; }
  const double peak = f.peak_tflops;
  const std::string attn = f.attn;
  const bool json = f.json;
  bna::model::GptConfig cfg;
  cfg.vocab_size = V; cfg.seq_len = T; cfg.n_layers = layers; cfg.n_heads = heads; cfg.d_model = C; cfg.seed = 1;
  auto spec = bna::model::parse_attn_spec(attn);
  if (!spec) { std::fprintf(stderr, "error: %s\n", spec.status().message().c_str()); return 2; }
  cfg.attn = {*spec};
  auto m = bna::model::Gpt::create(cfg);
  if (!m) { std::fprintf(stderr, "error: %s\n", m.status().message().c_str()); return 2; }
  auto g = bna::model::CudaGpt::create(*m);
  if (!g) { std::fprintf(stderr, "error: %s\n", g.status().message().c_str()); return 2; }
  bna::Rng r(1);
  std::vector<int32_t> x(static_cast<size_t>(accum * B * T)), y(x.size());
  bna::train::AdamWOptions ao;
  std::vector<double> step_s;
  float loss = 0;
  for (int64_t s = 0; s < steps + 2; ++s) {  // two warm-up steps (plans, cuBLAS heuristics, buffers)
    for (size_t i = 0; i < x.size(); ++i) {  // drawn before the clock starts
      x[i] = static_cast<int32_t>(r.uniform_below(static_cast<uint64_t>(V)));
      y[i] = static_cast<int32_t>(r.uniform_below(static_cast<uint64_t>(V)));
    }
    const auto t0 = Clock::now();
    bna::Status st = g->zero_grad();
    for (int64_t a = 0; a < accum && st.is_ok(); ++a) {
      const size_t mb = static_cast<size_t>(a * B * T);
      auto l = g->forward(x.data() + mb, y.data() + mb, B, T);
      if (!l) { std::fprintf(stderr, "error: %s\n", l.status().to_string().c_str()); return 1; }
      loss = *l;
      st = g->backward(1.0f / static_cast<float>(accum));
    }
    if (!st.is_ok()) { std::fprintf(stderr, "error: %s\n", st.to_string().c_str()); return 1; }
    auto n = g->step(1e-4f, ao, 1.0);
    if (!n) { std::fprintf(stderr, "error: %s\n", n.status().to_string().c_str()); return 1; }
    if (s >= 2) step_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::sort(step_s.begin(), step_s.end());
  const double med = step_s[step_s.size() / 2];
  const double flops_per_token = bna::model::flops_per_token(*m, T);
  const double tok_s = static_cast<double>(accum * B * T) / med;
  const double mfu = flops_per_token * tok_s / (peak * 1e12);
  if (json) {
    nlohmann::ordered_json j;
    j["device"] = bna::attn::cuda_device_name();
    j["layers"] = layers; j["d_model"] = C; j["heads"] = heads; j["vocab"] = V; j["T"] = T; j["batch"] = B; j["accum"] = accum;
    j["attn"] = attn; j["dtype"] = "bf16 mixed (f32 masters)";
    j["matrix_params"] = bna::model::matrix_params(*m); j["flops_per_token"] = flops_per_token;
    j["step_s_median"] = med; j["step_s_min"] = step_s.front(); j["step_s_max"] = step_s.back();
    j["tokens_per_s"] = tok_s; j["peak_tflops"] = peak; j["mfu"] = mfu; j["last_loss"] = loss;
    j["device_bytes"] = g->device_bytes();
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("GPT L=%lld C=%lld H=%lld V=%lld T=%lld B=%lld accum=%lld attn=%s on %s\n", (long long)layers,
                (long long)C, (long long)heads, (long long)V, (long long)T, (long long)B, (long long)accum, attn.c_str(),
                bna::attn::cuda_device_name().c_str());
    std::printf("step %.2f ms (min %.2f, max %.2f) | %.0f tok/s | MFU %.1f%% of %.1f TFLOP/s | loss %.3f\n", med * 1e3,
                step_s.front() * 1e3, step_s.back() * 1e3, tok_s, 100 * mfu, peak, loss);
  }
  return 0;
}
