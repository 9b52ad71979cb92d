// Paged KV cache of the HF model's dense layers (src/hf/paged_kv.cpp, AttentionOptions::kv_page).
//
// Exactness: paged attention runs the runtime's dense causal QTile arithmetic with row pointers from
// the page table (paged_kv.hpp), so with the SAME call sequence the model's logits must equal the
// contiguous cache's bit for bit (compared with ==), whatever the page size. The kernel itself is
// also checked against a float64 oracle under the numerics.md rule (ref_lp = the runtime's contiguous
// dense attention, floor 1e-5) on odd lengths, GQA 1/4/8, dh 64/128 and offsets, and against the
// runtime's output with ==.
// Page sizes 1, 7, 64, 256 cover one token per page, pages that divide neither the 64-key chunks nor
// the prefill chunks, pages equal to a chunk and pages larger than several chunks (T = 300 > 256).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "bna/attention.hpp"
#include "bna/hf.hpp"
#include "bna/rng.hpp"
#include "bna/tensor.hpp"
#include "hf/hf_fixture_util.hpp"
#include "hf/paged_kv.hpp"

namespace bna::hf {
namespace {

using testing::fixture_ids;
using testing::kDir;

// ---- the kernel: paged_attend against the runtime's dense attention and a float64 oracle ----------

struct KernelCase {
  int64_t Hkv, G, dh, p0, n, page;
};
std::string kernel_name(const ::testing::TestParamInfo<KernelCase>& i) {
  const KernelCase& c = i.param;
  return "Hkv" + std::to_string(c.Hkv) + "_G" + std::to_string(c.G) + "_dh" + std::to_string(c.dh) + "_p0_" +
         std::to_string(c.p0) + "_n" + std::to_string(c.n) + "_page" + std::to_string(c.page);
}

class PagedKernel : public ::testing::TestWithParam<KernelCase> {};

TEST_P(PagedKernel, MatchesRuntimeDenseAndFloat64Oracle) {
  const KernelCase c = GetParam();
  const int64_t Hq = c.Hkv * c.G, Tk = c.p0 + c.n, dh = c.dh;
  SCOPED_TRACE(kernel_name({c, 0}));
  Rng rng(1234 + c.p0 * 7 + c.n);
  auto fill = [&](int64_t count, double sd) {
    std::vector<float> x(static_cast<size_t>(count));
    for (auto& e : x) e = static_cast<float>(sd * rng.normal());
    return x;
  };
  // Scores of spread ~ several units so the softmax is neither flat nor one-hot.
  std::vector<float> q = fill(Hq * c.n * dh, 1.0), k = fill(c.Hkv * Tk * dh, 1.0), v = fill(c.Hkv * Tk * dh, 1.0);
  const float scale = 1.0f / std::sqrt(static_cast<float>(dh));

  // Pages filled as the model does: the prefix [0, p0) first, then the chunk, from [t, Hkv, dh] rows.
  detail::KvPagePool pool(c.Hkv, dh, c.page);
  detail::PageTable table;
  auto rows = [&](int64_t t0, int64_t t1, std::vector<float>& kr, std::vector<float>& vr) {
    kr.resize(static_cast<size_t>((t1 - t0) * c.Hkv * dh));
    vr.resize(kr.size());
    for (int64_t t = t0; t < t1; ++t)
      for (int64_t h = 0; h < c.Hkv; ++h)
        for (int64_t d = 0; d < dh; ++d) {
          kr[((t - t0) * c.Hkv + h) * dh + d] = k[(h * Tk + t) * dh + d];
          vr[((t - t0) * c.Hkv + h) * dh + d] = v[(h * Tk + t) * dh + d];
        }
  };
  std::vector<float> kr, vr;
  rows(0, c.p0, kr, vr);
  detail::paged_append(pool, table, kr.data(), vr.data(), 0, c.p0);
  rows(c.p0, Tk, kr, vr);
  detail::paged_append(pool, table, kr.data(), vr.data(), c.p0, c.n);
  EXPECT_EQ(pool.pages_in_use(), (Tk + c.page - 1) / c.page);
  std::vector<float> o(q.size(), std::numeric_limits<float>::quiet_NaN()), lse(static_cast<size_t>(Hq * c.n));
  detail::paged_attend(pool, table, q.data(), c.p0, c.n, c.G, scale, o.data(), lse.data());

  // The runtime's dense causal attention on the contiguous K/V (the model's contiguous path).
  attn::Shape s;
  s.B = 1; s.Hq = Hq; s.Hkv = c.Hkv; s.Tq = c.n; s.Tk = Tk; s.dh = dh; s.q_offset = c.p0;
  s.dtype = DType::kF32;
  attn::GraphSource src;
  src.dense = true;
  auto plan = attn::plan(src, s);
  ASSERT_TRUE(plan.has_value()) << plan.status().to_string();
  std::vector<float> o32(q.size()), lse32(lse.size());
  ASSERT_TRUE(attn::run(*plan, TensorView(q.data(), DType::kF32, bna::Shape{1, Hq, c.n, dh}),
                        TensorView(k.data(), DType::kF32, bna::Shape{1, c.Hkv, Tk, dh}),
                        TensorView(v.data(), DType::kF32, bna::Shape{1, c.Hkv, Tk, dh}),
                        TensorView(o32.data(), DType::kF32, bna::Shape{1, Hq, c.n, dh}),
                        TensorView(lse32.data(), DType::kF32, bna::Shape{1, Hq, c.n}))
                  .is_ok());

  // float64 oracle from the same f32 inputs.
  std::vector<double> o64(q.size()), lse64(lse.size());
  for (int64_t hq = 0; hq < Hq; ++hq) {
    const int64_t hk = hq / c.G;
    for (int64_t i = 0; i < c.n; ++i) {
      const int64_t pos = c.p0 + i;
      std::vector<double> sc(static_cast<size_t>(pos + 1));
      double mx = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j <= pos; ++j) {
        double d = 0;
        for (int64_t e = 0; e < dh; ++e) d += double(q[(hq * c.n + i) * dh + e]) * double(k[(hk * Tk + j) * dh + e]);
        sc[j] = d * double(scale);
        mx = std::max(mx, sc[j]);
      }
      double l = 0;
      for (auto& x : sc) l += (x = std::exp(x - mx));
      for (int64_t e = 0; e < dh; ++e) {
        double acc = 0;
        for (int64_t j = 0; j <= pos; ++j) acc += sc[j] * double(v[(hk * Tk + j) * dh + e]);
        o64[(hq * c.n + i) * dh + e] = acc / l;
      }
      lse64[hq * c.n + i] = mx + std::log(l);
    }
  }
  auto err = [](const std::vector<float>& a, const std::vector<double>& ref, double* mean) {
    double mx = 0, sum = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      const double e = std::abs(double(a[i]) - ref[i]);
      if (!std::isfinite(double(a[i]))) return std::numeric_limits<double>::infinity();
      mx = std::max(mx, e);
      sum += e;
    }
    *mean = sum / double(a.size());
    return mx;
  };
  double mean_p, mean_r, lmean_p, lmean_r;
  const double max_p = err(o, o64, &mean_p), max_r = err(o32, o64, &mean_r);
  const double lmax_p = err(lse, lse64, &lmean_p), lmax_r = err(lse32, lse64, &lmean_r);
  EXPECT_LE(max_p, 2 * max_r + 1e-5);
  EXPECT_LE(mean_p, 2 * mean_r + 1e-5);
  EXPECT_LE(lmax_p, 2 * lmax_r + 1e-5);
  EXPECT_LE(lmean_p, 2 * lmean_r + 1e-5);
  // Same arithmetic as the runtime's dense kernel, lane for lane.
  EXPECT_EQ(o, o32);
  EXPECT_EQ(lse, lse32);
  // lse is optional (nullptr): the same outputs.
  std::vector<float> o_nolse(q.size(), std::numeric_limits<float>::quiet_NaN());
  detail::paged_attend(pool, table, q.data(), c.p0, c.n, c.G, scale, o_nolse.data(), nullptr);
  EXPECT_EQ(o_nolse, o);
}

