// model::CudaGpt (include/bna/model_cuda.hpp): the reference GPT's forward, backward and AdamW on
// the GPU. Mirrors Gpt::forward / Gpt::backward step by step (src/model/gpt.cpp); GEMMs go through
// nn::cuda::Blas (row-major), attention through attn::run / run_backward with CUDA plans.
// Fused where the step is memory-bound: the residual adds are the projections' C operand (layer l
// reads x_in[l] and writes x_mid[l], then x_in[l + 1]: no copies); GELU and its gradient run in the
// cuBLASLt epilogues of the MLP GEMMs (pre-activation saved in bf16); LayerNorm backward also writes
// the bf16 gradient the next GEMMs read; the cross-entropy writes dlogits (scaled 1 / counted) in
// the forward's launch, and backward's loss_scale is the head GEMMs' alpha. Dense and streams
// attention read q, k, v from the QKV GEMM's token-major output and write their output (and dq, dk,
// dv) token-major through strided views: no layout kernels. The other paths (block-sparse, gather,
// permute-window) read contiguous tensors: their layers copy q, k, v into scratch (again in the
// backward), keep their output [B, H, T, dh] per layer, and merge the gradients, as before the views.
#include <cmath>
#include <map>
#include <string>
#include <utility>

#include "attention/cuda/cuda_check.cuh"
#include "attention/cuda/device_memory.hpp"
#include "attention/cuda/launch.hpp"
#include "attention/runtime.hpp"
#include "bna/attention.hpp"
#include "bna/dtype.hpp"
#include "bna/model_cuda.hpp"
#include "model/cuda/gpt_kernels.hpp"
#include "nn/cuda/blas.hpp"

namespace bna::model {

using bna::cuda::DeviceBuffer;

namespace {
std::string S(int64_t v) { return std::to_string(v); }

Status ensure(DeviceBuffer& d, size_t bytes) {
  if (d.get() != nullptr && d.bytes() >= bytes) return Status::ok();
  return d.allocate(std::max<size_t>(bytes, 256));
}
}  // namespace

struct CudaLayerAct {
  // qkv bf16 [n, (Hq + 2 Hkv) dh] and atty bf16 [n, C] token-major (the attention's strided q/k/v, out);
  // att bf16 [B, Hq, T, dh]: the output of a layer on a contiguous-only path (empty otherwise).
  DeviceBuffer x_in, ln1, ln1_mean, ln1_rstd, qkv, lse, atty, att, x_mid, ln2, ln2_mean, ln2_rstd, fc_pre, fc_act;
};

struct CudaGpt::Impl {
  Gpt* host = nullptr;
  GptConfig cfg;
  std::vector<ParamInfo> params;
  nn::cuda::Blas blas;
  DeviceBuffer w, wb, g, m, v;  // f32 masters, bf16 copies, f32 grads and moments [num_params]
  DeviceBuffer offsets, decay;  // the parameter table for the one-launch AdamW
  int64_t n_params = 0, t = 0;
  // The head runs on a vocabulary padded to a multiple of 64 (cuBLAS picks slow unaligned kernels
  // for 50257 columns): "head" is the last parameter, so its padded rows [V, Vp) live past n_params in
  // wb (zero) and g (their gradient is 0: the padded dlogits columns are 0), never seen by AdamW.
  int64_t Vp = 0;
  // Plans per (B, T), one per layer.
  std::map<std::pair<int64_t, int64_t>, std::vector<attn::Plan>> plans;
  DeviceBuffer attn_ws;
  // Forward state.
  int64_t B = 0, T = 0, counted = 0;
  bool has_targets = false;
  std::vector<CudaLayerAct> acts;
  DeviceBuffer ids, targets, x_final, lnf, lnf_mean, lnf_rstd, logits, losses, lse;
  // Backward scratch.
  DeviceBuffer dlogits, dx, dx_bf, dsmall, dbig_bf, dout, dqkv, norm;
  // Contiguous [B, H, T, dh] scratch of the contiguous-only layers (allocated when one runs).
  DeviceBuffer cq, ck, cv, cdout, cdq, cdk, cdv;

