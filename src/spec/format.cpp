// Canonical .wf layout (bna spec fmt). A list prints on one line when it holds no comment and fits
// kWidth columns; otherwise its head stays on the opening line and every further element (or
// ":key value" pair) gets its own line, indented two spaces past the line the list starts on.
// Comments keep their role: a trailing comment stays on its line, a leading one gets its own line,
// and a run of blank lines becomes one. Every choice depends only on the tree and the column, and
// the printed text re-parses to the same tree, which is what makes the formatter idempotent.
#include <string>

#include "bna/spec.hpp"

namespace bna::spec {
namespace {

constexpr size_t kWidth = 100;

std::string quote(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      case '\0': out += "\\0"; break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

bool has_comment(const Node& n) {
  if (n.kind == NodeKind::kComment) return true;
  for (const Node& c : n.items)
    if (has_comment(c)) return true;
  return false;
}

std::string flat(const Node& n) {
  switch (n.kind) {
    case NodeKind::kString: return quote(n.text);
    case NodeKind::kComment: return ";" + n.text;
    case NodeKind::kList: {
      std::string s = "(";
      for (size_t i = 0; i < n.items.size(); ++i) {
        if (i) s += ' ';
        s += flat(n.items[i]);
      }
      return s + ")";
    }
    default: return n.text;
  }
}

class Printer {
 public:
  std::string out;

  void put(const std::string& s) {
    out += s;
    const size_t nl = out.rfind('\n');
    col_ = nl == std::string::npos ? out.size() : out.size() - nl - 1;
    ends_in_comment_ = false;
  }
  void comment(const Node& c) {
    put(";" + c.text);
    ends_in_comment_ = true;
  }
  void newline(size_t indent) {
    std::string s(indent + 1, ' ');
    s[0] = '\n';
    put(s);
  }
  bool ends_in_comment() const { return ends_in_comment_; }

  // Emits n at the current position; `indent` is the indentation of the line it starts on.
  void node(const Node& n, size_t indent, bool force_multiline = false) {
    if (n.kind == NodeKind::kComment) {
      comment(n);
      return;
    }
    if (n.kind != NodeKind::kList) {
      put(flat(n));
      return;
    }
    if (!force_multiline && !has_comment(n)) {
      const std::string f = flat(n);
      if (col_ + f.size() <= kWidth) {
        put(f);
        return;
      }
    }
    put("(");
    size_t j = 0;
    if (!n.items.empty() && n.items[0].kind != NodeKind::kComment && n.items[0].kind != NodeKind::kList) {
      put(flat(n.items[0]));
      j = 1;
    }
    const size_t child = indent + 2;
    bool first_line = true;
    for (; j < n.items.size(); ++j) {
      const Node& it = n.items[j];
      if (it.kind == NodeKind::kComment && it.trailing) {
        put(" ");
        comment(it);
        continue;
      }
      if (it.blank_before && !first_line) put("\n");
      newline(child);
      first_line = false;
      if (it.kind == NodeKind::kKeyword && j + 1 < n.items.size() && n.items[j + 1].kind != NodeKind::kKeyword &&
          n.items[j + 1].kind != NodeKind::kComment) {
        put(it.text + " ");
        node(n.items[++j], child);
      } else {
        node(it, child);
      }
    }
    if (ends_in_comment()) newline(indent);
    put(")");
  }

 private:
  size_t col_ = 0;
  bool ends_in_comment_ = false;
};

}  // namespace

std::string format(const Document& doc) {
  Printer p;
  for (size_t i = 0; i < doc.top.size(); ++i) {
    const Node& n = doc.top[i];
    if (i > 0 && n.kind == NodeKind::kComment && n.trailing) {
      p.put(" ");
      p.comment(n);
      continue;
    }
    if (i > 0) p.put(n.blank_before ? "\n\n" : "\n");
    p.node(n, 0, /*force_multiline=*/n.kind == NodeKind::kList);
  }
  p.out += '\n';
  return p.out;
}

}  // namespace bna::spec
