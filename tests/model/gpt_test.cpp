// The GPT against an independent float64 reference written from the architecture (docs/gpt.md):
// loss and logits of the f32 model vs the float64 model on the same (rounded) weights, every gradient
// vs float64 central finite differences of the float64 model, for dense, graph (window + landmarks +
// cycle, truncated to T < seq_len) and block-butterfly layers, with and without GQA. KV-cache decoding
// (prefill, single steps, appended chunks, every planned path, NaN past the cache length) vs the float64
// model and forward(), and config/spec round trips and errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "bna/model.hpp"
#include "bna/nn.hpp"
#include "bna/rng.hpp"
#include "bna/topology.hpp"

namespace bna::model {
namespace {

using Allowed = std::vector<std::vector<std::vector<std::vector<int32_t>>>>;  // [layer][hkv][i] -> keys

// Allowed keys of every row, rebuilt here from the topology API (not from the model's internals).
Allowed allowed_keys(const GptConfig& c, int64_t T) {
  const int64_t hkv = c.n_kv_heads == 0 ? c.n_heads : c.n_kv_heads;
  Allowed a(c.n_layers);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const AttnSpec& s = c.attn.size() == 1 ? c.attn[0] : c.attn[l];
    a[l].assign(hkv, std::vector<std::vector<int32_t>>(T));
    for (int64_t h = 0; h < hkv; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::set<int32_t> keys;
        if (s.kind == AttnKind::kDense) {
          for (int32_t j = 0; j <= i; ++j) keys.insert(j);
        } else if (s.kind == AttnKind::kGraph) {
          topo::TopologyOptions to;
          to.n_heads = hkv; to.num_cycles = std::max<int64_t>(1, s.cycles);
          to.strategy = *topo::parse_strategy(s.strategy);
          to.seed = c.seed + 1337 * static_cast<uint64_t>(l);
          auto cyc = topo::Topology::create(to)->cycles(c.seq_len);
          for (int32_t j = std::max<int64_t>(0, i - s.window); j <= i; ++j) keys.insert(j);
          if (s.landmark_stride > 0)
            for (int64_t j = 0; j < i; j += s.landmark_stride) keys.insert(static_cast<int32_t>(j));
          if (s.cycles > 0)
            for (const auto& perm : (*cyc)[h]) {
              const int64_t Tf = c.seq_len;
              for (int64_t p = 0; p < Tf; ++p)
                if (perm[p] == i) {
                  const int32_t nb[2] = {perm[(p + 1) % Tf], perm[(p + Tf - 1) % Tf]};
                  for (int32_t j : nb) if (j <= i) keys.insert(j);
                }
            }
        } else {
          topo::ButterflyOptions bo;
          bo.layer = l; bo.rule = *topo::parse_partner_rule(s.rule);
          bo.partner_count = s.partner_count; bo.local_blocks = s.local_blocks; bo.sink_count = s.sink_count;
          auto L = topo::butterfly_block_layout(c.seq_len, s.block_size, hkv, bo);
          const int64_t b = i / s.block_size;
          for (const int32_t* p = L->row_begin(h, b); p != L->row_end(h, b); ++p)
            for (int64_t j = *p * s.block_size; j < (*p + 1) * s.block_size; ++j)
              if (j <= i) keys.insert(static_cast<int32_t>(j));
        }
        a[l][h][i].assign(keys.begin(), keys.end());
      }
  }
  return a;
}

struct Ref {
  const Gpt& m;
  const Allowed& allowed;
  std::vector<double> w;
  const double* P(const std::string& n) const { return w.data() + m.find_param(n)->offset; }