INSTANTIATE_TEST_SUITE_P(Hf, PagedKernel,
                         ::testing::Values(KernelCase{2, 1, 64, 0, 37, 7},       // one-shot prefill, GQA 1
                                           KernelCase{2, 4, 64, 0, 131, 1},      // GQA 4, page of one token
                                           KernelCase{1, 8, 128, 50, 29, 7},     // chunk at an offset, GQA 8, dh 128
                                           KernelCase{2, 4, 64, 190, 67, 64},    // chunk across the diagonal chunks
                                           KernelCase{2, 4, 128, 300, 1, 256},   // decode, page > several chunks
                                           KernelCase{3, 8, 64, 257, 1, 7},      // decode, 3 KV heads
                                           KernelCase{2, 1, 64, 129, 3, 64}),    // short chunk, page = key chunk
                         kernel_name);

// ---- the model: paged logits == contiguous logits ------------------------------------------------

Config tiny_config() {
  auto c = preset_config("qwen-tiny");
  BNA_ASSERT(c.has_value());
  return *c;
}

std::vector<int32_t> random_ids(int64_t n, int64_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (auto& t : ids) t = static_cast<int32_t>(rng.uniform_below(static_cast<uint64_t>(vocab)));
  return ids;
}

// All logits of ids: a prefill of n_prefill tokens in chunks of `chunk` (0 = one call), then one token
// at a time; the cache is reset to `cap` under options `o` first.
std::vector<float> run(Model& m, const AttentionOptions& o, const std::vector<int32_t>& ids, int64_t cap,
                       size_t n_prefill, int64_t chunk) {
  EXPECT_TRUE(m.reset(1).is_ok());
  Status st = m.set_attention(o);
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  return testing::prefill_then_decode(m, ids, cap, n_prefill, chunk);
}