  const float* W(const std::string& name) const { return w.as<float>() + off(name); }
  const uint16_t* WB(const std::string& name) const { return wb.as<uint16_t>() + off(name); }
  float* G(const std::string& name) const { return g.as<float>() + off(name); }
  // Names are the model's own (model.hpp's parameter table); a miss is a programming error.
  int64_t off(const std::string& name) const {
    const ParamInfo* p = host->find_param(name);
    BNA_ASSERT(p != nullptr);
    return p->offset;
  }
  Expected<const std::vector<attn::Plan>*> plans_for(int64_t b, int64_t t);
  // Whether a layer's plan reads strided views (the runtime's rule: CUDA dense or streams, Tq == Tk)
  // or contiguous tensors only.
  static bool strided(const attn::Plan& p) { return attn::strided_views_ok(p); }
  // Sizes the contiguous scratch (and the layer's att) for a contiguous-only layer.
  Status grow_contiguous(CudaLayerAct& L) {
    const size_t n = static_cast<size_t>(B * T), dh = static_cast<size_t>(cfg.d_model / cfg.n_heads);
    const size_t q = n * static_cast<size_t>(cfg.n_heads) * dh * 2, kv = n * static_cast<size_t>(cfg.n_kv_heads) * dh * 2;
    for (auto [buf, bytes] : {std::pair{&L.att, q}, {&cq, q}, {&ck, kv}, {&cv, kv}, {&cdout, q}, {&cdq, q}, {&cdk, kv},
                              {&cdv, kv}})
      BNA_RETURN_IF_ERROR(ensure(*buf, bytes));
    return Status::ok();
  }
  TensorView contiguous(const DeviceBuffer& d, int64_t H) const {
    return TensorView(d.get(), DType::kBF16, bna::Shape{B, H, T, cfg.d_model / cfg.n_heads});
  }
  // H heads of dh starting at column col0 of a token-major bf16 [B*T, ld] buffer, as the attention's
  // strided [B, H, T, dh] view.
  TensorView heads(const DeviceBuffer& d, int64_t col0, int64_t H, int64_t ld) const {
    const int64_t dh = cfg.d_model / cfg.n_heads;
    TensorView t(d.as<uint16_t>() + col0, DType::kBF16, bna::Shape{B, H, T, dh});
    t.strides = {T * ld, dh, ld, 1};
    return t;
  }
  Status grow(int64_t b, int64_t t);
};

Expected<const std::vector<attn::Plan>*> CudaGpt::Impl::plans_for(int64_t b, int64_t tt) {
  auto it = plans.find({b, tt});
  if (it != plans.end()) return &it->second;
  if (plans.size() >= 8) plans.clear();
  std::vector<attn::Plan> ps;
  size_t ws = 0;
  for (int64_t l = 0; l < cfg.n_layers; ++l) {
    BNA_ASSIGN_OR_RETURN(attn::Plan p, host->plan_layer(l, b, tt, DType::kBF16, attn::Backend::kCuda));
    ws = std::max(ws, p.workspace_bytes);
    ps.push_back(std::move(p));
  }
  BNA_RETURN_IF_ERROR(ensure(attn_ws, ws));
  return &plans.emplace(std::make_pair(b, tt), std::move(ps)).first->second;
}

// Sizes every activation and scratch buffer for B x T (grow-only).
Status CudaGpt::Impl::grow(int64_t b, int64_t tt) {
  const size_t n = static_cast<size_t>(b * tt), C = static_cast<size_t>(cfg.d_model);
  const size_t V = static_cast<size_t>(Vp), Hq = static_cast<size_t>(cfg.n_heads);
  const size_t Hkv = static_cast<size_t>(cfg.n_kv_heads), dh = C / Hq, QKV = (Hq + 2 * Hkv) * dh;
  acts.resize(static_cast<size_t>(cfg.n_layers));
  for (CudaLayerAct& L : acts) {
    BNA_RETURN_IF_ERROR(ensure(L.x_in, n * C * 4));
    BNA_RETURN_IF_ERROR(ensure(L.ln1, n * C * 2));
    BNA_RETURN_IF_ERROR(ensure(L.ln1_mean, n * 4));
    BNA_RETURN_IF_ERROR(ensure(L.ln1_rstd, n * 4));
    BNA_RETURN_IF_ERROR(ensure(L.qkv, n * QKV * 2));
    BNA_RETURN_IF_ERROR(ensure(L.lse, n * Hq * 4));
    BNA_RETURN_IF_ERROR(ensure(L.atty, n * C * 2));
    BNA_RETURN_IF_ERROR(ensure(L.x_mid, n * C * 4));
    BNA_RETURN_IF_ERROR(ensure(L.ln2, n * C * 2));
    BNA_RETURN_IF_ERROR(ensure(L.ln2_mean, n * 4));
    BNA_RETURN_IF_ERROR(ensure(L.ln2_rstd, n * 4));
    BNA_RETURN_IF_ERROR(ensure(L.fc_pre, n * 4 * C * 2));
    BNA_RETURN_IF_ERROR(ensure(L.fc_act, n * 4 * C * 2));
  }
  for (auto [buf, bytes] : {std::pair{&ids, n * 4}, {&targets, n * 4}, {&x_final, n * C * 4},
                            {&lnf, n * C * 2}, {&lnf_mean, n * 4}, {&lnf_rstd, n * 4},
                            {&logits, n * V * 2}, {&losses, n * 4}, {&lse, n * 4}, {&dlogits, n * V * 2}, {&dx, n * C * 4},
                            {&dx_bf, n * C * 2}, {&dsmall, n * C * 4}, {&dbig_bf, n * 4 * C * 2}, {&dout, n * Hq * dh * 2}, {&dqkv, n * QKV * 2}, {&norm, 8}})
    BNA_RETURN_IF_ERROR(ensure(*buf, bytes));
  return Status::ok();
}

CudaGpt::CudaGpt() : impl_(std::make_unique<Impl>()) {}
CudaGpt::CudaGpt(CudaGpt&&) noexcept = default;
CudaGpt& CudaGpt::operator=(CudaGpt&&) noexcept = default;
CudaGpt::~CudaGpt() = default;
int64_t CudaGpt::steps_done() const { return impl_->t; }

Expected<CudaGpt> CudaGpt::create(Gpt& host) {
  if (!bna::cuda::device_available()) return unavailable("cuda gpt: no CUDA device");
  const GptConfig& c = host.config();
  const int64_t dh = c.d_model / c.n_heads;
  if (dh != 64 && dh != 128)
    return unimplemented("cuda gpt: d_model / n_heads = " + S(dh) + ", expected 64 or 128 (the CUDA attention kernels)");
  CudaGpt r;
  Impl& M = *r.impl_;
  M.host = &host;
  M.cfg = c;
  M.params = host.params();
  M.n_params = host.num_params();
  if (M.params.empty() || M.params.back().name != "head")
    return internal_error("cuda gpt: the parameter table does not end with the head");
  M.Vp = (c.vocab_size + 63) / 64 * 64;
  BNA_ASSIGN_OR_RETURN(M.blas, nn::cuda::Blas::create());
  const size_t np = static_cast<size_t>(M.n_params);
  const size_t pad = np + static_cast<size_t>((M.Vp - c.vocab_size) * c.d_model);
  BNA_RETURN_IF_ERROR(M.w.allocate(np * 4));
  BNA_RETURN_IF_ERROR(M.wb.allocate(pad * 2));
  BNA_RETURN_IF_ERROR(M.g.allocate(pad * 4));
  BNA_RETURN_IF_ERROR(M.m.allocate(np * 4));
  BNA_RETURN_IF_ERROR(M.v.allocate(np * 4));
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.w.get(), host.weights(), np * 4));
  BNA_RETURN_IF_ERROR(bna::cuda::device_memset(M.wb.get(), 0, pad * 2));
  BNA_RETURN_IF_ERROR(cuda::to_bf16(M.w.as<float>(), M.wb.as<uint16_t>(), M.n_params));
  BNA_RETURN_IF_ERROR(bna::cuda::device_memset(M.g.get(), 0, pad * 4));
  for (DeviceBuffer* b : {&M.m, &M.v}) BNA_RETURN_IF_ERROR(bna::cuda::device_memset(b->get(), 0, np * 4));
  std::vector<int64_t> offs;
  std::vector<uint8_t> dec;
  for (const ParamInfo& p : M.params) {
    offs.push_back(p.offset);
    dec.push_back(p.decay ? 1 : 0);
  }
  offs.push_back(M.n_params);
  BNA_RETURN_IF_ERROR(M.offsets.allocate(offs.size() * 8));
  BNA_RETURN_IF_ERROR(M.decay.allocate(dec.size()));
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.offsets.get(), offs.data(), offs.size() * 8));
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.decay.get(), dec.data(), dec.size()));
  return r;
}

