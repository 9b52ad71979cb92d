// GPT training throughput on the CPU against an SGEMM-bound estimate measured in the same run.
// Plain main. FLOPs per token follow the usual model-FLOPs convention (llm.c, PaLM): 6 * (matrix
// parameters) for forward + backward, plus 6 * L * C * T for causal attention (half of 12 L C T).
// The bound is sgemm_gflops / flops_per_token, with SGEMM timed on the model's own MLP shape
// [B*T, C] x [C, 4C]. Usage:
//   bna_gpt_train [--layers 6] [--d-model 384] [--heads 6] [--T 1024] [--batch 1] [--steps 3]
//                 [--attn SPEC] [--json]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/data.hpp"
#include "bna/nn.hpp"
#include "bna/rng.hpp"
#include "bna/threads.hpp"
#include "bna/train.hpp"
#include "gpt_bench_flags.hpp"

using Clock = std::chrono::steady_clock;

static double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

int main(int argc, char** argv) {
  GptBenchFlags f;
  if (int rc = parse_gpt_bench_flags(argc, argv, f, false); rc != 0) return rc;
  const int64_t layers = f.layers, C = f.d_model, heads = f.heads, T = f.T, B = f.batch, steps = f.steps;
  const std::string attn = f.attn;
  const bool json = f.json;
  bna::model::GptConfig cfg;
  cfg.vocab_size = 256; cfg.seq_len = T; cfg.n_layers = layers; cfg.n_heads = heads; cfg.d_model = C; cfg.seed = 1;
  auto spec = bna::model::parse_attn_spec(attn);
  if (!spec) { std::fprintf(stderr, "error: %s\n", spec.status().message().c_str()); return 2; }
  cfg.attn = {*spec};
  auto m = bna::model::Gpt::create(cfg);
  if (!m) { std::fprintf(stderr, "error: %s\n", m.status().message().c_str()); return 2; }

  // SGEMM GFLOP/s on the MLP shape.
  const int64_t M = B * T, N = 4 * C, K = C;
  std::vector<float> a(M * K), b(N * K), c(M * N);
  bna::Rng r(1);
  for (auto& x : a) x = static_cast<float>(r.normal());
  for (auto& x : b) x = static_cast<float>(r.normal());
  std::vector<double> gemm_s;
  for (int rep = 0; rep < 6; ++rep) {
    const auto t0 = Clock::now();
    bna::nn::sgemm(false, true, M, N, K, 1.0f, a.data(), K, b.data(), K, 0.0f, c.data(), N);
    if (rep > 0) gemm_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double sgemm_gflops = 2.0 * M * N * K / median(gemm_s) * 1e-9;

  // Training steps (one warm-up).
  bna::data::Batch batch;
  std::vector<int32_t> toks(static_cast<size_t>(B * T * 4));
  for (auto& t : toks) t = static_cast<int32_t>(r.uniform_below(256));
  auto src = bna::data::memory_tokens(toks, 256);
  bna::train::AdamW opt(m->num_params(), {});
  std::vector<double> step_s;
  for (int64_t s = 0; s <= steps; ++s) {
    if (!bna::data::lm_batch(*src, B, T, 1, static_cast<uint64_t>(s), batch).is_ok()) return 1;
    const auto t0 = Clock::now();
    m->zero_grad();
    auto loss = m->forward(batch.x.data(), batch.y.data(), B, T);
    if (!loss || !m->backward().is_ok()) { std::fprintf(stderr, "error: step failed\n"); return 1; }
    bna::train::clip_grad_norm(m->grads(), m->num_params(), 1.0);
    opt.step(*m, 1e-4f);
    if (s > 0) step_s.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  const double flops_per_token = bna::model::flops_per_token(*m, T);
  const double tok_s = B * T / median(step_s);
  const double bound = sgemm_gflops * 1e9 / flops_per_token;
  if (json) {
    nlohmann::ordered_json j;
    j["layers"] = layers; j["d_model"] = C; j["heads"] = heads; j["T"] = T; j["batch"] = B; j["attn"] = attn;
    j["threads"] = bna::num_threads();
    j["sgemm_gflops"] = sgemm_gflops; j["flops_per_token"] = flops_per_token;
    j["step_s_median"] = median(step_s); j["step_s_min"] = *std::min_element(step_s.begin(), step_s.end());
    j["step_s_max"] = *std::max_element(step_s.begin(), step_s.end());
    j["tokens_per_s"] = tok_s; j["sgemm_bound_tokens_per_s"] = bound; j["fraction_of_bound"] = tok_s / bound;
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("GPT L=%lld C=%lld H=%lld T=%lld B=%lld attn=%s threads=%d\n", (long long)layers, (long long)C,
                (long long)heads, (long long)T, (long long)B, attn.c_str(), bna::num_threads());
    std::printf("SGEMM %.1f GFLOP/s | step %.3f s (min %.3f) | %.0f tok/s | bound %.0f tok/s | %.1f%% of bound\n",
                sgemm_gflops, median(step_s), *std::min_element(step_s.begin(), step_s.end()), tok_s, bound,
                100.0 * tok_s / bound);
  }
  return 0;
}
