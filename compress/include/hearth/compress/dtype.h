// hearth/compress/dtype.h — element types of gradient buffers and payload
// values, and exact fp16/bf16 <-> fp32 conversion (round to nearest even,
// NaN/Inf preserved). Pure inline functions; thread-safe.
#pragma once

#include <cstdint>
#include <cstring>

namespace hearth::compress {

enum class DType : std::uint8_t { kFloat32 = 0, kFloat16 = 1, kBFloat16 = 2 };

inline const char* dtypeName(DType t) {
  switch (t) {
    case DType::kFloat32:
      return "fp32";
    case DType::kFloat16:
      return "fp16";
    case DType::kBFloat16:
      return "bf16";
  }
  return "?";
}

inline std::uint32_t floatBits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

inline float bitsToFloat(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline std::uint16_t floatToBFloat16(float f) {
  std::uint32_t u = floatBits(f);
  if ((u & 0x7F800000u) == 0x7F800000u && (u & 0x007FFFFFu) != 0) {
    return static_cast<std::uint16_t>((u >> 16) | 0x0040u);  // quiet NaN
  }
  u += 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

inline float bfloat16ToFloat(std::uint16_t h) {
  return bitsToFloat(std::uint32_t(h) << 16);
}

inline std::uint16_t floatToHalf(float f) {
  const std::uint32_t u = floatBits(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t absBits = u & 0x7FFFFFFFu;
  if (absBits >= 0x7F800000u) {  // Inf or NaN
    return static_cast<std::uint16_t>(sign | 0x7C00u | (absBits > 0x7F800000u ? 0x0200u : 0u));
  }
  if (absBits >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // overflow
  if (absBits < 0x38800000u) {  // subnormal half or zero
    // Add 0.5 so that the FPU rounds the mantissa to nearest even for us.
    const float shifted = bitsToFloat(absBits) + 0.5f;
    return static_cast<std::uint16_t>(sign | (floatBits(shifted) - 0x3F000000u));
  }
  std::uint32_t mant = absBits + 0xC8000FFFu + ((absBits >> 13) & 1u);  // rebias + round
  return static_cast<std::uint16_t>(sign | (mant >> 13));
}

inline float halfToFloat(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  const std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0) {
    // Zero or subnormal: mantissa * 2^-24, exact in fp32.
    const float magnitude = float(mantissa) * (1.0f / 16777216.0f);
    return bitsToFloat(floatBits(magnitude) | sign);
  }
  if (exponent == 0x1F) return bitsToFloat(sign | 0x7F800000u | (mantissa << 13));
  return bitsToFloat(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

// Reads element i of a buffer of type `t` as fp32.
inline float loadAsFloat(const void* data, std::size_t i, DType t) {
  switch (t) {
    case DType::kFloat32:
      return static_cast<const float*>(data)[i];
    case DType::kFloat16:
      return halfToFloat(static_cast<const std::uint16_t*>(data)[i]);
    case DType::kBFloat16:
      return bfloat16ToFloat(static_cast<const std::uint16_t*>(data)[i]);
  }
  return 0.0f;
}

}  // namespace hearth::compress
