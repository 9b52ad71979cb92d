// Helpers shared by the src/spec translation units (not part of the public API).
#pragma once

#include <string>
#include <string_view>

#include "bna/spec.hpp"

namespace bna::spec::detail {

// SHA-256 of bytes as 64 lowercase hex digits (OpenSSL EVP).
std::string sha256_hex(std::string_view bytes);

// A path from the spec, resolved against the spec file's directory unless absolute.
std::string resolve_path(const GraphSpec& s, const std::string& p);

// "<source>:<line>:<col>: what" when the field has a location, else "spec: what".
Status field_error(const GraphSpec& s, const char* field, const std::string& what);

}  // namespace bna::spec::detail
