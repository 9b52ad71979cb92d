// Pre-tokenizer matchers: hand-written equivalents of the regexes Hugging Face byte-level tokenizers
// use (the `tokenizers` library runs them with Oniguruma; leftmost match, alternatives in order,
// greedy quantifiers with backtracking). Each matcher returns the end of the match starting at a
// position; the text is split into consecutive matches (Split "Isolated": every character is covered
// by these patterns, so there are no gaps).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bna/status.hpp"

namespace bna::tok {

enum class PreTokenizer {
  kNone,      // the whole segment is one word
  kGpt2,      // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kCl100k1,   // (?i:'s|...|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+  (Qwen2)
  kCl100k3,   // the same with \p{N}{1,3} (Llama 3, GLM-4)
};
const char* pretokenizer_name(PreTokenizer p);

// Maps a Split regex from tokenizer.json to a matcher. Errors: kUnimplemented quoting the pattern.
Expected<PreTokenizer> recognise_pattern(const std::string& regex);

// Appends the byte ranges [begin, end) of the pieces of `text` (invalid UTF-8 bytes count as
// one-byte "other" characters).
void pretokenize(PreTokenizer p, std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces);

}  // namespace bna::tok
