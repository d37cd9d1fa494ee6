// Unit tests for gzip decompression: multi-member streams, the output limit (gzip
// bombs), and corrupt or truncated input.
#include <catch2/catch.hpp>

#include "src/gzip.h"

using ferry::GunzipResult;

TEST_CASE("gunzip round-trips one member", "[gzip]") {
  const std::string plain = "hello world, hello world, hello world";
  std::string out;
  REQUIRE(ferry::gunzip(ferry::gzipCompress(plain), 1 << 20, out) == GunzipResult::Ok);
  CHECK(out == plain);
}

TEST_CASE("gunzip joins several concatenated members", "[gzip]") {
  const std::string z = ferry::gzipCompress("first;") + ferry::gzipCompress("second;") +
                        ferry::gzipCompress(std::string(100000, 'x'));
  std::string out;
  REQUIRE(ferry::gunzip(z, 1 << 20, out) == GunzipResult::Ok);
  CHECK(out == "first;second;" + std::string(100000, 'x'));
}

TEST_CASE("gunzip stops at the limit while inflating", "[gzip]") {
  const std::string bomb = ferry::gzipCompress(std::string(10 << 20, '\0'), 9);
  CHECK(bomb.size() < 20000);
  std::string out = "keep";
  CHECK(ferry::gunzip(bomb, 64 << 10, out) == GunzipResult::TooLarge);
  CHECK(out == "keep");  // nothing partial is left behind
  std::string exact;
  CHECK(ferry::gunzip(ferry::gzipCompress(std::string(1000, 'a')), 1000, exact) ==
        GunzipResult::Ok);
  std::string over;
  CHECK(ferry::gunzip(ferry::gzipCompress(std::string(1001, 'a')), 1000, over) ==
        GunzipResult::TooLarge);
}

TEST_CASE("gunzip refuses corrupt and truncated data", "[gzip]") {
  std::string out;
  CHECK(ferry::gunzip("not gzip at all", 1 << 20, out) == GunzipResult::Corrupt);
  const std::string z = ferry::gzipCompress(std::string(5000, 'q'));
  for (size_t cut : {size_t{1}, size_t{10}, z.size() / 2, z.size() - 1}) {
    std::string o;
    INFO(cut);
    CHECK(ferry::gunzip(z.substr(0, cut), 1 << 20, o) == GunzipResult::Corrupt);
    CHECK(o.empty());
  }
  std::string flipped = z;
  flipped[z.size() / 2] ^= 0x55;
  std::string o2;
  CHECK(ferry::gunzip(flipped, 1 << 20, o2) == GunzipResult::Corrupt);
}
