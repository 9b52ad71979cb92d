// The CUDA decoder (hf::CudaModel) against the CPU decoder (hf::Model) on the same checkpoint.
// Each family's fixture config (tests/fixtures/hf/<family>/config.json) is resized to head_dim 64 (the
// CUDA kernels' size) and given random weights that are exact in bf16, written to a temp model dir
// (GPT-2: its own tensor names and Conv1D [in, out] layouts, n_positions 256);
// both backends load it, so they hold identical weights and differ only by the GPU's bf16
// activations (GEMM inputs, q, the KV cache, attention output, MLP activations; hf_cuda.hpp).
//
// Pass rule (docs/numerics.md, model level): over all compared logits, rms(gpu - cpu) <=
// 2^-8 * sqrt(R) * rms(cpu), R = 6 * layers + 2 bf16 rounding points on the path of a logit (each
// rounds to 2^-9 relative; independent errors add in quadrature; factor 2 for the GEMM sums), and
// max|gpu - cpu| <= 8 * that rms bound. The argmax must agree wherever the CPU's top-1 margin
// exceeds 8 * the rms bound. NaN never passes. Butterfly and compressed must also match the CPU's
// same kind far better than the CPU's dense logits (the graph / routing and the two-pool rule, not
// only the numerics, must be the same). Compressed: GPU prefill is the runtime's compressed kernel,
// then decode over the GPU's ring and bf16 block means; CPU is its f32 two-pool cache.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bna/attention.hpp"
#include "bna/dtype.hpp"
#include "bna/hf.hpp"
#include "bna/hf_cuda.hpp"
#include "bna/io.hpp"
#include "bna/rng.hpp"
#include "bna/safetensors.hpp"

namespace {

namespace fs = std::filesystem;
using bna::hf::AttentionOptions;
using bna::hf::AttnKind;

struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<uint16_t> bits;
};