Status CudaGpt::zero_grad() {
  return bna::cuda::device_memset(impl_->g.get(), 0, impl_->g.bytes());
}

Expected<float> CudaGpt::forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T,
                                 bool for_backward) {
  Impl& M = *impl_;
  const GptConfig& c = M.cfg;
  if (B < 1) return invalid_argument("cuda gpt forward: B=" + S(B) + ", expected B >= 1");
  if (T < 1 || T > c.seq_len)
    return invalid_argument("cuda gpt forward: T=" + S(T) + ", expected 1 <= T <= seq_len=" + S(c.seq_len));
  const int64_t n = B * T, C = c.d_model, V = c.vocab_size, Hq = c.n_heads, Hkv = c.n_kv_heads, dh = C / Hq;
  const int64_t QKV = (Hq + 2 * Hkv) * dh;
  int64_t counted = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (idx[i] < 0 || idx[i] >= V)
      return invalid_argument("cuda gpt forward: token " + S(idx[i]) + " at position " + S(i) + ", expected [0, " + S(V) + ")");
    if (targets != nullptr && targets[i] >= V)
      return invalid_argument("cuda gpt forward: target " + S(targets[i]) + " at position " + S(i) + ", expected < " + S(V));
    if (targets != nullptr && targets[i] >= 0) ++counted;
  }
  if (targets != nullptr && counted == 0)
    return invalid_argument("cuda gpt forward: every target is negative (nothing to score)");
  BNA_ASSIGN_OR_RETURN(const std::vector<attn::Plan>* plans, M.plans_for(B, T));
  BNA_RETURN_IF_ERROR(M.grow(B, T));
  M.B = B; M.T = T; M.counted = counted;
  M.has_targets = false;  // true only once this forward, with targets, has succeeded
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.ids.get(), idx, static_cast<size_t>(n) * 4));
  if (targets != nullptr) BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(M.targets.get(), targets, static_cast<size_t>(n) * 4));
  using Mm = nn::cuda::Blas::Matmul;
  using Epi = nn::cuda::Blas::Epilogue;
  BNA_RETURN_IF_ERROR(cuda::embedding_fwd(M.ids.as<int32_t>(), M.W("wte"), M.W("wpe"), M.acts[0].x_in.as<float>(), n, T, C));
  const bna::Shape ls{B, Hq, T};
  for (int64_t l = 0; l < c.n_layers; ++l) {
    CudaLayerAct& L = M.acts[static_cast<size_t>(l)];
    const std::string p = "h." + S(l) + ".";
    const float* x_in = L.x_in.as<float>();
    float* x_out = l + 1 < c.n_layers ? M.acts[static_cast<size_t>(l + 1)].x_in.as<float>() : M.x_final.as<float>();
    BNA_RETURN_IF_ERROR(cuda::layernorm_fwd(x_in, M.W(p + "ln1.w"), M.W(p + "ln1.b"), L.ln1.as<uint16_t>(),
                                            L.ln1_mean.as<float>(), L.ln1_rstd.as<float>(), n, C));
    BNA_RETURN_IF_ERROR(M.blas.gemm(false, true, n, QKV, C, 1.0f, L.ln1.as<uint16_t>(), M.WB(p + "attn.qkv"), 0.0f,
                                    L.qkv.get(), false));
    const attn::Plan& plan = (*plans)[static_cast<size_t>(l)];
    if (Impl::strided(plan)) {
      BNA_RETURN_IF_ERROR(attn::run(plan, M.heads(L.qkv, 0, Hq, QKV), M.heads(L.qkv, Hq * dh, Hkv, QKV),
                                    M.heads(L.qkv, (Hq + Hkv) * dh, Hkv, QKV), M.heads(L.atty, 0, Hq, C),
                                    TensorView(L.lse.get(), DType::kF32, ls), M.attn_ws.get()));
    } else {
      BNA_RETURN_IF_ERROR(M.grow_contiguous(L));
      BNA_RETURN_IF_ERROR(cuda::split_qkv(L.qkv.as<uint16_t>(), M.cq.as<uint16_t>(), M.ck.as<uint16_t>(),
                                          M.cv.as<uint16_t>(), B, T, Hq, Hkv, dh));
      BNA_RETURN_IF_ERROR(attn::run(plan, M.contiguous(M.cq, Hq), M.contiguous(M.ck, Hkv), M.contiguous(M.cv, Hkv),
                                    M.contiguous(L.att, Hq), TensorView(L.lse.get(), DType::kF32, ls),
                                    M.attn_ws.get()));
      BNA_RETURN_IF_ERROR(cuda::heads_to_tokens(L.att.as<uint16_t>(), L.atty.as<uint16_t>(), B, Hq, T, dh));
    }
    const Mm proj{.trans_b = true, .M = n, .N = C, .K = C, .beta = 1.0f, .A = L.atty.as<uint16_t>(),
                  .B = M.WB(p + "attn.proj"), .C = x_in, .D = L.x_mid.get(), .d_f32 = true};
    BNA_RETURN_IF_ERROR(M.blas.matmul(proj));
    BNA_RETURN_IF_ERROR(cuda::layernorm_fwd(L.x_mid.as<float>(), M.W(p + "ln2.w"), M.W(p + "ln2.b"),
                                            L.ln2.as<uint16_t>(), L.ln2_mean.as<float>(), L.ln2_rstd.as<float>(), n, C));
    const Mm fc{.trans_b = true, .M = n, .N = 4 * C, .K = C, .A = L.ln2.as<uint16_t>(), .B = M.WB(p + "mlp.fc"),
                .D = L.fc_act.get(), .epilogue = Epi::kGeluAux, .aux = L.fc_pre.as<uint16_t>()};
    BNA_RETURN_IF_ERROR(M.blas.matmul(fc));
    const Mm down{.trans_b = true, .M = n, .N = C, .K = 4 * C, .beta = 1.0f, .A = L.fc_act.as<uint16_t>(),
                  .B = M.WB(p + "mlp.proj"), .C = L.x_mid.get(), .D = x_out, .d_f32 = true};
    BNA_RETURN_IF_ERROR(M.blas.matmul(down));
  }
  BNA_RETURN_IF_ERROR(cuda::layernorm_fwd(M.x_final.as<float>(), M.W("lnf.w"), M.W("lnf.b"), M.lnf.as<uint16_t>(),
                                          M.lnf_mean.as<float>(), M.lnf_rstd.as<float>(), n, C));
  BNA_RETURN_IF_ERROR(M.blas.gemm(false, true, n, M.Vp, C, 1.0f, M.lnf.as<uint16_t>(), M.WB("head"), 0.0f, M.logits.get(), false));
  if (targets == nullptr) return 0.0f;
  BNA_RETURN_IF_ERROR(cuda::cross_entropy(M.logits.as<uint16_t>(), M.targets.as<int32_t>(), M.losses.as<float>(),
                                          M.lse.as<float>(), for_backward ? M.dlogits.as<uint16_t>() : nullptr,
                                          1.0f / static_cast<float>(counted), n, V, M.Vp));
  std::vector<float> losses(static_cast<size_t>(n));
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_host(losses.data(), M.losses.get(), losses.size() * 4));
  M.has_targets = for_backward;
  double sum = 0.0;
  for (float e : losses) sum += e;
  return static_cast<float>(sum / static_cast<double>(counted));
}

