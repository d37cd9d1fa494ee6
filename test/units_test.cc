// Unit tests for size and duration parsing of config values.
#include <catch2/catch.hpp>

#include "src/net_address.h"
#include "src/units.h"

TEST_CASE("sizes", "[units]") {
  CHECK(ferry::parseSize("0") == 0u);
  CHECK(ferry::parseSize("65536") == 65536u);
  CHECK(ferry::parseSize("64KiB") == 65536u);
  CHECK(ferry::parseSize("64 KiB") == 65536u);
  CHECK(ferry::parseSize("64k") == 65536u);
  CHECK(ferry::parseSize("64KB") == 64000u);
  CHECK(ferry::parseSize("8MiB") == 8u << 20);
  CHECK(ferry::parseSize("8mb") == 8'000'000u);
  CHECK(ferry::parseSize("1GiB") == 1u << 30);
  CHECK(ferry::parseSize("1.5KiB") == 1536u);
  CHECK_FALSE(ferry::parseSize(""));
  CHECK_FALSE(ferry::parseSize("KiB"));
  CHECK_FALSE(ferry::parseSize("64XB"));
  CHECK_FALSE(ferry::parseSize("-1"));
  CHECK_FALSE(ferry::parseSize("0.3B"));
  CHECK(ferry::formatSize(65536) == "64KiB");
  CHECK(ferry::formatSize(1000) == "1000");
}

TEST_CASE("durations", "[units]") {
  CHECK(ferry::parseDurationMs("0") == 0);
  CHECK(ferry::parseDurationMs("250ms") == 250);
  CHECK(ferry::parseDurationMs("10s") == 10000);
  CHECK(ferry::parseDurationMs("1.5s") == 1500);
  CHECK(ferry::parseDurationMs("5m") == 300000);
  CHECK(ferry::parseDurationMs("1h30m") == 5'400'000);
  CHECK(ferry::parseDurationMs("2d") == 172'800'000);
  CHECK_FALSE(ferry::parseDurationMs("10"));
  CHECK_FALSE(ferry::parseDurationMs("10 parsecs"));
  CHECK_FALSE(ferry::parseDurationMs(""));
  CHECK_FALSE(ferry::parseDurationMs("s"));
  CHECK(ferry::formatDurationMs(600000) == "10m");
  CHECK(ferry::formatDurationMs(250) == "250ms");
}

TEST_CASE("host:port splitting", "[units][address]") {
  ferry::HostPort hp;
  std::string err;
  REQUIRE(ferry::splitHostPort("127.0.0.1:24224", "h:p", hp, err));
  CHECK(hp.host == "127.0.0.1");
  CHECK(hp.port == 24224);
  CHECK_FALSE(hp.bracketed);
  REQUIRE(ferry::splitHostPort("[::1]:5565", "h:p", hp, err));
  CHECK(hp.host == "::1");
  CHECK(hp.bracketed);
  REQUIRE(ferry::splitHostPort(":5565", "h:p", hp, err));
  CHECK(hp.host.empty());
  CHECK(hp.port == 5565);
  CHECK_FALSE(ferry::splitHostPort("127.0.0.1", "10.0.0.1:1", hp, err));
  CHECK(err == "expected host:port, e.g. \"10.0.0.1:1\"");
  CHECK_FALSE(ferry::splitHostPort("::1:5565", "h:p", hp, err));
  CHECK(err.find("needs brackets") != std::string::npos);
  CHECK_FALSE(ferry::splitHostPort("[::1]5565", "h:p", hp, err));
  CHECK_FALSE(ferry::splitHostPort("h:65536", "h:p", hp, err));
  CHECK_FALSE(ferry::splitHostPort("h:12a", "h:p", hp, err));
  CHECK_FALSE(ferry::splitHostPort("h:", "h:p", hp, err));
}