// A model dir for `family`: the fixture config resized to hidden 256, 4 heads / 2 KV, dh 64, I 256,
// 2 layers (GPT-2: n_embd 256, 4 heads of 64 (no GQA), n_inner 256, 2 layers, n_positions 256);
// bf16 weights (matrices and embeddings N(0, 0.05), norm weights 1 + 0.1 N, biases 0.1 N).
constexpr int64_t kGpt2Positions = 256;
std::string make_model_dir(const std::string& family, uint64_t seed) {
  const std::string src = std::string(BNA_FIXTURES_DIR) + "/hf/" + family + "/config.json";
  std::ifstream in(src);
  nlohmann::json j = nlohmann::json::parse(in);
  const bool gpt2 = family == "gpt2";
  if (gpt2) {
    j["n_embd"] = 256;
    j["n_head"] = 4;
    j["n_inner"] = 256;
    j["n_layer"] = 2;
    j["n_positions"] = kGpt2Positions;
  } else {
    j["hidden_size"] = 256;
    j["num_attention_heads"] = 4;
    j["num_key_value_heads"] = 2;
    j["head_dim"] = 64;
    j["intermediate_size"] = 256;
    j["num_hidden_layers"] = 2;
    j["max_position_embeddings"] = 1024;
    j.erase("layer_types");
  }
  const std::string dir = (fs::temp_directory_path() / ("bna_cuda_model_" + family + "_" + std::to_string(::getpid()))).string();
  fs::create_directories(dir);
  EXPECT_TRUE(bna::io::write_file_atomic(dir + "/config.json", j.dump(2)).is_ok());
  auto cfg = bna::hf::parse_config(j.dump());
  EXPECT_TRUE(cfg.has_value()) << cfg.status().to_string();
  const bna::hf::Config& c = *cfg;
  bna::Rng rng(seed);
  std::vector<Tensor> ts;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, double mean, double sd) {
    Tensor t{name, shape, {}};
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    t.bits.resize(static_cast<size_t>(n));
    for (auto& b : t.bits) b = bna::float_to_bf16(static_cast<float>(mean + sd * rng.normal()));
    ts.push_back(std::move(t));
  };
  const int64_t C = c.hidden, dh = c.head_dim, Hq = c.n_heads, Hkv = c.n_kv_heads, I = c.intermediate, V = c.vocab;
  EXPECT_EQ(dh, 64) << family;
  if (gpt2) {
    // transformers' GPT2LMHeadModel names; Conv1D weights are [in, out]; the head is tied to wte.
    EXPECT_EQ(Hq * dh, C);
    const std::string b = "transformer.";
    add(b + "wte.weight", {V, C}, 0, 0.05);
    add(b + "wpe.weight", {c.max_positions, C}, 0, 0.05);
    add(b + "ln_f.weight", {C}, 1, 0.1);
    add(b + "ln_f.bias", {C}, 0, 0.1);
    for (int64_t l = 0; l < c.layers; ++l) {
      const std::string p = b + "h." + std::to_string(l) + ".";
      add(p + "ln_1.weight", {C}, 1, 0.1);
      add(p + "ln_1.bias", {C}, 0, 0.1);
      add(p + "attn.c_attn.weight", {C, 3 * C}, 0, 0.05);
      add(p + "attn.c_attn.bias", {3 * C}, 0, 0.1);
      add(p + "attn.c_proj.weight", {C, C}, 0, 0.05);
      add(p + "attn.c_proj.bias", {C}, 0, 0.1);
      add(p + "ln_2.weight", {C}, 1, 0.1);
      add(p + "ln_2.bias", {C}, 0, 0.1);
      add(p + "mlp.c_fc.weight", {C, I}, 0, 0.05);
      add(p + "mlp.c_fc.bias", {I}, 0, 0.1);
      add(p + "mlp.c_proj.weight", {I, C}, 0, 0.05);
      add(p + "mlp.c_proj.bias", {C}, 0, 0.1);
    }
  } else {  // the Llama path's names
    add("model.embed_tokens.weight", {V, C}, 0, 0.05);
    add("model.norm.weight", {C}, 1, 0.1);
    if (!j.value("tie_word_embeddings", false)) add("lm_head.weight", {V, C}, 0, 0.05);
    for (int64_t l = 0; l < c.layers; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".", a = p + "self_attn.";
      add(a + "q_proj.weight", {Hq * dh, C}, 0, 0.05);
      add(a + "k_proj.weight", {Hkv * dh, C}, 0, 0.05);
      add(a + "v_proj.weight", {Hkv * dh, C}, 0, 0.05);
      add(a + "o_proj.weight", {C, Hq * dh}, 0, 0.05);
      if (c.qkv_bias) {
        add(a + "q_proj.bias", {Hq * dh}, 0, 0.1);
        add(a + "k_proj.bias", {Hkv * dh}, 0, 0.1);
        add(a + "v_proj.bias", {Hkv * dh}, 0, 0.1);
      }
      if (c.o_bias) add(a + "o_proj.bias", {C}, 0, 0.1);
      if (c.qk_norm) {
        add(a + "q_norm.weight", {dh}, 1, 0.1);
        add(a + "k_norm.weight", {dh}, 1, 0.1);
      }
      add(p + "input_layernorm.weight", {C}, 1, 0.1);
      add(p + "post_attention_layernorm.weight", {C}, 1, 0.1);
      if (c.sandwich_norm) {
        add(p + "post_self_attn_layernorm.weight", {C}, 1, 0.1);
        add(p + "post_mlp_layernorm.weight", {C}, 1, 0.1);
      }
      if (c.fused_gate_up) {
        add(p + "mlp.gate_up_proj.weight", {2 * I, C}, 0, 0.05);
      } else {
        add(p + "mlp.gate_proj.weight", {I, C}, 0, 0.05);
        add(p + "mlp.up_proj.weight", {I, C}, 0, 0.05);
      }
      add(p + "mlp.down_proj.weight", {C, I}, 0, 0.05);
    }
  }
  std::vector<bna::st::WriteTensor> w;
  for (const Tensor& t : ts) w.push_back({t.name, bna::st::Dtype::kBF16, t.shape, t.bits.data()});
  EXPECT_TRUE(bna::st::write(dir + "/model.safetensors", w).is_ok());
  return dir;
}

