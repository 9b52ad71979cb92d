// The C++ GPT against PyTorch: golden fixtures made by tools/gpt_torch_fixtures.py on the GPU machine
// (torch on the CPU, in float64 = the oracle ref64 and in float32 = the low-precision reference ref32),
// committed as tests/fixtures/gpt/tiny_torch.safetensors. Checked here: logits, loss, every parameter
// gradient, and 10 AdamW steps through bna::train::train (losses, grad norms, lrs, final parameters).
//
// Decisions a reader must know:
//   * The graph layer's neighbourhoods come from C++. This file owns the tiny config (tiny_config())
//     and writes it, with the ABI rows of every graph layer, to tests/fixtures/gpt/tiny_graph.json when
//     BNA_UPDATE_GPT_GRAPH=1; the script reads that file and copies the rows it used into the fixture
//     ("graph.<l>.neigh_idx"). GraphRowsMatchCommittedFile reads the rows the model built (Gpt::layer_graph)
//     so a drift of the graph builder fails on its own, apart from the
//     numerics; the logits then show that the model attends exactly those rows.
//   * Pass rule (docs/numerics.md, FA3 style) on every compared tensor t:
//       max|ours - ref64| <= 2 max|ref32 - ref64| + floor(t)  and the same on the mean,
//     floor(t) = 1e-5 * max|ref64(t)|: the f32 floor of numerics.md, which is stated for O(1) outputs,
//     taken relative to the tensor's scale because gradient tensors here peak at 1e-2..1e-1, not O(1).
//     NaN or Inf anywhere never passes; the rule is never applied to a fraction of elements.
//   * A missing fixture FAILS (it is committed; regenerate with the script), it never skips.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "bna/graph.hpp"
#include "bna/io.hpp"
#include "bna/model.hpp"
#include "bna/safetensors.hpp"
#include "bna/topology.hpp"
#include "bna/train.hpp"

namespace bna::model {
namespace {

const std::string kFixture = std::string(BNA_FIXTURES_DIR) + "/gpt/tiny_torch.safetensors";
const std::string kGraphJson = std::string(BNA_FIXTURES_DIR) + "/gpt/tiny_graph.json";
constexpr const char* kRegenerate =
    "run on a machine with torch + safetensors: python3 tools/gpt_torch_fixtures.py --out "
    "tests/fixtures/gpt/tiny_torch.safetensors";
constexpr const char* kRegenerateGraph =
    "BNA_UPDATE_GPT_GRAPH=1 bna_test_model --gtest_filter='GptTorchFixture.GraphRowsMatchCommittedFile', then "
    "rerun tools/gpt_torch_fixtures.py";
constexpr double kF32Floor = 1e-5;  // docs/numerics.md, f32 output floor

// The fixture's model: layer 0 dense, layer 1 a Butterfly graph layer (window 4, landmarks every 8,
// 2 random Hamiltonian cycles per KV head), GQA 4:2, dh 8, T = seq_len = 31 (prime).
GptConfig tiny_config() {
  GptConfig c;
  c.vocab_size = 64; c.seq_len = 31; c.n_layers = 2; c.n_heads = 4; c.n_kv_heads = 2; c.d_model = 32; c.seed = 7;
  c.attn = {*parse_attn_spec("dense"), *parse_attn_spec("graph:w=4,s=8,c=2,strategy=random")};
  return c;
}

using Rows = std::vector<std::vector<std::vector<int32_t>>>;  // [Hkv][i] -> ABI row (no pads, not causal-filtered)

// Layer l's rows for T = seq_len, as the model built them (Gpt::layer_graph).
Expected<Rows> graph_rows(const GptConfig& c, int64_t l) {
  BNA_ASSIGN_OR_RETURN(Gpt m, Gpt::create(c));
  const graph::GraphAbi* g = m.layer_graph(l);
  if (g == nullptr) return invalid_argument("layer " + std::to_string(l) + " has no graph");
  Rows rows(static_cast<size_t>(g->H), std::vector<std::vector<int32_t>>(static_cast<size_t>(g->T)));
  for (int64_t h = 0; h < g->H; ++h)
    for (int64_t i = 0; i < g->T; ++i)
      for (int64_t d = 0; d < g->D && g->row(h, i)[d] >= 0; ++d) rows[h][i].push_back(g->row(h, i)[d]);
  return rows;
}

std::string graph_json(const GptConfig& c) {
  nlohmann::ordered_json j;
  j["about"] = std::string("written by tests/model/gpt_torch_fixture_test.cpp (") + kRegenerateGraph +
               "); read by tools/gpt_torch_fixtures.py. rows[h][i]: ABI row i of KV head h for T = seq_len, "
               "before causality (attention keeps j <= i).";
  j["config"] = nlohmann::ordered_json::parse(config_to_json(c));
  j["graphs"] = nlohmann::ordered_json::array();
  for (int64_t l = 0; l < c.n_layers; ++l) {
    if (c.attn[static_cast<size_t>(l)].kind != AttnKind::kGraph) continue;
    auto rows = graph_rows(c, l);
    BNA_ASSERT(rows.has_value());
    nlohmann::ordered_json g;
    g["layer"] = l;
    g["spec"] = attn_spec_string(c.attn[static_cast<size_t>(l)]);
    g["rows"] = *rows;
    j["graphs"].push_back(g);
  }
  return j.dump(1) + "\n";
}

// ---- fixture access ------------------------------------------------------------------------------

struct Fixture {
  std::optional<st::File> file;
  GptConfig cfg;
  nlohmann::json train;
  int64_t B = 0, T = 0;
  std::vector<int32_t> idx, tg;

