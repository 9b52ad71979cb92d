// Optimizer, schedule, clipping, checkpoints and the resume guarantee: N steps straight vs N/2, a
// simulated kill, and a resume for the other N/2 give bit-identical losses and weights.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "bna/io.hpp"
#include "bna/threads.hpp"
#include "bna/tokenizer.hpp"
#include "bna/train.hpp"

namespace bna::train {
namespace {

std::string tmpdir(const std::string& name) {
  auto p = std::filesystem::temp_directory_path() / ("bna_train_test_" + std::to_string(::getpid()) + "_" + name);
  std::filesystem::remove_all(p);
  return p.string();
}

model::GptConfig tiny() {
  model::GptConfig c;
  c.vocab_size = data::kTaskVocab; c.seq_len = 32; c.n_layers = 2; c.n_heads = 2; c.d_model = 16; c.seed = 3;
  c.attn = {*model::parse_attn_spec("graph:w=4,s=8,c=1"), *model::parse_attn_spec("dense")};
  return c;
}

BatchFn passkey(uint64_t seed) {
  return [seed](uint64_t i, data::Batch& b) {
    data::TaskOptions t;
    t.T = 32; t.digits = 3;
    return data::task_batch(t, 4, seed, i, b);
  };
}

TEST(Schedule, WarmupCosineAndFloor) {
  Schedule s{1.0f, 0.1f, 4, 14};
  EXPECT_FLOAT_EQ(lr_at(s, 1), 0.25f);
  EXPECT_FLOAT_EQ(lr_at(s, 4), 1.0f);
  EXPECT_NEAR(lr_at(s, 9), 0.1 + 0.9 * 0.5 * (1 + std::cos(M_PI * 0.5)), 1e-6);
  EXPECT_FLOAT_EQ(lr_at(s, 14), 0.1f);
}

TEST(Clip, GlobalNormScalesOnlyAboveTheLimit) {
  std::vector<float> g = {3.0f, 4.0f};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 2, 10.0), 5.0);
  EXPECT_EQ(g[0], 3.0f);
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 2, 1.0), 5.0);
  EXPECT_NEAR(std::hypot(g[0], g[1]), 1.0, 1e-6);
}

TEST(AdamW, MatchesFloat64ReferenceAndDecaysOnlyMatrices) {
  auto m = model::Gpt::create(tiny());
  ASSERT_TRUE(m);
  AdamWOptions o;
  o.weight_decay = 0.5f;
  AdamW opt(m->num_params(), o);
  const model::ParamInfo* mat = m->find_param("h.0.attn.qkv");
  const model::ParamInfo* emb = m->find_param("wte");
  const model::ParamInfo* ln = m->find_param("lnf.w");
  ASSERT_TRUE(mat && emb && ln);
  EXPECT_TRUE(mat->decay);
  EXPECT_FALSE(emb->decay);
  EXPECT_FALSE(ln->decay);
  const int64_t idx[3] = {mat->offset + 5, emb->offset + 7, ln->offset + 1};
  double w[3], mm[3] = {0, 0, 0}, vv[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) w[k] = m->weights()[idx[k]];
  const double grads[3][3] = {{0.3, -0.1, 2.0}, {-0.2, 0.05, 0.7}, {1e-3, -4.0, 0.2}};
  for (int t = 1; t <= 3; ++t) {
    m->zero_grad();
    for (int k = 0; k < 3; ++k) m->grads()[idx[k]] = static_cast<float>(grads[t - 1][k]);
    const float lr = 0.01f * t;
    opt.step(*m, lr);
    for (int k = 0; k < 3; ++k) {
      const double g = static_cast<float>(grads[t - 1][k]);
      if (k == 0) w[k] *= 1.0 - double(lr) * 0.5;
      mm[k] = 0.9 * mm[k] + 0.1 * g;
      vv[k] = 0.95 * vv[k] + 0.05 * g * g;
      const double mh = mm[k] / (1 - std::pow(0.9, t)), vh = vv[k] / (1 - std::pow(0.95, t));
      w[k] -= lr * mh / (std::sqrt(vh) + 1e-8);
      // A handful of f32 roundings per update on values of size ~|w| + lr.
      EXPECT_NEAR(m->weights()[idx[k]], w[k], 1e-6 * (std::fabs(w[k]) + 0.1)) << "param " << k << " step " << t;
    }
  }
}

