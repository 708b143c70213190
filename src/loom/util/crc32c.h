#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of TFRecord framing. The SSE4.2
// CRC32 instruction is used when the CPU has it, slice-by-8 tables otherwise; both give the same value.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loom {

// The CRC-32C of `n` bytes, continuing from `crc` (0 to start).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view s) { return crc32c(s.data(), s.size()); }
// The portable and hardware paths, exposed so the tests can check them against each other.
uint32_t crc32c_portable(const void* data, size_t n, uint32_t crc = 0);
bool crc32c_has_hardware();
uint32_t crc32c_hardware(const void* data, size_t n, uint32_t crc = 0);  // only when crc32c_has_hardware()

// TensorFlow's masked CRC: a CRC stored next to the data it covers is rotated and offset, so that the
// CRC of a buffer holding CRCs does not degenerate.
inline uint32_t mask_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xa282ead8u; }

}  // namespace loom