Status CudaGpt::backward(float loss_scale) {
  Impl& M = *impl_;
  if (!M.has_targets || M.B == 0)
    return invalid_argument("cuda gpt backward: nothing to differentiate, expected a forward with targets and "
                            "for_backward = true first");
  M.has_targets = false;
  const GptConfig& c = M.cfg;
  const int64_t B = M.B, T = M.T, n = B * T, C = c.d_model, Hq = c.n_heads, Hkv = c.n_kv_heads;
  const int64_t dh = C / Hq, QKV = (Hq + 2 * Hkv) * dh;
  BNA_ASSIGN_OR_RETURN(const std::vector<attn::Plan>* plans, M.plans_for(B, T));
  const auto& bl = M.blas;
  float* dx = M.dx.as<float>();
  float* dsmall = M.dsmall.as<float>();
  uint16_t* dx_bf = M.dx_bf.as<uint16_t>();
  // dlogits (from the forward's cross-entropy) is d(mean loss)/dlogits; loss_scale scales both products.
  const uint16_t* dl = M.dlogits.as<uint16_t>();
  BNA_RETURN_IF_ERROR(bl.gemm(false, false, n, C, M.Vp, loss_scale, dl, M.WB("head"), 0.0f, dsmall, true));
  BNA_RETURN_IF_ERROR(bl.gemm(true, false, M.Vp, C, n, loss_scale, dl, M.lnf.as<uint16_t>(), 1.0f, M.G("head"), true));
  BNA_RETURN_IF_ERROR(bna::cuda::device_memset(dx, 0, static_cast<size_t>(n * C) * 4));
  BNA_RETURN_IF_ERROR(cuda::layernorm_bwd(M.x_final.as<float>(), M.W("lnf.w"), M.lnf_mean.as<float>(),
                                          M.lnf_rstd.as<float>(), dsmall, dx, dx_bf, M.G("lnf.w"), M.G("lnf.b"), n, C));
  const bna::Shape ls{B, Hq, T};
  for (int64_t l = c.n_layers - 1; l >= 0; --l) {
    CudaLayerAct& L = M.acts[static_cast<size_t>(l)];
    const std::string p = "h." + S(l) + ".";
    // MLP: x_out = x_mid + gelu(ln2 W1^T) W2^T; dx_bf holds dL/dx_out in bf16.
    BNA_RETURN_IF_ERROR(bl.gemm(true, false, C, 4 * C, n, 1.0f, dx_bf, L.fc_act.as<uint16_t>(), 1.0f, M.G(p + "mlp.proj"), true));
    const nn::cuda::Blas::Matmul up{.M = n, .N = 4 * C, .K = C, .A = dx_bf, .B = M.WB(p + "mlp.proj"),
                                    .D = M.dbig_bf.get(), .epilogue = nn::cuda::Blas::Epilogue::kDGelu,
                                    .aux = L.fc_pre.as<uint16_t>()};
    BNA_RETURN_IF_ERROR(bl.matmul(up));
    BNA_RETURN_IF_ERROR(bl.gemm(true, false, 4 * C, C, n, 1.0f, M.dbig_bf.as<uint16_t>(), L.ln2.as<uint16_t>(), 1.0f,
                                M.G(p + "mlp.fc"), true));
    BNA_RETURN_IF_ERROR(bl.gemm(false, false, n, C, 4 * C, 1.0f, M.dbig_bf.as<uint16_t>(), M.WB(p + "mlp.fc"), 0.0f, dsmall, true));
    BNA_RETURN_IF_ERROR(cuda::layernorm_bwd(L.x_mid.as<float>(), M.W(p + "ln2.w"), L.ln2_mean.as<float>(),
                                            L.ln2_rstd.as<float>(), dsmall, dx, dx_bf, M.G(p + "ln2.w"),
                                            M.G(p + "ln2.b"), n, C));
    // Attention: x_mid = x_in + attn(ln1) Wo^T
    BNA_RETURN_IF_ERROR(bl.gemm(true, false, C, C, n, 1.0f, dx_bf, L.atty.as<uint16_t>(), 1.0f, M.G(p + "attn.proj"), true));
    const attn::Plan& plan = (*plans)[static_cast<size_t>(l)];
    if (Impl::strided(plan)) {
      BNA_RETURN_IF_ERROR(bl.gemm(false, false, n, C, C, 1.0f, dx_bf, M.WB(p + "attn.proj"), 0.0f, M.dout.get(), false));
      BNA_RETURN_IF_ERROR(attn::run_backward(
          plan, M.heads(L.qkv, 0, Hq, QKV), M.heads(L.qkv, Hq * dh, Hkv, QKV), M.heads(L.qkv, (Hq + Hkv) * dh, Hkv, QKV),
          M.heads(L.atty, 0, Hq, C), TensorView(L.lse.get(), DType::kF32, ls), M.heads(M.dout, 0, Hq, C),
          M.heads(M.dqkv, 0, Hq, QKV), M.heads(M.dqkv, Hq * dh, Hkv, QKV), M.heads(M.dqkv, (Hq + Hkv) * dh, Hkv, QKV),
          nullptr, M.attn_ws.get()));
    } else {
      BNA_RETURN_IF_ERROR(M.grow_contiguous(L));
      BNA_RETURN_IF_ERROR(bl.gemm(false, false, n, C, C, 1.0f, dx_bf, M.WB(p + "attn.proj"), 0.0f, dsmall, true));
      BNA_RETURN_IF_ERROR(cuda::tokens_to_heads(dsmall, M.cdout.as<uint16_t>(), B, Hq, T, dh));
      BNA_RETURN_IF_ERROR(cuda::split_qkv(L.qkv.as<uint16_t>(), M.cq.as<uint16_t>(), M.ck.as<uint16_t>(),
                                          M.cv.as<uint16_t>(), B, T, Hq, Hkv, dh));
      BNA_RETURN_IF_ERROR(attn::run_backward(
          plan, M.contiguous(M.cq, Hq), M.contiguous(M.ck, Hkv), M.contiguous(M.cv, Hkv), M.contiguous(L.att, Hq),
          TensorView(L.lse.get(), DType::kF32, ls), M.contiguous(M.cdout, Hq), M.contiguous(M.cdq, Hq),
          M.contiguous(M.cdk, Hkv), M.contiguous(M.cdv, Hkv), nullptr, M.attn_ws.get()));
      BNA_RETURN_IF_ERROR(cuda::merge_qkv(M.cdq.as<uint16_t>(), M.cdk.as<uint16_t>(), M.cdv.as<uint16_t>(),
                                          M.dqkv.as<uint16_t>(), B, T, Hq, Hkv, dh));
    }
    BNA_RETURN_IF_ERROR(bl.gemm(true, false, QKV, C, n, 1.0f, M.dqkv.as<uint16_t>(), L.ln1.as<uint16_t>(), 1.0f,
                                M.G(p + "attn.qkv"), true));
    BNA_RETURN_IF_ERROR(bl.gemm(false, false, n, C, QKV, 1.0f, M.dqkv.as<uint16_t>(), M.WB(p + "attn.qkv"), 0.0f, dsmall, true));
    BNA_RETURN_IF_ERROR(cuda::layernorm_bwd(L.x_in.as<float>(), M.W(p + "ln1.w"), L.ln1_mean.as<float>(),
                                            L.ln1_rstd.as<float>(), dsmall, dx, l > 0 ? dx_bf : nullptr,
                                            M.G(p + "ln1.w"), M.G(p + "ln1.b"), n, C));
  }
  return cuda::embedding_bwd(M.ids.as<int32_t>(), dx, M.G("wte"), M.G("wpe"), n, T, C);
}

