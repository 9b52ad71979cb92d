// Unicode data for the tokenizer: the character classes of the pre-tokenizer matchers, \p{L}
// (general category L*), \p{N} (N*), \s (the White_Space property, as Oniguruma's \s in the
// `tokenizers` library), and NFC normalization (UAX #15) for the NFC normalizer.
// The tables are generated (src/tokenizer/unicode_table.inc, by tools/hf_fixtures.py --unicode-table
// from Python 3.12's unicodedata, Unicode 15.0.0 -- the version of the Oniguruma the reference uses).
// NFC decisions: the decomposition table holds the one-level canonical mappings, applied recursively;
// Hangul syllables are decomposed and composed algorithmically; the composition exclusions are the
// full ones (singletons and non-starter decompositions included), so only primary composites compose.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace bna::tok::uni {

bool is_letter(uint32_t cp);
bool is_number(uint32_t cp);
bool is_space(uint32_t cp);
// True for a code point that NFC may change or combine with a neighbour (combining class != 0, not
// NFC-stable alone, the second of a composable pair, Hangul V/T jamo). Text without any is NFC.
bool is_nfc_unsafe(uint32_t cp);
// Canonical combining class (0 for starters and unassigned code points).
uint8_t combining_class(uint32_t cp);
const char* unicode_version();

// NFC of a code point sequence (UAX #15: full canonical decomposition, canonical ordering,
// canonical composition). Code points above U+10FFFF or surrogates are kept as they are and act as
// starters that compose with nothing.
std::vector<uint32_t> nfc(std::span<const uint32_t> cps);

// True when `text` has no NFC-unsafe code point (invalid bytes are skipped): NFC leaves it as it is.
// One scan; code points below U+0300 need no table lookup.
bool is_nfc_safe(std::string_view text);

// NFC of UTF-8 text. Text with no NFC-unsafe code point is returned unchanged (the fast path: one
// scan, no table lookups below U+0300). Bytes that are not valid UTF-8 are copied through unchanged
// and act as starters that compose with nothing, so valid text around them is normalized as if they
// were a boundary.
std::string nfc_utf8(std::string_view text);

}  // namespace bna::tok::uni