  static void ln(const double* x, const double* g, const double* b, double* y, int64_t C) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[c];
    mu /= C;
    for (int64_t c = 0; c < C; ++c) var += (x[c] - mu) * (x[c] - mu);
    const double r = 1.0 / std::sqrt(var / C + 1e-5);
    for (int64_t c = 0; c < C; ++c) y[c] = (x[c] - mu) * r * g[c] + b[c];
  }
  // y [out] = W [out, in] x
  static void mv(const double* W, const double* x, double* y, int64_t in, int64_t out) {
    for (int64_t o = 0; o < out; ++o) {
      double s = 0;
      for (int64_t k = 0; k < in; ++k) s += W[o * in + k] * x[k];
      y[o] = s;
    }
  }
  // Logits [B*T, V]; returns the mean loss over targets.
  double run(const std::vector<int32_t>& idx, const std::vector<int32_t>& tg, int64_t B, int64_t T,
             std::vector<double>* logits_out = nullptr) const {
    const GptConfig& c = m.config();
    const int64_t C = c.d_model, V = c.vocab_size, Hq = c.n_heads, Hkv = c.n_kv_heads, dh = C / Hq, G = Hq / Hkv;
    const int64_t qo = (Hq + 2 * Hkv) * dh;
    std::vector<double> x(B * T * C), h(C), qkv(B * T * qo), att(B * T * C), y(4 * C), z(4 * C);
    for (int64_t n = 0; n < B * T; ++n)
      for (int64_t ch = 0; ch < C; ++ch) x[n * C + ch] = P("wte")[idx[n] * C + ch] + P("wpe")[(n % T) * C + ch];
    for (int64_t l = 0; l < c.n_layers; ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      for (int64_t n = 0; n < B * T; ++n) {
        ln(&x[n * C], P(p + "ln1.w"), P(p + "ln1.b"), h.data(), C);
        mv(P(p + "attn.qkv"), h.data(), &qkv[n * qo], C, qo);
      }
      for (int64_t b = 0; b < B; ++b)
        for (int64_t hq = 0; hq < Hq; ++hq)
          for (int64_t i = 0; i < T; ++i) {
            const auto& keys = allowed[l][hq / G][i];
            const double* q = &qkv[(b * T + i) * qo + hq * dh];
            std::vector<double> s(keys.size());
            double mx = -1e300;
            for (size_t e = 0; e < keys.size(); ++e) {
              const double* k = &qkv[(b * T + keys[e]) * qo + (Hq + hq / G) * dh];
              double d = 0;
              for (int64_t t = 0; t < dh; ++t) d += q[t] * k[t];
              s[e] = d / std::sqrt(static_cast<double>(dh));
              mx = std::max(mx, s[e]);
            }
            double sum = 0;
            for (double& v : s) { v = std::exp(v - mx); sum += v; }
            double* o = &att[(b * T + i) * C + hq * dh];
            for (int64_t t = 0; t < dh; ++t) o[t] = 0;
            for (size_t e = 0; e < keys.size(); ++e) {
              const double* v = &qkv[(b * T + keys[e]) * qo + (Hq + Hkv + hq / G) * dh];
              for (int64_t t = 0; t < dh; ++t) o[t] += s[e] / sum * v[t];
            }
          }
      for (int64_t n = 0; n < B * T; ++n) {
        mv(P(p + "attn.proj"), &att[n * C], y.data(), C, C);
        for (int64_t ch = 0; ch < C; ++ch) x[n * C + ch] += y[ch];
        ln(&x[n * C], P(p + "ln2.w"), P(p + "ln2.b"), h.data(), C);
        mv(P(p + "mlp.fc"), h.data(), z.data(), C, 4 * C);
        for (auto& v : z) v = nn::gelu_tanh(v);
        mv(P(p + "mlp.proj"), z.data(), y.data(), 4 * C, C);
        for (int64_t ch = 0; ch < C; ++ch) x[n * C + ch] += y[ch];
      }
    }
    double loss = 0;
    int64_t counted = 0;
    std::vector<double> lg(V);
    if (logits_out) logits_out->resize(B * T * V);
    for (int64_t n = 0; n < B * T; ++n) {
      ln(&x[n * C], P("lnf.w"), P("lnf.b"), h.data(), C);
      mv(P("head"), h.data(), lg.data(), C, V);
      if (logits_out) std::copy(lg.begin(), lg.end(), logits_out->begin() + n * V);
      if (tg.empty() || tg[n] < 0) continue;
      double mx = *std::max_element(lg.begin(), lg.end()), s = 0;
      for (double v : lg) s += std::exp(v - mx);
      loss += std::log(s) + mx - lg[tg[n]];
      ++counted;
    }
    return counted ? loss / counted : 0.0;
  }
};

struct Case {
  const char* name;
  std::vector<std::string> attn;
  int64_t heads, kv_heads, T;
};

GptConfig tiny(const Case& k) {
  GptConfig c;
  c.vocab_size = 11; c.seq_len = 9; c.n_layers = static_cast<int64_t>(k.attn.size());
  c.n_heads = k.heads; c.n_kv_heads = k.kv_heads; c.d_model = 8; c.seed = 5;
  for (const auto& s : k.attn) c.attn.push_back(*parse_attn_spec(s));
  return c;
}

