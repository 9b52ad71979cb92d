// libFuzzer target for the NFC normaliser (src/tokenizer/unicode.hpp): any bytes go through
// nfc_utf8, which must not crash, and two invariants abort when broken: NFC is idempotent
// (nfc(nfc(x)) == nfc(x)), and text the quick check calls safe comes back unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tokenizer/unicode.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::string once = bna::tok::uni::nfc_utf8(text);
  if (bna::tok::uni::nfc_utf8(once) != once) std::abort();
  if (bna::tok::uni::is_nfc_safe(text) && once != text) std::abort();
  return 0;
}