  const st::TensorInfo& need(const std::string& name, st::Dtype dt, int64_t numel) const {
    const st::TensorInfo* t = file->find(name);
    BNA_ASSERT(t != nullptr && t->dtype == dt && t->numel() == numel);
    return *t;
  }
  std::vector<double> f64(const std::string& name, int64_t numel) const {
    const st::TensorInfo& t = need(name, st::Dtype::kF64, numel);
    std::vector<double> v(static_cast<size_t>(numel));
    std::memcpy(v.data(), t.data, t.nbytes);
    return v;
  }
  std::vector<float> f32(const std::string& name, int64_t numel) const {
    const st::TensorInfo& t = need(name, st::Dtype::kF32, numel);
    std::vector<float> v(static_cast<size_t>(numel));
    BNA_ASSERT(st::read_f32(t, v.data()).is_ok());
    return v;
  }
  std::vector<int32_t> i32(const std::string& name, int64_t numel) const {
    const st::TensorInfo& t = need(name, st::Dtype::kI32, numel);
    std::vector<int32_t> v(static_cast<size_t>(numel));
    std::memcpy(v.data(), t.data, t.nbytes);
    return v;
  }
};

// Opens the fixture and checks everything the numeric tests rely on; "" on success, else the reason.
std::string load_fixture(Fixture& f) {
  if (!std::filesystem::exists(kFixture)) return "fixture missing: " + kFixture + "; " + kRegenerate;
  auto file = st::File::open(kFixture);
  if (!file) return "fixture unreadable: " + file.status().to_string();
  f.file.emplace(std::move(*file));
  const auto& md = f.file->metadata();
  for (const char* k : {"format", "config", "train", "B", "T"})
    if (md.find(k) == md.end()) return std::string("fixture metadata lacks '") + k + "'; " + kRegenerate;
  if (md.at("format") != "bna-gpt-torch-fixture-1") return "fixture format '" + md.at("format") + "', expected bna-gpt-torch-fixture-1";
  auto cfg = config_from_json(md.at("config"));
  if (!cfg) return "fixture config: " + cfg.status().to_string();
  f.cfg = *cfg;
  if (config_to_json(f.cfg) != config_to_json(tiny_config()))
    return "fixture config " + config_to_json(f.cfg) + " differs from tiny_config() " + config_to_json(tiny_config()) +
           "; " + kRegenerateGraph;
  f.train = nlohmann::json::parse(md.at("train"), nullptr, false);
  if (f.train.is_discarded()) return "fixture metadata 'train' is not JSON";
  f.B = std::stoll(md.at("B"));
  f.T = std::stoll(md.at("T"));
  for (const char* name : {"input_ids", "targets"}) {
    const st::TensorInfo* t = f.file->find(name);
    if (t == nullptr || t->dtype != st::Dtype::kI32 || t->shape != std::vector<int64_t>{f.B, f.T})
      return std::string("fixture tensor '") + name + "' missing or not I32 [B, T]";
  }
  f.idx = f.i32("input_ids", f.B * f.T);
  f.tg = f.i32("targets", f.B * f.T);
  return "";
}

// Copies the fixture's initial weights (F32, by parameter name) into m.
std::string load_weights(const Fixture& f, Gpt& m) {
  for (const ParamInfo& p : m.params()) {
    const st::TensorInfo* t = f.file->find(p.name);
    if (t == nullptr) return "fixture has no weight '" + p.name + "'";
    if (t->dtype != st::Dtype::kF32 || t->shape != p.shape) return "fixture weight '" + p.name + "' is not F32 of the model's shape";
    BNA_ASSERT(st::read_f32(*t, m.weights() + p.offset).is_ok());
  }
  return "";
}

// The numerics.md rule on one tensor (see the file header). Prints one line per tensor.
void expect_rule(const std::string& what, const float* ours, const std::vector<double>& ref64,
                 const std::vector<float>& ref32) {
  const size_t n = ref64.size();
  ASSERT_EQ(ref32.size(), n) << what;
  double scale = 0, max_e = 0, mean_e = 0, max_lp = 0, mean_lp = 0;
  int64_t bad = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(ours[i]) || !std::isfinite(ref64[i]) || !std::isfinite(ref32[i])) {
      ++bad;
      continue;
    }
    scale = std::max(scale, std::fabs(ref64[i]));
    const double e = std::fabs(static_cast<double>(ours[i]) - ref64[i]);
    const double lp = std::fabs(static_cast<double>(ref32[i]) - ref64[i]);
    max_e = std::max(max_e, e);
    max_lp = std::max(max_lp, lp);
    mean_e += e;
    mean_lp += lp;
  }
  ASSERT_EQ(bad, 0) << what << ": " << bad << " non-finite values (ours, ref64 or ref32)";
  mean_e /= static_cast<double>(n);
  mean_lp /= static_cast<double>(n);
  const double floor = kF32Floor * scale;
  std::printf("[torch] %-22s n=%-5zu max|ref64|=%-9.3g max|ours-ref64|=%-9.3g (bound %-9.3g) mean=%-9.3g (bound %.3g)\n",
              what.c_str(), n, scale, max_e, 2 * max_lp + floor, mean_e, 2 * mean_lp + floor);
  EXPECT_LE(max_e, 2 * max_lp + floor) << what << ": max|ours - ref64| vs 2 max|ref32 - ref64| + 1e-5 max|ref64|";
  EXPECT_LE(mean_e, 2 * mean_lp + floor) << what << ": mean|ours - ref64| vs 2 mean|ref32 - ref64| + 1e-5 max|ref64|";
}

