// model::CudaGpt against the CPU model (model::Gpt) on the same weights: loss, every parameter
// gradient, and the losses of a few AdamW steps with clipping. Layer 0 dense, layer 1 a window +
// landmark + cycle graph (the CUDA streams kernel), GQA 2, dh 64, odd T.
//
// Pass rule (docs/numerics.md at model level; the GPU rounds every GEMM input to bf16, 2^-9 relative
// each, the CPU is f32): with R = 12 * layers + 4 such rounding points on a gradient's path,
// |loss_gpu - loss_cpu| <= 2^-8 sqrt(R) |loss_cpu| and, per parameter tensor,
// rms(g_gpu - g_cpu) <= 2^-8 sqrt(R) rms(g_cpu), at the same weights. NaN never passes. Weights are N(0, 0.1) (not 0.02) so attention is far from uniform and a
// wrong key set or scale shows up above the bound. Since the GELU epilogues and the bf16 logits, the
// GPU rounds 13 * layers + 5 times on that path (the saved GELU pre-activation and the logits are
// bf16 too); R is left at the old count, so the bound is the stricter one, and it holds (H100).
//
// Steps 2 and 3 are checked twice. At the same weights: a CPU twin loaded with the GPU's weights
// gives the loss, every gradient and the gradient norm within tol (the rule above). Along the
// trajectory: the independent CPU run's loss and gradient norm within 2 tol. AdamW amplifies
// differences that each step keeps within tol: CPU runs with gradient noise of rms tol * rms(g) per
// tensor on every step drift by up to 1.62 tol (loss) and 1.47 tol (gradient norm) over 48 noise
// draws (bench/gpt_step_noise_calibration.cpp, output in bench/results/), so tol itself is not a
// bound for the trajectory. 2 tol is still below what the two checks add up to (the GPU within tol
// of the twin, the twin within ~1.6 tol of the CPU run), so it is the stricter choice; the noise is
// isotropic where bf16 rounding is not, which is why the same-weights checks carry the strict rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/data.hpp"
#include "bna/model.hpp"
#include "bna/model_cuda.hpp"
#include "bna/rng.hpp"
#include "bna/train.hpp"

