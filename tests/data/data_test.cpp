// Token files (round trip, corrupt headers, uint16 overflow), splits, LM windows (determinism, the
// last token reachable), and the synthetic tasks (layout, determinism, scoring).
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "bna/data.hpp"

namespace bna::data {
namespace {

std::string tmp(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("bna_data_test_" + std::to_string(::getpid()) + "_" + name)).string();
}

TEST(TokenFile, RoundTripBothWidths) {
  std::vector<int32_t> t = {0, 5, 65535, 3, 7};
  for (int bytes : {2, 4}) {
    const std::string p = tmp("rt" + std::to_string(bytes) + ".bin");
    ASSERT_TRUE(write_token_file(p, t, 70000, bytes).is_ok());
    auto src = open_token_file(p);
    ASSERT_TRUE(src) << src.status().to_string();
    ASSERT_EQ((*src)->size(), 5);
    EXPECT_EQ((*src)->vocab_size(), 70000);
    for (int64_t i = 0; i < 5; ++i) EXPECT_EQ((*src)->at(i), t[i]);
    std::remove(p.c_str());
  }
}

TEST(TokenFile, BadInputIsAnError) {
  const std::string p = tmp("bad.bin");
  EXPECT_FALSE(write_token_file(p, std::vector<int32_t>{70000}, 0, 2).is_ok());  // does not fit uint16
  EXPECT_FALSE(write_token_file(p, std::vector<int32_t>{5}, 5, 4).is_ok());      // id >= vocab
  EXPECT_FALSE(write_token_file(p, std::vector<int32_t>{1}, 0, 3).is_ok());
  EXPECT_EQ(open_token_file(tmp("missing.bin")).status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(write_token_file(p, std::vector<int32_t>{1, 2, 3}, 4, 4).is_ok());
  std::filesystem::resize_file(p, 32 + 11);  // truncated data
  EXPECT_EQ(open_token_file(p).status().code(), StatusCode::kCorrupt);
  { std::ofstream f(p, std::ios::binary | std::ios::trunc); f << "NOTATOKENFILE-------------------------"; }
  EXPECT_EQ(open_token_file(p).status().code(), StatusCode::kCorrupt);
  std::remove(p.c_str());
}

TEST(Split, LastFractionIsValidation) {
  std::vector<int32_t> t(100);
  for (int i = 0; i < 100; ++i) t[i] = i;
  auto s = split_tokens(t, 0.1);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->train.size(), 90u);
  EXPECT_EQ(s->val.front(), 90);
  EXPECT_FALSE(split_tokens(std::vector<int32_t>{1, 2}, 0.1));  // empty validation
}

TEST(LmBatch, DeterministicAndReachesTheLastToken) {
  std::vector<int32_t> t = {0, 1, 2, 3, 4};
  auto src = memory_tokens(t);
  Batch a, b;
  ASSERT_TRUE(lm_batch(*src, 4, 3, 9, 7, a).is_ok());
  ASSERT_TRUE(lm_batch(*src, 4, 3, 9, 7, b).is_ok());
  EXPECT_EQ(a.x, b.x);
  bool last = false;
  for (uint64_t i = 0; i < 64 && !last; ++i) {
    ASSERT_TRUE(lm_batch(*src, 1, 3, 9, i, a).is_ok());
    EXPECT_EQ(a.y[0], a.x[0] + 1);
    last = a.y[2] == 4;
  }
  EXPECT_TRUE(last) << "start N-T-1 never drawn";
  EXPECT_FALSE(lm_batch(*src, 1, 5, 9, 0, a).is_ok());  // needs T + 1 tokens
}

TEST(Tasks, LayoutsAnswersAndDeterminism) {
  for (TaskKind k : {TaskKind::kPasskey, TaskKind::kRecall, TaskKind::kCopy}) {
    SCOPED_TRACE(task_name(k));
    TaskOptions o;
    o.kind = k; o.T = 67;
    Batch a, b, c;
    ASSERT_TRUE(task_batch(o, 3, 5, 2, a).is_ok());
    ASSERT_TRUE(task_batch(o, 3, 5, 2, b).is_ok());
    ASSERT_TRUE(task_batch(o, 1, 5, 2, c).is_ok());
    EXPECT_EQ(a.x, b.x);
    EXPECT_TRUE(std::equal(c.x.begin(), c.x.end(), a.x.begin()));  // example 0 independent of B
    const int64_t want = k == TaskKind::kPasskey ? o.digits : k == TaskKind::kRecall ? o.queries : o.copy_len;
    for (int64_t e = 0; e < 3; ++e) {
      int64_t n = 0;
      for (int64_t t = 0; t < o.T; ++t) {
        const int32_t y = a.y[e * o.T + t];
        ASSERT_LT(y, kTaskVocab);
        if (y < 0) continue;
        ++n;
        ASSERT_LT(t + 1, o.T);
        EXPECT_EQ(y, a.x[e * o.T + t + 1]);
      }
      EXPECT_EQ(n, want);
    }
    // The answer is stated earlier in the sequence (what makes the task long-range).
    if (k == TaskKind::kPasskey) {
      std::vector<int32_t> row(a.x.begin(), a.x.begin() + o.T);
      auto key = std::find(row.begin(), row.end(), 8);
      ASSERT_NE(key, row.end());
      EXPECT_TRUE(std::equal(key + 1, key + 1 + o.digits, row.end() - o.digits));
    }
  }
  // The distance curriculum: the KEY token at most max_distance before QUERY, over many examples
  // both near and at the limit; 0 keeps the whole range.
  TaskOptions cur;
  cur.T = 300;
  cur.max_distance = 40;
  Batch cb;
  ASSERT_TRUE(task_batch(cur, 64, 1, 3, cb).is_ok());
  int64_t far = 0;
  for (int64_t e = 0; e < 64; ++e) {
    std::vector<int32_t> row(cb.x.begin() + e * cur.T, cb.x.begin() + (e + 1) * cur.T);
    const int64_t key = std::find(row.begin(), row.end(), 8) - row.begin();
    const int64_t query = std::find(row.begin(), row.end(), 9) - row.begin();
    ASSERT_LT(key, query);
    EXPECT_LE(query - key, 40);
    EXPECT_GE(query - key, cur.digits + 1);
    far += query - key > 30;
  }
  EXPECT_GT(far, 0);
  cur.max_distance = 0;
  ASSERT_TRUE(task_batch(cur, 64, 1, 3, cb).is_ok());
  int64_t farther = 0;
  for (int64_t e = 0; e < 64; ++e) {
    std::vector<int32_t> row(cb.x.begin() + e * cur.T, cb.x.begin() + (e + 1) * cur.T);
    farther += (std::find(row.begin(), row.end(), 9) - std::find(row.begin(), row.end(), 8)) > 40;
  }
  EXPECT_GT(farther, 32);
  cur.max_distance = cur.digits;  // the key block would not fit
  EXPECT_FALSE(task_batch(cur, 1, 0, 0, cb).is_ok());
  // Recall with a distance curriculum: the first pair at most max_distance before the first QUERY,
  // after noise; 0 keeps the pairs at the start (the layout without a curriculum).
  TaskOptions rc;
  rc.kind = TaskKind::kRecall;
  rc.T = 300;
  rc.max_distance = 40;
  ASSERT_TRUE(task_batch(rc, 64, 2, 5, cb).is_ok());
  const int64_t q_first = rc.T - 3 * rc.queries;
  auto is_key = [](int32_t x) { return x >= 32 && x < 64; };
  int64_t moved = 0, near_limit = 0;
  for (int64_t e = 0; e < 64; ++e) {
    std::vector<int32_t> row(cb.x.begin() + e * rc.T, cb.x.begin() + (e + 1) * rc.T);
    const int64_t first = std::find_if(row.begin(), row.end(), is_key) - row.begin();
    ASSERT_EQ(row[static_cast<size_t>(q_first)], 9) << "the first QUERY";
    EXPECT_LE(q_first - first, 40);
    EXPECT_GE(q_first - first, 2 * rc.pairs);
    for (int64_t i = 0; i < first; ++i) EXPECT_LT(row[static_cast<size_t>(i)], 8) << "noise before the pairs";
    for (int64_t i = 0; i < rc.pairs; ++i) {
      EXPECT_TRUE(is_key(row[static_cast<size_t>(first + 2 * i)]));
      EXPECT_GE(row[static_cast<size_t>(first + 2 * i + 1)], 64);
    }
    // Every query asks one of the stated pairs and its answer is that pair's value.
    for (int64_t q = 0; q < rc.queries; ++q) {
      const int32_t k = row[static_cast<size_t>(q_first + 3 * q + 1)], v = row[static_cast<size_t>(q_first + 3 * q + 2)];
      bool found = false;
      for (int64_t i = 0; i < rc.pairs; ++i)
        found = found || (row[static_cast<size_t>(first + 2 * i)] == k && row[static_cast<size_t>(first + 2 * i + 1)] == v);
      EXPECT_TRUE(found) << "query " << q << " of example " << e;
      EXPECT_EQ(cb.y[static_cast<size_t>(e * rc.T + q_first + 3 * q + 1)], v);
    }
    moved += first > 0;
    near_limit += q_first - first > 30;
  }
  EXPECT_GT(moved, 32);
  EXPECT_GT(near_limit, 0);
  rc.max_distance = 0;
  ASSERT_TRUE(task_batch(rc, 8, 2, 5, cb).is_ok());
  for (int64_t e = 0; e < 8; ++e) EXPECT_TRUE(is_key(cb.x[static_cast<size_t>(e * rc.T)])) << "pairs start at 0";
  rc.max_distance = 2 * rc.pairs - 1;  // the pairs would not fit
  EXPECT_FALSE(task_batch(rc, 1, 0, 0, cb).is_ok());
  TaskOptions cp;
  cp.kind = TaskKind::kCopy;
  cp.max_distance = 50;  // copy has no curriculum: refused, not ignored
  const bna::Status cst = task_batch(cp, 1, 0, 0, cb);
  EXPECT_FALSE(cst.is_ok());
  EXPECT_NE(cst.message().find("max_distance=50"), std::string::npos) << cst.to_string();
  TaskOptions bad;
  bad.T = 5;
  Batch x;
  EXPECT_FALSE(task_batch(bad, 1, 0, 0, x).is_ok());
  bad.T = 100; bad.kind = TaskKind::kRecall; bad.queries = 9;
  EXPECT_FALSE(task_batch(bad, 1, 0, 0, x).is_ok());
  EXPECT_FALSE(parse_task("sort"));
}

TEST(Tasks, ScoreCountsExactAndTokenMatches) {
  TaskOptions o;
  o.T = 20; o.digits = 3;
  Batch b;
  ASSERT_TRUE(task_batch(o, 2, 1, 0, b).is_ok());
  std::vector<float> logits(2 * 20 * kTaskVocab, 0.0f);
  // Example 0: every answer right; example 1: one answer wrong.
  int wrong = 0;
  for (int64_t e = 0; e < 2; ++e)
    for (int64_t t = 0; t < 20; ++t) {
      const int32_t y = b.y[e * 20 + t];
      if (y < 0) continue;
      const int32_t pick = (e == 1 && wrong++ == 0) ? (y == 16 ? 17 : 16) : y;
      logits[(e * 20 + t) * kTaskVocab + pick] = 1.0f;
    }
  const TaskScore s = score_batch(b, logits.data(), kTaskVocab);
  EXPECT_EQ(s.examples, 2);
  EXPECT_EQ(s.exact, 1);
  EXPECT_EQ(s.tokens, 6);
  EXPECT_EQ(s.correct, 5);
}

}  // namespace
}  // namespace bna::data
