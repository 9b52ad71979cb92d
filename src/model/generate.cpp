// Sampling (temperature, top-k, top-p) and generation with or without the KV cache.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "bna/model.hpp"

namespace bna::model {

int32_t sample_token(const float* logits, int64_t V, const SampleOptions& o, Rng& rng) {
  if (o.temperature <= 0.0f) return static_cast<int32_t>(std::max_element(logits, logits + V) - logits);
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  std::stable_sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  int64_t keep = V;
  if (o.top_k > 0 && o.top_k < V) {
    keep = o.top_k;
    while (keep < V && logits[ids[keep]] == logits[ids[keep - 1]]) ++keep;  // ties with the k-th stay
  }
  const double mx = logits[ids[0]];
  std::vector<double> p(static_cast<size_t>(keep));
  double sum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    p[i] = std::exp((static_cast<double>(logits[ids[i]]) - mx) / o.temperature);
    sum += p[i];
  }
  if (o.top_p < 1.0f) {
    double cum = 0;
    int64_t n = 0;
    while (n < keep) {
      cum += p[n] / sum;
      ++n;
      if (cum >= o.top_p) break;
    }
    keep = std::max<int64_t>(1, n);
    sum = 0;
    for (int64_t i = 0; i < keep; ++i) sum += p[i];
  }
  const double u = rng.uniform01() * sum;
  double cum = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cum += p[i];
    if (u < cum) return ids[i];
  }
  return ids[keep - 1];
}

Expected<std::vector<int32_t>> generate(Gpt& m, std::span<const int32_t> prompt, int64_t max_new,
                                        const SampleOptions& o, bool use_cache) {
  const GptConfig& c = m.config();
  if (prompt.empty()) return invalid_argument("generate: empty prompt (give at least one token)");
  if (max_new < 0) return invalid_argument("generate: max_new=" + std::to_string(max_new) + ", expected >= 0");
  const int64_t total = static_cast<int64_t>(prompt.size()) + max_new;
  if (total > c.seq_len)
    return out_of_range("generate: prompt (" + std::to_string(prompt.size()) + " tokens) + max_new (" +
                        std::to_string(max_new) + ") = " + std::to_string(total) + " exceeds the model's seq_len=" +
                        std::to_string(c.seq_len));
  std::vector<int32_t> seq(prompt.begin(), prompt.end());
  Rng rng(o.seed);
  std::vector<float> lg(static_cast<size_t>(c.vocab_size));
  Gpt::KvCache cache;
  if (use_cache) cache = m.new_cache();
  for (int64_t s = 0; s < max_new; ++s) {
    if (use_cache) {
      const int64_t have = cache.length, n = static_cast<int64_t>(seq.size()) - have;
      BNA_RETURN_IF_ERROR(m.decode(cache, seq.data() + have, n, lg.data()));
    } else {
      const int64_t T = static_cast<int64_t>(seq.size());
      BNA_RETURN_IF_ERROR(m.forward(seq.data(), nullptr, 1, T).status());
      std::copy(m.logits() + (T - 1) * c.vocab_size, m.logits() + T * c.vocab_size, lg.begin());
    }
    seq.push_back(sample_token(lg.data(), c.vocab_size, o, rng));
  }
  return seq;
}

}  // namespace bna::model