Expected<double> CudaGpt::step(float lr, const train::AdamWOptions& o, double max_norm) {
  Impl& M = *impl_;
  BNA_RETURN_IF_ERROR(ensure(M.norm, 8));
  BNA_RETURN_IF_ERROR(bna::cuda::device_memset(M.norm.get(), 0, 8));
  BNA_RETURN_IF_ERROR(cuda::sum_squares(M.g.as<float>(), M.n_params, M.norm.as<double>()));
  double ss = 0;
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_host(&ss, M.norm.get(), 8));
  const double norm = std::sqrt(ss);
  const float scale = (max_norm > 0 && norm > max_norm) ? static_cast<float>(max_norm / (norm + 1e-6)) : 1.0f;
  ++M.t;
  const double bc1 = 1.0 - std::pow(static_cast<double>(o.beta1), static_cast<double>(M.t));
  const double bc2 = 1.0 - std::pow(static_cast<double>(o.beta2), static_cast<double>(M.t));
  cuda::AdamWArgs a;
  a.w = M.w.as<float>();
  a.w_bf16 = M.wb.as<uint16_t>();
  a.g = M.g.as<float>();
  a.m = M.m.as<float>();
  a.v = M.v.as<float>();
  a.n = M.n_params;
  a.offsets = M.offsets.as<int64_t>();
  a.decay = M.decay.as<uint8_t>();
  a.tensors = static_cast<int>(M.params.size());
  a.lr = lr;
  a.beta1 = o.beta1;
  a.beta2 = o.beta2;
  a.eps = o.eps;
  a.weight_decay = o.weight_decay;
  a.grad_scale = scale;
  a.bc1 = static_cast<float>(bc1);
  a.bc2 = static_cast<float>(bc2);
  BNA_RETURN_IF_ERROR(cuda::adamw(a));
  return norm;
}

