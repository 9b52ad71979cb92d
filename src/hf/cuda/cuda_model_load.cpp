// hf::CudaModel's weights: from a Hugging Face model directory (rounded to bf16 at upload) or random
// on the device (include/bna/hf_cuda.hpp). The device state is cuda_model_impl.hpp's.
// GPT-2's tensors (transformer.wte / wpe / h.N.attn.c_attn ...) are mapped onto the same layer
// buffers as the Llama path: its Conv1D weights, stored [in, out], are transposed to [out, in] as
// src/hf/model.cpp does, c_attn's [C, 3C] becoming the fused q | k | v rows.
#include <algorithm>
#include <cstring>
#include <string>

#include "attention/cuda/launch.hpp"
#include "bna/io.hpp"
#include "bna/safetensors.hpp"
#include "hf/cuda/cuda_model_impl.hpp"
#include "hf/cuda/decoder_kernels.hpp"

namespace bna::hf {

using cuda_detail::S;

namespace {

uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;  // NaN stays NaN
  u += 0x7fffu + ((u >> 16) & 1u);                     // round to nearest even
  return static_cast<uint16_t>(u >> 16);
}

Status upload_bf16(const std::vector<float>& v, DeviceBuffer& d) {
  std::vector<uint16_t> h(v.size());
  for (size_t i = 0; i < v.size(); ++i) h[i] = to_bf16(v[i]);
  BNA_RETURN_IF_ERROR(d.allocate(h.size() * 2));
  return bna::cuda::copy_to_device(d.get(), h.data(), h.size() * 2);
}

Status upload_f32(const std::vector<float>& v, DeviceBuffer& d) {
  if (v.empty()) return Status::ok();
  BNA_RETURN_IF_ERROR(d.allocate(v.size() * 4));
  return bna::cuda::copy_to_device(d.get(), v.data(), v.size() * 4);
}

Status check_config(const Config& c) {
  if (c.head_dim != 64 && c.head_dim != 128)
    return unimplemented("cuda model: head_dim=" + S(c.head_dim) + ", expected 64 or 128 (the CUDA attention kernels)");
  if (c.vocab < 1 || c.hidden < 1 || c.layers < 1 || c.n_heads < 1 || c.n_kv_heads < 1 || c.intermediate < 1 ||
      c.n_heads % c.n_kv_heads != 0)
    return invalid_argument("cuda model: vocab=" + S(c.vocab) + " hidden=" + S(c.hidden) + " layers=" + S(c.layers) +
                            " heads=" + S(c.n_heads) + " kv_heads=" + S(c.n_kv_heads) + " intermediate=" +
                            S(c.intermediate) + ", expected all >= 1 and kv_heads dividing heads");
  if (c.learned_pos && c.max_positions < 1)
    return invalid_argument("cuda model: n_positions=" + S(c.max_positions) + ", expected >= 1 with learned positions");
  if (!c.learned_pos && (c.rotary_dim < 2 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim))
    return invalid_argument("cuda model: rotary_dim=" + S(c.rotary_dim) + ", expected even in [2, head_dim=" +
                            S(c.head_dim) + "]");
  return Status::ok();
}

}  // namespace

