// Binary search over generated inclusive code point ranges (see unicode.hpp).
#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <iterator>

namespace bna::tok::uni {
namespace {

struct CodeRange { uint32_t lo, hi; };
#include "tokenizer/unicode_table.inc"

template <size_t N>
bool in(const CodeRange (&t)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(t), std::end(t), cp, [](uint32_t c, const CodeRange& r) { return c < r.lo; });
  return it != std::begin(t) && cp <= std::prev(it)->hi;
}

}  // namespace

bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp | 0x20) >= 'a' && (cp | 0x20) <= 'z';
  return in(kLetter, cp);
}
bool is_number(uint32_t cp) {
  if (cp < 0x80) return cp >= '0' && cp <= '9';
  return in(kNumber, cp);
}
bool is_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}
bool is_nfc_unsafe(uint32_t cp) { return cp >= 0x300 && in(kNfcUnsafe, cp); }
const char* unicode_version() { return BNA_UNICODE_VERSION; }

}  // namespace bna::tok::uni
