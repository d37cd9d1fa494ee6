// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), used to check spool records and the
// spool ledger. Not zlib's crc32(): that one uses the IEEE polynomial 0xEDB88320 and gives
// different values, so the two must never be mixed up.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ferry {

// Extends `crc` (the value returned for the bytes before) with `size` more bytes. Start with
// 0; crc32c("123456789") == 0xE3069283.
uint32_t crc32cExtend(uint32_t crc, const void* data, size_t size);

inline uint32_t crc32c(std::string_view data) {
  return crc32cExtend(0, data.data(), data.size());
}

}  // namespace ferry
