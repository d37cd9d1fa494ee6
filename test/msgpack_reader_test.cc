// Unit tests for the zero-copy msgpack reader and the resumable object scanner,
// checked against msgpack-c's packer for every type and header width.
#include <catch2/catch.hpp>

#include <string>

#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

using ferry::mp::ObjectScanner;
using ferry::mp::Reader;
using ferry::mp::Type;
using ferry::mp::Value;

namespace {
Value readOne(const std::string& bytes, size_t* consumed = nullptr) {
  Value v;
  const int64_t r =
      ferry::mp::readValue(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), v);
  REQUIRE(r > 0);
  if (consumed) *consumed = static_cast<size_t>(r);
  return v;
}
}  // namespace

TEST_CASE("integers of every width decode exactly", "[msgpack]") {
  const int64_t signed_values[] = {
      0,        1, 127, -1, -32, -33, -128, -129, -32768, -32769, INT32_MIN, int64_t{INT32_MIN} - 1,
      INT64_MIN};
  for (int64_t v : signed_values) {
    std::string b;
    ferry::mp::Writer(b).integer(v);
    Value out = readOne(b);
    INFO(v);
    CHECK(out.i == v);
    CHECK(out.type == (v < 0 ? Type::NegInt : Type::PosInt));
  }
  const uint64_t unsigned_values[] = {
      128, 255, 256, 65535, 65536, UINT32_MAX, uint64_t{UINT32_MAX} + 1, UINT64_MAX};
  for (uint64_t v : unsigned_values) {
    std::string b;
    ferry::mp::Writer(b).uinteger(v);
    Value out = readOne(b);
    INFO(v);
    CHECK(out.type == Type::PosInt);
    CHECK(out.u == v);
  }
}

TEST_CASE("strings, bins, floats, bools, nil and ext", "[msgpack]") {
  for (size_t len : {0u, 31u, 32u, 255u, 256u, 65535u, 65536u}) {
    std::string s(len, 'x');
    std::string b;
    ferry::mp::Writer w(b);
    w.str(s);
    size_t consumed;
    Value v = readOne(b, &consumed);
    CHECK(v.type == Type::Str);
    CHECK(v.str() == s);
    CHECK(consumed == b.size());
    std::string b2;
    ferry::mp::Writer(b2).bin(s);
    Value v2 = readOne(b2);
    CHECK(v2.type == Type::Bin);
    CHECK(v2.len == len);
  }
  std::string f;
  ferry::mp::Writer(f).float64(3.25);
  CHECK(readOne(f).f == 3.25);
  const std::string f32 = std::string("\xca\x40\x50\x00\x00", 5);  // 3.25f
  CHECK(readOne(f32).f == 3.25);
  CHECK(readOne(std::string("\xc3", 1)).boolean);
  CHECK_FALSE(readOne(std::string("\xc2", 1)).boolean);
  CHECK(readOne(std::string("\xc0", 1)).type == Type::Nil);
  std::string e;
  ferry::mp::Writer(e).eventTime(1700000000, 123456789);
  CHECK(e == std::string("\xd7\x00\x65\x53\xf1\x00\x07\x5b\xcd\x15", 10));
  Value ev = readOne(e);
  CHECK(ev.type == Type::Ext);
  CHECK(ev.ext_type == 0);
  CHECK(ev.len == 8);
  // ext8 form of the same EventTime
  Value ev8 = readOne(std::string("\xc7\x08\x00\x65\x53\xf1\x00\x07\x5b\xcd\x15", 11));
  CHECK(ev8.type == Type::Ext);
  CHECK(ev8.len == 8);
}

TEST_CASE("non-minimal container headers are accepted", "[msgpack]") {
  // map32 with 1 pair, array32 with 2 elements, str32 of 3 bytes (Fluent Bit and Fluentd
  // write these).
  const std::string b(
      "\xdf\x00\x00\x00\x01\xdb\x00\x00\x00\x03"
      "abc"
      "\xdd\x00\x00\x00\x02\x01\x02",
      20);
  Reader r(b);
  Value v;
  REQUIRE(r.next(v));
  CHECK(v.type == Type::Map);
  CHECK(v.len == 1);
  REQUIRE(r.next(v));
  CHECK(v.str() == "abc");
  REQUIRE(r.next(v));
  CHECK(v.type == Type::Array);
  CHECK(v.len == 2);
  Reader r2(b);
  REQUIRE(r2.skip());
  CHECK(r2.atEnd());
}

TEST_CASE("truncated and invalid bytes are refused, never over-read", "[msgpack]") {
  std::string full;
  ferry::mp::Writer w(full);
  w.arrayHeader(3);
  w.str("tag");
  w.uinteger(UINT64_MAX);
  w.mapHeader(1);
  w.str("k");
  w.bin(std::string(300, 'v'));
  for (size_t cut = 0; cut < full.size(); ++cut) {
    Reader r(reinterpret_cast<const uint8_t*>(full.data()), cut);
    INFO(cut);
    CHECK_FALSE(r.skip());
  }
  Reader whole(full);
  CHECK(whole.skip());
  CHECK(whole.atEnd());
  Value v;
  CHECK(ferry::mp::readValue(reinterpret_cast<const uint8_t*>("\xc1"), 1, v) == -1);
  // A bin32 declaring 4 GiB with 3 bytes present.
  const std::string huge(
      "\xc6\xff\xff\xff\xff"
      "abc",
      8);
  CHECK(ferry::mp::readValue(reinterpret_cast<const uint8_t*>(huge.data()), huge.size(), v) == 0);
}

TEST_CASE("skip bounds nesting depth", "[msgpack]") {
  std::string deep(100, '\x91');
  deep += '\x01';
  Reader shallow_limit(deep);
  CHECK_FALSE(shallow_limit.skip(50));
  Reader enough(deep);
  CHECK(enough.skip(100));
  CHECK(enough.atEnd());
}

TEST_CASE("scanner finds object ends across arbitrary splits", "[msgpack]") {
  std::string stream;
  ferry::mp::Writer w(stream);
  w.arrayHeader(3);
  w.str("a.b");
  w.arrayHeader(2);
  for (int k = 0; k < 2; ++k) {
    w.arrayHeader(2);
    w.eventTime(1, 2);
    w.mapHeader(2);
    w.str("x");
    w.str(std::string(70000, 'y'));
    w.str("n");
    w.nil();
  }
  w.mapHeader(0);
  const size_t first_len = stream.size();
  w.nil();  // a second object follows
  for (size_t step : {1u, 7u, 4096u, 100000u}) {
    ObjectScanner sc;
    size_t have = 0;
    ObjectScanner::Result res = ObjectScanner::Result::NeedMore;
    int rounds = 0;
    while (res == ObjectScanner::Result::NeedMore && rounds++ < 1'000'000) {
      have = std::min(stream.size(), have + step);
      res = sc.scan(reinterpret_cast<const uint8_t*>(stream.data()), have);
    }
    INFO(step);
    REQUIRE(res == ObjectScanner::Result::Done);
    CHECK(sc.end() == first_len);
  }
  ObjectScanner bad;
  CHECK(bad.scan(reinterpret_cast<const uint8_t*>("\x92\xc1"), 2) ==
        ObjectScanner::Result::Invalid);
  std::string deep(300, '\x91');
  ObjectScanner limited(64);
  CHECK(limited.scan(reinterpret_cast<const uint8_t*>(deep.data()), deep.size()) ==
        ObjectScanner::Result::TooDeep);
}
