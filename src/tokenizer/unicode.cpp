// Binary search over the generated tables (see unicode.hpp), and NFC after UAX #15.
// NFC runs per chunk: text is cut before every code point that is not NFC-unsafe (a starter that
// is NFC-stable and composes with nothing before it; its full decomposition starts with such a
// starter too, which the generator's data satisfies), so chunks normalize independently and the
// common case -- text with no unsafe code point -- is one scan and a copy.
#include "tokenizer/unicode.hpp"

#include <algorithm>
#include <iterator>

#include "bna/tokenizer.hpp"

namespace bna::tok::uni {
namespace {

struct CodeRange { uint32_t lo, hi; };
struct CccRange { uint32_t lo, hi; uint8_t ccc; };
struct Decomposition { uint32_t cp, first, second; };  // second == 0: a singleton
#include "tokenizer/unicode_table.inc"

template <typename R, size_t N>
const R* find_range(const R (&t)[N], uint32_t cp) {
  auto it = std::upper_bound(std::begin(t), std::end(t), cp, [](uint32_t c, const R& r) { return c < r.lo; });
  return it != std::begin(t) && cp <= std::prev(it)->hi ? &*std::prev(it) : nullptr;
}
template <size_t N>
bool in(const CodeRange (&t)[N], uint32_t cp) { return find_range(t, cp) != nullptr; }

// Hangul syllables (Unicode 15.0, section 3.12): S = SBase + (L * VCount + V) * TCount + T.
constexpr uint32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr uint32_t kLCount = 19, kVCount = 21, kTCount = 28, kSCount = kLCount * kVCount * kTCount;

// Invalid UTF-8 bytes travel through nfc() as these values: above U+10FFFF, so they have class 0,
// no decomposition and no composition.
constexpr uint32_t kRawByte = 0x110000;

const Decomposition* find_decomposition(uint32_t cp) {
  if (cp < 0xC0) return nullptr;  // the first canonical decomposition is U+00C0
  auto it = std::lower_bound(std::begin(kCanonicalDecomposition), std::end(kCanonicalDecomposition), cp,
                             [](const Decomposition& d, uint32_t c) { return d.cp < c; });
  return it != std::end(kCanonicalDecomposition) && it->cp == cp ? &*it : nullptr;
}

struct Composition { uint32_t first, second, cp; };

// Primary composites: canonical pair decompositions that are not composition exclusions, sorted by
// (first, second). Built once from the decomposition table.
const std::vector<Composition>& compositions() {
  static const std::vector<Composition> t = [] {
    std::vector<Composition> v;
    for (const Decomposition& d : kCanonicalDecomposition)
      if (d.second != 0 && !in(kCompositionExcluded, d.cp)) v.push_back({d.first, d.second, d.cp});
    std::sort(v.begin(), v.end(), [](const Composition& a, const Composition& b) {
      return a.first != b.first ? a.first < b.first : a.second < b.second;
    });
    return v;
  }();
  return t;
}

// The primary composite of (a, b), or 0 when there is none.
uint32_t compose(uint32_t a, uint32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto& t = compositions();
  auto it = std::lower_bound(t.begin(), t.end(), std::pair{a, b}, [](const Composition& c, std::pair<uint32_t, uint32_t> k) {
    return c.first != k.first ? c.first < k.first : c.second < k.second;
  });
  return it != t.end() && it->first == a && it->second == b ? it->cp : 0;
}

struct Mark { uint32_t cp; uint8_t ccc; };

void decompose(uint32_t cp, std::vector<Mark>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const uint32_t s = cp - kSBase;
    out.push_back({kLBase + s / (kVCount * kTCount), 0});
    out.push_back({kVBase + (s % (kVCount * kTCount)) / kTCount, 0});
    if (s % kTCount != 0) out.push_back({kTBase + s % kTCount, 0});
    return;
  }
  if (const Decomposition* d = find_decomposition(cp)) {
    decompose(d->first, out);
    if (d->second != 0) decompose(d->second, out);
    return;
  }
  out.push_back({cp, combining_class(cp)});
}

void nfc_chunk(std::string_view chunk, std::string& out) {
  std::vector<uint32_t> cps;
  for (size_t i = 0; i < chunk.size();) {
    uint32_t cp;
    const int k = utf8_decode(chunk, i, &cp);
    cps.push_back(k > 0 ? cp : kRawByte + static_cast<uint8_t>(chunk[i]));
    i += k > 0 ? k : 1;
  }
  for (uint32_t cp : nfc(cps)) {
    if (cp >= kRawByte && cp < kRawByte + 0x100) out += static_cast<char>(cp - kRawByte);
    else utf8_append(out, cp);
  }
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
uint8_t combining_class(uint32_t cp) {
  if (cp < 0x300) return 0;
  const CccRange* r = find_range(kCombiningClass, cp);
  return r ? r->ccc : 0;
}
const char* unicode_version() { return BNA_UNICODE_VERSION; }

std::vector<uint32_t> nfc(std::span<const uint32_t> cps) {
  // 1. Full canonical decomposition.
  std::vector<Mark> buf;
  buf.reserve(cps.size() + cps.size() / 2);
  for (uint32_t cp : cps) {
    if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) buf.push_back({cp, 0});
    else decompose(cp, buf);
  }
  // 2. Canonical ordering: a stable sort by class of every run of non-starters (O(n log n) for
  // adversarial runs, where the bubble sort of the standard's description is quadratic).
  for (size_t i = 0; i < buf.size();) {
    if (buf[i].ccc == 0) { ++i; continue; }
    size_t j = i + 1;
    while (j < buf.size() && buf[j].ccc != 0) ++j;
    if (j - i > 1)
      std::stable_sort(buf.begin() + i, buf.begin() + j, [](const Mark& a, const Mark& b) { return a.ccc < b.ccc; });
    i = j;
  }
  // 3. Canonical composition: each character composes with the last starter unless blocked (an
  // intervening character of class 0 or of class >= its own). After ordering, the last kept
  // character has the largest class since the starter, so it alone decides.
  std::vector<uint32_t> out;
  out.reserve(buf.size());
  size_t starter = SIZE_MAX;  // index in out of the last starter
  uint8_t last_ccc = 0;       // class of the last character kept after it
  for (const Mark& m : buf) {
    if (starter != SIZE_MAX && (last_ccc == 0 ? out.size() == starter + 1 : last_ccc < m.ccc)) {
      if (const uint32_t c = compose(out[starter], m.cp)) {
        out[starter] = c;
        continue;
      }
    }
    if (m.ccc == 0) starter = out.size();
    last_ccc = m.ccc;
    out.push_back(m.cp);
  }
  return out;
}

bool is_nfc_safe(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<uint8_t>(text[i]) < 0xCC) {  // ASCII, a continuation byte or a lead below U+0300
      ++i;
      continue;
    }
    uint32_t cp = 0;
    const int k = utf8_decode(text, i, &cp);
    if (k > 0 && is_nfc_unsafe(cp)) return false;
    i += k > 0 ? k : 1;
  }
  return true;
}

std::string nfc_utf8(std::string_view text) {
  std::string out;
  bool changed = false;      // out holds text[0, done) normalized
  size_t done = 0, start = 0;  // start: the current chunk, from the last boundary
  bool dirty = false;        // the current chunk has an unsafe code point
  auto flush = [&](size_t end) {
    if (!dirty) return;
    if (!changed) { out.reserve(text.size() + 16); changed = true; }
    out.append(text.substr(done, start - done));
    nfc_chunk(text.substr(start, end - start), out);
    done = end;
  };
  for (size_t i = 0; i < text.size();) {
    uint32_t cp = 0;
    const int k = utf8_decode(text, i, &cp);
    if (k == 0 || !is_nfc_unsafe(cp)) {  // a boundary before i
      flush(i);
      start = i;
      dirty = false;
    } else {
      dirty = true;
    }
    i += k > 0 ? k : 1;
  }
  flush(text.size());
  if (!changed) return std::string(text);
  out.append(text.substr(done));
  return out;
}

}  // namespace bna::tok::uni
