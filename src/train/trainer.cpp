// The training loop, evaluation and the metrics log. Time is measured per step (forward, backward,
// clipping, update) and summed over the window a log line reports; eval and checkpoint time are
// outside every window.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <optional>
#include <sstream>

#include "bna/io.hpp"
#include "bna/log.hpp"
#include "bna/model_cuda.hpp"
#include "bna/train.hpp"

namespace bna::train {

namespace {
using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

std::string record_json(const LogRecord& r) {
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["loss"] = r.loss;
  j["lr"] = r.lr;
  j["grad_norm"] = r.grad_norm;
  j["tokens_per_s"] = r.tokens_per_s;
  if (r.mfu > 0) j["mfu"] = r.mfu;
  j["elapsed_s"] = r.elapsed_s;
  if (r.eval) {
    j["val_loss"] = r.eval->loss;
    j["val_ppl"] = r.eval->ppl;
    if (r.eval->score.examples > 0) {
      j["accuracy"] = r.eval->accuracy();
      j["token_accuracy"] = r.eval->score.tokens ? double(r.eval->score.correct) / r.eval->score.tokens : 0.0;
    }
  }
  return j.dump();
}

// Mean loss and task scores over `batches` batches. forward(b) -> loss of the batch; scores(b) ->
// logits or probabilities [B, T, V] of that forward (the same argmax).
template <class Forward, class Scores>
Expected<EvalResult> evaluate_with(const BatchFn& fn, int64_t batches, bool score_task, int64_t V, Forward&& forward,
                                   Scores&& scores) {
  if (batches < 1) return invalid_argument("evaluate: batches=" + std::to_string(batches) + ", expected >= 1");
  EvalResult r;
  double loss_sum = 0;
  data::Batch b;
  for (int64_t i = 0; i < batches; ++i) {
    BNA_RETURN_IF_ERROR(fn(static_cast<uint64_t>(i), b));
    int64_t counted = 0;
    for (int32_t y : b.y) counted += y >= 0;
    BNA_ASSIGN_OR_RETURN(float loss, forward(b));
    loss_sum += static_cast<double>(loss) * counted;
    r.tokens += counted;
    if (score_task) {
      BNA_ASSIGN_OR_RETURN(const float* probs, scores());
      const data::TaskScore s = data::score_batch(b, probs, V);
      r.score.examples += s.examples; r.score.exact += s.exact;
      r.score.tokens += s.tokens; r.score.correct += s.correct;
    }
  }
  r.loss = loss_sum / static_cast<double>(std::max<int64_t>(1, r.tokens));
  r.ppl = std::exp(std::min(r.loss, 20.0));
  return r;
}

Expected<EvalResult> evaluate_gpu(model::CudaGpt& g, const BatchFn& fn, int64_t batches, bool score_task, int64_t V) {
  std::vector<float> logits;
  return evaluate_with(
      fn, batches, score_task, V, [&](const data::Batch& b) { return g.forward(b.x.data(), b.y.data(), b.B, b.T, false); },
      [&]() -> Expected<const float*> {
        BNA_RETURN_IF_ERROR(g.logits(logits));
        return static_cast<const float*>(logits.data());
      });
}

}  // namespace

Expected<EvalResult> evaluate(model::Gpt& m, const BatchFn& fn, int64_t batches, bool score_task) {
  return evaluate_with(
      fn, batches, score_task, m.config().vocab_size,
      [&](const data::Batch& b) { return m.forward(b.x.data(), b.y.data(), b.B, b.T); },
      [&]() -> Expected<const float*> { return m.logits(); });  // probabilities: same argmax
}

Expected<TrainResult> train(model::Gpt& m, const BatchFn& train_fn, const BatchFn& eval_fn, const TrainOptions& o,
                            const std::function<void(const LogRecord&)>& on_log) {
  if (o.steps < 1) return invalid_argument("train: steps=" + std::to_string(o.steps) + ", expected >= 1");
  if (o.accum < 1) return invalid_argument("train: accum=" + std::to_string(o.accum) + ", expected >= 1");
  if (o.log_every < 1) return invalid_argument("train: log_every=" + std::to_string(o.log_every) + ", expected >= 1");
  if (!(o.schedule.lr > 0)) return invalid_argument("train: lr=" + std::to_string(o.schedule.lr) + ", expected > 0");
  Schedule sched = o.schedule;
  sched.steps = o.steps;
  AdamW adam(m.num_params(), o.adamw);
  TrainResult res;
  const std::string ckpt = o.out_dir.empty() ? "" : o.out_dir + "/ckpt.safetensors";
  const std::string metrics_path = o.out_dir.empty() ? "" : o.out_dir + "/metrics.jsonl";
  std::vector<std::string> metric_lines;
  if (!o.out_dir.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    if (ec) return io_error("train: cannot create --out directory " + o.out_dir + ": " + ec.message());
  }
  if (o.resume && !ckpt.empty() && std::filesystem::exists(ckpt)) {
    BNA_ASSIGN_OR_RETURN(Checkpoint ck, load_checkpoint(ckpt, &m, &adam));
    adam.opt = o.adamw;
    res.start_step = ck.step;
    auto old = io::read_file(metrics_path);
    if (old) {
      std::istringstream in(*old);
      for (std::string line; std::getline(in, line);) {
        nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.contains("step") && j["step"].get<int64_t>() <= ck.step) metric_lines.push_back(line);
      }
    }
    log(LogLevel::kInfo, "train: resumed from " + ckpt + " at step " + std::to_string(ck.step));
  }
  auto write_metrics = [&]() -> Status {
    if (metrics_path.empty()) return Status::ok();
    std::string all;
    for (const auto& l : metric_lines) all += l + "\n";
    return io::write_file_atomic(metrics_path, all);
  };
  std::optional<model::CudaGpt> gpu;
  if (o.cuda) {
    BNA_ASSIGN_OR_RETURN(model::CudaGpt g, model::CudaGpt::create(m));
    BNA_RETURN_IF_ERROR(g.upload_optimizer(adam.m, adam.v, adam.t));
    gpu = std::move(g);
  }
  auto to_host = [&]() -> Status {  // the GPU's weights and moments into m / adam
    if (!gpu) return Status::ok();
    BNA_RETURN_IF_ERROR(gpu->download_weights(m));
    BNA_RETURN_IF_ERROR(gpu->download_optimizer(adam.m, adam.v));
    adam.t = gpu->steps_done();
    return Status::ok();
  };
  auto save = [&](int64_t step) -> Status {
    if (ckpt.empty()) return Status::ok();
    BNA_RETURN_IF_ERROR(to_host());
    BNA_RETURN_IF_ERROR(save_checkpoint(ckpt, m, &adam, step, o.metadata));
    return write_metrics();
  };