struct Diff {
  double rms_err = 0, max_err = 0, rms_ref = 0;
  bool finite = true;
};
Diff diff(const std::vector<float>& got, const std::vector<float>& ref) {
  Diff d;
  double se = 0, sr = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i])) d.finite = false;
    const double e = std::fabs(static_cast<double>(got[i]) - ref[i]);
    se += e * e;
    sr += static_cast<double>(ref[i]) * ref[i];
    d.max_err = std::max(d.max_err, e);
  }
  d.rms_err = std::sqrt(se / static_cast<double>(ref.size()));
  d.rms_ref = std::sqrt(sr / static_cast<double>(ref.size()));
  return d;
}

// The pass rule of the header on logits [rows, V].
void expect_close(const std::vector<float>& got, const std::vector<float>& ref, int64_t V, int64_t layers,
                  const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  const Diff d = diff(got, ref);
  const double bound = std::ldexp(1.0, -8) * std::sqrt(6.0 * static_cast<double>(layers) + 2.0) * d.rms_ref;
  EXPECT_TRUE(d.finite) << what << ": non-finite logits";
  EXPECT_LE(d.rms_err, bound) << what << ": rms error " << d.rms_err << " (rms logit " << d.rms_ref << ")";
  EXPECT_LE(d.max_err, 8 * bound) << what << ": max error " << d.max_err;
  const int64_t rows = static_cast<int64_t>(ref.size()) / V;
  for (int64_t r = 0; r < rows; ++r) {
    const float* a = &ref[static_cast<size_t>(r * V)];
    const float* b = &got[static_cast<size_t>(r * V)];
    int64_t ia = 0, ib = 0;
    for (int64_t v = 1; v < V; ++v) {
      if (a[v] > a[ia]) ia = v;
      if (b[v] > b[ib]) ib = v;
    }
    double second = -INFINITY;
    for (int64_t v = 0; v < V; ++v)
      if (v != ia) second = std::max(second, static_cast<double>(a[v]));
    if (a[ia] - second > 8 * bound) EXPECT_EQ(ia, ib) << what << ": argmax differs at row " << r;
  }
}

class CudaModelVsCpu : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaModelVsCpu, PrefillAndDecodeMatchTheCpuModel) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  const std::string family = GetParam();
  const std::string dir = make_model_dir(family, 0xC0DA + family.size());
  auto cpu = bna::hf::Model::load(dir);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  auto gpu = bna::hf::CudaModel::load(dir);
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  const int64_t V = cpu->config().vocab, L = cpu->config().layers;
  bna::Rng rng(7);
  std::vector<int32_t> ids(150);
  for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(V)));
  const int64_t n_prompt = 140;  // then 10 tokens decoded one at a time (GPU) / recomputed (CPU)
  AttentionOptions dense, bf;
  bf.kind = AttnKind::kButterfly;
  bf.window = 16;
  bf.landmark_stride = 16;
  bf.num_cycles = 2;
  bf.seed = 5;
  AttentionOptions cmp;  // small tail and blocks, so summaries and routing decide most keys
  cmp.kind = AttnKind::kCompressed;
  cmp.compressed.tail = 24;
  cmp.compressed.block = 8;
  std::vector<float> cpu_dense_all;
  for (const AttentionOptions* a : {&dense, &bf, &cmp}) {
    const std::string what = family + " " + bna::hf::attn_kind_name(a->kind);
    ASSERT_TRUE(cpu->reset(256).is_ok());
    ASSERT_TRUE(gpu->reset(256).is_ok());  // empty first: the GPU switches storage only on an empty cache
    ASSERT_TRUE(cpu->set_attention(*a).is_ok());
    ASSERT_TRUE(gpu->set_attention(*a).is_ok());
    // CPU: every position's logits in one call (prefill rows equal decode rows on the CPU: tests/hf).
    auto ref = cpu->forward(ids, true);
    ASSERT_TRUE(ref.has_value()) << ref.status().to_string();
    auto pre = gpu->forward(std::span<const int32_t>(ids.data(), n_prompt), true);
    ASSERT_TRUE(pre.has_value()) << what << ": " << pre.status().to_string();
    std::vector<float> got = *pre;
    for (int64_t i = n_prompt; i < static_cast<int64_t>(ids.size()); ++i) {
      auto step = gpu->forward(std::span<const int32_t>(&ids[static_cast<size_t>(i)], 1));
      ASSERT_TRUE(step.has_value()) << what << ": " << step.status().to_string();
      got.insert(got.end(), step->begin(), step->end());
    }
    EXPECT_EQ(gpu->position(), static_cast<int64_t>(ids.size()));
    expect_close(got, *ref, V, L, what);
    if (a->kind == AttnKind::kDense) {
      cpu_dense_all = *ref;
    } else {
      const Diff vs_bf = diff(got, *ref), vs_dense = diff(got, cpu_dense_all);
      EXPECT_LT(4 * vs_bf.rms_err, vs_dense.rms_err)
          << what << ": GPU logits are not clearly closer to the CPU's same kind than to CPU dense";
    }
  }
  fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Families, CudaModelVsCpu, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"));