// Larger weights than the 0.02 init so attention and GELU are far from linear.
void scale_weights(Gpt& m, float s) {
  for (const ParamInfo& p : m.params())
    if (p.shape.size() == 2)
      for (int64_t i = 0; i < p.numel; ++i) m.weights()[p.offset + i] *= s;
}

class GptGrad : public testing::TestWithParam<Case> {};

TEST_P(GptGrad, LossAndEveryGradientMatchFloat64) {
  const Case k = GetParam();
  const GptConfig cfg = tiny(k);
  auto m = Gpt::create(cfg);
  ASSERT_TRUE(m) << m.status().to_string();
  scale_weights(*m, 20.0f);
  const int64_t B = 2, T = k.T;
  Rng r(17);
  std::vector<int32_t> idx(B * T), tg(B * T);
  for (auto& v : idx) v = static_cast<int32_t>(r.uniform_below(cfg.vocab_size));
  for (auto& v : tg) v = static_cast<int32_t>(r.uniform_below(cfg.vocab_size));
  tg[3] = -1;  // ignored target
  m->zero_grad();
  auto loss = m->forward(idx.data(), tg.data(), B, T);
  ASSERT_TRUE(loss) << loss.status().to_string();
  ASSERT_TRUE(m->backward().is_ok());
  const Allowed al = allowed_keys(m->config(), T);
  Ref ref{*m, al, std::vector<double>(m->weights(), m->weights() + m->num_params())};
  const double l64 = ref.run(idx, tg, B, T);
  // f32 forward of ~2*L+2 normalised layers, each within a few hundred ulps of its output scale.
  EXPECT_NEAR(*loss, l64, 2e-5 * (1 + std::fabs(l64))) << k.name;
  const double h = 1e-5;
  double max_fd = 0;
  std::vector<double> fd(m->num_params());
  for (int64_t i = 0; i < m->num_params(); ++i) {
    const double s = ref.w[i];
    ref.w[i] = s + h; const double lp = ref.run(idx, tg, B, T);
    ref.w[i] = s - h; const double lm = ref.run(idx, tg, B, T);
    ref.w[i] = s;
    fd[i] = (lp - lm) / (2 * h);
    max_fd = std::max(max_fd, std::fabs(fd[i]));
  }
  for (const ParamInfo& p : m->params())
    for (int64_t i = 0; i < p.numel; ++i) {
      const double g = m->grads()[p.offset + i], f = fd[p.offset + i];
      // f32 backward vs float64 FD (FD truncation ~1e-9): 1e-4 of the largest gradient plus 1e-4 relative.
      ASSERT_NEAR(g, f, 1e-4 * max_fd + 1e-4 * std::fabs(f)) << k.name << " " << p.name << "[" << i << "]";
    }
  // Gradients accumulate across backward calls.
  std::vector<float> g1(m->grads(), m->grads() + m->num_params());
  ASSERT_TRUE(m->forward(idx.data(), tg.data(), B, T));
  ASSERT_TRUE(m->backward(0.5f).is_ok());
  for (int64_t i = 0; i < m->num_params(); i += 7) EXPECT_NEAR(m->grads()[i], 1.5f * g1[i], 1e-5 * (1 + std::fabs(g1[i])));
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, GptGrad,
    testing::Values(Case{"dense_T9", {"dense", "dense"}, 2, 0, 9},
                    Case{"graph_block_T7", {"graph:w=2,s=3,c=1", "block:bs=2,rule=xor,p=1,local=1,sink=1"}, 2, 0, 7},
                    Case{"graph_window_only_gqa_T9", {"graph:w=1,s=0,c=0", "graph:w=2,s=4,c=2,strategy=random"}, 4, 2, 9},
                    Case{"block_stages_T8", {"block:bs=2,rule=xor,p=1,local=0,sink=1", "block:bs=2,rule=xor,p=1,local=0,sink=1"}, 2, 1, 8}),
    [](const testing::TestParamInfo<Case>& i) { return std::string(i.param.name); });

// Decode cases: seq_len, head dim and GQA ratio per case; `paths` is the plan path forward() must pick per
// layer, so every path the model can run (dense, streams, gather, forced decode, block_sparse) is covered.
struct DecodeCase {
  const char* name;
  std::vector<std::string> attn, paths;
  int64_t heads, kv_heads, dh, seq_len;
};