AttentionOptions paged(AttentionOptions o, int64_t page) {
  o.kv_page = page;
  return o;
}

// Dense layers under Butterfly / compressed options (mixed models) and every layer under kDense.
AttentionOptions mixed_butterfly() {
  AttentionOptions o = testing::butterfly(16, 16, 1, 3);
  o.dense_layers = {1, 3};
  return o;
}

struct ModelCase {
  std::string name;
  AttentionOptions opt;
};

class PagedModel : public ::testing::TestWithParam<int64_t> {
 protected:
  static void SetUpTestSuite() {
    auto m = Model::random(tiny_config(), 11);
    BNA_ASSERT(m.has_value());
    model_ = new Model(std::move(*m));
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }
  static Model* model_;
};
Model* PagedModel::model_ = nullptr;

// Prefill 300 tokens (one call, chunks of 37, chunks of 100) then 20 decode steps, dense and mixed
// dense/Butterfly: every logit equals the contiguous cache's.
TEST_P(PagedModel, LogitsEqualContiguous) {
  const int64_t page = GetParam();
  Model& m = *model_;
  const std::vector<int32_t> ids = random_ids(320, m.config().vocab, 5);
  const int64_t cap = 330;
  for (const ModelCase& mc : {ModelCase{"dense", AttentionOptions{}}, ModelCase{"butterfly+dense{1,3}", mixed_butterfly()}}) {
    for (int64_t chunk : {int64_t{0}, int64_t{37}, int64_t{100}}) {
      SCOPED_TRACE(mc.name + " page=" + std::to_string(page) + " chunk=" + std::to_string(chunk));
      const std::vector<float> want = run(m, mc.opt, ids, cap, 300, chunk);
      const std::vector<float> got = run(m, paged(mc.opt, page), ids, cap, 300, chunk);
      ASSERT_EQ(got.size(), want.size());
      ASSERT_EQ(got.size(), ids.size() * static_cast<size_t>(m.config().vocab));
      size_t diff = 0;
      for (size_t i = 0; i < got.size(); ++i) diff += got[i] != want[i];
      EXPECT_EQ(diff, 0u) << "of " << got.size() << " logits";
    }
  }
}