namespace {

using bna::model::Gpt;
using bna::model::GptConfig;

// bench/gpt_test_models.hpp repeats these configs for the CPU programs that calibrate the bounds.
GptConfig tiny() {
  GptConfig c;
  c.vocab_size = 96;
  c.seq_len = 101;
  c.n_layers = 2;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.d_model = 128;
  c.seed = 3;
  c.attn.push_back(*bna::model::parse_attn_spec("dense"));
  c.attn.push_back(*bna::model::parse_attn_spec("graph:w=16,s=16,c=1,strategy=random"));
  return c;
}

double bound(int64_t layers) { return std::ldexp(1.0, -8) * std::sqrt(12.0 * static_cast<double>(layers) + 4.0); }

// The layers of tiny() run on strided views of the QKV GEMM output (dense, streams); these run on
// the paths that read contiguous tensors (block-sparse, gather), through the copies of cuda_gpt.cpp.
GptConfig tiny_contiguous_paths() {
  GptConfig c = tiny();
  c.attn.clear();
  c.attn.push_back(*bna::model::parse_attn_spec("block:bs=16,rule=xor,p=1,local=1,sink=1"));
  c.attn.push_back(*bna::model::parse_attn_spec("graph:w=16,s=16,c=1,strategy=random,path=gather"));
  return c;
}

void matches_the_cpu_model(const GptConfig& cfg, double weight_std = 0.1) {
  auto cpu = Gpt::create(cfg);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  {
    bna::Rng rng(11);
    for (const auto& p : cpu->params()) {
      if (p.shape.size() == 1) continue;  // LayerNorm gains/biases keep 1/0
      for (int64_t i = 0; i < p.numel; ++i) cpu->weights()[p.offset + i] = static_cast<float>(weight_std * rng.normal());
    }
  }
  const std::vector<float> w0(cpu->weights(), cpu->weights() + cpu->num_params());
  auto gpu = bna::model::CudaGpt::create(*cpu);
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  const int64_t B = 2, T = cfg.seq_len, n = B * T;
  bna::Rng rng(5);
  std::vector<int32_t> idx(n), tgt(n);
  for (int64_t i = 0; i < n; ++i) {
    idx[i] = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(cfg.vocab_size)));
    tgt[i] = i % 17 == 0 ? -1 : static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(cfg.vocab_size)));
  }
  const double tol = bound(cfg.n_layers);
  cpu->zero_grad();
  ASSERT_TRUE(gpu->zero_grad().is_ok());
  auto lc = cpu->forward(idx.data(), tgt.data(), B, T);
  auto lg = gpu->forward(idx.data(), tgt.data(), B, T);
  ASSERT_TRUE(lc.has_value() && lg.has_value()) << lg.status().to_string();
  ASSERT_TRUE(std::isfinite(*lg));
  EXPECT_LE(std::fabs(*lg - *lc), tol * std::fabs(*lc)) << "loss gpu " << *lg << " cpu " << *lc;
  ASSERT_TRUE(cpu->backward().is_ok());
  ASSERT_TRUE(gpu->backward().is_ok());
  {  // logits of a forward without targets (the CPU's logits() after a loss forward are probabilities)
    ASSERT_TRUE(cpu->forward(idx.data(), nullptr, B, T).has_value());
    ASSERT_TRUE(gpu->forward(idx.data(), nullptr, B, T).has_value());
    std::vector<float> lg_host;
    ASSERT_TRUE(gpu->logits(lg_host).is_ok());
    ASSERT_EQ(lg_host.size(), static_cast<size_t>(n * cfg.vocab_size));
    double se = 0, sr = 0;
    for (size_t i = 0; i < lg_host.size(); ++i) {
      ASSERT_TRUE(std::isfinite(lg_host[i]));
      se += (lg_host[i] - cpu->logits()[i]) * (lg_host[i] - cpu->logits()[i]);
      sr += static_cast<double>(cpu->logits()[i]) * cpu->logits()[i];
    }
    EXPECT_LE(std::sqrt(se), tol * std::sqrt(sr)) << "logits";
  }
  // Every parameter tensor's gradient on the GPU against `ref`'s (a model at the same weights).
  auto expect_grads_match = [&](const Gpt& ref, const std::string& when) {
    std::vector<float> gg;
    ASSERT_TRUE(gpu->download_grads(gg).is_ok());
    for (const auto& p : ref.params()) {
      double se = 0, sr = 0;
      bool finite = true;
      for (int64_t i = 0; i < p.numel; ++i) {
        const double a = gg[p.offset + i], r = ref.grads()[p.offset + i];
        finite &= std::isfinite(a);
        se += (a - r) * (a - r);
        sr += r * r;
      }
      ASSERT_TRUE(finite) << when << ": " << p.name;
      EXPECT_LE(std::sqrt(se), tol * std::sqrt(sr)) << when << ": " << p.name << ": rms error " << std::sqrt(se / p.numel)
                                                    << ", rms grad " << std::sqrt(sr / p.numel);
    }
  };
  expect_grads_match(*cpu, "step 1");
  // Three AdamW steps with clipping on both (the grads above are the first step's). From step 2 on,
  // `twin` holds the GPU's current weights (the same-weights check of the header).
  auto twin = Gpt::create(cfg);
  ASSERT_TRUE(twin.has_value());
  // Loss of the GPU model against the CPU twin at the GPU's current weights.
  auto twin_loss = [&](double gpu_loss, const std::string& when) {
    ASSERT_TRUE(gpu->download_weights(*twin).is_ok());
    twin->zero_grad();
    auto lt = twin->forward(idx.data(), tgt.data(), B, T);
    ASSERT_TRUE(lt.has_value());
    EXPECT_LE(std::fabs(gpu_loss - *lt), tol * std::fabs(*lt)) << when << ": loss gpu " << gpu_loss << " cpu twin " << *lt;
  };
  bna::train::AdamWOptions ao;
  bna::train::AdamW adam(cpu->num_params(), ao);
  for (int s = 0; s < 3; ++s) {
    const std::string when = "step " + std::to_string(s + 1);
    double n_ref = 0;  // the gradient norm at the GPU's weights (the CPU's at step 1, the twin's after)
    if (s > 0) {
      cpu->zero_grad();
      ASSERT_TRUE(gpu->zero_grad().is_ok());
      lc = cpu->forward(idx.data(), tgt.data(), B, T);
      lg = gpu->forward(idx.data(), tgt.data(), B, T);
      ASSERT_TRUE(lc.has_value() && lg.has_value());
      EXPECT_LE(std::fabs(*lg - *lc), 2 * tol * std::fabs(*lc)) << when << ": loss gpu " << *lg << " cpu run " << *lc;
      ASSERT_TRUE(cpu->backward().is_ok());
      ASSERT_TRUE(gpu->backward().is_ok());
      twin_loss(*lg, when);
      ASSERT_TRUE(twin->backward().is_ok());
      expect_grads_match(*twin, when);
      n_ref = bna::train::clip_grad_norm(twin->grads(), twin->num_params(), 1.0);
    }
    const double nc = bna::train::clip_grad_norm(cpu->grads(), cpu->num_params(), 1.0);
    if (s == 0) n_ref = nc;
    adam.step(*cpu, 1e-2f);
    auto ng = gpu->step(1e-2f, ao, 1.0);
    ASSERT_TRUE(ng.has_value()) << ng.status().to_string();
    EXPECT_LE(std::fabs(*ng - n_ref), tol * n_ref) << when << ": grad norm gpu " << *ng << " at the same weights " << n_ref;
    EXPECT_LE(std::fabs(*ng - nc), 2 * tol * nc) << when << ": grad norm gpu " << *ng << " cpu run " << nc;
  }
  EXPECT_EQ(gpu->steps_done(), 3);
  // The training moved the loss, and both moved it the same way.
  lc = cpu->forward(idx.data(), tgt.data(), B, T);
  lg = gpu->forward(idx.data(), tgt.data(), B, T);
  ASSERT_TRUE(lc.has_value() && lg.has_value());
  twin_loss(*lg, "after 3 steps");
  EXPECT_LE(std::fabs(*lg - *lc), 2 * tol * std::fabs(*lc)) << "after 3 steps: loss gpu " << *lg << " cpu run " << *lc;
  // Downloaded weights are the GPU's f32 masters after the 3 steps. Per tensor, the GPU's displacement
  // from the start must match the CPU's: rms(w_gpu - w_cpu) <= 0.5 rms(w_cpu - w0). Stale (initial)
  // weights give 1, another buffer (moments, grads, the bf16 copies) or a layout error gives >> 1, an
  // update of the wrong sign 2. Calibration: CPU runs of this test's model and steps with additive
  // gradient noise of rms tol * rms(g) per tensor (the gradient bound above) on every step give at most
  // 0.23 (0.28 at twice that noise). A bf16 copy instead of the masters is caught by its zero low halves.
  auto copy = Gpt::create(cfg);
  ASSERT_TRUE(copy.has_value());
  ASSERT_TRUE(gpu->download_weights(*copy).is_ok());
  int64_t moved = 0, bf16_exact = 0;
  for (const auto& p : cpu->params()) {
    double se = 0, sd = 0;
    for (int64_t i = p.offset; i < p.offset + p.numel; ++i) {
      const double g = copy->weights()[i], c = cpu->weights()[i], z = w0[i];
      ASSERT_TRUE(std::isfinite(g)) << p.name << " element " << i - p.offset;
      se += (g - c) * (g - c);
      sd += (c - z) * (c - z);
      if (g != z) {
        ++moved;
        uint32_t u;
        std::memcpy(&u, &copy->weights()[i], 4);
        bf16_exact += (u & 0xFFFFu) == 0;
      }
    }
    ASSERT_GT(sd, 0.0) << p.name << " did not move on the CPU";
    EXPECT_LE(std::sqrt(se), 0.5 * std::sqrt(sd)) << p.name << ": rms(gpu - cpu) " << std::sqrt(se / p.numel)
                                                  << ", rms CPU displacement " << std::sqrt(sd / p.numel);
  }
  EXPECT_GT(moved, cpu->num_params() / 2);
  EXPECT_LT(bf16_exact, moved / 100) << "downloaded weights look bf16-rounded (low 16 bits zero)";
}