Expected<CudaModel> CudaModel::random(const Config& c, uint64_t seed) {
  BNA_RETURN_IF_ERROR(check_config(c));
  if (!bna::cuda::device_available()) return unavailable("cuda model: no CUDA device");
  CudaModel m;
  Impl& M = *m.impl_;
  M.cfg = c;
  BNA_ASSIGN_OR_RETURN(M.blas, nn::cuda::Blas::create());
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate;
  uint64_t stream_id = 0;
  auto mat = [&](DeviceBuffer& d, int64_t count) -> Status {
    BNA_RETURN_IF_ERROR(d.allocate(static_cast<size_t>(count) * 2));
    return cuda::fill_bf16(d.as<uint16_t>(), count, seed * 1000003ull + (++stream_id << 40), 0.02f, 0.0f, nullptr);
  };
  auto vec = [&](DeviceBuffer& d, int64_t count, float value) -> Status {
    BNA_RETURN_IF_ERROR(d.allocate(static_cast<size_t>(count) * 4));
    return cuda::fill_f32(d.as<float>(), count, value, nullptr);
  };
  BNA_RETURN_IF_ERROR(mat(M.embed, c.vocab * C));
  BNA_RETURN_IF_ERROR(mat(M.lm_head, c.vocab * C));
  BNA_RETURN_IF_ERROR(vec(M.norm_w, C, 1.0f));
  if (c.layer_norm) BNA_RETURN_IF_ERROR(vec(M.norm_b, C, 0.0f));
  if (c.learned_pos) BNA_RETURN_IF_ERROR(mat(M.pos_embed, c.max_positions * C));
  M.layers.resize(static_cast<size_t>(c.layers));
  for (CudaLayer& l : M.layers) {
    BNA_RETURN_IF_ERROR(mat(l.wqkv, (Hq + 2 * Hkv) * dh * C));
    BNA_RETURN_IF_ERROR(mat(l.wo, C * Hq * dh));
    BNA_RETURN_IF_ERROR(mat(l.w_gu, (c.gelu_mlp ? 1 : 2) * I * C));  // c_fc, or gate | up
    BNA_RETURN_IF_ERROR(mat(l.w_down, C * I));
    if (c.gelu_mlp) {  // the MLP biases come with the GELU MLP, as in Model::random
      BNA_RETURN_IF_ERROR(vec(l.b_up, I, 0.0f));
      BNA_RETURN_IF_ERROR(vec(l.b_down, C, 0.0f));
    }
    if (c.layer_norm) {
      BNA_RETURN_IF_ERROR(vec(l.ln1_b, C, 0.0f));
      BNA_RETURN_IF_ERROR(vec(l.ln2_b, C, 0.0f));
    }
    if (c.qkv_bias) BNA_RETURN_IF_ERROR(vec(l.bqkv, (Hq + 2 * Hkv) * dh, 0.0f));
    if (c.o_bias) BNA_RETURN_IF_ERROR(vec(l.bo, C, 0.0f));
    if (c.qk_norm) {
      BNA_RETURN_IF_ERROR(vec(l.q_norm, dh, 1.0f));
      BNA_RETURN_IF_ERROR(vec(l.k_norm, dh, 1.0f));
    }
    BNA_RETURN_IF_ERROR(vec(l.ln1, C, 1.0f));
    BNA_RETURN_IF_ERROR(vec(l.ln2, C, 1.0f));
    if (c.sandwich_norm) {
      BNA_RETURN_IF_ERROR(vec(l.post_attn, C, 1.0f));
      BNA_RETURN_IF_ERROR(vec(l.post_mlp, C, 1.0f));
    }
  }
  BNA_RETURN_IF_ERROR(upload_f32(rope_inv_freq(c), M.inv_freq));
  BNA_RETURN_IF_ERROR(bna::cuda::device_synchronize());
  BNA_RETURN_IF_ERROR(m.reset(std::min<int64_t>(c.max_positions > 0 ? c.max_positions : 2048, 2048)));
  return m;
}