void PrintTo(const DecodeCase& k, std::ostream* os) { *os << k.name; }

GptConfig decode_config(const DecodeCase& k) {
  GptConfig c;
  c.vocab_size = 13; c.seq_len = k.seq_len; c.n_layers = static_cast<int64_t>(k.attn.size());
  c.n_heads = k.heads; c.n_kv_heads = k.kv_heads; c.d_model = k.heads * k.dh; c.seed = 5;
  for (const auto& s : k.attn) c.attn.push_back(*parse_attn_spec(s));
  return c;
}

class GptDecode : public testing::TestWithParam<DecodeCase> {};

// Every decode() call of several schedules (prefill lengths, single steps, chunks appended after a
// prefill) up to seq_len gives the logits of its last position; they are checked against the float64
// model (Ref, on the rows of allowed_keys) with the rule of docs/numerics.md: max and mean |decode - ref64|
// within 2x those of forward() (the f32 reference: at every length t and at seq_len) plus an f32 floor.
// A wrong key set moves these logits by O(0.1) (weights x20 make attention peaky). The cache rows past
// the current length are NaN, so reading any key beyond the query's position poisons the logits.
TEST_P(GptDecode, KvCacheEqualsFullRecomputation) {
  const DecodeCase k = GetParam();
  const GptConfig cfg = decode_config(k);
  auto m = Gpt::create(cfg);
  ASSERT_TRUE(m) << m.status().to_string();
  scale_weights(*m, 20.0f);
  const int64_t T = cfg.seq_len, V = cfg.vocab_size;
  Rng r(3);
  std::vector<int32_t> seq(T);
  for (auto& v : seq) v = static_cast<int32_t>(r.uniform_below(V));
  const Allowed al = allowed_keys(m->config(), T);
  Ref ref{*m, al, std::vector<double>(m->weights(), m->weights() + m->num_params())};
  std::vector<double> ref64;
  ref.run(seq, {}, 1, T, &ref64);
  // The f32 reference error: forward(t)'s last row for every t, and every row of forward(seq_len).
  double fwd_max = 0, fwd_sum = 0;
  int64_t fwd_n = 0;
  auto fwd_err = [&](const float* lg, int64_t t) {
    for (int64_t v = 0; v < V; ++v) {
      const double e = std::fabs(lg[v] - ref64[(t - 1) * V + v]);
      fwd_max = std::max(fwd_max, e);
      fwd_sum += e;
      ++fwd_n;
    }
  };
  for (int64_t t = 1; t <= T; ++t) {
    ASSERT_TRUE(m->forward(seq.data(), nullptr, 1, t));
    fwd_err(m->logits() + (t - 1) * V, t);
  }
  for (int64_t l = 0; l < cfg.n_layers; ++l) ASSERT_EQ(m->attention_path(l), k.paths[l]) << k.name << " layer " << l;
  for (int64_t t = 1; t <= T; ++t) fwd_err(m->logits() + (t - 1) * V, t);
  const double fwd_mean = fwd_sum / static_cast<double>(fwd_n);
  ASSERT_TRUE(std::isfinite(fwd_max) && fwd_max < 1e-3) << k.name << ": forward vs float64 " << fwd_max;

  struct Schedule { int64_t prefill; std::vector<int64_t> chunks; };  // chunks repeat until seq_len
  const std::vector<Schedule> schedules = {{1, {1}}, {3, {1}}, {T / 2, {1}}, {5, {2, 1, 3, 5}}, {T - 1, {1}}, {T, {}}};
  std::vector<float> lg(V);
  for (const Schedule& s : schedules) {
    auto cache = m->new_cache();
    for (auto* layer : {&cache.k, &cache.v})
      for (auto& rows : *layer) std::fill(rows.begin(), rows.end(), std::numeric_limits<float>::quiet_NaN());
    double dec_max = 0, dec_sum = 0;
    int64_t dec_n = 0, t = 0;
    for (size_t c = 0; t < T; ++c) {
      const int64_t n = t == 0 ? s.prefill : std::min<int64_t>(s.chunks[(c - 1) % s.chunks.size()], T - t);
      ASSERT_TRUE(m->decode(cache, seq.data() + t, n, lg.data()).is_ok()) << k.name << " t=" << t << " n=" << n;
      t += n;
      ASSERT_EQ(cache.length, t);
      for (int64_t v = 0; v < V; ++v) {
        const double e = std::fabs(lg[v] - ref64[(t - 1) * V + v]);
        ASSERT_TRUE(std::isfinite(lg[v])) << k.name << " prefill " << s.prefill << " t=" << t << " n=" << n << " v=" << v;
        ASSERT_LE(e, 2 * fwd_max + 1e-5) << k.name << " prefill " << s.prefill << " t=" << t << " n=" << n << " v=" << v
                                         << ": decode " << lg[v] << ", float64 " << ref64[(t - 1) * V + v];
        dec_max = std::max(dec_max, e);
        dec_sum += e;
        ++dec_n;
      }
    }
    EXPECT_LE(dec_sum / static_cast<double>(dec_n), 2 * fwd_mean + 1e-6) << k.name << " prefill " << s.prefill;
    EXPECT_EQ(m->decode(cache, seq.data(), 1, lg.data()).code(), StatusCode::kOutOfRange);
    EXPECT_EQ(cache.length, T);
  }
  auto cache = m->new_cache();
  ASSERT_TRUE(m->decode(cache, seq.data(), T - 2, lg.data()).is_ok());
  EXPECT_EQ(m->decode(cache, seq.data(), 3, lg.data()).code(), StatusCode::kOutOfRange);  // one past seq_len
  EXPECT_EQ(cache.length, T - 2);
  EXPECT_EQ(m->decode(cache, seq.data(), 0, lg.data()).code(), StatusCode::kInvalidArgument);
  const int32_t bad = static_cast<int32_t>(V);
  EXPECT_EQ(m->decode(cache, &bad, 1, lg.data()).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(cache.length, T - 2);
}

INSTANTIATE_TEST_SUITE_P(
    Tiny, GptDecode,
    testing::Values(
        DecodeCase{"dense_T9_dh4", {"dense", "dense"}, {"dense", "dense"}, 2, 0, 4, 9},
        DecodeCase{"graph_block_T9_dh4", {"graph:w=2,s=3,c=1", "block:bs=2,rule=xor,p=1,local=1,sink=1"},
                   {"streams", "block_sparse"}, 2, 0, 4, 9},
        DecodeCase{"graph_gqa2_T9_dh2", {"graph:w=1,s=4,c=2", "graph:w=3,s=0,c=1"}, {"streams", "streams"}, 4, 2, 2, 9},
        DecodeCase{"dense_gqa4_T61_dh20", {"dense", "dense"}, {"dense", "dense"}, 4, 1, 20, 61},
        DecodeCase{"streams_block_gqa2_T61_dh20", {"graph:w=4,s=8,c=2", "block:bs=4,rule=xor,p=1,local=1,sink=1"},
                   {"streams", "block_sparse"}, 4, 2, 20, 61},
        DecodeCase{"gather_streams_T67_dh16", {"graph:w=4,s=8,c=2,path=gather", "graph:w=3,s=0,c=3,path=streams"},
                   {"gather", "streams"}, 2, 0, 16, 67},
        DecodeCase{"decode_window_gqa2_T53_dh33", {"graph:w=5,s=7,c=1,strategy=edge_disjoint,path=decode", "graph:w=3,s=0,c=0"},
                   {"decode", "streams"}, 2, 1, 33, 53},
        DecodeCase{"block_stages_gqa2_T61_dh16", {"block:bs=8,rule=xor,p=1,local=0,sink=1", "block:bs=8,rule=xor,p=1,local=0,sink=1"},
                   {"block_sparse", "block_sparse"}, 4, 2, 16, 61}),
    [](const testing::TestParamInfo<DecodeCase>& i) { return std::string(i.param.name); });

TEST(GptConfig, SpecAndJsonRoundTrip) {
  for (const char* s : {"dense", "graph:w=64,s=64,c=1,strategy=random", "graph:w=32,s=0,c=0",
                        "block:bs=64,rule=xor,p=1,local=1,sink=1", "graph:w=8,s=8,c=2,strategy=edge_disjoint,path=gather"}) {
    auto a = parse_attn_spec(s);
    ASSERT_TRUE(a) << s << ": " << a.status().to_string();
    EXPECT_EQ(attn_spec_string(*a), s);
  }
  GptConfig c = tiny(Case{"x", {"dense", "graph:w=2,s=3,c=1"}, 2, 1, 9});
  auto back = config_from_json(config_to_json(c));
  ASSERT_TRUE(back) << back.status().to_string();
  EXPECT_EQ(config_to_json(*back), config_to_json(c));
}

TEST(GptConfig, BadInputIsAnError) {
  EXPECT_FALSE(parse_attn_spec("sparse"));
  EXPECT_FALSE(parse_attn_spec("graph:w=-1"));
  EXPECT_FALSE(parse_attn_spec("graph:w=x"));
  EXPECT_FALSE(parse_attn_spec("graph:q=1"));
  EXPECT_FALSE(parse_attn_spec("graph:strategy=greedy"));
  EXPECT_FALSE(parse_attn_spec("block:rule=nope"));
  GptConfig c;
  c.d_model = 10; c.n_heads = 4;
  EXPECT_FALSE(validate_config(c).is_ok());
  c.d_model = 8; c.n_kv_heads = 3;
  EXPECT_FALSE(validate_config(c).is_ok());
  EXPECT_FALSE(config_from_json("{\"vocab_size\": 3}"));
  EXPECT_FALSE(config_from_json("not json"));
  auto m = Gpt::create(GptConfig{});
  ASSERT_TRUE(m);
  std::vector<int32_t> idx(300, 1);
  EXPECT_FALSE(m->forward(idx.data(), nullptr, 1, 300));  // T > seq_len = 256
  idx[0] = 256;
  EXPECT_FALSE(m->forward(idx.data(), nullptr, 1, 4));  // token out of vocabulary
  EXPECT_FALSE(m->backward().is_ok());                  // no forward with targets
}

}  // namespace
}  // namespace bna::model

