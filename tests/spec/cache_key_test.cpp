// Tests for the cache key: canonical payload, stability, sensitivity to every graph-changing field and
// insensitivity to comments, layout, degree, schedules, biases and parameters the strategy ignores.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

const char* kBase =
    "(butterfly\n"
    "  (backbone (cycle :type random :seed 42 :k 2))\n"
    "  (local (window :size (schedule :linear 64 16 :steps 2000)))\n"
    "  (highways (landmarks :stride 64))\n"
    "  (bias (edge_logit_bias :cycle 0.1))\n"
    "  (permute_window :enabled true :window 32))\n";

std::string key_of(const std::string& text, int64_t T = 128, int64_t H = 4) {
  auto s = parse_spec(text, "k.wf");
  EXPECT_TRUE(s) << s.status().to_string();
  if (!s) return "";
  auto k = cache_key(*s, T, H);
  EXPECT_TRUE(k) << k.status().to_string();
  return k ? k->hex : "";
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  const size_t p = s.find(from);
  EXPECT_NE(p, std::string::npos) << from;
  if (p != std::string::npos) s.replace(p, from.size(), to);
  return s;
}

TEST(SpecCacheKey, CanonicalPayload) {
  auto s = parse_spec(kBase);
  ASSERT_TRUE(s);
  auto k = cache_key(*s, 128, 4);
  ASSERT_TRUE(k);
  EXPECT_EQ(k->payload,
            "{\"H\":4,\"T\":128,\"builder\":\"bna.topo/1\",\"graph\":{\"edge_disjoint\":true,\"include_self\":true,"
            "\"landmark_stride\":64,\"num_cycles\":2,\"permute_window\":{\"enabled\":true,\"half_width\":32},"
            "\"seed\":42,\"strategy\":\"random\",\"window\":64},\"schema\":\"bna-spec-cache-v2\"}");
  EXPECT_EQ(k->hex.size(), 64u);
  EXPECT_EQ(k->hex.find_first_not_of("0123456789abcdef"), std::string::npos);
  // Canonical: re-serializing the payload with sorted keys and no spaces gives the same bytes.
  EXPECT_EQ(nlohmann::json::parse(k->payload).dump(), k->payload);
}

TEST(SpecCacheKey, KnownSha256) {
  // Pinned: `printf '%s' PAYLOAD | sha256sum` (coreutils, independent of OpenSSL) on the payload
  // checked in CanonicalPayload. A change here means every existing artifact name changes.
  EXPECT_EQ(key_of(kBase), "79376677afc0838bbba1e3db94e510103fd7a855d3b56c3f5ff44aa555294bd8");
}

TEST(SpecCacheKey, StableAcrossCallsAndLayouts) {
  const std::string k = key_of(kBase);
  EXPECT_EQ(k, key_of(kBase));
  // Comments, whitespace, section order, legacy root name: same graph, same key.
  EXPECT_EQ(k, key_of(replace(kBase, "(highways", "; a comment\n  (highways")));
  EXPECT_EQ(k, key_of(replace(kBase, "(butterfly", "; header (with parens)\n(wayfinder")));
  EXPECT_EQ(k, key_of("(butterfly (permute_window :window 32 :enabled true) (highways (landmarks :stride 64))"
                      "(local (window :size 64)) (backbone (cycle :k 2 :seed 42 :type random)))"));
}

TEST(SpecCacheKey, IgnoresWhatDoesNotChangeTheGraph) {
  const std::string k = key_of(kBase);
  EXPECT_EQ(k, key_of(replace(kBase, "(bias (edge_logit_bias :cycle 0.1))", "")));            // biases
  EXPECT_EQ(k, key_of(replace(kBase, ":steps 2000", ":steps 5")));                           // schedule steps
  EXPECT_EQ(k, key_of(replace(kBase, "64 16", "64 8")));                                     // schedule end
  EXPECT_EQ(k, key_of(replace(kBase, "(butterfly", "(butterfly (degree 500)")));              // a bound
  EXPECT_EQ(k, key_of(replace(kBase, ":k 2))", ":k 2 :clusters 3 :coverage 0.2))")));         // unused params
  // A disabled permute window's size does not matter.
  const std::string off = replace(kBase, ":enabled true :window 32", ":enabled false :window 32");
  EXPECT_EQ(key_of(off), key_of(replace(kBase, ":enabled true :window 32", ":enabled false :window 8")));
}

TEST(SpecCacheKey, ChangesWithEveryGraphField) {
  const std::string k = key_of(kBase);
  const std::string variants[] = {
      replace(kBase, ":seed 42", ":seed 43"),
      replace(kBase, ":k 2", ":k 3"),
      replace(kBase, ":type random", ":type edge_disjoint"),
      replace(kBase, ":k 2))", ":k 2 :edge_disjoint false))"),
      replace(kBase, "64 16", "63 16"),
      replace(kBase, ":stride 64", ":stride none"),
      replace(kBase, ":window 32", ":window 31"),
      replace(kBase, ":enabled true", ":enabled false"),
  };
  for (const auto& v : variants) EXPECT_NE(k, key_of(v)) << v;
  EXPECT_NE(k, key_of(kBase, 129, 4));
  EXPECT_NE(k, key_of(kBase, 128, 5));
}

TEST(SpecCacheKey, RoutingAndStrategyParameters) {
  const std::string g = "(butterfly (backbone (cycle :type greedy :seed 1 :routing_dim 8)))";
  EXPECT_NE(key_of(g), key_of(replace(g, ":routing_dim 8", ":routing_dim 9")));
  EXPECT_NE(key_of(g), key_of(replace(g, ":seed 1", ":seed 2")));  // seeds the routing generator
  EXPECT_EQ(key_of(replace(g, ":seed 1", ":seed 2 :routing_seed 1")), key_of(g));
  const std::string rp = "(butterfly (backbone (cycle :type regular_partition :clusters 4)))";
  EXPECT_NE(key_of(rp), key_of(replace(rp, ":clusters 4", ":clusters 5")));
  const std::string cov = "(butterfly (backbone (cycle :type covering :k 4 :coverage 0.5)))";
  EXPECT_NE(key_of(cov), key_of(replace(cov, "0.5", "0.6")));
}

TEST(SpecCacheKey, RejectsBadSizes) {
  auto s = parse_spec(kBase);
  ASSERT_TRUE(s);
  EXPECT_FALSE(cache_key(*s, 0, 4));
  EXPECT_FALSE(cache_key(*s, 128, 0));
}

}  // namespace
}  // namespace bna::spec
