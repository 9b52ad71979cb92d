// Training data for the reference GPT: token corpora (in memory or memory-mapped .bin token files),
// seeded random LM windows, and synthetic long-range tasks (passkey retrieval, multi-query associative
// recall, copy) with exact-match scoring.
//
// Decisions a reader must know:
//   * Every batch is a pure function of (seed, index): batch i draws from Rng(mix_seed(seed, i)). The
//     data order therefore needs no saved state, and a resumed run sees exactly the batches the
//     uninterrupted run would have seen.
//   * LM windows start uniformly in [0, N - T - 1] inclusive, so the last token is a target too (the
//     original's exclusive bound never used it).
//   * Task sequences score only their answer tokens: targets are -1 everywhere else. An example is an
//     exact match when the argmax at every answer position equals the answer under teacher forcing,
//     which is the same as greedy decoding producing the whole answer.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bna/status.hpp"

namespace bna::data {

// ---- token corpora ------------------------------------------------------------------------------

// A flat read-only token sequence (ids >= 0).
class TokenSource {
 public:
  virtual ~TokenSource() = default;
  virtual int64_t size() const = 0;
  virtual int32_t at(int64_t i) const = 0;
  // Declared vocabulary size (0 = unknown) and max id + 1 over the tokens.
  virtual int64_t vocab_size() const = 0;
};

// In-memory tokens. vocab_size = max id + 1 (or the given value when larger).
std::unique_ptr<TokenSource> memory_tokens(std::vector<int32_t> tokens, int64_t vocab_size = 0);

// Token file (.bin, docs/formats.md "Token files"): 32-byte little-endian header
//   magic "BNATOK\0\1" (8 bytes), u32 token_bytes (2 | 4), u32 reserved 0, u64 n_tokens, u64 vocab_size
// then n_tokens little-endian uint16 / uint32 ids. Written atomically; token_bytes = 2 requires every
// id < 65536 (error names the first one that does not fit).
Status write_token_file(const std::string& path, std::span<const int32_t> tokens, int64_t vocab_size,
                        int token_bytes);
// Memory-maps a token file. Errors: kNotFound, kIoError, kCorrupt (bad magic, token_bytes, a size that
// disagrees with the header, an id >= vocab_size found by the optional full scan).
Expected<std::unique_ptr<TokenSource>> open_token_file(const std::string& path, bool validate_ids = true);

// Splits tokens into train (the first 1 - val_fraction) and validation (the last val_fraction), both
// non-empty; errors name the token count when either would be empty.
struct Split {
  std::vector<int32_t> train, val;
};
Expected<Split> split_tokens(std::span<const int32_t> tokens, double val_fraction);

// One (micro-)batch: x, y [B, T] row-major; y = -1 where nothing is scored.
struct Batch {
  int64_t B = 0, T = 0;
  std::vector<int32_t> x, y;
};

// Random LM windows: x = tokens[s : s+T], y = tokens[s+1 : s+T+1]. Errors: size() < T + 1.
Status lm_batch(const TokenSource& src, int64_t B, int64_t T, uint64_t seed, uint64_t index, Batch& out);

// ---- synthetic long-range tasks -----------------------------------------------------------------

enum class TaskKind { kPasskey, kRecall, kCopy };
const char* task_name(TaskKind k);  // "passkey", "recall", "copy"
Expected<TaskKind> parse_task(std::string_view s);

// Task vocabulary (kTaskVocab ids): 0..7 filler noise, 8 KEY marker, 9 QUERY marker, 10 COPY marker,
// 16..25 digits, 32..63 keys, 64..95 values; copy draws symbols from 32..95.
inline constexpr int64_t kTaskVocab = 96;

struct TaskOptions {
  TaskKind kind = TaskKind::kPasskey;
  int64_t T = 256;
  int64_t digits = 5;   // passkey length
  int64_t pairs = 8;    // recall: key-value pairs stated at the start
  int64_t queries = 4;  // recall: pairs asked for at the end
  int64_t copy_len = 16;
  // A distance curriculum; 0 = the full range. passkey: > 0 puts the KEY token at most this many
  // positions before QUERY (>= digits + 1 so the key fits). recall: > 0 puts the first pair at most
  // this many positions before the first QUERY (>= 2 * pairs so the pairs fit), after noise.
  int64_t max_distance = 0;
};
// Errors: T too short for the layout (named with the minimum), counts < 1, pairs > 32, queries > pairs,
// a max_distance < 0, in [1, digits] (passkey), in [1, 2 * pairs - 1] (recall) or != 0 (copy).
Status validate_task(const TaskOptions& t);

// Layouts (filler is uniform noise from ids 0..7):
//   passkey  filler.. KEY d1..dn filler.. QUERY d1..dn  (the KEY block at a uniform position in the
//            first half-ish of the sequence; answers are the final digits)
//   recall   k1 v1 .. kP vP  filler..  (QUERY kq vq) x queries   (answers: each vq; with max_distance,
//            the pairs start at a uniform position at most max_distance before the first QUERY)
//   copy     s1..sL  filler..  COPY s1..sL                        (answers: the repeated s)
Status task_batch(const TaskOptions& t, int64_t B, uint64_t seed, uint64_t index, Batch& out);

// Scores logits [B, T, V] (or probabilities: argmax is the same) against the batch's targets.
struct TaskScore {
  int64_t examples = 0, exact = 0;  // whole-answer exact matches
  int64_t tokens = 0, correct = 0;  // answer tokens and those predicted right
};
TaskScore score_batch(const Batch& b, const float* logits, int64_t V);

}  // namespace bna::data
