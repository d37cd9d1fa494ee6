// CRC32C against the standard check value and RFC 3720 (iSCSI) vectors, and the slice-by-8
// path against the byte-wise definition over every length and alignment up to 64 bytes.
#include <catch2/catch.hpp>

#include <string>

#include "src/crc32c.h"

namespace {
// The definition, one bit at a time, as the reference for the table-driven code.
uint32_t bitwise(const std::string& s) {
  uint32_t c = ~0u;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k)
      c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
  }
  return ~c;
}
}  // namespace

TEST_CASE("crc32c: standard check value and RFC 3720 vectors", "[crc32c]") {
  CHECK(ferry::crc32c("123456789") == 0xE3069283u);
  CHECK(ferry::crc32c("") == 0u);
  CHECK(ferry::crc32c(std::string(32, '\0')) == 0x8A9136AAu);
  CHECK(ferry::crc32c(std::string(32, '\xff')) == 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i)
    inc.push_back(static_cast<char>(i));
  CHECK(ferry::crc32c(inc) == 0x46DD794Eu);
}

TEST_CASE("crc32c: slice-by-8 equals the bitwise definition at any length and split", "[crc32c]") {
  std::string data;
  for (int i = 0; i < 80; ++i)
    data.push_back(static_cast<char>(i * 37 + 11));
  for (size_t off = 0; off < 8; ++off) {
    for (size_t len = 0; off + len <= 72; ++len) {
      const std::string s = data.substr(off, len);
      REQUIRE(ferry::crc32c(s) == bitwise(s));
      // Extending in two pieces gives the same value as one call.
      const size_t half = len / 3;
      const uint32_t a = ferry::crc32cExtend(0, s.data(), half);
      REQUIRE(ferry::crc32cExtend(a, s.data() + half, len - half) == bitwise(s));
    }
  }
}