// kv_bytes counts the pages in use: ceil(pos / P) per paged layer, plus the full caches of the
// Butterfly layers; reset() frees the pages.
TEST_P(PagedModel, KvBytesGrowPageByPage) {
  const int64_t page = GetParam();
  Model& m = *model_;
  const Config& c = m.config();
  const size_t page_bytes = static_cast<size_t>(2 * c.n_kv_heads * page * c.head_dim) * sizeof(float);
  const int64_t cap = 700;
  const size_t full_layer = static_cast<size_t>(2 * c.n_kv_heads * cap * c.head_dim) * sizeof(float);
  const std::vector<int32_t> ids = random_ids(300, c.vocab, 9);
  for (const ModelCase& mc : {ModelCase{"dense", AttentionOptions{}}, ModelCase{"butterfly+dense{1,3}", mixed_butterfly()}}) {
    SCOPED_TRACE(mc.name + " page=" + std::to_string(page));
    ASSERT_TRUE(m.reset(1).is_ok());
    ASSERT_TRUE(m.set_attention(paged(mc.opt, page)).is_ok());
    ASSERT_TRUE(m.reset(cap).is_ok());
    const int64_t paged_layers = mc.opt.kind == AttnKind::kDense ? c.layers : 2;
    const size_t fixed = static_cast<size_t>(c.layers - paged_layers) * full_layer;
    EXPECT_EQ(m.kv_bytes(), fixed);
    int64_t pos = 0;
    for (int64_t step : {1, 1, 5, 1, 57, 6, 1, 150, 78}) {  // sums to 300
      ASSERT_TRUE(m.forward(std::span<const int32_t>(ids.data() + pos, step)).has_value());
      pos += step;
      const int64_t pages = (pos + page - 1) / page;
      EXPECT_EQ(m.kv_bytes(), fixed + static_cast<size_t>(paged_layers * pages) * page_bytes) << "pos=" << pos;
    }
    ASSERT_TRUE(m.reset(cap).is_ok());
    EXPECT_EQ(m.kv_bytes(), fixed);
  }
  ASSERT_TRUE(m.reset(1).is_ok());
  ASSERT_TRUE(m.set_attention(AttentionOptions{}).is_ok());
}

INSTANTIATE_TEST_SUITE_P(Hf, PagedModel, ::testing::Values(1, 7, 64, 256),
                         [](const ::testing::TestParamInfo<int64_t>& i) { return "page" + std::to_string(i.param); });

// A cache of capacity 128k holding 1000 tokens holds 1000 tokens of K/V (rounded up to a page), not 128k.
TEST(PagedKv, LargeCapacityHoldsOnlyTheTokens) {
  Config c = tiny_config();
  c.layers = 2;
  auto m = Model::random(c, 2);
  ASSERT_TRUE(m.has_value());
  AttentionOptions o;
  o.kv_page = 64;
  ASSERT_TRUE(m->set_attention(o).is_ok());
  ASSERT_TRUE(m->reset(131072).is_ok());
  EXPECT_EQ(m->kv_bytes(), 0u);
  const std::vector<int32_t> ids = random_ids(1000, c.vocab, 4);
  ASSERT_TRUE(m->forward(ids).has_value());
  const size_t per_token = static_cast<size_t>(2 * c.n_kv_heads * c.head_dim) * sizeof(float) * c.layers;
  EXPECT_EQ(m->kv_bytes(), 1024 * per_token);  // 16 pages of 64 per layer
  EXPECT_LT(m->kv_bytes(), 131072 * per_token / 100);
}

// Every fixture family (GQA 4/2, GPT-2's learned positions, GLM's partial rotary), page 7 over 24
// tokens fed as chunks of 5 then decode: equal to the contiguous cache.
class PagedFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(PagedFixture, LogitsEqualContiguous) {
  auto m = Model::load(kDir + "/" + GetParam());
  ASSERT_TRUE(m.has_value()) << m.status().to_string();
  const std::vector<int32_t> ids = fixture_ids(GetParam());
  for (int64_t chunk : {int64_t{0}, int64_t{5}}) {
    const std::vector<float> want = run(*m, AttentionOptions{}, ids, 30, 13, chunk);
    const std::vector<float> got = run(*m, paged(AttentionOptions{}, 7), ids, 30, 13, chunk);
    ASSERT_EQ(got.size(), want.size());
    EXPECT_TRUE(got == want) << GetParam() << " chunk=" << chunk;
  }
}

INSTANTIATE_TEST_SUITE_P(Hf, PagedFixture, ::testing::Values("gpt2", "qwen2", "qwen3", "llama3", "glm4"),
                         [](const ::testing::TestParamInfo<std::string>& i) { return i.param; });

// ---- switching options with tokens cached ---------------------------------------------------------

// Prefill 90 tokens under options[0], then switch to options[s] before each of the next decode
// blocks of 10 tokens; returns all logits.
std::vector<float> run_switching(Model& m, const std::vector<AttentionOptions>& opts, const std::vector<int32_t>& ids) {
  EXPECT_TRUE(m.reset(1).is_ok());
  EXPECT_TRUE(m.set_attention(opts[0]).is_ok());
  EXPECT_TRUE(m.reset(static_cast<int64_t>(ids.size())).is_ok());
  auto pre = m.forward(std::span<const int32_t>(ids.data(), 90), true, 0);
  EXPECT_TRUE(pre.has_value());
  if (!pre) return {};
  std::vector<float> all = *pre;
  size_t t = 90;
  for (size_t s = 1; s < opts.size(); ++s) {
    const Status st = m.set_attention(opts[s]);
    EXPECT_TRUE(st.is_ok()) << "switch " << s << ": " << st.to_string();
    for (size_t e = t + 10; t < e && t < ids.size(); ++t) {
      auto d = m.forward(std::span<const int32_t>(&ids[t], 1));
      EXPECT_TRUE(d.has_value());
      if (!d) return {};
      all.insert(all.end(), d->begin(), d->end());
    }
  }
  return all;
}