TEST(CudaGpt, LossGradientsAndStepsMatchTheCpuModel) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  matches_the_cpu_model(tiny());
}

// A vocabulary that is not a multiple of 8 (the cross-entropy's last 16-byte chunk of a row is part
// vocabulary, part padding, as GPT-2's 50257) and rows of 384 (the LayerNorm kernels keep 4 float4
// per lane with part of them past C; tiny()'s 128 fills exactly one). Weights are N(0, 0.1 *
// sqrt(128 / 384)), so the pre-activations and attention logits have tiny()'s scale: at N(0, 0.1)
// this model is ill-conditioned for the bound. On the CPU alone, rounding its weights to bf16 (one
// of the GPU's rounding points) moves its first-step gradients by 1.15 tol (tiny(): 0.49 tol; this
// model at the scaled weights: 0.43 tol; bench/gpt_bf16_weight_sensitivity.cpp), and its first GPU
// run at N(0, 0.1) failed on the gradients of the embeddings and layer 0 at 1.3-1.5 tol while the
// loss, the logits and the later layers passed.
TEST(CudaGpt, OddVocabularyAndWiderRowsMatchTheCpuModel) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  GptConfig c = tiny();
  c.vocab_size = 97;
  c.d_model = 384;
  c.n_heads = 6;
  c.n_kv_heads = 3;
  matches_the_cpu_model(c, 0.1 * std::sqrt(128.0 / 384.0));
}

