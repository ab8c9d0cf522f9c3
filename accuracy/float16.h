// IEEE 754 binary16 <-> binary32, so logits can be stored at half size (--logits-dtype float16) without
// relying on HDF5's soft float conversion (HDF5 1.10 has no predefined half type).
#pragma once

#include <bit>
#include <cstdint>

namespace accuracy {

/// Round to nearest, ties to even; overflow → ±inf, NaN stays NaN (quiet). After F. Giesen's
/// float_to_half_fast3_rtne: the subnormal path lets the FPU do the rounding by adding a magic constant.
inline uint16_t float_to_half(float value) {
  uint32_t u = std::bit_cast<uint32_t>(value);
  const uint32_t sign = u & 0x80000000u;
  u ^= sign;
  uint16_t out;
  if (u >= (127u + 16u) << 23) {  // |x| >= 65536: inf or NaN (65520..65536 is handled by the rounding below)
    out = u > 0x7f800000u ? 0x7e00 : 0x7c00;
  } else if (u < (113u << 23)) {  // below 2^-14: the half is subnormal or zero
    const uint32_t magic_bits = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    float f = std::bit_cast<float>(u) + std::bit_cast<float>(magic_bits);
    out = static_cast<uint16_t>(std::bit_cast<uint32_t>(f) - magic_bits);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += (uint32_t(15 - 127) << 23) + 0xfffu + mant_odd;  // re-bias the exponent, round half to even
    out = static_cast<uint16_t>(u >> 13);
  }
  return static_cast<uint16_t>(out | (sign >> 16));
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  const uint32_t man = h & 0x3ffu;
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    float mag = static_cast<float>(man) * (1.0f / 16777216.0f);
    return std::bit_cast<float>(std::bit_cast<uint32_t>(mag) | sign);
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (man << 13));
}

}  // namespace accuracy
