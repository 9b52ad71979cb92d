// libFuzzer target for the .wf front end: parse every input; for those that parse, check the
// formatter's fixed point (format(parse(format(x))) == format(x)) and that formatting keeps the
// meaning, then run build_spec / normalize / validate / cache_key (all cheap; lowering is not fuzzed).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "bna/spec.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto doc = bna::spec::parse_document(text, "fuzz.wf");
  if (!doc) return 0;
  const std::string once = bna::spec::format(*doc);
  auto again = bna::spec::parse_document(once, "fuzz.wf");
  if (!again) std::abort();                                // formatted output must parse
  if (bna::spec::format(*again) != once) std::abort();    // and be a fixed point
  auto spec = bna::spec::build_spec(*doc);
  auto spec2 = bna::spec::build_spec(*again);
  if (spec.has_value() != spec2.has_value()) std::abort();  // formatting never changes meaning
  if (!spec) return 0;
  if (bna::spec::ir_json(*spec) != bna::spec::ir_json(*spec2)) std::abort();
  const bna::spec::GraphSpec n = bna::spec::normalize(*spec);
  if (bna::spec::validate(n).is_ok() && n.routing.npy_path.empty()) (void)bna::spec::cache_key(n, 64, 2);
  return 0;
}