// ---- tests ---------------------------------------------------------------------------------------

TEST(GptTorchFixture, GraphRowsMatchCommittedFile) {
  const GptConfig c = tiny_config();
  ASSERT_TRUE(validate_config(c).is_ok());
  const std::string want = graph_json(c);
  if (const char* u = std::getenv("BNA_UPDATE_GPT_GRAPH"); u != nullptr && std::string(u) == "1") {
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(kGraphJson).parent_path(), ec);
    ASSERT_TRUE(io::write_file_atomic(kGraphJson, want).is_ok()) << kGraphJson;
    std::printf("[torch] wrote %s\n", kGraphJson.c_str());
  }
  auto have = io::read_file(kGraphJson);
  ASSERT_TRUE(have.has_value()) << "graph file missing: " << kGraphJson << "; " << kRegenerateGraph;
  // Compared as JSON values ("about" is prose): the graph builder or tiny_config() drifted.
  const nlohmann::json a = nlohmann::json::parse(*have, nullptr, false), b = nlohmann::json::parse(want);
  ASSERT_TRUE(a.is_object() && a.contains("config") && a.contains("graphs")) << kGraphJson << " is not a graph file";
  EXPECT_TRUE(a["config"] == b["config"]) << kGraphJson << " holds config " << a["config"].dump() << ", tiny_config() is "
                                          << b["config"].dump() << "; " << kRegenerateGraph;
  EXPECT_TRUE(a["graphs"] == b["graphs"]) << kGraphJson << ": the rows differ from today's graph builder; "
                                          << kRegenerateGraph;
}

// The rows the fixture was made with (copied there by the script) equal the rows C++ builds today.
TEST(GptTorchFixture, FixtureWasMadeWithTodaysGraphRows) {
  const GptConfig c = tiny_config();
  Fixture f;
  const std::string err = load_fixture(f);
  ASSERT_EQ(err, "");
  const int64_t hkv = c.n_kv_heads, T = c.seq_len;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    if (c.attn[l].kind != AttnKind::kGraph) continue;
    auto rows = graph_rows(c, l);
    ASSERT_TRUE(rows.has_value()) << rows.status().to_string();
    const std::string name = "graph." + std::to_string(l) + ".neigh_idx";
    const st::TensorInfo* t = f.file->find(name);
    ASSERT_TRUE(t != nullptr && t->dtype == st::Dtype::kI32 && t->shape.size() == 3 && t->shape[0] == hkv &&
                t->shape[1] == T)
        << "fixture tensor " << name << " missing or not I32 [Hkv, T, D]; " << kRegenerate;
    const int64_t D = t->shape[2];
    const std::vector<int32_t> idx = f.i32(name, hkv * T * D);
    for (int64_t h = 0; h < hkv; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<int32_t> got;
        for (int64_t d = 0; d < D && idx[(h * T + i) * D + d] >= 0; ++d) got.push_back(idx[(h * T + i) * D + d]);
        ASSERT_EQ(got, (*rows)[h][i]) << "layer " << l << " head " << h << " row " << i
                                      << ": the fixture was made with other rows; " << kRegenerate;
      }
  }
}