Status CudaGpt::download_optimizer(std::vector<float>& m, std::vector<float>& v) const {
  const size_t n = static_cast<size_t>(impl_->n_params);
  m.resize(n);
  v.resize(n);
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_host(m.data(), impl_->m.get(), n * 4));
  return bna::cuda::copy_to_host(v.data(), impl_->v.get(), n * 4);
}

Status CudaGpt::upload_optimizer(const std::vector<float>& m, const std::vector<float>& v, int64_t t) {
  const size_t n = static_cast<size_t>(impl_->n_params);
  if (m.size() != n || v.size() != n || t < 0)
    return invalid_argument("cuda gpt: optimizer state of " + S(static_cast<int64_t>(m.size())) + "/" +
                            S(static_cast<int64_t>(v.size())) + " moments at t=" + S(t) + ", expected " +
                            S(impl_->n_params) + " each and t >= 0");
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(impl_->m.get(), m.data(), n * 4));
  BNA_RETURN_IF_ERROR(bna::cuda::copy_to_device(impl_->v.get(), v.data(), n * 4));
  impl_->t = t;
  return Status::ok();
}

Status CudaGpt::logits(std::vector<float>& out) const {
  const Impl& M = *impl_;
  if (M.B == 0) return invalid_argument("cuda gpt: logits before any forward");
  const int64_t n = M.B * M.T, V = M.cfg.vocab_size;
  std::vector<uint16_t> bf(static_cast<size_t>(n * V));
  BNA_CUDA_TRY(cudaMemcpy2D(bf.data(), static_cast<size_t>(V) * 2, M.logits.get(), static_cast<size_t>(M.Vp) * 2,
                            static_cast<size_t>(V) * 2, static_cast<size_t>(n), cudaMemcpyDeviceToHost));
  out.resize(bf.size());
  for (size_t i = 0; i < bf.size(); ++i) out[i] = bna::bf16_to_float(bf[i]);
  return Status::ok();
}

