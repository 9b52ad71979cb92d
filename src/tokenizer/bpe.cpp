// Byte-level BPE from a Hugging Face tokenizer.json.
// Pipeline (as the `tokenizers` library): split the text on added/special tokens (leftmost-longest,
// lstrip/rstrip widen a match over adjacent whitespace); for each remaining segment: normalizer,
// pre-tokenizer (a hand-written matcher for the recognised regex, see pretokenize.cpp), map bytes to
// the byte-level alphabet, then BPE merges in rank order (lowest rank first, leftmost first on ties),
// with a priority queue and lazy invalidation so a long word costs O(n log n).
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <queue>
#include <unordered_map>

#include "bna/io.hpp"
#include "bna/tokenizer.hpp"
#include "tokenizer/pretokenize.hpp"
#include "tokenizer/unicode.hpp"

namespace bna::tok {
namespace {

using json = nlohmann::json;

// GPT-2's byte -> code point table: printable Latin-1 maps to itself, the rest to 256, 257, ...
struct ByteMap {
  uint32_t to_cp[256];
  std::unordered_map<uint32_t, uint8_t> to_byte;
  ByteMap() {
    int n = 0;
    for (int b = 0; b < 256; ++b) {
      const bool keep = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      to_cp[b] = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
      to_byte[to_cp[b]] = static_cast<uint8_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

struct AddedToken {
  std::string content;
  int32_t id = 0;
  bool special = false, lstrip = false, rstrip = false;
};

struct PairHash {
  size_t operator()(uint64_t k) const { return std::hash<uint64_t>()(k * 0x9E3779B97F4A7C15ull); }
};
inline uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

class BpeTokenizer final : public Tokenizer {
 public:
  std::unordered_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_tok_;  // "" = unused id
  std::unordered_map<uint64_t, std::pair<int32_t, int32_t>, PairHash> merges_;  // (a,b) -> (rank, new id)
  std::vector<AddedToken> added_;
  std::unordered_map<std::string, int32_t> added_by_content_;
  std::unordered_map<int32_t, size_t> added_by_id_;
  PreTokenizer pre_;
  bool nfc_ = false;
  bool ignore_merges_ = false;
  bool add_prefix_space_ = false;
  int32_t byte_ids_[256];
  std::optional<int32_t> bos_, eos_;

  // Total: every supported normalizer is applied exactly, so try_encode (the default) never fails.
  std::vector<int32_t> encode(std::string_view text) const override { return encode_impl(text); }

  std::string decode(std::span<const int32_t> ids) const override {
    const ByteMap& bm = byte_map();
    std::string bytes;
    for (int32_t id : ids) {
      if (id < 0 || static_cast<size_t>(id) >= id_to_tok_.size()) continue;
      const std::string& t = id_to_tok_[id];
      // Every char through the byte-level table; a token with a char outside it is taken verbatim.
      std::string mapped;
      bool ok = true;
      for (size_t i = 0; i < t.size();) {
        uint32_t cp;
        const int k = utf8_decode(t, i, &cp);
        auto it = k ? bm.to_byte.find(cp) : bm.to_byte.end();
        if (it == bm.to_byte.end()) { ok = false; break; }
        mapped += static_cast<char>(it->second);
        i += k;
      }
      bytes += ok ? mapped : t;
    }
    return utf8_lossy(bytes);
  }

  int64_t vocab_size() const override { return static_cast<int64_t>(id_to_tok_.size()); }
  std::optional<int32_t> token_id(std::string_view t) const override {
    const std::string s(t);
    if (auto it = added_by_content_.find(s); it != added_by_content_.end()) return it->second;
    if (auto it = vocab_.find(s); it != vocab_.end()) return it->second;
    return std::nullopt;
  }
  std::optional<std::string> id_to_token(int32_t id) const override {
    if (id < 0 || static_cast<size_t>(id) >= id_to_tok_.size() || id_to_tok_[id].empty()) return std::nullopt;
    return id_to_tok_[id];
  }
  std::optional<int32_t> bos_id() const override { return bos_; }
  std::optional<int32_t> eos_id() const override { return eos_; }
  std::string kind() const override { return std::string("bpe(") + pretokenizer_name(pre_) + ")"; }

 private:
  // Leftmost-longest added token at or after `from`; returns its index or -1, and its byte range.
  int find_added(std::string_view text, size_t from, size_t* beg, size_t* end) const {
    for (size_t i = from; i < text.size(); ++i) {
      int best = -1;
      size_t best_len = 0;
      for (size_t a = 0; a < added_.size(); ++a) {
        const std::string& c = added_[a].content;
        if (c.size() > best_len && text.compare(i, c.size(), c) == 0) { best = static_cast<int>(a); best_len = c.size(); }
      }
      if (best >= 0) { *beg = i; *end = i + best_len; return best; }
    }
    return -1;
  }

  static size_t ws_before(std::string_view s, size_t lo, size_t pos) {
    while (pos > lo) {
      // step back one code point
      size_t p = pos - 1;
      while (p > lo && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
      uint32_t cp;
      if (utf8_decode(s, p, &cp) == 0 || !uni::is_space(cp)) break;
      pos = p;
    }
    return pos;
  }
  static size_t ws_after(std::string_view s, size_t pos) {
    while (pos < s.size()) {
      uint32_t cp;
      const int k = utf8_decode(s, pos, &cp);
      if (k == 0 || !uni::is_space(cp)) break;
      pos += k;
    }
    return pos;
  }

  std::vector<int32_t> encode_impl(std::string_view text) const {
    std::vector<int32_t> out;
    size_t pos = 0;
    while (pos <= text.size()) {
      size_t b = 0, e = 0;
      const int a = added_.empty() ? -1 : find_added(text, pos, &b, &e);
      size_t seg_end = a < 0 ? text.size() : b;
      size_t next = a < 0 ? text.size() + 1 : e;
      if (a >= 0) {
        if (added_[a].lstrip) seg_end = ws_before(text, pos, b);
        if (added_[a].rstrip) next = ws_after(text, e);
      }
      encode_segment(text.substr(pos, seg_end - pos), out);
      if (a < 0) break;
      out.push_back(added_[a].id);
      pos = next;
    }
    return out;
  }

  void encode_segment(std::string_view seg, std::vector<int32_t>& out) const {
    if (seg.empty()) return;
    std::string normalized;
    if (nfc_ && !uni::is_nfc_safe(seg)) {  // NFC; most text has nothing NFC may change
      normalized = uni::nfc_utf8(seg);
      seg = normalized;
    }
    std::string buf;
    std::string_view s = seg;
    if (add_prefix_space_ && seg[0] != ' ') {
      buf.reserve(seg.size() + 1);
      buf += ' ';
      buf += seg;
      s = buf;
    }
    std::vector<std::pair<size_t, size_t>> pieces;
    pretokenize(pre_, s, pieces);
    const ByteMap& bm = byte_map();
    std::string mapped;
    for (auto [pb, pe] : pieces) {
      mapped.clear();
      for (size_t i = pb; i < pe; ++i) utf8_append(mapped, bm.to_cp[static_cast<uint8_t>(s[i])]);
      if (ignore_merges_) {
        if (auto it = vocab_.find(mapped); it != vocab_.end()) { out.push_back(it->second); continue; }
      }
      bpe_word(s.substr(pb, pe - pb), out);
    }
  }

  void bpe_word(std::string_view bytes, std::vector<int32_t>& out) const {
    const size_t n = bytes.size();
    std::vector<int32_t> ids;
    ids.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = byte_ids_[static_cast<uint8_t>(bytes[i])];
      if (id >= 0) ids.push_back(id);  // a byte missing from the vocabulary is dropped, as upstream
    }
    const size_t m = ids.size();
    if (m <= 1) { out.insert(out.end(), ids.begin(), ids.end()); return; }
    std::vector<int32_t> prev(m), next(m);
    std::vector<char> alive(m, 1);
    for (size_t i = 0; i < m; ++i) { prev[i] = static_cast<int32_t>(i) - 1; next[i] = i + 1 < m ? static_cast<int32_t>(i + 1) : -1; }
    struct Cand { int32_t rank, pos, left, right; };
    auto cmp = [](const Cand& a, const Cand& b) { return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos; };
    std::priority_queue<Cand, std::vector<Cand>, decltype(cmp)> q(cmp);
    auto push = [&](int32_t p) {
      if (p < 0 || next[p] < 0) return;
      auto it = merges_.find(pair_key(ids[p], ids[next[p]]));
      if (it != merges_.end()) q.push({it->second.first, p, ids[p], ids[next[p]]});
    };
    for (size_t i = 0; i + 1 < m; ++i) push(static_cast<int32_t>(i));
    while (!q.empty()) {
      const Cand c = q.top();
      q.pop();
      if (!alive[c.pos] || ids[c.pos] != c.left || next[c.pos] < 0 || ids[next[c.pos]] != c.right) continue;
      const int32_t r = next[c.pos];
      ids[c.pos] = merges_.at(pair_key(c.left, c.right)).second;
      alive[r] = 0;
      next[c.pos] = next[r];
      if (next[r] >= 0) prev[next[r]] = c.pos;
      push(prev[c.pos]);
      push(c.pos);
    }
    for (int32_t i = 0; i >= 0; i = next[i]) out.push_back(ids[i]);
  }
};

Status parse_pretokenizer(const json& p, BpeTokenizer& t, bool* byte_level) {
  if (p.is_null()) return Status::ok();
  if (!p.is_object()) return corrupt("tokenizer: pre-tokenizer " + p.dump() + " is not an object");
  const std::string type = p.value("type", "");
  if (type == "ByteLevel") {
    *byte_level = true;
    t.add_prefix_space_ = p.value("add_prefix_space", false);
    if (p.value("use_regex", true)) t.pre_ = PreTokenizer::kGpt2;
    return Status::ok();
  }
  if (type == "Split") {
    const json& pat = p.value("pattern", json::object());
    if (!pat.is_object() || !pat.contains("Regex") || !pat["Regex"].is_string()) {
      return unimplemented("tokenizer: Split pre-tokenizer without a Regex pattern is not supported");
    }
    const std::string behavior = p.value("behavior", "");
    if (behavior != "Isolated" || p.value("invert", false)) {
      return unimplemented("tokenizer: Split behavior '" + behavior + "' (invert " +
                           (p.value("invert", false) ? "true" : "false") + "), expected Isolated, invert false");
    }
    auto k = recognise_pattern(pat["Regex"].get<std::string>());
    if (!k) return k.status();
    t.pre_ = *k;
    return Status::ok();
  }
  if (type == "Sequence") {
    const json& list = p.value("pretokenizers", json::array());
    if (!list.is_array()) return corrupt("tokenizer: Sequence pre-tokenizer without a list");
    for (const json& x : list) BNA_RETURN_IF_ERROR(parse_pretokenizer(x, t, byte_level));
    return Status::ok();
  }
  return unimplemented("tokenizer: pre-tokenizer type '" + type + "', supported: ByteLevel, Split (Isolated, " +
                       "GPT-2 / cl100k-style regex), Sequence of those");
}

Expected<std::unique_ptr<Tokenizer>> parse_impl(std::string_view text) {
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return corrupt("tokenizer: tokenizer.json is not a JSON object");
  auto t = std::make_unique<BpeTokenizer>();
  const json& model = j.value("model", json::object());
  if (!model.is_object()) return corrupt("tokenizer: 'model' is not an object");
  const std::string mtype = model.value("type", "BPE");
  if (mtype != "BPE") return unimplemented("tokenizer: model type '" + mtype + "', supported: BPE (byte-level)");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      return unimplemented(std::string("tokenizer: BPE ") + key + " is not supported");
    }
  }
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>()) {
    return unimplemented("tokenizer: BPE byte_fallback (sentencepiece-style) is not supported; byte-level BPE is");
  }
  t->ignore_merges_ = model.value("ignore_merges", false);
  const json& vocab = model.value("vocab", json::object());
  if (!vocab.is_object() || vocab.empty()) return corrupt("tokenizer: model.vocab is missing or empty");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it.value().is_number_integer()) return corrupt("tokenizer: vocab['" + it.key() + "'] is not an integer id");
    const int64_t id = it.value().get<int64_t>();
    if (id < 0 || id > (1 << 24)) return corrupt("tokenizer: vocab['" + it.key() + "'] = " + std::to_string(id) + " out of range");
    t->vocab_[it.key()] = static_cast<int32_t>(id);
    max_id = std::max(max_id, id);
  }
  const json& added = j.value("added_tokens", json::array());
  if (!added.is_array()) return corrupt("tokenizer: 'added_tokens' is not an array");
  for (const json& a : added) {
    if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() || !a.contains("content") ||
        !a["content"].is_string()) {
      return corrupt("tokenizer: added_tokens entry " + a.dump() + " lacks an integer id or string content");
    }
    const int64_t id = a["id"].get<int64_t>();
    if (id < 0 || id > (1 << 24)) return corrupt("tokenizer: added token id " + std::to_string(id) + " out of range");
    AddedToken at{a["content"].get<std::string>(), static_cast<int32_t>(id), a.value("special", false),
                  a.value("lstrip", false), a.value("rstrip", false)};
    if (at.content.empty()) return corrupt("tokenizer: added token " + std::to_string(id) + " has empty content");
    t->added_by_content_[at.content] = at.id;
    t->added_by_id_[at.id] = t->added_.size();
    t->added_.push_back(std::move(at));
    max_id = std::max(max_id, id);
  }
  t->id_to_tok_.assign(static_cast<size_t>(max_id + 1), std::string());
  for (const auto& [s, id] : t->vocab_) t->id_to_tok_[id] = s;
  for (const auto& a : t->added_) t->id_to_tok_[a.id] = a.content;

  const json& merges = model.value("merges", json::array());
  if (!merges.is_array()) return corrupt("tokenizer: model.merges is not an array");
  int32_t rank = 0;
  for (const json& mg : merges) {
    std::string a, b;
    if (mg.is_string()) {
      const std::string s = mg.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || sp == 0 || sp + 1 >= s.size() || s.find(' ', sp + 1) != std::string::npos) {
        return corrupt("tokenizer: merge " + std::to_string(rank) + " '" + s + "' is not 'a b'");
      }
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (mg.is_array() && mg.size() == 2 && mg[0].is_string() && mg[1].is_string()) {
      a = mg[0].get<std::string>();
      b = mg[1].get<std::string>();
    } else {
      return corrupt("tokenizer: merge " + std::to_string(rank) + " is neither 'a b' nor [\"a\", \"b\"]");
    }
    auto ia = t->vocab_.find(a), ib = t->vocab_.find(b), iab = t->vocab_.find(a + b);
    if (ia == t->vocab_.end() || ib == t->vocab_.end() || iab == t->vocab_.end()) {
      return corrupt("tokenizer: merge " + std::to_string(rank) + " ('" + a + "', '" + b +
                     "'): a part or the result is not in the vocabulary");
    }
    t->merges_.emplace(pair_key(ia->second, ib->second), std::make_pair(rank, iab->second));
    ++rank;
  }
  // Normalizer.
  const json& norm = j.value("normalizer", json());
  if (!norm.is_null()) {
    const std::string nt = norm.value("type", "");
    std::vector<json> parts;
    if (nt == "Sequence") {
      for (const json& x : norm.value("normalizers", json::array())) parts.push_back(x);
    } else {
      parts.push_back(norm);
    }
    for (const json& x : parts) {
      const std::string ty = x.value("type", "");
      if (ty == "NFC") {
        t->nfc_ = true;
      } else {
        return unimplemented("tokenizer: normalizer '" + ty + "', supported: none, NFC");
      }
    }
  }
  bool byte_level = false;
  BNA_RETURN_IF_ERROR(parse_pretokenizer(j.value("pre_tokenizer", json()), *t, &byte_level));
  const json& dec = j.value("decoder", json());
  if (dec.is_object() && dec.value("type", "") == "ByteLevel") byte_level = true;
  if (!byte_level) {
    return unimplemented("tokenizer: only byte-level BPE is supported (no ByteLevel pre-tokenizer or decoder)");
  }
  const ByteMap& bm = byte_map();
  for (int b = 0; b < 256; ++b) {
    std::string s;
    utf8_append(s, bm.to_cp[b]);
    auto it = t->vocab_.find(s);
    t->byte_ids_[b] = it == t->vocab_.end() ? -1 : it->second;
  }
  // BOS/EOS from the post-processor's template, else well-known names.
  const json& pp = j.value("post_processor", json());
  std::vector<json> procs;
  if (pp.is_object() && pp.value("type", "") == "Sequence") {
    for (const json& x : pp.value("processors", json::array())) procs.push_back(x);
  } else if (pp.is_object()) {
    procs.push_back(pp);
  }
  for (const json& p : procs) {
    if (p.value("type", "") != "TemplateProcessing") continue;
    const json& single = p.value("single", json::array());
    bool seen_a = false;
    for (const json& item : single) {
      if (item.contains("Sequence")) { seen_a = true; continue; }
      if (item.contains("SpecialToken") && item["SpecialToken"].contains("id") && item["SpecialToken"]["id"].is_string()) {
        auto id = t->token_id(item["SpecialToken"]["id"].get<std::string>());
        if (id) (seen_a ? t->eos_ : t->bos_) = *id;
      }
    }
  }
  if (!t->eos_) {
    for (const char* n : {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>"}) {
      if (auto id = t->token_id(n)) { t->eos_ = *id; break; }
    }
  }
  return std::unique_ptr<Tokenizer>(std::move(t));
}

}  // namespace

// nlohmann's accessors throw on a value of the wrong type; any such file is corrupt, and the
// exception never leaves this function.
Expected<std::unique_ptr<Tokenizer>> parse_tokenizer_json(std::string_view text) {
  try {
    return parse_impl(text);
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("tokenizer: tokenizer.json has a field of the wrong type: ") + e.what());
  }
}

Expected<std::unique_ptr<Tokenizer>> load_tokenizer_json(const std::string& path) {
  BNA_ASSIGN_OR_RETURN(std::string text, io::read_file(path));
  auto t = parse_tokenizer_json(text);
  if (!t) return Status(t.status().code(), t.status().message() + " (in '" + path + "')");
  return t;
}

}  // namespace bna::tok
