// Tokenizer tests: byte and char tokenizers, UTF-8 helpers, and exact agreement with the `tokenizers`
// library (ids and decoded text) on the hard-string corpus of tests/fixtures/hf/tokenizer_cases.json
// for four byte-level BPE tokenizers (GPT-2 regex with "a b" merges and an lstrip token, Qwen2 regex
// with NFC and added tokens, Llama 3 regex with ignore_merges and a BOS template, GLM-4 specials).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "bna/io.hpp"
#include "bna/tokenizer.hpp"

namespace bna::tok {
namespace {

const std::string kDir = std::string(BNA_FIXTURES_DIR) + "/hf";

TEST(Tokenizer, ByteRoundTrip) {
  auto t = byte_tokenizer();
  const std::string s = "h\xC3\xA9llo \xF0\x9F\x98\x80";
  auto ids = t->encode(s);
  ASSERT_EQ(ids.size(), s.size());
  EXPECT_EQ(ids[1], 0xC3);
  EXPECT_EQ(t->decode(ids), s);
  EXPECT_EQ(t->vocab_size(), 256);
  std::vector<int32_t> bad = {0xC3};
  EXPECT_EQ(t->decode(bad), "\xEF\xBF\xBD");
}

TEST(Tokenizer, CharTokenizer) {
  auto t = char_tokenizer("hello wörld");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ((*t)->vocab_size(), 9);  // space d e h l o r w ö
  auto ids = (*t)->encode("world");
  EXPECT_EQ((*t)->decode(ids), "world");
  EXPECT_EQ((*t)->token_id(" ").value(), 0);
  EXPECT_EQ((*t)->token_id("\xC3\xB6").value(), 8);
  auto bad = (*t)->try_encode("hex");
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.status().message().find("U+0078"), std::string::npos);
  EXPECT_NE(bad.status().message().find("byte 2"), std::string::npos);
  EXPECT_EQ((*t)->encode("hex").size(), 2u);  // unknown chars are skipped
  EXPECT_FALSE(char_tokenizer("").has_value());
  EXPECT_FALSE(char_tokenizer("ab\xFF").has_value());
}

TEST(Tokenizer, Utf8Lossy) {
  EXPECT_EQ(utf8_lossy("a\xE2\x82" "b"), "a\xEF\xBF\xBD" "b");
  EXPECT_EQ(utf8_lossy("\xFF\xFE"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(utf8_lossy("\xED\xA0\x80"), "\xEF\xBF\xBD");  // surrogate: invalid
}

TEST(Tokenizer, MatchesHuggingFaceTokenizers) {
  auto text = io::read_file(kDir + "/tokenizer_cases.json");
  ASSERT_TRUE(text.has_value()) << text.status().to_string();
  auto j = nlohmann::json::parse(*text);
  const auto& strings = j["strings"];
  int checked = 0;
  for (auto& [name, c] : j["tokenizers"].items()) {
    auto tk = load_tokenizer_json(kDir + "/tokenizers/" + c["file"].get<std::string>());
    ASSERT_TRUE(tk.has_value()) << name << ": " << tk.status().to_string();
    for (size_t i = 0; i < strings.size(); ++i) {
      const std::string s = strings[i].get<std::string>();
      const auto want = c["ids"][i].get<std::vector<int32_t>>();
      auto got = (*tk)->try_encode(s);  // never refused: NFC (qwen2) is applied exactly
      ASSERT_TRUE(got.has_value()) << name << " string " << i << ": " << got.status().to_string();
      EXPECT_EQ(*got, want) << name << " (" << (*tk)->kind() << ") string " << i << ": '" << s << "'";
      EXPECT_EQ((*tk)->encode(s), want) << name << " string " << i;
      EXPECT_EQ((*tk)->decode(want), c["decoded"][i].get<std::string>()) << name << " decode of string " << i;
      ++checked;
    }
  }
  EXPECT_GE(checked, 100);
}

TEST(Tokenizer, SpecialIds) {
  auto l = load_tokenizer_json(kDir + "/tokenizers/llama3.json");
  ASSERT_TRUE(l.has_value());
  ASSERT_TRUE((*l)->bos_id().has_value());
  EXPECT_EQ(*(*l)->bos_id(), *(*l)->token_id("<|begin_of_text|>"));
  auto g = load_tokenizer_json(kDir + "/tokenizers/gpt2.json");
  ASSERT_TRUE(g.has_value());
  EXPECT_EQ(*(*g)->eos_id(), *(*g)->token_id("<|endoftext|>"));
  EXPECT_EQ((*g)->kind(), "bpe(gpt2)");
}

TEST(Tokenizer, BadFiles) {
  EXPECT_EQ(load_tokenizer_json(kDir + "/nope.json").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(parse_tokenizer_json("{").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"Unigram","vocab":[]}})").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":0},"merges":["a b"]},"decoder":{"type":"ByteLevel"}})")
                .status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":"x"}}})").status().code(), StatusCode::kCorrupt);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":0}},"pre_tokenizer":{"type":"Split",)"
                                 R"("pattern":{"Regex":"\\w+"},"behavior":"Isolated"}})").status().code(),
            StatusCode::kUnimplemented);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":0}},"pre_tokenizer":{"type":7}})").status().code(),
            StatusCode::kCorrupt);
  EXPECT_EQ(parse_tokenizer_json(R"({"model":{"type":"BPE","vocab":{"a":0}}})").status().code(),
            StatusCode::kUnimplemented);  // not byte-level
}

}  // namespace
}  // namespace bna::tok
