// UTF-8 helpers, the byte tokenizer (ids = bytes) and the character tokenizer (ids = sorted distinct
// code points of a corpus).
#include <algorithm>
#include <cstdio>
#include <map>
#include <vector>

#include "bna/tokenizer.hpp"

namespace bna::tok {

int utf8_decode(std::string_view s, size_t i, uint32_t* cp) {
  const size_t n = s.size();
  if (i >= n) return 0;
  const auto b0 = static_cast<uint8_t>(s[i]);
  if (b0 < 0x80) { *cp = b0; return 1; }
  int len;
  uint32_t c, min;
  if ((b0 & 0xE0) == 0xC0) { len = 2; c = b0 & 0x1F; min = 0x80; }
  else if ((b0 & 0xF0) == 0xE0) { len = 3; c = b0 & 0x0F; min = 0x800; }
  else if ((b0 & 0xF8) == 0xF0) { len = 4; c = b0 & 0x07; min = 0x10000; }
  else return 0;
  if (i + len > n) return 0;
  for (int k = 1; k < len; ++k) {
    const auto b = static_cast<uint8_t>(s[i + k]);
    if ((b & 0xC0) != 0x80) return 0;
    c = (c << 6) | (b & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

void utf8_append(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string utf8_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  bool in_bad = false;
  while (i < s.size()) {
    uint32_t cp;
    const int k = utf8_decode(s, i, &cp);
    if (k > 0) {
      out.append(s.substr(i, k));
      i += k;
      in_bad = false;
    } else {
      // Skip a maximal prefix of a sequence that could have been valid (the lead byte and the
      // continuation bytes that follow it), as Rust's from_utf8_lossy does.
      const auto b0 = static_cast<uint8_t>(s[i]);
      size_t j = i + 1;
      const int want = (b0 & 0xE0) == 0xC0 ? 2 : (b0 & 0xF0) == 0xE0 ? 3 : (b0 & 0xF8) == 0xF0 ? 4 : 1;
      while (j < s.size() && j < i + want && (static_cast<uint8_t>(s[j]) & 0xC0) == 0x80) ++j;
      out += "\xEF\xBF\xBD";
      i = j;
      in_bad = true;
    }
  }
  (void)in_bad;
  return out;
}

namespace {

class ByteTokenizer final : public Tokenizer {
 public:
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> r(text.size());
    for (size_t i = 0; i < text.size(); ++i) r[i] = static_cast<uint8_t>(text[i]);
    return r;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string s;
    for (int32_t id : ids) if (id >= 0 && id < 256) s += static_cast<char>(id);
    return utf8_lossy(s);
  }
  int64_t vocab_size() const override { return 256; }
  std::optional<int32_t> token_id(std::string_view t) const override {
    if (t.size() == 1) return static_cast<uint8_t>(t[0]);
    return std::nullopt;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || id >= 256) return std::nullopt;
    return std::string(1, static_cast<char>(id));
  }
  std::string kind() const override { return "byte"; }
};

class CharTokenizer final : public Tokenizer {
 public:
  explicit CharTokenizer(std::vector<uint32_t> cps) : cps_(std::move(cps)) {
    for (size_t i = 0; i < cps_.size(); ++i) id_[cps_[i]] = static_cast<int32_t>(i);
  }
  Expected<std::vector<int32_t>> try_encode(std::string_view text) const override {
    std::vector<int32_t> r;
    for (size_t i = 0; i < text.size();) {
      uint32_t cp;
      const int k = utf8_decode(text, i, &cp);
      if (k == 0) return invalid_argument("char tokenizer: invalid UTF-8 at byte " + std::to_string(i));
      auto it = id_.find(cp);
      if (it == id_.end()) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "U+%04X", cp);
        return invalid_argument(std::string("char tokenizer: character ") + buf + " at byte " + std::to_string(i) +
                                " is not in the vocabulary");
      }
      r.push_back(it->second);
      i += k;
    }
    return r;
  }
  std::vector<int32_t> encode(std::string_view text) const override {
    std::vector<int32_t> r;
    for (size_t i = 0; i < text.size();) {
      uint32_t cp;
      const int k = utf8_decode(text, i, &cp);
      if (k == 0) { ++i; continue; }
      auto it = id_.find(cp);
      if (it != id_.end()) r.push_back(it->second);
      i += k;
    }
    return r;
  }
  std::string decode(std::span<const int32_t> ids) const override {
    std::string s;
    for (int32_t id : ids) if (id >= 0 && static_cast<size_t>(id) < cps_.size()) utf8_append(s, cps_[id]);
    return s;
  }
  int64_t vocab_size() const override { return static_cast<int64_t>(cps_.size()); }
  std::optional<int32_t> token_id(std::string_view t) const override {
    uint32_t cp;
    const int k = utf8_decode(t, 0, &cp);
    if (k == 0 || static_cast<size_t>(k) != t.size()) return std::nullopt;
    auto it = id_.find(cp);
    if (it == id_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || static_cast<size_t>(id) >= cps_.size()) return std::nullopt;
    std::string s;
    utf8_append(s, cps_[id]);
    return s;
  }
  std::string kind() const override { return "char"; }

 private:
  std::vector<uint32_t> cps_;
  std::map<uint32_t, int32_t> id_;
};

}  // namespace

std::unique_ptr<Tokenizer> byte_tokenizer() { return std::make_unique<ByteTokenizer>(); }

Expected<std::unique_ptr<Tokenizer>> char_tokenizer(std::string_view corpus) {
  if (corpus.empty()) return invalid_argument("char tokenizer: empty corpus, expected at least one character");
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < corpus.size();) {
    uint32_t cp;
    const int k = utf8_decode(corpus, i, &cp);
    if (k == 0) return invalid_argument("char tokenizer: corpus is not UTF-8 at byte " + std::to_string(i));
    cps.push_back(cp);
    i += k;
  }
  std::sort(cps.begin(), cps.end());
  cps.erase(std::unique(cps.begin(), cps.end()), cps.end());
  return std::unique_ptr<Tokenizer>(std::make_unique<CharTokenizer>(std::move(cps)));
}

}  // namespace bna::tok
