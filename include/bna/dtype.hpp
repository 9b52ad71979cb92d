// Element types and conversions. f16 (IEEE binary16) and bf16 are stored as uint16_t bit patterns;
// float -> f16/bf16 rounds to nearest, ties to even; NaN stays NaN (quiet), overflow goes to Inf.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "bna/status.hpp"

namespace bna {

enum class DType : uint8_t { kF32 = 0, kF16 = 1, kBF16 = 2 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);                 // "f32", "f16", "bf16"
Expected<DType> parse_dtype(std::string_view s);  // accepts f32|float32, f16|float16|half, bf16|bfloat16

inline uint32_t float_bits(float f) { uint32_t u; std::memcpy(&u, &f, 4); return u; }
inline float bits_float(uint32_t u) { float f; std::memcpy(&f, &u, 4); return f; }

inline uint16_t float_to_bf16(float f) {
  uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

uint16_t float_to_f16(float f);
float f16_to_float(uint16_t h);

// Round a float through a dtype and back (identity for f32).
inline float round_to(DType t, float f) {
  switch (t) {
    case DType::kBF16: return bf16_to_float(float_to_bf16(f));
    case DType::kF16: return f16_to_float(float_to_f16(f));
    default: return f;
  }
}

// Bulk conversions between a raw buffer of dtype t and float.
void convert_to_float(DType t, const void* src, float* dst, size_t n);
void convert_from_float(DType t, const float* src, void* dst, size_t n);

}  // namespace bna
