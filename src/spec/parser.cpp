// .wf lexer and parser: text -> Document (a syntax tree that keeps comments and blank lines so the
// formatter can reprint them). One left-to-right scan with line/column tracking; atoms are typed at
// lexing time (keyword, int, float, symbol), so a quoted "64" stays a string. The parser is an
// explicit recursion bounded by kMaxDepth, so no input can exhaust the stack.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

constexpr int kMaxDepth = 64;

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool ends_atom(char c) { return is_space(c) || c == '(' || c == ')' || c == '"' || c == ';'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

std::string printable(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class Parser {
 public:
  Parser(std::string_view text, std::string_view name) : s_(text), name_(name) {}

  Expected<Document> run() {
    Document doc;
    doc.source_name = std::string(name_);
    bool have_root = false;
    for (;;) {
      bool blank = false, trailing = false;
      skip_space(blank, trailing);
      if (pos_ >= s_.size()) break;
      const SourceLoc at = here();
      const char c = s_[pos_];
      if (c == ';') {
        doc.top.push_back(lex_comment(blank, trailing && !doc.top.empty()));
        continue;
      }
      if (c == ')') return error(at, "unexpected ')' with no open '('");
      if (c != '(') return error(at, "expected '(' to start the spec, got " + describe_atom_at());
      if (have_root)
        return error(at, "expected a single top-level form, found a second one (the spec is one "
                         "(butterfly ...) form)");
      Node root;
      BNA_RETURN_IF_ERROR(parse_list(root, 1));
      root.blank_before = blank && !doc.top.empty();
      doc.top.push_back(std::move(root));
      have_root = true;
    }
    if (!have_root) return error(here(), "empty spec: expected (butterfly ...)");
    return doc;
  }

 private:
  SourceLoc here() const { return {line_, static_cast<int>(pos_ - line_start_) + 1}; }

  Status error(SourceLoc at, const std::string& what) const {
    return invalid_argument(std::string(name_) + ":" + std::to_string(at.line) + ":" + std::to_string(at.col) +
                            ": " + what);
  }

  void advance() {
    if (s_[pos_] == '\n') {
      ++line_;
      line_start_ = pos_ + 1;
    }
    ++pos_;
  }

  // Skips whitespace; blank = an empty line was crossed; trailing = no newline was crossed.
  void skip_space(bool& blank, bool& trailing) {
    int newlines = 0;
    while (pos_ < s_.size() && is_space(s_[pos_])) {
      if (s_[pos_] == '\n') ++newlines;
      advance();
    }
    blank = newlines >= 2;
    trailing = newlines == 0;
  }

  Node lex_comment(bool blank, bool trailing) {
    Node n;
    n.kind = NodeKind::kComment;
    n.loc = here();
    ++pos_;  // ';'
    const size_t b = pos_;
    while (pos_ < s_.size() && s_[pos_] != '\n') ++pos_;
    size_t e = pos_;
    while (e > b && is_space(s_[e - 1])) --e;
    n.text.assign(s_.substr(b, e - b));
    n.blank_before = blank;
    n.trailing = trailing;
    return n;
  }

  std::string describe_atom_at() const {
    size_t e = pos_;
    while (e < s_.size() && !ends_atom(s_[e]) && e - pos_ < 40) ++e;
    std::string out(1, '\'');
    out += printable(s_.substr(pos_, e == pos_ ? 1 : e - pos_));
    out += '\'';
    return out;
  }

  // s_[pos_] == '('.
  Status parse_list(Node& out, int depth) {
    out.kind = NodeKind::kList;
    out.loc = here();
    if (depth > kMaxDepth) return error(out.loc, "lists nested deeper than " + std::to_string(kMaxDepth));
    advance();
    for (;;) {
      bool blank = false, trailing = false;
      skip_space(blank, trailing);
      if (pos_ >= s_.size())
        return error(here(), "expected ')' to close '(' opened at " + std::to_string(out.loc.line) + ":" +
                                 std::to_string(out.loc.col) + ", got end of input");
      const char c = s_[pos_];
      if (c == ')') {
        advance();
        return Status::ok();
      }
      Node child;
      if (c == ';') {
        child = lex_comment(blank, trailing);
      } else if (c == '(') {
        BNA_RETURN_IF_ERROR(parse_list(child, depth + 1));
      } else if (c == '"') {
        BNA_RETURN_IF_ERROR(lex_string(child));
      } else {
        BNA_RETURN_IF_ERROR(lex_atom(child));
      }
      child.blank_before = blank;
      out.items.push_back(std::move(child));
    }
  }

  Status lex_string(Node& n) {
    n.kind = NodeKind::kString;
    n.loc = here();
    advance();
    for (;;) {
      if (pos_ >= s_.size())
        return error(n.loc, "unterminated string (no closing '\"' before end of input)");
      const char c = s_[pos_];
      if (c == '"') {
        advance();
        break;
      }
      if (c != '\\') {
        n.text += c;
        advance();
        continue;
      }
      const SourceLoc esc = here();
      advance();
      if (pos_ >= s_.size()) return error(n.loc, "unterminated string (input ends after '\\')");
      const char e = s_[pos_];
      switch (e) {
        case '"': n.text += '"'; break;
        case '\\': n.text += '\\'; break;
        case 'n': n.text += '\n'; break;
        case 't': n.text += '\t'; break;
        case 'r': n.text += '\r'; break;
        case '0': n.text += '\0'; break;
        case 'x': {
          auto hexval = [](char h) -> int {
            if (h >= '0' && h <= '9') return h - '0';
            if (h >= 'a' && h <= 'f') return h - 'a' + 10;
            if (h >= 'A' && h <= 'F') return h - 'A' + 10;
            return -1;
          };
          if (pos_ + 2 >= s_.size() || hexval(s_[pos_ + 1]) < 0 || hexval(s_[pos_ + 2]) < 0)
            return error(esc, "escape '\\x' needs two hex digits");
          n.text += static_cast<char>(hexval(s_[pos_ + 1]) * 16 + hexval(s_[pos_ + 2]));
          pos_ += 2;
          break;
        }
        default:
          return error(esc, "unknown escape '\\" + printable(s_.substr(pos_, 1)) +
                                "' in string (known: \\\" \\\\ \\n \\t \\r \\0 \\xHH)");
      }
      advance();
    }
    if (pos_ < s_.size() && !ends_atom(s_[pos_]))
      return error(here(), "expected whitespace or ')' after a string, got " + describe_atom_at());
    return Status::ok();
  }

  Status lex_atom(Node& n) {
    n.loc = here();
    const size_t b = pos_;
    while (pos_ < s_.size() && !ends_atom(s_[pos_])) ++pos_;
    n.text.assign(s_.substr(b, pos_ - b));
    if (pos_ < s_.size() && s_[pos_] == '"')
      return error(here(), "unexpected '\"' inside atom '" + printable(n.text) + "' (put whitespace before a string)");
    for (unsigned char c : n.text)
      if (c < 0x20 || c == 0x7f) return error(n.loc, "control character in atom '" + printable(n.text) + "'");
    return classify(n);
  }

  // Keyword ":name"; number "[+-]digits[_digits]" / "[+-](digits[.digits]|.digits)[e[+-]digits]";
  // anything else starting with a digit (or a sign then a digit or '.') is a malformed number.
  Status classify(Node& n) {
    const std::string& t = n.text;
    if (t[0] == ':') {
      if (t.size() == 1) return error(n.loc, "':' must be followed by a key name");
      n.kind = NodeKind::kKeyword;
      return Status::ok();
    }
    size_t i = 0;
    if (t[0] == '+' || t[0] == '-') i = 1;
    const bool numeric = i < t.size() && (is_digit(t[i]) || (t[i] == '.' && i + 1 < t.size() && is_digit(t[i + 1])));
    if (!numeric) {
      n.kind = NodeKind::kSymbol;
      return Status::ok();
    }
    std::string clean;  // without '_' separators
    bool is_float = false, ok = true, prev_digit = false;
    bool seen_dot = false, seen_exp = false, exp_digit = false;
    for (size_t j = 0; j < t.size() && ok; ++j) {
      const char c = t[j];
      if (is_digit(c)) {
        clean += c;
        prev_digit = true;
        if (seen_exp) exp_digit = true;
      } else if (c == '_') {
        ok = prev_digit && j + 1 < t.size() && is_digit(t[j + 1]) && !seen_dot && !seen_exp;
        prev_digit = false;
      } else if ((c == '+' || c == '-') && (j == 0 || t[j - 1] == 'e' || t[j - 1] == 'E')) {
        clean += c;
        prev_digit = false;
      } else if (c == '.' && !seen_dot && !seen_exp) {
        seen_dot = is_float = true;
        clean += c;
        prev_digit = false;
      } else if ((c == 'e' || c == 'E') && !seen_exp && j > 0 && (is_digit(t[j - 1]) || t[j - 1] == '.')) {
        seen_exp = is_float = true;
        clean += c;
        prev_digit = false;
      } else {
        ok = false;
      }
    }
    if (seen_exp && !exp_digit) ok = false;
    if (!ok) return error(n.loc, "malformed number '" + printable(t) + "'");
    if (is_float) {
      errno = 0;
      char* end = nullptr;
      const double v = std::strtod(clean.c_str(), &end);
      if (end != clean.c_str() + clean.size()) return error(n.loc, "malformed number '" + printable(t) + "'");
      if (!std::isfinite(v) || (errno == ERANGE && std::fabs(v) > 1.0))
        return error(n.loc, "number '" + printable(t) + "' is out of range for a double");
      n.kind = NodeKind::kFloat;
      n.float_value = v;
    } else {
      errno = 0;
      char* end = nullptr;
      const long long v = std::strtoll(clean.c_str(), &end, 10);
      if (end != clean.c_str() + clean.size()) return error(n.loc, "malformed number '" + printable(t) + "'");
      if (errno == ERANGE) return error(n.loc, "integer '" + printable(t) + "' does not fit in 64 bits");
      n.kind = NodeKind::kInt;
      n.int_value = v;
    }
    return Status::ok();
  }

  std::string_view s_;
  std::string_view name_;
  size_t pos_ = 0, line_start_ = 0;
  int line_ = 1;
};

}  // namespace

const Node& Document::root() const {
  for (const Node& n : top)
    if (n.kind == NodeKind::kList) return n;
  BNA_ASSERT(false && "Document without a root list");
  return top.front();
}

Expected<Document> parse_document(std::string_view text, std::string_view source_name) {
  return Parser(text, source_name).run();
}

}  // namespace bna::spec
