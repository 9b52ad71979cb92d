// libFuzzer target for the tokenizer.json loader: the input is parsed as a tokenizer.json; a loaded
// tokenizer then encodes and decodes a fixed hard string and the input itself. Nothing may crash,
// hang or throw.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "bna/tokenizer.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto t = bna::tok::parse_tokenizer_json(text);
  if (!t) return 0;
  for (std::string_view s : {std::string_view("Hello  world 123 \xF0\x9F\x98\x80\r\n'll x"), text.substr(0, 256)}) {
    auto ids = (*t)->encode(s);
    (void)(*t)->try_encode(s);
    (void)(*t)->decode(ids);
  }
  return 0;
}