Expected<CudaModel> CudaModel::load(const std::string& dir) {
  BNA_ASSIGN_OR_RETURN(std::string text, io::read_file(dir + "/config.json"));
  BNA_ASSIGN_OR_RETURN(Config c, parse_config(text));
  BNA_RETURN_IF_ERROR(check_config(c));
  if (!bna::cuda::device_available()) return unavailable("cuda model: no CUDA device");
  BNA_ASSIGN_OR_RETURN(st::Checkpoint ck, st::Checkpoint::open_dir(dir));
  CudaModel m;
  Impl& M = *m.impl_;
  M.cfg = c;
  BNA_ASSIGN_OR_RETURN(M.blas, nn::cuda::Blas::create());
  // Reads `name` as f32 of `shape`; transposed: the file holds [shape[1], shape[0]] (GPT-2's Conv1D
  // [in, out]) and out gets it as [shape[0], shape[1]] ([out, in]).
  auto read = [&](const std::string& name, const std::vector<int64_t>& shape, std::vector<float>& out,
                  bool transposed = false) -> Status {
    const st::TensorInfo* t = ck.find(name);
    if (t == nullptr) return not_found("cuda model: tensor '" + name + "' is missing from the checkpoint");
    const std::vector<int64_t> file_shape = transposed ? std::vector<int64_t>{shape[1], shape[0]} : shape;
    if (t->shape != file_shape) {
      std::string got, want;
      for (int64_t d : t->shape) got += (got.empty() ? "" : ", ") + S(d);
      for (int64_t d : file_shape) want += (want.empty() ? "" : ", ") + S(d);
      return corrupt("cuda model: tensor '" + name + "' has shape [" + got + "], expected [" + want + "] from config.json");
    }
    out.resize(static_cast<size_t>(t->numel()));
    if (!transposed) return st::read_f32(*t, out.data());
    std::vector<float> file(out.size());
    BNA_RETURN_IF_ERROR(st::read_f32(*t, file.data()));
    const int64_t rows = shape[0], cols = shape[1];  // out [rows, cols] from file [cols, rows]
    for (int64_t i = 0; i < cols; ++i)
      for (int64_t j = 0; j < rows; ++j) out[static_cast<size_t>(j * cols + i)] = file[static_cast<size_t>(i * rows + j)];
    return Status::ok();
  };
  // Reads the tensors and concatenates them along rows (the fused projections).
  auto rows = [&](const std::vector<std::pair<std::string, std::vector<int64_t>>>& parts, std::vector<float>& out) -> Status {
    out.clear();
    std::vector<float> one;
    for (const auto& [name, shape] : parts) {
      BNA_RETURN_IF_ERROR(read(name, shape, one));
      out.insert(out.end(), one.begin(), one.end());
    }
    return Status::ok();
  };
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate, V = c.vocab;
  std::vector<float> buf;
  // One tensor read and uploaded: bf16 (matrices) or f32 (norms, biases).
  auto bf16 = [&](const std::string& name, const std::vector<int64_t>& shape, DeviceBuffer& dst,
                  bool transposed = false) -> Status {
    BNA_RETURN_IF_ERROR(read(name, shape, buf, transposed));
    return upload_bf16(buf, dst);
  };
  auto f32 = [&](const std::string& name, const std::vector<int64_t>& shape, DeviceBuffer& dst) -> Status {
    BNA_RETURN_IF_ERROR(read(name, shape, buf));
    return upload_f32(buf, dst);
  };
  if (c.family == Family::kGpt2) {
    // Files exist with and without the "transformer." prefix (as Model::load). Biases on c_attn,
    // both c_proj and c_fc, and on the LayerNorms; no inv_freq (learned positions).
    const std::string base = ck.find("transformer.wte.weight") != nullptr ? "transformer." : "";
    BNA_RETURN_IF_ERROR(bf16(base + "wte.weight", {V, C}, M.embed));
    BNA_RETURN_IF_ERROR(bf16(base + "wpe.weight", {c.max_positions, C}, M.pos_embed));
    BNA_RETURN_IF_ERROR(f32(base + "ln_f.weight", {C}, M.norm_w));
    BNA_RETURN_IF_ERROR(f32(base + "ln_f.bias", {C}, M.norm_b));
    if (ck.find("lm_head.weight") != nullptr) {
      BNA_RETURN_IF_ERROR(bf16("lm_head.weight", {V, C}, M.lm_head));
    }
    M.layers.resize(static_cast<size_t>(c.layers));
    for (int64_t li = 0; li < c.layers; ++li) {
      CudaLayer& l = M.layers[static_cast<size_t>(li)];
      const std::string p = base + "h." + S(li) + ".";
      const std::pair<const char*, DeviceBuffer*> norms[] = {
          {"ln_1.weight", &l.ln1}, {"ln_1.bias", &l.ln1_b}, {"ln_2.weight", &l.ln2}, {"ln_2.bias", &l.ln2_b}};
      for (const auto& [name, dst] : norms) {
        BNA_RETURN_IF_ERROR(f32(p + name, {C}, *dst));
      }
      BNA_RETURN_IF_ERROR(bf16(p + "attn.c_attn.weight", {(Hq + 2 * Hkv) * dh, C}, l.wqkv, true));  // file [C, 3C]
      BNA_RETURN_IF_ERROR(f32(p + "attn.c_attn.bias", {(Hq + 2 * Hkv) * dh}, l.bqkv));
      BNA_RETURN_IF_ERROR(bf16(p + "attn.c_proj.weight", {C, Hq * dh}, l.wo, true));
      BNA_RETURN_IF_ERROR(f32(p + "attn.c_proj.bias", {C}, l.bo));
      BNA_RETURN_IF_ERROR(bf16(p + "mlp.c_fc.weight", {I, C}, l.w_gu, true));  // file [C, I]
      BNA_RETURN_IF_ERROR(f32(p + "mlp.c_fc.bias", {I}, l.b_up));
      BNA_RETURN_IF_ERROR(bf16(p + "mlp.c_proj.weight", {C, I}, l.w_down, true));  // file [I, C]
      BNA_RETURN_IF_ERROR(f32(p + "mlp.c_proj.bias", {C}, l.b_down));
    }
    BNA_RETURN_IF_ERROR(m.reset(std::min<int64_t>(c.max_positions, 2048)));
    return m;
  }
  BNA_RETURN_IF_ERROR(bf16("model.embed_tokens.weight", {V, C}, M.embed));
  BNA_RETURN_IF_ERROR(f32("model.norm.weight", {C}, M.norm_w));
  if (ck.find("lm_head.weight") != nullptr) {
    BNA_RETURN_IF_ERROR(bf16("lm_head.weight", {V, C}, M.lm_head));
  }
  M.layers.resize(static_cast<size_t>(c.layers));
  for (int64_t li = 0; li < c.layers; ++li) {
    CudaLayer& l = M.layers[static_cast<size_t>(li)];
    const std::string p = "model.layers." + S(li) + ".", a = p + "self_attn.";
    BNA_RETURN_IF_ERROR(rows({{a + "q_proj.weight", {Hq * dh, C}}, {a + "k_proj.weight", {Hkv * dh, C}},
                              {a + "v_proj.weight", {Hkv * dh, C}}}, buf));
    BNA_RETURN_IF_ERROR(upload_bf16(buf, l.wqkv));
    if (c.qkv_bias) {
      BNA_RETURN_IF_ERROR(rows({{a + "q_proj.bias", {Hq * dh}}, {a + "k_proj.bias", {Hkv * dh}},
                                {a + "v_proj.bias", {Hkv * dh}}}, buf));
      BNA_RETURN_IF_ERROR(upload_f32(buf, l.bqkv));
    }
    BNA_RETURN_IF_ERROR(bf16(a + "o_proj.weight", {C, Hq * dh}, l.wo));
    if (c.o_bias) {
      BNA_RETURN_IF_ERROR(f32(a + "o_proj.bias", {C}, l.bo));
    }
    if (c.qk_norm) {
      BNA_RETURN_IF_ERROR(f32(a + "q_norm.weight", {dh}, l.q_norm));
      BNA_RETURN_IF_ERROR(f32(a + "k_norm.weight", {dh}, l.k_norm));
    }
    BNA_RETURN_IF_ERROR(f32(p + "input_layernorm.weight", {C}, l.ln1));
    BNA_RETURN_IF_ERROR(f32(p + "post_attention_layernorm.weight", {C}, l.ln2));
    if (c.sandwich_norm) {
      BNA_RETURN_IF_ERROR(f32(p + "post_self_attn_layernorm.weight", {C}, l.post_attn));
      BNA_RETURN_IF_ERROR(f32(p + "post_mlp_layernorm.weight", {C}, l.post_mlp));
    }
    if (c.fused_gate_up) {
      BNA_RETURN_IF_ERROR(read(p + "mlp.gate_up_proj.weight", {2 * I, C}, buf));
    } else {
      BNA_RETURN_IF_ERROR(rows({{p + "mlp.gate_proj.weight", {I, C}}, {p + "mlp.up_proj.weight", {I, C}}}, buf));
    }
    BNA_RETURN_IF_ERROR(upload_bf16(buf, l.w_gu));
    BNA_RETURN_IF_ERROR(bf16(p + "mlp.down_proj.weight", {C, I}, l.w_down));
  }
  BNA_RETURN_IF_ERROR(upload_f32(rope_inv_freq(c), M.inv_freq));
  BNA_RETURN_IF_ERROR(m.reset(std::min<int64_t>(c.max_positions > 0 ? c.max_positions : 2048, 2048)));
  return m;
}

}  // namespace bna::hf