// GPT-2's learned positions bound the cache: capacity n_positions is the most reset() takes (an error
// naming both numbers beyond it, the model unchanged); a full cache then refuses one more token. Also
// chunked prefill (positions p0 + t in every chunk) on paged dense layers against the CPU's one call,
// and random GPT-2 weights (CudaModel::random's LayerNorm / GELU / position buffers) run finite, with
// the device greedy draw equal to the host's.
TEST(CudaModel, Gpt2PositionsBoundTheCacheAndChunksMatchTheCpu) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  const std::string dir = make_model_dir("gpt2", 0x6E72);
  auto cpu = bna::hf::Model::load(dir);
  ASSERT_TRUE(cpu.has_value()) << cpu.status().to_string();
  auto gpu = bna::hf::CudaModel::load(dir);
  ASSERT_TRUE(gpu.has_value()) << gpu.status().to_string();
  const bna::hf::Config& c = gpu->config();
  ASSERT_EQ(c.max_positions, kGpt2Positions);
  EXPECT_EQ(gpu->capacity(), kGpt2Positions);
  const bna::Status st = gpu->reset(kGpt2Positions + 1);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument) << st.to_string();
  EXPECT_NE(st.message().find(std::to_string(kGpt2Positions + 1)), std::string::npos) << st.to_string();
  EXPECT_NE(st.message().find("n_positions=" + std::to_string(kGpt2Positions)), std::string::npos) << st.to_string();
  EXPECT_EQ(gpu->capacity(), kGpt2Positions);

  // The whole table: 250 tokens in chunks of 37 (the last chunk, 28 tokens, at position 222), then 6
  // decode steps up to position 255, the table's last row; pages of 16 tokens.
  std::vector<int32_t> ids(static_cast<size_t>(kGpt2Positions));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 131 + 7) % static_cast<size_t>(c.vocab));
  const int64_t n_prompt = 250;
  ASSERT_TRUE(cpu->reset(kGpt2Positions).is_ok());
  auto ref = cpu->forward(ids, true);
  ASSERT_TRUE(ref.has_value()) << ref.status().to_string();
  AttentionOptions paged;
  paged.kv_page = 16;
  ASSERT_TRUE(gpu->reset(kGpt2Positions).is_ok());
  ASSERT_TRUE(gpu->set_attention(paged).is_ok());
  auto pre = gpu->forward(std::span<const int32_t>(ids.data(), n_prompt), true, 37);
  ASSERT_TRUE(pre.has_value()) << pre.status().to_string();
  std::vector<float> got = *pre;
  for (int64_t i = n_prompt; i < kGpt2Positions; ++i) {
    auto step = gpu->forward(std::span<const int32_t>(&ids[static_cast<size_t>(i)], 1));
    ASSERT_TRUE(step.has_value()) << "position " << i << ": " << step.status().to_string();
    got.insert(got.end(), step->begin(), step->end());
  }
  EXPECT_EQ(gpu->position(), kGpt2Positions);
  expect_close(got, *ref, c.vocab, c.layers, "gpt2 dense, chunks of 37, pages of 16");
  // Full: one more token does not fit (the cache, hence the position table).
  EXPECT_EQ(gpu->forward(std::span<const int32_t>(ids.data(), 1)).status().code(), bna::StatusCode::kInvalidArgument);
  EXPECT_EQ(gpu->position(), kGpt2Positions);
  fs::remove_all(dir);

  auto rnd = bna::hf::CudaModel::random(c, 5);
  ASSERT_TRUE(rnd.has_value()) << rnd.status().to_string();
  EXPECT_EQ(rnd->capacity(), kGpt2Positions);
  EXPECT_EQ(rnd->reset(kGpt2Positions + 1).code(), bna::StatusCode::kInvalidArgument);
  ASSERT_TRUE(rnd->reset(64).is_ok());
  auto lg = rnd->forward(std::span<const int32_t>(ids.data(), 40));
  ASSERT_TRUE(lg.has_value()) << lg.status().to_string();
  ASSERT_EQ(lg->size(), static_cast<size_t>(c.vocab));
  double ss = 0;
  for (float v : *lg) {
    ASSERT_TRUE(std::isfinite(v));
    ss += static_cast<double>(v) * v;
  }
  EXPECT_GT(ss, 0.0);  // not all zero: the position and token tables reached the head
  const int32_t host = bna::hf::sample(*lg, {}, nullptr);
  ASSERT_TRUE(rnd->reset(64).is_ok());
  auto dev = rnd->forward_greedy(std::span<const int32_t>(ids.data(), 40));
  ASSERT_TRUE(dev.has_value()) << dev.status().to_string();
  EXPECT_EQ(*dev, host);
}