namespace bna::model {
namespace {

TEST(Generate, CachedDecodingEqualsFullRecomputation) {
  GptConfig c;
  c.vocab_size = 13; c.seq_len = 24; c.n_layers = 2; c.n_heads = 2; c.d_model = 8; c.seed = 9;
  c.attn = {*parse_attn_spec("graph:w=3,s=4,c=1"), *parse_attn_spec("block:bs=4,rule=xor,p=1,local=1,sink=1")};
  auto m = Gpt::create(c);
  ASSERT_TRUE(m);
  for (const ParamInfo& p : m->params())
    if (p.shape.size() == 2)
      for (int64_t i = 0; i < p.numel; ++i) m->weights()[p.offset + i] *= 40.0f;
  const std::vector<int32_t> prompt = {1, 5, 7};
  for (SampleOptions o : {SampleOptions{0.0f, 0, 1.0f, 1}, SampleOptions{1.0f, 5, 0.9f, 2}, SampleOptions{0.7f, 0, 1.0f, 3}}) {
    auto a = generate(*m, prompt, 21, o, true);
    auto b = generate(*m, prompt, 21, o, false);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(*a, *b) << "temperature " << o.temperature;
    EXPECT_TRUE(std::equal(prompt.begin(), prompt.end(), a->begin()));
  }
  EXPECT_EQ(generate(*m, prompt, 22, {}, true).status().code(), StatusCode::kOutOfRange);
  EXPECT_FALSE(generate(*m, {}, 1, {}, true));
}

TEST(Generate, SamplingRespectsTopKTopPAndTemperature) {
  const float lg[5] = {2.0f, 1.0f, 1.0f, -1.0f, 0.5f};
  Rng r(1);
  for (int i = 0; i < 200; ++i) {
    EXPECT_EQ(sample_token(lg, 5, {0.0f, 0, 1.0f, 0}, r), 0);
    const int32_t k = sample_token(lg, 5, {1.0f, 2, 1.0f, 0}, r);  // ties with the 2nd (ids 1, 2) kept
    EXPECT_TRUE(k == 0 || k == 1 || k == 2);
    EXPECT_EQ(sample_token(lg, 5, {1.0f, 0, 0.3f, 0}, r), 0);  // p(0) = 0.50 >= 0.3
  }
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 20000; ++i) ++counts[sample_token(lg, 5, {1.0f, 0, 1.0f, 0}, r)];
  double z = 0;
  for (float l : lg) z += std::exp(l);
  for (int i = 0; i < 5; ++i) EXPECT_NEAR(counts[i] / 20000.0, std::exp(lg[i]) / z, 0.015) << i;  // ~4 sigma
}

}  // namespace
}  // namespace bna::model