TEST(Resume, KilledAndResumedRunReproducesLossesBitForBit) {
  // Bit-identity holds at a fixed thread count; one thread also keeps an idle OpenMP team from spinning
  // against the work on a loaded machine (this test took 18 s instead of 0.3 s with two spinning threads).
  set_num_threads(1);
  TrainOptions o;
  o.steps = 8; o.log_every = 2; o.ckpt_every = 4; o.accum = 2;
  o.schedule = Schedule{3e-3f, 3e-4f, 2, 8};
  o.metadata["data"] = "passkey";
  const std::string a = tmpdir("straight"), b = tmpdir("killed");
  auto m1 = model::Gpt::create(tiny());
  ASSERT_TRUE(m1);
  o.out_dir = a;
  auto r1 = train(*m1, passkey(11), passkey(99), o);
  ASSERT_TRUE(r1) << r1.status().to_string();
  ASSERT_EQ(r1->losses.size(), 8u);
  auto m2 = model::Gpt::create(tiny());
  o.out_dir = b;
  o.stop_after = 4;  // killed right after the step-4 checkpoint
  auto r2 = train(*m2, passkey(11), passkey(99), o);
  ASSERT_TRUE(r2) << r2.status().to_string();
  ASSERT_EQ(r2->losses.size(), 4u);
  auto m3 = model::Gpt::create(tiny());  // a fresh process: new model, state only from the checkpoint
  o.stop_after = -1;
  o.resume = true;
  auto r3 = train(*m3, passkey(11), passkey(99), o);
  ASSERT_TRUE(r3) << r3.status().to_string();
  ASSERT_EQ(r3->start_step, 4);
  ASSERT_EQ(r3->losses.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(std::memcmp(&r1->losses[i], &r2->losses[i], 4), 0) << "step " << i + 1;
    EXPECT_EQ(std::memcmp(&r1->losses[4 + i], &r3->losses[i], 4), 0)
        << "step " << 5 + i << ": " << r1->losses[4 + i] << " vs " << r3->losses[i];
  }
  EXPECT_EQ(std::memcmp(m1->weights(), m3->weights(), m1->num_params() * 4), 0);
  // The metrics log of the resumed run has one line per logged step, none duplicated.
  auto ma = io::read_file(a + "/metrics.jsonl"), mb = io::read_file(b + "/metrics.jsonl");
  ASSERT_TRUE(ma && mb);
  EXPECT_EQ(std::count(ma->begin(), ma->end(), '\n'), std::count(mb->begin(), mb->end(), '\n'));
  // Checkpoint round trip and metadata.
  Checkpoint info;
  auto loaded = load_model(a + "/ckpt.safetensors", &info);
  ASSERT_TRUE(loaded) << loaded.status().to_string();
  EXPECT_EQ(info.step, 8);
  EXPECT_EQ(info.metadata.at("data"), "passkey");
  EXPECT_EQ(std::memcmp(loaded->weights(), m1->weights(), m1->num_params() * 4), 0);
  std::filesystem::remove_all(a);
  std::filesystem::remove_all(b);
  set_num_threads(0);
}

TEST(Checkpoint, BadFilesAndMismatchesAreErrors) {
  const std::string d = tmpdir("bad");
  std::filesystem::create_directories(d);
  EXPECT_EQ(load_checkpoint(d + "/none.safetensors").status().code(), StatusCode::kNotFound);
  { std::ofstream f(d + "/junk.safetensors", std::ios::binary); f << "garbage that is not safetensors"; }
  EXPECT_FALSE(load_checkpoint(d + "/junk.safetensors"));
  auto m = model::Gpt::create(tiny());
  ASSERT_TRUE(save_checkpoint(d + "/w.safetensors", *m, nullptr, 0).is_ok());
  AdamW opt;
  EXPECT_EQ(load_checkpoint(d + "/w.safetensors", &*m, &opt).status().code(), StatusCode::kCorrupt);  // no optimizer
  model::GptConfig other = tiny();
  other.d_model = 32;
  auto m2 = model::Gpt::create(other);
  EXPECT_FALSE(load_checkpoint(d + "/w.safetensors", &*m2));  // config mismatch
  std::filesystem::remove_all(d);
}

// Text data through a Hugging Face tokenizer.json (the GPT-2 fixture's byte-level BPE): the vocabulary
// is the tokenizer's, the tokens decode back to the text, the state rebuilds the same tokenizer (a
// checkpoint carries it), and a missing or broken file is an error naming it.
TEST(DataSpec, TextWithATokenizerJson) {
  const std::string d = tmpdir("bpe");
  std::filesystem::create_directories(d);
  std::string text;
  for (int r = 0; r < 40; ++r) text += "The quick brown fox jumps over the lazy dog " + std::to_string(r * 37) + ".\n";
  ASSERT_TRUE(io::write_file_atomic(d + "/corpus.txt", text).is_ok());
  DataSpec ds;
  ds.kind = "text";
  ds.path = d + "/corpus.txt";
  ds.tokenizer = std::string("json:") + BNA_FIXTURES_DIR + "/hf/gpt2/tokenizer.json";
  auto st = open_data(ds, 2, 16, 7);
  ASSERT_TRUE(st) << st.status().to_string();
  auto direct = tok::load_tokenizer_json(std::string(BNA_FIXTURES_DIR) + "/hf/gpt2/tokenizer.json");
  ASSERT_TRUE(direct) << direct.status().to_string();
  EXPECT_EQ(st->vocab_size, (*direct)->vocab_size());
  auto ids = (*direct)->try_encode(text);
  ASSERT_TRUE(ids);
  EXPECT_EQ((*direct)->decode(*ids), text);
  ASSERT_EQ(st->tokenizer_state.rfind("json:", 0), 0u);
  auto again = tokenizer_from_state(st->tokenizer_state);
  ASSERT_TRUE(again) << again.status().to_string();
  EXPECT_EQ((*again)->encode(text), *ids);
  data::Batch b;
  ASSERT_TRUE(st->train_fn(0, b).is_ok());
  ASSERT_EQ(b.x.size(), 2u * 16u);
  for (int32_t x : b.x) EXPECT_LT(x, st->vocab_size);
  // Byte-level BPE needs fewer tokens than bytes on English text.
  EXPECT_LT(ids->size(), text.size());

  ds.tokenizer = "json:" + d + "/missing.json";
  auto missing = open_data(ds, 2, 16, 7);
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.status().message().find("missing.json"), std::string::npos) << missing.status().message();
  ASSERT_TRUE(io::write_file_atomic(d + "/broken.json", "{\"model\": 3").is_ok());
  ds.tokenizer = "json:" + d + "/broken.json";
  EXPECT_FALSE(open_data(ds, 2, 16, 7));
  ds.tokenizer = "bpe";
  auto unknown = open_data(ds, 2, 16, 7);
  ASSERT_FALSE(unknown);
  EXPECT_NE(unknown.status().message().find("'bpe'"), std::string::npos) << unknown.status().message();
  std::filesystem::remove_all(d);
}

}  // namespace
}  // namespace bna::train