// The device-side greedy draw equals the host's greedy sample of the same logits, for a prompt and
// for decode steps (the forward is deterministic for the same shapes).
TEST(CudaModel, ForwardGreedyEqualsTheHostDraw) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  auto cfg = bna::hf::preset_config("qwen-tiny");
  ASSERT_TRUE(cfg.has_value());
  auto m = bna::hf::CudaModel::random(*cfg, 3);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  for (AttnKind kind : {AttnKind::kDense, AttnKind::kButterfly}) {
    AttentionOptions a;
    a.kind = kind;
    a.window = 8;
    a.landmark_stride = 8;
    ASSERT_TRUE(m->reset(200).is_ok());
    ASSERT_TRUE(m->set_attention(a).is_ok());
    std::vector<int32_t> ids(90);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 37 + 11) % cfg->vocab);
    std::vector<int32_t> host, dev;
    auto lg = m->forward(ids);
    ASSERT_TRUE(lg.has_value());
    host.push_back(bna::hf::sample(*lg, {}, nullptr));
    for (int s = 0; s < 5; ++s) {
      lg = m->forward(std::span<const int32_t>(&host.back(), 1));
      ASSERT_TRUE(lg.has_value());
      host.push_back(bna::hf::sample(*lg, {}, nullptr));
    }
    ASSERT_TRUE(m->reset(200).is_ok());
    auto g = m->forward_greedy(ids);
    ASSERT_TRUE(g.has_value()) << g.status().to_string();
    dev.push_back(*g);
    for (int s = 0; s < 5; ++s) {
      g = m->forward_greedy(std::span<const int32_t>(&dev.back(), 1));
      ASSERT_TRUE(g.has_value());
      dev.push_back(*g);
    }
    EXPECT_EQ(host, dev) << bna::hf::attn_kind_name(kind);
    EXPECT_EQ(m->position(), 95);
  }
}

