// Unicode character classes for the pre-tokenizer matchers: \p{L} (general category L*), \p{N}
// (N*), \s (the White_Space property, as Oniguruma's \s in the `tokenizers` library), and the set of
// code points that can change under NFC (text without any of them is already NFC).
// The range tables are generated (src/tokenizer/unicode_table.inc, by tools/hf_fixtures.py from
// Python 3.12's unicodedata, Unicode 15.0.0 -- the version of the Oniguruma the reference uses).
#pragma once

#include <cstdint>

namespace bna::tok::uni {

bool is_letter(uint32_t cp);
bool is_number(uint32_t cp);
bool is_space(uint32_t cp);
bool is_nfc_unsafe(uint32_t cp);
const char* unicode_version();

}  // namespace bna::tok::uni