TEST(CudaGpt, ContiguousOnlyPathsMatchTheCpuModel) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  matches_the_cpu_model(tiny_contiguous_paths());
}

// train::train with TrainOptions::cuda: the same losses as the CPU trainer within the bound, a
// GPU checkpoint resumes (on the GPU) to the uninterrupted GPU run's losses, and evaluation scores run.
TEST(CudaGpt, TrainerOnTheGpuMatchesTheCpuTrainerAndResumes) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  GptConfig cfg = tiny();
  bna::data::TaskOptions to;
  to.T = cfg.seq_len;
  auto batch_fn = [&](uint64_t i, bna::data::Batch& b) { return bna::data::task_batch(to, 4, 9, i, b); };
  bna::train::TrainOptions o;
  o.steps = 6;
  o.schedule.lr = 3e-3f;
  o.schedule.warmup = 2;
  o.eval_batches = 2;
  o.score_task = true;
  auto run = [&](bool cuda, int64_t stop_after, bool resume, const std::string& dir) {
    auto m = Gpt::create(cfg);
    EXPECT_TRUE(m.has_value());
    bna::train::TrainOptions oo = o;
    oo.cuda = cuda;
    oo.stop_after = stop_after;
    oo.resume = resume;
    oo.out_dir = dir;
    oo.ckpt_every = dir.empty() ? 0 : 3;
    auto r = bna::train::train(*m, batch_fn, batch_fn, oo);
    EXPECT_TRUE(r.has_value()) << r.status().to_string();
    return *r;
  };
  const auto cpu = run(false, -1, false, "");
  const auto gpu = run(true, -1, false, "");
  ASSERT_EQ(cpu.losses.size(), gpu.losses.size());
  const double tol = bound(cfg.n_layers);
  for (size_t i = 0; i < cpu.losses.size(); ++i)
    EXPECT_LE(std::fabs(gpu.losses[i] - cpu.losses[i]), tol * cpu.losses[i]) << "step " << i + 1;
  ASSERT_TRUE(gpu.final_eval.has_value());
  EXPECT_GT(gpu.final_eval->score.examples, 0);
  EXPECT_LE(std::fabs(gpu.final_eval->loss - cpu.final_eval->loss), tol * cpu.final_eval->loss);
  const std::string dir = (std::filesystem::temp_directory_path() / ("bna_cuda_train_" + std::to_string(::getpid()))).string();
  std::filesystem::remove_all(dir);
  run(true, 3, false, dir);                      // killed after step 3 (its checkpoint)
  const auto resumed = run(true, -1, true, dir);  // steps 4..6
  ASSERT_EQ(resumed.start_step, 3);
  ASSERT_EQ(resumed.losses.size(), 3u);
  for (size_t i = 0; i < 3; ++i)
    EXPECT_LE(std::fabs(resumed.losses[i] - gpu.losses[i + 3]), tol * gpu.losses[i + 3]) << "resumed step " << i + 4;
  std::filesystem::remove_all(dir);
}