TEST(CudaModel, RejectsWhatTheBackendDoesNotCover) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  // head_dim 16 (the fixtures' own size, GPT-2's included) has no CUDA attention kernel.
  for (const char* family : {"qwen3", "gpt2"}) {
    auto q = bna::hf::CudaModel::load(std::string(BNA_FIXTURES_DIR) + "/hf/" + family);
    ASSERT_FALSE(q.has_value()) << family;
    EXPECT_EQ(q.status().code(), bna::StatusCode::kUnimplemented) << family;
    EXPECT_NE(q.status().message().find("head_dim=16"), std::string::npos) << q.status().to_string();
  }
  // Ids out of range, overflow of the cache, a bad chunk or page size.
  auto cfg = bna::hf::preset_config("qwen-tiny");
  ASSERT_TRUE(cfg.has_value());
  auto m = bna::hf::CudaModel::random(*cfg, 1);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  ASSERT_TRUE(m->reset(300).is_ok());
  std::vector<int32_t> ids(100, 3);
  ASSERT_TRUE(m->forward(ids).has_value());
  EXPECT_EQ(m->forward(ids, false, -1).status().code(), bna::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->position(), 100);
  AttentionOptions paged;
  paged.kv_page = 48;
  auto pst = m->set_attention(paged);
  EXPECT_EQ(pst.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(pst.message().find("kv_page=48"), std::string::npos) << pst.to_string();
  paged.kv_page = 64;  // the cache holds tokens: no switch of storage
  EXPECT_EQ(m->set_attention(paged).code(), bna::StatusCode::kUnimplemented);
  EXPECT_EQ(m->attention().kv_page, 0);
  std::vector<int32_t> bad = {static_cast<int32_t>(cfg->vocab)};
  EXPECT_EQ(m->forward(bad).status().code(), bna::StatusCode::kInvalidArgument);
  ASSERT_TRUE(m->reset(4).is_ok());
  std::vector<int32_t> five(5, 1);
  EXPECT_EQ(m->forward(five).status().code(), bna::StatusCode::kInvalidArgument);
  // Compressed: bad options, several tokens per decode call, switching storage with tokens cached.
  AttentionOptions cmp;
  cmp.kind = AttnKind::kCompressed;
  cmp.compressed.block = 0;
  auto st = m->set_attention(cmp);
  EXPECT_EQ(st.code(), bna::StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("block=0"), std::string::npos) << st.to_string();
  cmp.compressed.block = 16;
  cmp.compressed.tail = 32;
  ASSERT_TRUE(m->reset(300).is_ok());
  ASSERT_TRUE(m->set_attention(cmp).is_ok());
  ASSERT_TRUE(m->forward(ids).has_value());
  std::vector<int32_t> two(2, 1);
  EXPECT_EQ(m->forward(two).status().code(), bna::StatusCode::kUnimplemented);
  EXPECT_EQ(m->forward(ids, false, 7).status().code(), bna::StatusCode::kUnimplemented);  // chunked, compressed
  ASSERT_TRUE(m->forward(std::span<const int32_t>(two.data(), 1)).has_value());
  AttentionOptions dense;
  EXPECT_EQ(m->set_attention(dense).code(), bna::StatusCode::kUnimplemented);
  EXPECT_EQ(m->position(), 101);
  // Bounded memory: the pools hold R = 32 ring rows and (300 - 32) / 16 = 16 summaries per KV head.
  const auto& c = m->config();
  EXPECT_EQ(m->kv_bytes(), static_cast<size_t>(c.layers * 2 * c.n_kv_heads * (32 + 16) * c.head_dim * 2));
}