TEST(GptTorchFixture, LogitsLossAndEveryGradientMatchTorch) {
  Fixture f;
  const std::string err = load_fixture(f);
  ASSERT_EQ(err, "");
  auto m = Gpt::create(f.cfg);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  ASSERT_EQ(load_weights(f, *m), "");
  const int64_t B = f.B, T = f.T, V = f.cfg.vocab_size;

  // Logits of a forward without targets (a loss forward leaves probabilities in logits()).
  ASSERT_TRUE(m->forward(f.idx.data(), nullptr, B, T).has_value());
  expect_rule("logits", m->logits(), f.f64("logits", B * T * V), f.f32("logits32", B * T * V));

  m->zero_grad();
  auto loss = m->forward(f.idx.data(), f.tg.data(), B, T);
  ASSERT_TRUE(loss.has_value()) << loss.status().to_string();
  ASSERT_TRUE(m->backward().is_ok());
  const float l = *loss;
  expect_rule("loss", &l, f.f64("loss", 1), f.f32("loss32", 1));
  for (const ParamInfo& p : m->params())
    expect_rule("grad." + p.name, m->grads() + p.offset, f.f64("grad." + p.name, p.numel),
                f.f32("grad32." + p.name, p.numel));
}

TEST(GptTorchFixture, AdamWStepsMatchTorch) {
  Fixture f;
  const std::string err = load_fixture(f);
  ASSERT_EQ(err, "");
  auto m = Gpt::create(f.cfg);
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  ASSERT_EQ(load_weights(f, *m), "");

  const nlohmann::json& h = f.train;
  for (const char* k : {"steps", "lr", "lr_min", "warmup", "beta1", "beta2", "eps", "weight_decay", "grad_clip", "decay"})
    ASSERT_TRUE(h.contains(k)) << "fixture 'train' metadata lacks '" << k << "'; " << kRegenerate;
  // The script decays exactly the parameters the C++ model flags (ParamInfo::decay).
  std::vector<std::string> decay;
  for (const ParamInfo& p : m->params())
    if (p.decay) decay.push_back(p.name);
  EXPECT_EQ(h["decay"].get<std::vector<std::string>>(), decay);

  train::TrainOptions o;
  o.steps = h["steps"].get<int64_t>();
  o.accum = 1;
  o.schedule.lr = h["lr"].get<float>();
  o.schedule.lr_min = h["lr_min"].get<float>();
  o.schedule.warmup = h["warmup"].get<int64_t>();
  o.adamw.beta1 = h["beta1"].get<float>();
  o.adamw.beta2 = h["beta2"].get<float>();
  o.adamw.eps = h["eps"].get<float>();
  o.adamw.weight_decay = h["weight_decay"].get<float>();
  o.grad_clip = h["grad_clip"].get<double>();
  o.log_every = 1;
  const int64_t steps = o.steps;
  std::vector<float> norms, lrs;
  const train::BatchFn batch = [&](uint64_t, data::Batch& b) {  // the same batch every step
    b.B = f.B; b.T = f.T; b.x = f.idx; b.y = f.tg;
    return Status::ok();
  };
  auto res = train::train(*m, batch, {}, o, [&](const train::LogRecord& r) {
    norms.push_back(static_cast<float>(r.grad_norm));
    lrs.push_back(static_cast<float>(r.lr));
  });
  ASSERT_TRUE(res.has_value()) << res.status().to_string();
  ASSERT_EQ(static_cast<int64_t>(res->losses.size()), steps);
  ASSERT_EQ(static_cast<int64_t>(norms.size()), steps);

  // The schedule is exact up to the f32 lr (lr_at returns float).
  const std::vector<double> lr64 = f.f64("lrs", steps);
  for (int64_t s = 0; s < steps; ++s) EXPECT_NEAR(lrs[s], lr64[s], 1e-6 * lr64[s]) << "lr of step " << s + 1;
  expect_rule("losses", res->losses.data(), f.f64("losses", steps), f.f32("losses32", steps));
  expect_rule("grad_norms", norms.data(), f.f64("grad_norms", steps), f.f32("grad_norms32", steps));
  // The tightest margin is here: AdamW's m / sqrt(v) turns f32 noise of near-zero gradients into weight
  // noise up to ~lr per step; ref32 has the same effect, which the 2 max|ref32 - ref64| term carries.
  for (const ParamInfo& p : m->params())
    expect_rule("final." + p.name, m->weights() + p.offset, f.f64("final." + p.name, p.numel),
                f.f32("final32." + p.name, p.numel));
}

}  // namespace
}  // namespace bna::model