// forward(.., for_backward = false), the evaluation forward: the same loss bits as the training
// forward on the same batch (the gradient pass is skipped, nothing else changes), and backward()
// refuses after it. Each evaluation forward runs before the training forward it is compared with,
// on a batch not seen before, so a loss left over in the device buffers cannot pass for it.
TEST(CudaGpt, EvalForwardGivesTheSameLossAndNoBackward) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  auto m = Gpt::create(tiny());
  ASSERT_TRUE(m.has_value());
  auto g = bna::model::CudaGpt::create(*m);
  ASSERT_TRUE(g.has_value()) << g.status().to_string();
  const int64_t B = 2, T = 50;
  bna::Rng rng(7);
  for (int round = 0; round < 2; ++round) {
    std::vector<int32_t> idx(B * T), tgt(B * T);
    for (int64_t i = 0; i < B * T; ++i) {
      idx[i] = static_cast<int32_t>(rng.uniform_below(96));
      tgt[i] = static_cast<int32_t>(rng.uniform_below(96));
    }
    auto eval_loss = g->forward(idx.data(), tgt.data(), B, T, false);
    ASSERT_TRUE(eval_loss.has_value()) << eval_loss.status().to_string();
    ASSERT_TRUE(std::isfinite(*eval_loss));
    const bna::Status refused = g->backward();
    EXPECT_EQ(refused.code(), bna::StatusCode::kInvalidArgument) << "round " << round;
    EXPECT_NE(refused.message().find("for_backward"), std::string::npos) << refused.to_string();
    auto train_loss = g->forward(idx.data(), tgt.data(), B, T);
    ASSERT_TRUE(train_loss.has_value());
    EXPECT_EQ(*eval_loss, *train_loss) << "round " << round;
    ASSERT_TRUE(g->backward().is_ok());
  }
}

TEST(CudaGpt, RejectsHeadDimsWithoutKernelsAndBadInput) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  GptConfig c = tiny();
  c.d_model = 64;  // dh 32
  auto m = Gpt::create(c);
  ASSERT_TRUE(m.has_value());
  auto g = bna::model::CudaGpt::create(*m);
  ASSERT_FALSE(g.has_value());
  EXPECT_EQ(g.status().code(), bna::StatusCode::kUnimplemented);
  EXPECT_NE(g.status().message().find("32"), std::string::npos) << g.status().to_string();
  auto ok = Gpt::create(tiny());
  auto gg = bna::model::CudaGpt::create(*ok);
  ASSERT_TRUE(gg.has_value());
  std::vector<int32_t> ids(10, 96);  // out of range
  EXPECT_EQ(gg->forward(ids.data(), nullptr, 1, 10).status().code(), bna::StatusCode::kInvalidArgument);
  EXPECT_EQ(gg->backward().code(), bna::StatusCode::kInvalidArgument);  // no forward with targets
}

}  // namespace
