// Tokenizers: one interface for the byte tokenizer (256 ids), a character tokenizer built from a
// corpus, and Hugging Face tokenizer.json files (byte-level BPE: GPT-2, Qwen2/2.5/3, Llama 3, GLM-4).
//
// Decisions a reader must know:
// * Ids are int32. decode() never fails: bytes that do not form valid UTF-8 are replaced by U+FFFD
//   (one per maximal invalid sequence), as the reference implementation's lossy decode does.
// * encode() is total. try_encode() is the checked form: it reports what encode() had to paper over
//   (a character unknown to the char tokenizer; text the loaded normalizer cannot handle exactly).
// * tokenizer.json pre-tokenizer regexes are not run by a regex engine. The known patterns (GPT-2's,
//   and the cl100k-style pattern of Llama 3 / Qwen2 / GLM-4 with its digit grouping) are recognised
//   by their text and run by hand-written matchers over a Unicode category table (see
//   src/tokenizer/unicode.hpp for its version); any other pattern is rejected at load time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "bna/status.hpp"

namespace bna::tok {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text (UTF-8) to ids, special/added tokens recognised in the text. No BOS/EOS is added.
  virtual std::vector<int32_t> encode(std::string_view text) const = 0;
  // The checked form of encode(); the default returns encode(text).
  virtual Expected<std::vector<int32_t>> try_encode(std::string_view text) const { return encode(text); }
  // Ids to text; ids out of range are skipped. Special tokens are written as their text.
  virtual std::string decode(std::span<const int32_t> ids) const = 0;
  // One past the largest id (added tokens included).
  virtual int64_t vocab_size() const = 0;
  // The id of a token given in its vocabulary form (e.g. "<|endoftext|>", or "Ġthe" for byte-level BPE).
  virtual std::optional<int32_t> token_id(std::string_view token) const = 0;
  // The vocabulary form of an id; nullopt when out of range or unused.
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  // Beginning/end-of-sequence ids where the tokenizer defines them (tokenizer.json: from the
  // post-processor's template / well-known special token names); nullopt otherwise.
  virtual std::optional<int32_t> bos_id() const { return std::nullopt; }
  virtual std::optional<int32_t> eos_id() const { return std::nullopt; }
  // Short description: "byte", "char", "bpe(gpt2)", "bpe(cl100k,digits=3)", ...
  virtual std::string kind() const = 0;
};

// Bytes as ids 0..255; decode of a byte sequence that is not UTF-8 is lossy (U+FFFD).
std::unique_ptr<Tokenizer> byte_tokenizer();

// One id per distinct Unicode code point of `corpus`, ids in code-point order. encode() skips code
// points not in the corpus; try_encode() returns kInvalidArgument naming the first one and its byte
// offset. Errors: empty corpus, invalid UTF-8 (naming the byte offset).
Expected<std::unique_ptr<Tokenizer>> char_tokenizer(std::string_view corpus);

// A Hugging Face tokenizer.json with model.type "BPE" (byte-level: a ByteLevel pre-tokenizer or
// decoder). Supported: merges as "a b" strings or ["a", "b"] arrays, ignore_merges, added and special
// tokens (split on first, leftmost-longest, with lstrip/rstrip), normalizers null / NFC (full UAX #15
// composition, src/tokenizer/unicode.hpp), pre-tokenizers ByteLevel(use_regex) and Sequence[Split(known regex, Isolated),
// ByteLevel]. Errors: kNotFound / kIoError for the file, kCorrupt for bad JSON or an inconsistent
// vocabulary (a merge whose parts or result are not in the vocabulary, duplicate ids), kUnimplemented
// naming the model type, normalizer or pre-tokenizer pattern that is not supported (listing those that
// are).
Expected<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path);
Expected<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view json_text);

// UTF-8 helpers shared by the tokenizers (exposed for tests).
// Decodes the code point at s[i]; returns its byte length, or 0 for an invalid sequence.
int utf8_decode(std::string_view s, size_t i, uint32_t* cp);
void utf8_append(std::string& out, uint32_t cp);
// Replaces each maximal invalid sequence by U+FFFD.
std::string utf8_lossy(std::string_view bytes);

}  // namespace bna::tok
