// Cache key: SHA-256 (OpenSSL EVP) of a canonical JSON payload (keys sorted at every level, no
// whitespace, ASCII). The payload is built from the NORMALIZED spec and holds only what changes the
// artifact: T, H, the builder version, strategy and the parameters that strategy reads, window,
// landmark stride and the permute window. Never dtype, paths, comments, degree (a check, not a
// parameter) or the training-time schedules. A routing file enters by the SHA-256 of its bytes.
#include <openssl/evp.h>

#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/spec.hpp"
#include "spec/internal.hpp"

namespace bna::spec {

std::string detail::sha256_hex(std::string_view bytes) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  BNA_ASSERT(ctx != nullptr);
  const bool ok = EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx, bytes.data(), bytes.size()) == 1 && EVP_DigestFinal_ex(ctx, md, &len) == 1;
  EVP_MD_CTX_free(ctx);
  BNA_ASSERT(ok && len == 32);
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(64);
  for (unsigned int i = 0; i < len; ++i) {
    out += hex[md[i] >> 4];
    out += hex[md[i] & 15];
  }
  return out;
}

Expected<CacheKey> cache_key(const GraphSpec& spec, int64_t T, int64_t H) {
  if (T < 1) return invalid_argument("spec: T=" + std::to_string(T) + ", expected T >= 1");
  if (H < 1) return invalid_argument("spec: H=" + std::to_string(H) + ", expected H >= 1");
  const GraphSpec s = normalize(spec);
  nlohmann::json g = {
      {"strategy", topo::strategy_name(s.strategy)},
      {"num_cycles", s.num_cycles},
      {"window", s.window_size},
      {"landmark_stride", s.landmark_stride},
      {"include_self", true},
      {"permute_window", {{"enabled", s.permute_window_enabled}, {"half_width", s.permute_window_size}}},
  };
  switch (s.strategy) {
    case topo::Strategy::kRandom:
      if (s.num_cycles > 1) g["edge_disjoint"] = s.edge_disjoint;
      break;
    case topo::Strategy::kRegularPartition: g["regular_num_clusters"] = s.regular_num_clusters; break;
    case topo::Strategy::kCovering: g["coverage_target"] = s.coverage_target; break;
    default: break;
  }
  if (topo::strategy_needs_routing(s.strategy)) {
    if (!s.routing.npy_path.empty()) {
      const std::string path = detail::resolve_path(s, s.routing.npy_path);
      auto bytes = io::read_file(path);
      if (!bytes) return Status(bytes.status().code(), "spec: routing file '" + path + "': " + bytes.status().message());
      g["routing"] = {{"kind", "npy"}, {"sha256", detail::sha256_hex(*bytes)}};
    } else {
      g["routing"] = {{"kind", "seeded"}, {"dim", s.routing.dim}, {"seed", s.routing.seed}};
    }
  } else {
    g["seed"] = s.seed;
  }
  const nlohmann::json payload = {
      {"schema", kCacheSchema}, {"builder", kBuilderVersion}, {"T", T}, {"H", H}, {"graph", g}};
  CacheKey key;
  key.payload = payload.dump(-1, ' ', /*ensure_ascii=*/true);
  key.hex = detail::sha256_hex(key.payload);
  return key;
}

}  // namespace bna::spec
