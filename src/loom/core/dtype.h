#pragma once
// Storage types. Compute is always fp32; bf16 and fp16 are storage formats converted at load/store.
#include <cstdint>
#include <cstring>
#include <string>

namespace loom {

enum class DType : uint8_t { F32, BF16, F16, I32, I64, U16 };

inline size_t dtype_size(DType t) {
  switch (t) {
    case DType::F32: case DType::I32: return 4;
    case DType::BF16: case DType::F16: case DType::U16: return 2;
    case DType::I64: return 8;
  }
  return 0;
}

inline const char* dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I32: return "I32";
    case DType::I64: return "I64";
    case DType::U16: return "U16";
  }
  return "?";
}

// bf16: the top 16 bits of an fp32, rounded to nearest even (NaN kept quiet).
inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
inline float bf16_to_f32(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// IEEE half, round to nearest even, with subnormals, infinities and NaN.
inline uint16_t f32_to_f16(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t mag = x & 0x7fffffffu;
  if (mag > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (mag >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // overflow (incl. rounding up) -> inf
  if (mag < 0x38800000u) {                                   // subnormal or zero in half
    if (mag < 0x33000000u) return uint16_t(sign);            // below half of the smallest subnormal
    uint32_t e = mag >> 23;
    uint32_t m = (mag & 0x7fffffu) | 0x800000u;
    uint32_t s = 126 - e;  // value in units of 2^-24 is m >> s
    uint32_t r = m >> s;
    uint32_t rem = m & ((1u << s) - 1);
    uint32_t halfway = 1u << (s - 1);
    if (rem > halfway || (rem == halfway && (r & 1))) r++;
    return uint16_t(sign | r);
  }
  uint32_t r = ((mag - 0x38000000u) >> 13);
  uint32_t rem = mag & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
  return uint16_t(sign | r);
}
inline float f16_to_f32(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 0x1f;
  uint32_t m = h & 0x3ffu;
  uint32_t u;
  if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int shift = 0;
      while (!(m & 0x400u)) { m <<= 1; shift++; }
      m &= 0x3ffu;
      u = sign | uint32_t(113 - shift) << 23 | m << 13;
    }
  } else if (e == 31) {
    u = sign | 0x7f800000u | m << 13;
  } else {
    u = sign | (e + 112) << 23 | m << 13;
  }
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace loom