TEST(PagedKv, SwitchingKeepsTheTokens) {
  auto m = Model::random(tiny_config(), 3);
  ASSERT_TRUE(m.has_value());
  const std::vector<int32_t> ids = random_ids(140, m->config().vocab, 8);
  AttentionOptions dense;
  AttentionOptions bf = mixed_butterfly();
  AttentionOptions bf_all_sparse = testing::butterfly(16, 16, 1, 3);
  AttentionOptions cmp;
  cmp.kind = AttnKind::kCompressed;
  cmp.compressed.tail = 16;
  cmp.compressed.block = 8;
  // Contiguous → pages of 7 → pages of 64 → contiguous → pages of 1; the same logits as staying
  // contiguous (which decodes the same tokens with the same arithmetic).
  const std::vector<float> want = run_switching(*m, {dense, dense, dense, dense, dense}, ids);
  EXPECT_EQ(run_switching(*m, {dense, paged(dense, 7), paged(dense, 64), dense, paged(dense, 1)}, ids), want);
  EXPECT_EQ(run_switching(*m, {paged(dense, 256), paged(dense, 3), dense, paged(dense, 64), paged(dense, 64)}, ids), want);
  // Layers moving between dense (paged) and Butterfly (contiguous), and paged dense → compressed pools.
  const std::vector<float> want_mixed = run_switching(*m, {dense, bf, bf_all_sparse, bf, cmp}, ids);
  EXPECT_EQ(run_switching(*m, {paged(dense, 7), paged(bf, 7), paged(bf_all_sparse, 7), paged(bf, 64), paged(cmp, 64)},
                          ids),
            want_mixed);
}

TEST(PagedKv, ErrorsLeaveTheOptionsUnchanged) {
  auto m = Model::random(tiny_config(), 3);
  ASSERT_TRUE(m.has_value());
  AttentionOptions o;
  o.kv_page = 16;
  ASSERT_TRUE(m->set_attention(o).is_ok());
  ASSERT_TRUE(m->reset(100).is_ok());
  const std::vector<int32_t> ids = random_ids(40, m->config().vocab, 1);
  ASSERT_TRUE(m->forward(std::span<const int32_t>(ids.data(), 30)).has_value());
  const size_t bytes = m->kv_bytes();

  AttentionOptions bad = o;
  bad.kv_page = -1;
  Status st = m->set_attention(bad);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("kv_page=-1"), std::string::npos) << st.to_string();
  EXPECT_EQ(m->attention().kv_page, 16);
  EXPECT_EQ(m->kv_bytes(), bytes);
  EXPECT_EQ(m->position(), 30);

  // A compressed cache holding tokens cannot become paged (its older raw rows are gone).
  AttentionOptions cmp;
  cmp.kind = AttnKind::kCompressed;
  cmp.compressed.tail = 8;
  cmp.compressed.block = 4;
  ASSERT_TRUE(m->set_attention(cmp).is_ok());
  st = m->set_attention(o);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(st.message().find("paged cache"), std::string::npos) << st.to_string();
  EXPECT_EQ(m->attention().kind, AttnKind::kCompressed);

  // A rejected forward leaves the cache and its pages as they were.
  ASSERT_TRUE(m->reset(100).is_ok());
  ASSERT_TRUE(m->set_attention(o).is_ok());
  ASSERT_TRUE(m->forward(std::span<const int32_t>(ids.data(), 20)).has_value());
  const size_t b20 = m->kv_bytes();
  std::vector<int32_t> bad_ids(ids.begin(), ids.begin() + 20);
  bad_ids[17] = static_cast<int32_t>(m->config().vocab);  // out of range
  EXPECT_FALSE(m->forward(bad_ids).has_value());
  EXPECT_EQ(m->kv_bytes(), b20);
  EXPECT_EQ(m->position(), 20);
}

}  // namespace
}  // namespace bna::hf
