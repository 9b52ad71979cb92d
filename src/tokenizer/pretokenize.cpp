// Hand-written matchers for the pre-tokenizer regexes (see pretokenize.hpp). Each alternative is
// tried in the regex's order at the current position, reproducing the backtracking outcome:
//  * " ?X+"           : a space followed by X takes both; otherwise X+ from here.
//  * "\s+(?!\S)"      : the whitespace run, minus its last char when a non-space follows.
//  * "\s*[\r\n]+"     : the whitespace run up to and including its last CR/LF.
#include "tokenizer/pretokenize.hpp"

#include "bna/tokenizer.hpp"
#include "tokenizer/unicode.hpp"

namespace bna::tok {
namespace {

constexpr const char* kGpt2Re = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kCl1Re = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kCl3Re = R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

constexpr uint32_t kInvalid = 0xFFFFFFFFu;  // an invalid UTF-8 byte: an "other" character

struct Text {
  std::vector<uint32_t> cp;
  std::vector<size_t> off;  // byte offset of each code point; off[n] = size
};

Text decode_all(std::string_view s) {
  Text t;
  t.cp.reserve(s.size());
  t.off.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    uint32_t c;
    const int k = utf8_decode(s, i, &c);
    t.off.push_back(i);
    t.cp.push_back(k ? c : kInvalid);
    i += k ? k : 1;
  }
  t.off.push_back(s.size());
  return t;
}

inline bool L(uint32_t c) { return c != kInvalid && uni::is_letter(c); }
inline bool N(uint32_t c) { return c != kInvalid && uni::is_number(c); }
inline bool S(uint32_t c) { return c != kInvalid && uni::is_space(c); }
inline bool O(uint32_t c) { return !S(c) && !L(c) && !N(c); }
inline bool crlf(uint32_t c) { return c == '\r' || c == '\n'; }
inline uint32_t lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// 's 't 're 've 'm 'll 'd at i; returns the end or 0.
size_t contraction(const std::vector<uint32_t>& c, size_t i, bool icase) {
  const size_t n = c.size();
  if (c[i] != '\'' || i + 1 >= n) return 0;
  auto f = [&](uint32_t x) { return icase ? lower(x) : x; };
  const uint32_t a = f(c[i + 1]);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return i + 2;
  if (i + 2 < n) {
    const uint32_t b = f(c[i + 2]);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
  }
  return 0;
}

template <class Pred>
size_t run(const std::vector<uint32_t>& c, size_t i, Pred p) {
  while (i < c.size() && p(c[i])) ++i;
  return i;
}

// \s+(?!\S) then \s+, from a whitespace char at i.
size_t space_tail(const std::vector<uint32_t>& c, size_t i) {
  const size_t e = run(c, i, S);
  if (e == c.size() || e - i == 1) return e;
  return e - 1;
}

size_t match_gpt2(const std::vector<uint32_t>& c, size_t i) {
  if (size_t e = contraction(c, i, false)) return e;
  const size_t j = (c[i] == ' ' && i + 1 < c.size()) ? i + 1 : i;
  for (auto pred : {L, N, O}) {
    if (pred(c[j])) return run(c, j, pred);
    if (j != i && pred(c[i])) return run(c, i, pred);
  }
  return space_tail(c, i);
}

size_t match_cl100k(const std::vector<uint32_t>& c, size_t i, size_t max_digits) {
  const size_t n = c.size();
  if (size_t e = contraction(c, i, true)) return e;
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!crlf(c[i]) && !L(c[i]) && !N(c[i]) && i + 1 < n && L(c[i + 1])) return run(c, i + 1, L);
  if (L(c[i])) return run(c, i, L);
  // \p{N}{1,max}
  if (N(c[i])) {
    size_t e = i;
    while (e < n && e - i < max_digits && N(c[e])) ++e;
    return e;
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t j = (c[i] == ' ' && i + 1 < n && O(c[i + 1])) ? i + 1 : i;
  if (O(c[j])) return run(c, run(c, j, O), crlf);
  // whitespace from here on
  const size_t e = run(c, i, S);
  for (size_t p = e; p > i; --p) {
    if (crlf(c[p - 1])) return p;  // \s*[\r\n]+
  }
  return space_tail(c, i);
}

}  // namespace

const char* pretokenizer_name(PreTokenizer p) {
  switch (p) {
    case PreTokenizer::kNone: return "none";
    case PreTokenizer::kGpt2: return "gpt2";
    case PreTokenizer::kCl100k1: return "cl100k,digits=1";
    case PreTokenizer::kCl100k3: return "cl100k,digits=3";
  }
  return "?";
}

Expected<PreTokenizer> recognise_pattern(const std::string& re) {
  if (re == kGpt2Re) return PreTokenizer::kGpt2;
  if (re == kCl1Re) return PreTokenizer::kCl100k1;
  if (re == kCl3Re) return PreTokenizer::kCl100k3;
  return unimplemented("tokenizer: Split regex '" + re.substr(0, 200) +
                       "' is not one of the supported patterns (GPT-2; Llama 3 / GLM-4 / Qwen2 cl100k-style)");
}

void pretokenize(PreTokenizer p, std::string_view text, std::vector<std::pair<size_t, size_t>>& pieces) {
  if (text.empty()) return;
  if (p == PreTokenizer::kNone) {
    pieces.emplace_back(0, text.size());
    return;
  }
  const Text t = decode_all(text);
  const size_t n = t.cp.size();
  for (size_t i = 0; i < n;) {
    size_t e = p == PreTokenizer::kGpt2 ? match_gpt2(t.cp, i)
                                        : match_cl100k(t.cp, i, p == PreTokenizer::kCl100k1 ? 1 : 3);
    if (e <= i) e = i + 1;  // cannot happen (every char is covered); never loop forever
    pieces.emplace_back(t.off[i], t.off[e]);
    i = e;
  }
}

}  // namespace bna::tok