  data::Batch batch;
  double window_s = 0, total_s = 0;
  int64_t window_tokens = 0, total_tokens = 0;
  for (int64_t s = res.start_step; s < o.steps; ++s) {
    const auto t0 = Clock::now();
    if (gpu) BNA_RETURN_IF_ERROR(gpu->zero_grad());
    else m.zero_grad();
    double loss_sum = 0;
    for (int64_t a = 0; a < o.accum; ++a) {
      BNA_RETURN_IF_ERROR(train_fn(static_cast<uint64_t>(s * o.accum + a), batch));
      float loss = 0;
      if (gpu) {
        BNA_ASSIGN_OR_RETURN(loss, gpu->forward(batch.x.data(), batch.y.data(), batch.B, batch.T));
        BNA_RETURN_IF_ERROR(gpu->backward(1.0f / static_cast<float>(o.accum)));
      } else {
        BNA_ASSIGN_OR_RETURN(loss, m.forward(batch.x.data(), batch.y.data(), batch.B, batch.T));
        BNA_RETURN_IF_ERROR(m.backward(1.0f / static_cast<float>(o.accum)));
      }
      loss_sum += loss;
      window_tokens += batch.B * batch.T;
      total_tokens += batch.B * batch.T;
    }
    const float lr = lr_at(sched, s + 1);
    double norm = 0;
    if (gpu) {
      BNA_ASSIGN_OR_RETURN(norm, gpu->step(lr, o.adamw, o.grad_clip));  // reads the norm back: synchronises
    } else {
      norm = clip_grad_norm(m.grads(), m.num_params(), o.grad_clip);
      adam.step(m, lr);
    }
    const float loss = static_cast<float>(loss_sum / static_cast<double>(o.accum));
    res.losses.push_back(loss);
    const double dt = seconds(t0, Clock::now());
    window_s += dt;
    total_s += dt;
    if (!std::isfinite(loss)) return internal_error("train: loss is " + std::to_string(loss) + " at step " + std::to_string(s + 1));
    const int64_t step = s + 1;
    const bool last = step == o.steps;
    const bool do_eval = eval_fn && ((o.eval_every > 0 && step % o.eval_every == 0) || last);
    if (step % o.log_every == 0 || last || do_eval || s == 0) {
      LogRecord r;
      r.step = step; r.steps = o.steps; r.loss = loss; r.lr = lr; r.grad_norm = norm;
      r.tokens_per_s = window_s > 0 ? static_cast<double>(window_tokens) / window_s : 0.0;
      if (gpu) r.mfu = model::flops_per_token(m, batch.T) * r.tokens_per_s / (o.peak_tflops * 1e12);
      r.elapsed_s = total_s;
      window_s = 0;
      window_tokens = 0;
      if (do_eval) {
        Expected<EvalResult> evr = gpu ? evaluate_gpu(*gpu, eval_fn, o.eval_batches, o.score_task, m.config().vocab_size)
                                       : evaluate(m, eval_fn, o.eval_batches, o.score_task);
        BNA_ASSIGN_OR_RETURN(EvalResult ev, std::move(evr));
        r.eval = ev;
        if (last) res.final_eval = ev;
      }
      metric_lines.push_back(record_json(r));
      if (on_log) on_log(r);
      if (!last && (o.ckpt_every == 0 || step % o.ckpt_every != 0)) BNA_RETURN_IF_ERROR(write_metrics());
    }
    res.end_step = step;
    if (o.stop_after >= 0 && step >= o.stop_after) {
      if (o.ckpt_every > 0 && step % o.ckpt_every == 0) BNA_RETURN_IF_ERROR(save(step));
      break;
    }
    if (last || (o.ckpt_every > 0 && step % o.ckpt_every == 0)) BNA_RETURN_IF_ERROR(save(step));
  }
  res.tokens_per_s = total_s > 0 ? static_cast<double>(total_tokens) / total_s : 0.0;
  BNA_RETURN_IF_ERROR(to_host());  // the caller's model holds the trained weights on either backend
  return res;
}

}  // namespace bna::train
