// NumPy .npy files (format versions 1.0, 2.0 and 3.0), little-endian, C order.
// Writer: always v1.0 (v2.0 only if the header exceeds 65535 bytes), header padded with spaces and a
// final '\n' so the data starts at a multiple of 64 bytes; written atomically (see io.hpp).
// Reader: accepts any valid v1/v2/v3 file whose dtype is one of NpyType ('<i4', '|u1', '<f4', '<i8',
// '<f8'; '<u1'/'|i4'-style byte-order variants that are unambiguous are accepted too) and
// fortran_order False; rejects everything else with a message naming the field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bna/status.hpp"

namespace bna::io {

enum class NpyType { kI32, kU8, kF32, kI64, kF64 };
size_t npy_type_size(NpyType t);       // 4, 1, 4, 8, 8
const char* npy_type_descr(NpyType t);  // "<i4", "|u1", "<f4", "<i8", "<f8"

// The exact bytes of a v1.0 header (magic .. '\n') for the given dtype and shape.
std::string npy_header(NpyType t, const std::vector<int64_t>& shape);

// Writes `data` (product(shape) elements of type t, C order) as `path`. Errors: negative dimension
// or an element count that overflows, I/O errors.
Status write_npy(const std::string& path, NpyType t, const std::vector<int64_t>& shape, const void* data);

struct NpyArray {
  NpyType type = NpyType::kU8;
  std::vector<int64_t> shape;  // empty = scalar (one element)
  std::vector<uint8_t> bytes;  // product(shape) * npy_type_size(type) bytes, C order
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

// Parses an in-memory .npy. Never crashes on malformed input; errors (kCorrupt / kUnimplemented) name
// the field and the value found, e.g. "npy: descr '<c8', expected one of <i4 |u1 <f4 <i8 <f8".
Expected<NpyArray> parse_npy(const uint8_t* data, size_t n);
Expected<NpyArray> read_npy(const std::string& path);

}  // namespace bna::io