Status CudaGpt::download_weights(Gpt& m) const {
  if (m.num_params() != impl_->n_params)
    return invalid_argument("cuda gpt: download into a model of " + S(m.num_params()) + " parameters, expected " +
                            S(impl_->n_params));
  return bna::cuda::copy_to_host(m.weights(), impl_->w.get(), static_cast<size_t>(impl_->n_params) * 4);
}

Status CudaGpt::download_grads(std::vector<float>& out) const {
  out.resize(static_cast<size_t>(impl_->n_params));
  return bna::cuda::copy_to_host(out.data(), impl_->g.get(), out.size() * 4);
}

size_t CudaGpt::device_bytes() const {
  const Impl& M = *impl_;
  size_t b = M.w.bytes() + M.wb.bytes() + M.g.bytes() + M.m.bytes() + M.v.bytes() + M.offsets.bytes() + M.decay.bytes() + M.attn_ws.bytes() +
             M.blas.workspace_bytes();
  for (const CudaLayerAct& L : M.acts)
    for (const DeviceBuffer* d : {&L.x_in, &L.ln1, &L.ln1_mean, &L.ln1_rstd, &L.qkv, &L.lse, &L.atty, &L.att,
                                  &L.x_mid, &L.ln2, &L.ln2_mean, &L.ln2_rstd, &L.fc_pre, &L.fc_act})
      b += d->bytes();
  for (const DeviceBuffer* d : {&M.ids, &M.targets, &M.x_final, &M.lnf, &M.lnf_mean, &M.lnf_rstd,
                                &M.logits, &M.losses, &M.lse, &M.dlogits, &M.dx, &M.dx_bf, &M.dsmall, &M.dbig_bf,
                                &M.dout, &M.dqkv, &M.norm, &M.cq, &M.ck, &M.cv,
                                &M.cdout, &M.cdq, &M.cdk, &M.cdv})
    b += d->bytes();
  return b;
}

}  // namespace bna::model
