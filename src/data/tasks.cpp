// Synthetic long-range tasks: passkey retrieval, multi-query associative recall, copy. Example b of
// batch `index` draws from Rng(mix_seed(mix_seed(seed, index), b)), so an example does not depend on
// the batch size around it.
#include <algorithm>
#include <numeric>

#include "bna/data.hpp"
#include "bna/rng.hpp"

namespace bna::data {

namespace {
std::string S(int64_t v) { return std::to_string(v); }
constexpr int32_t kKey = 8, kQuery = 9, kCopy = 10, kDigit0 = 16, kKey0 = 32, kVal0 = 64;

void fill_noise(std::vector<int32_t>& s, Rng& r) {
  for (auto& t : s) t = static_cast<int32_t>(r.uniform_below(8));
}
}  // namespace

const char* task_name(TaskKind k) {
  switch (k) {
    case TaskKind::kPasskey: return "passkey";
    case TaskKind::kRecall: return "recall";
    case TaskKind::kCopy: return "copy";
  }
  return "unknown";
}

Expected<TaskKind> parse_task(std::string_view s) {
  if (s == "passkey") return TaskKind::kPasskey;
  if (s == "recall") return TaskKind::kRecall;
  if (s == "copy") return TaskKind::kCopy;
  return invalid_argument("task: '" + std::string(s) + "', expected passkey, recall or copy");
}

Status validate_task(const TaskOptions& t) {
  int64_t need = 0;
  switch (t.kind) {
    case TaskKind::kPasskey:
      if (t.digits < 1) return invalid_argument("passkey: digits=" + S(t.digits) + ", expected >= 1");
      if (t.max_distance < 0 || (t.max_distance > 0 && t.max_distance <= t.digits))
        return invalid_argument("passkey: max_distance=" + S(t.max_distance) + ", expected 0 (anywhere) or > digits=" +
                                S(t.digits));
      need = 2 * (t.digits + 1) + 1;
      break;
    case TaskKind::kRecall:
      if (t.pairs < 1 || t.pairs > 32) return invalid_argument("recall: pairs=" + S(t.pairs) + ", expected 1..32");
      if (t.queries < 1 || t.queries > t.pairs)
        return invalid_argument("recall: queries=" + S(t.queries) + ", expected 1..pairs=" + S(t.pairs));
      if (t.max_distance < 0 || (t.max_distance > 0 && t.max_distance < 2 * t.pairs))
        return invalid_argument("recall: max_distance=" + S(t.max_distance) + ", expected 0 (the full range) or >= 2*pairs=" +
                                S(2 * t.pairs));
      need = 2 * t.pairs + 3 * t.queries + 1;
      break;
    case TaskKind::kCopy:
      if (t.copy_len < 1) return invalid_argument("copy: copy_len=" + S(t.copy_len) + ", expected >= 1");
      if (t.max_distance != 0)
        return invalid_argument("copy: max_distance=" + S(t.max_distance) + ", expected 0 (copy has no distance curriculum)");
      need = 2 * t.copy_len + 2;
      break;
  }
  if (t.T < need)
    return invalid_argument(std::string(task_name(t.kind)) + ": T=" + S(t.T) + ", expected T >= " + S(need) + " for this layout");
  return Status::ok();
}

Status task_batch(const TaskOptions& t, int64_t B, uint64_t seed, uint64_t index, Batch& out) {
  BNA_RETURN_IF_ERROR(validate_task(t));
  if (B < 1) return invalid_argument("task batch: B=" + S(B) + ", expected >= 1");
  const int64_t T = t.T;
  out.B = B; out.T = T;
  out.x.assign(static_cast<size_t>(B * T), 0);
  out.y.assign(static_cast<size_t>(B * T), -1);
  const uint64_t batch_seed = mix_seed(seed, index);
  std::vector<int32_t> s(static_cast<size_t>(T));
  std::vector<char> answer(static_cast<size_t>(T));
  for (int64_t b = 0; b < B; ++b) {
    Rng r(mix_seed(batch_seed, static_cast<uint64_t>(b)));
    fill_noise(s, r);
    std::fill(answer.begin(), answer.end(), 0);
    switch (t.kind) {
      case TaskKind::kPasskey: {
        const int64_t n = t.digits, q0 = T - n - 1;  // QUERY at q0, answer digits after it
        std::vector<int32_t> key(static_cast<size_t>(n));
        for (auto& d : key) d = kDigit0 + static_cast<int32_t>(r.uniform_below(10));
        // KEY block in [lo, q0 - n - 1], i.e. before QUERY; with max_distance, q0 - p <= max_distance.
        const int64_t lo = t.max_distance > 0 ? std::max<int64_t>(0, q0 - t.max_distance) : 0;
        const int64_t p = lo + static_cast<int64_t>(r.uniform_below(static_cast<uint64_t>(q0 - n - 1 + 1 - lo)));
        s[p] = kKey;
        for (int64_t i = 0; i < n; ++i) s[p + 1 + i] = key[i];
        s[q0] = kQuery;
        for (int64_t i = 0; i < n; ++i) { s[q0 + 1 + i] = key[i]; answer[q0 + 1 + i] = 1; }
        break;
      }
      case TaskKind::kRecall: {
        std::vector<int32_t> keys(32);
        std::iota(keys.begin(), keys.end(), kKey0);
        r.shuffle(keys);
        const int64_t q_first = T - 3 * t.queries;
        // Pairs at [p0, p0 + 2P): p0 = 0, or with max_distance uniform in [q_first - max_distance, q_first - 2P].
        int64_t p0 = 0;
        if (t.max_distance > 0) {
          const int64_t lo = std::max<int64_t>(0, q_first - t.max_distance), hi = q_first - 2 * t.pairs;
          p0 = lo + static_cast<int64_t>(r.uniform_below(static_cast<uint64_t>(hi - lo + 1)));
        }
        std::vector<int32_t> vals(static_cast<size_t>(t.pairs));
        for (int64_t i = 0; i < t.pairs; ++i) {
          vals[i] = kVal0 + static_cast<int32_t>(r.uniform_below(32));
          s[p0 + 2 * i] = keys[i];
          s[p0 + 2 * i + 1] = vals[i];
        }
        std::vector<int32_t> order(static_cast<size_t>(t.pairs));
        std::iota(order.begin(), order.end(), 0);
        r.shuffle(order);
        for (int64_t q = 0; q < t.queries; ++q) {
          s[q_first + 3 * q] = kQuery;
          s[q_first + 3 * q + 1] = keys[order[q]];
          s[q_first + 3 * q + 2] = vals[order[q]];
          answer[q_first + 3 * q + 2] = 1;
        }
        break;
      }
      case TaskKind::kCopy: {
        const int64_t L = t.copy_len, c0 = T - L - 1;
        for (int64_t i = 0; i < L; ++i) s[i] = kKey0 + static_cast<int32_t>(r.uniform_below(64));
        s[c0] = kCopy;
        for (int64_t i = 0; i < L; ++i) { s[c0 + 1 + i] = s[i]; answer[c0 + 1 + i] = 1; }
        break;
      }
    }
    for (int64_t i = 0; i < T; ++i) {
      out.x[b * T + i] = s[i];
      if (i + 1 < T && answer[i + 1]) out.y[b * T + i] = s[i + 1];
    }
  }
  return Status::ok();
}

TaskScore score_batch(const Batch& b, const float* logits, int64_t V) {
  TaskScore sc;
  for (int64_t e = 0; e < b.B; ++e) {
    bool all = true, any = false;
    for (int64_t t = 0; t < b.T; ++t) {
      const int32_t y = b.y[e * b.T + t];
      if (y < 0) continue;
      any = true;
      const float* l = logits + (e * b.T + t) * V;
      const int64_t am = std::max_element(l, l + V) - l;
      ++sc.tokens;
      if (am == y) ++sc.correct;
      else all = false;
    }
    if (any) {
      ++sc.examples;
      sc.exact += all;
    }
  }
  return sc;
}

}  // namespace bna::data