// Chunked prefill (any chunk, run by the forward kernels with q_offset) and the paged KV cache of
// dense layers against one-shot prefill on the contiguous cache, for dense and Butterfly (layer 0
// dense and paged, layer 1 Butterfly), prompt then decode steps:
// - paged vs contiguous with the same chunks: the kernels only read through the page table, and
//   every GEMM has the same shape, so the logits must be bit-identical;
// - chunked vs one-shot: the attention rows are bit-identical (tests/attention_cuda
//   attn_paged_test), the GEMMs of other row counts may round differently: the header's rule;
// - kv_bytes counts the pages in use and grows a page at a time.
TEST(CudaModel, ChunkedPrefillAndPagedCacheMatchOneShot) {
  if (!bna::attn::cuda_available()) GTEST_SKIP() << "no CUDA device";
  auto cfg = bna::hf::preset_config("qwen-tiny");
  ASSERT_TRUE(cfg.has_value());
  auto m = bna::hf::CudaModel::random(*cfg, 11);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const bna::hf::Config& c = m->config();
  const int64_t V = c.vocab, n_prompt = 300, n_dec = 8, cap = 400;
  std::vector<int32_t> ids(static_cast<size_t>(n_prompt + n_dec));
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<int32_t>((i * 7919 + 13) % static_cast<size_t>(V));
  auto run = [&](const AttentionOptions& a, int64_t chunk) {
    std::vector<float> all;
    EXPECT_TRUE(m->reset(cap).is_ok());
    const bna::Status st = m->set_attention(a);
    EXPECT_TRUE(st.is_ok()) << st.to_string();
    auto pre = m->forward(std::span<const int32_t>(ids.data(), n_prompt), true, chunk);
    EXPECT_TRUE(pre.has_value()) << pre.status().to_string();
    if (!pre.has_value()) return all;
    all = *pre;
    for (int64_t i = n_prompt; i < n_prompt + n_dec; ++i) {
      auto step = m->forward(std::span<const int32_t>(&ids[static_cast<size_t>(i)], 1));
      EXPECT_TRUE(step.has_value()) << step.status().to_string();
      if (!step.has_value()) return std::vector<float>();
      all.insert(all.end(), step->begin(), step->end());
    }
    return all;
  };
  AttentionOptions dense, bf;
  bf.kind = AttnKind::kButterfly;
  bf.window = 16;
  bf.landmark_stride = 16;
  bf.num_cycles = 2;
  bf.seed = 3;
  bf.dense_layers = {0};
  for (AttentionOptions base : {dense, bf}) {
    const std::string kind = bna::hf::attn_kind_name(base.kind);
    const std::vector<float> one_shot = run(base, 0);
    ASSERT_EQ(one_shot.size(), static_cast<size_t>((n_prompt + n_dec) * V)) << kind;
    for (int64_t chunk : {int64_t{0}, int64_t{37}, int64_t{128}}) {
      const std::vector<float> contiguous = chunk == 0 ? one_shot : run(base, chunk);
      const std::string what = kind + " chunk " + std::to_string(chunk);
      if (chunk > 0) expect_close(contiguous, one_shot, V, c.layers, what + " vs one-shot");
      for (int64_t P : {int64_t{1}, int64_t{16}, int64_t{64}}) {
        AttentionOptions a = base;
        a.kv_page = P;
        const std::vector<float> got = run(a, chunk);
        ASSERT_EQ(got.size(), contiguous.size()) << what << " page " << P;
        for (size_t i = 0; i < got.size(); ++i)
          ASSERT_EQ(std::memcmp(&got[i], &contiguous[i], 4), 0)
              << what << " page " << P << ": logit " << i << " differs (" << got[i] << " vs " << contiguous[i] << ")";
        // Paged layers (all of them dense, layer 0 with Butterfly) hold ceil(308 / P) pages of
        // 2 * Hkv * P * dh bf16; Butterfly's layer 1 keeps its contiguous cache.
        const size_t page_bytes = static_cast<size_t>(2 * c.n_kv_heads * P * c.head_dim * 2);
        const size_t pages = static_cast<size_t>((n_prompt + n_dec + P - 1) / P);
        const size_t contiguous_layer = static_cast<size_t>(2 * c.n_kv_heads * cap * c.head_dim * 2);
        const int64_t paged_layers = base.kind == AttnKind::kDense ? c.layers : 1;
        EXPECT_EQ(m->kv_bytes(), static_cast<size_t>(paged_layers) * pages * page_bytes +
                                     static_cast<size_t>(c.layers - paged_layers) * contiguous_layer)
            << what << " page " << P;
        EXPECT_GE(m->device_bytes(), m->kv_bytes());
      }
    }
  }
  // One more token on a page boundary takes exactly one more page per paged layer.
  AttentionOptions a;
  a.kv_page = 16;
  ASSERT_TRUE(m->reset(cap).is_ok());
  ASSERT_TRUE(m->set_attention(a).is_ok());
  ASSERT_TRUE(m->forward(std::span<const int32_t>(ids.data(), 32)).has_value());
  const size_t before = m->kv_bytes();
  ASSERT_TRUE(m->forward(std::span<const int32_t>(ids.data() + 32, 1)).has_value());
  EXPECT_EQ(m->kv_bytes() - before, static_cast<size_t>(c.layers * 2 * c.n_kv_heads * 16 * c.head_dim * 2));
  ASSERT_TRUE(m->reset(cap).is_ok());
  EXPECT_EQ(m->kv_bytes(), 0u);
  // Back to contiguous storage: the page pool's slabs are freed, so the footprint is the contiguous
  // model's again.
  const size_t paged_device = m->device_bytes();
  ASSERT_TRUE(m->set_attention(AttentionOptions{}).is_ok());
  const size_t contiguous_kv = static_cast<size_t>(c.layers * 2 * c.n_kv_heads * cap * c.head_dim * 2);
  EXPECT_EQ(m->kv_bytes(), contiguous_kv);
  const size_t slab = 16 * static_cast<size_t>(2 * c.n_kv_heads * 16 * c.head_dim * 2);  // the smallest slab
  EXPECT_LE(m->device_bytes() + slab, paged_device + contiguous_kv);
}

}  // namespace
