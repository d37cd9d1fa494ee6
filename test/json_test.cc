// Tests for src/json: msgpack → JSON text for every msgpack type, string escaping and UTF-8
// repair, the streaming JSON → msgpack parser (checked by rendering its output back to
// JSON), and both directions against truncated, deep and random hostile input.

#include "src/json.h"

#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace ferry::json {
namespace {

using Result = Parser::Result;

std::string bytes(std::initializer_list<int> list) {
  std::string s;
  for (const int b : list)
    s.push_back(static_cast<char>(b));
  return s;
}

const uint8_t* u8(const std::string& s) {
  return reinterpret_cast<const uint8_t*>(s.data());
}

// Renders msgpack that must be one complete object, consumed exactly.
std::string toJson(const std::string& mp, uint32_t max_depth = 256) {
  std::string out;
  const size_t n = appendMsgpack(out, u8(mp), mp.size(), max_depth);
  INFO("msgpack of " << mp.size() << " bytes");
  REQUIRE(n == mp.size());
  return out;
}

template <typename Fill>
std::string packed(Fill fill) {
  std::string mp;
  mp::Writer w(mp);
  fill(w);
  return mp;
}

std::string quoted(std::string_view s) {
  std::string out;
  appendString(out, s);
  return out;
}

// Parses one complete JSON value that must take the whole input but trailing whitespace
// (which the parser leaves); returns its msgpack.
std::string parseAll(const std::string& json, uint32_t max_depth = 256) {
  Parser parser(max_depth);
  std::string mp;
  INFO("json: " << json);
  const Result r = parser.parse(json.data(), json.size(), mp);
  INFO("error: " << parser.error());
  REQUIRE(r == Result::Done);
  REQUIRE(parser.consumed() == json.find_last_not_of(" \t\r\n") + 1);
  return mp;
}

// JSON → msgpack → JSON.
std::string reparse(const std::string& json) {
  return toJson(parseAll(json));
}

std::string parseError(const std::string& json, uint32_t max_depth = 256) {
  Parser parser(max_depth);
  std::string mp = "keep";
  INFO("json: " << json);
  REQUIRE(parser.parse(json.data(), json.size(), mp) == Result::Invalid);
  CHECK(mp == "keep");
  CHECK(parser.consumed() == 0);
  REQUIRE_FALSE(parser.error().empty());
  return parser.error();
}

TEST_CASE("msgpack nil and bool", "[json]") {
  CHECK(toJson(bytes({0xc0})) == "null");
  CHECK(toJson(bytes({0xc3})) == "true");
  CHECK(toJson(bytes({0xc2})) == "false");
}

TEST_CASE("msgpack integers are exact over the full range", "[json]") {
  CHECK(toJson(bytes({0x00})) == "0");
  CHECK(toJson(bytes({0x7f})) == "127");
  CHECK(toJson(bytes({0xcc, 0xff})) == "255");
  CHECK(toJson(bytes({0xcd, 0xff, 0xff})) == "65535");
  CHECK(toJson(bytes({0xce, 0xff, 0xff, 0xff, 0xff})) == "4294967295");
  CHECK(toJson(bytes({0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})) ==
        "18446744073709551615");
  CHECK(toJson(bytes({0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0})) == "9223372036854775808");
  CHECK(toJson(bytes({0xff})) == "-1");
  CHECK(toJson(bytes({0xe0})) == "-32");
  CHECK(toJson(bytes({0xd0, 0x80})) == "-128");
  CHECK(toJson(bytes({0xd1, 0x80, 0x00})) == "-32768");
  CHECK(toJson(bytes({0xd2, 0x80, 0, 0, 0})) == "-2147483648");
  CHECK(toJson(bytes({0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0})) == "-9223372036854775808");
  CHECK(toJson(bytes({0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})) ==
        "9223372036854775807");
  CHECK(toJson(packed([](mp::Writer& w) { w.integer(std::numeric_limits<int64_t>::min()); })) ==
        "-9223372036854775808");
  CHECK(toJson(packed([](mp::Writer& w) { w.uinteger(std::numeric_limits<uint64_t>::max()); })) ==
        "18446744073709551615");
}

TEST_CASE("msgpack floats use the shortest round-trip text", "[json]") {
  const auto f64 = [](double d) { return toJson(packed([d](mp::Writer& w) { w.float64(d); })); };
  CHECK(f64(1.0) == "1.0");
  CHECK(f64(0.0) == "0.0");
  CHECK(f64(-0.0) == "-0.0");
  CHECK(f64(1.5) == "1.5");
  CHECK(f64(0.1) == "0.1");
  CHECK(f64(-2.5) == "-2.5");
  // Whichever of fixed and scientific is shorter, as std::to_chars picks.
  CHECK(f64(1700000000.0) == "1.7e+09");
  CHECK(f64(1700000000.5) == "1700000000.5");
  CHECK(f64(100.0) == "100.0");
  CHECK(f64(18446744073709551616.0) == "18446744073709551616.0");
  CHECK(f64(1e300) == "1e+300");
  CHECK(f64(5e-324) == "5e-324");
  CHECK(f64(std::numeric_limits<double>::quiet_NaN()) == "null");
  CHECK(f64(std::numeric_limits<double>::infinity()) == "null");
  CHECK(f64(-std::numeric_limits<double>::infinity()) == "null");

  // float32 is widened to double first, and the contract is the double's shortest text.
  CHECK(toJson(bytes({0xca, 0x3f, 0xc0, 0x00, 0x00})) == "1.5");
  CHECK(toJson(bytes({0xca, 0x3f, 0x80, 0x00, 0x00})) == "1.0");
  CHECK(toJson(bytes({0xca, 0x3f, 0x8c, 0xcc, 0xcd})) == "1.100000023841858");  // 1.1f
  CHECK(toJson(bytes({0xca, 0x7f, 0xc0, 0x00, 0x00})) == "null");               // NaN
  CHECK(toJson(bytes({0xca, 0xff, 0x80, 0x00, 0x00})) == "null");               // -inf

  std::mt19937_64 rng(12345);
  for (int k = 0; k < 2000; ++k) {
    uint64_t bits = rng();
    double d = 0;
    std::memcpy(&d, &bits, sizeof d);
    if (!std::isfinite(d)) continue;
    const std::string text = f64(d);
    INFO(text);
    const double back = std::strtod(text.c_str(), nullptr);
    REQUIRE(std::memcmp(&back, &d, sizeof d) == 0);
    REQUIRE(text.find_first_of(".eE") != std::string::npos);
  }
}

TEST_CASE("msgpack str and bin become JSON strings", "[json]") {
  CHECK(toJson(packed([](mp::Writer& w) { w.str("hello"); })) == "\"hello\"");
  CHECK(toJson(packed([](mp::Writer& w) { w.str(""); })) == "\"\"");
  CHECK(toJson(packed([](mp::Writer& w) { w.bin("raw"); })) == "\"raw\"");
  const std::string long_str(70000, 'x');
  CHECK(toJson(packed([&](mp::Writer& w) { w.str(long_str); })) == "\"" + long_str + "\"");
  // Control characters, in str and in bin.
  CHECK(toJson(packed([](mp::Writer& w) { w.str(std::string("a\0b\x1f", 4)); })) ==
        "\"a\\u0000b\\u001f\"");
  CHECK(toJson(packed([](mp::Writer& w) { w.bin("\t\n"); })) == "\"\\t\\n\"");
  // A valid 4-byte emoji is copied as is.
  CHECK(toJson(packed([](mp::Writer& w) { w.str("\xF0\x9F\x98\x80!"); })) ==
        "\"\xF0\x9F\x98\x80!\"");
  // bin with invalid UTF-8: every offending byte becomes \u00XX.
  CHECK(toJson(packed([](mp::Writer& w) {
          w.bin(bytes({0xff, 'a', 0xc0, 0x80}));
        })) == "\"\\u00ffa\\u00c0\\u0080\"");
}

TEST_CASE("appendString escapes", "[json]") {
  CHECK(quoted("") == "\"\"");
  CHECK(quoted("plain text /") == "\"plain text /\"");
  CHECK(quoted("q\"b\\") == "\"q\\\"b\\\\\"");
  CHECK(quoted("\b\f\n\r\t") == "\"\\b\\f\\n\\r\\t\"");
  CHECK(quoted(std::string_view("\0", 1)) == "\"\\u0000\"");
  CHECK(quoted("\x01\x0b\x1b\x1f") == "\"\\u0001\\u000b\\u001b\\u001f\"");
  CHECK(quoted("\x7f") == "\"\x7f\"");
  CHECK(quoted(" ~") == "\" ~\"");

  std::string out = "prefix:";
  appendString(out, "x");
  CHECK(out == "prefix:\"x\"");
}

TEST_CASE("appendString copies valid UTF-8 and escapes each invalid byte", "[json]") {
  // Valid boundaries of every sequence length are copied unchanged.
  for (const std::string& ok : {
           bytes({0xc2, 0x80}),              // U+0080
           bytes({0xdf, 0xbf}),              // U+07FF
           bytes({0xe0, 0xa0, 0x80}),        // U+0800
           bytes({0xed, 0x9f, 0xbf}),        // U+D7FF
           bytes({0xee, 0x80, 0x80}),        // U+E000
           bytes({0xef, 0xbf, 0xbf}),        // U+FFFF
           bytes({0xf0, 0x90, 0x80, 0x80}),  // U+10000
           bytes({0xf4, 0x8f, 0xbf, 0xbf}),  // U+10FFFF
           std::string("h\xC3\xA9llo \xE2\x82\xAC"),
       }) {
    CHECK(quoted(ok) == "\"" + ok + "\"");
  }
  // Overlongs.
  CHECK(quoted(bytes({0xc0, 0xaf})) == "\"\\u00c0\\u00af\"");
  CHECK(quoted(bytes({0xc1, 0xbf})) == "\"\\u00c1\\u00bf\"");
  CHECK(quoted(bytes({0xe0, 0x9f, 0xbf})) == "\"\\u00e0\\u009f\\u00bf\"");
  CHECK(quoted(bytes({0xf0, 0x8f, 0xbf, 0xbf})) == "\"\\u00f0\\u008f\\u00bf\\u00bf\"");
  // Surrogates.
  CHECK(quoted(bytes({0xed, 0xa0, 0x80})) == "\"\\u00ed\\u00a0\\u0080\"");
  CHECK(quoted(bytes({0xed, 0xbf, 0xbf})) == "\"\\u00ed\\u00bf\\u00bf\"");
  // Above U+10FFFF, and bytes that never occur.
  CHECK(quoted(bytes({0xf4, 0x90, 0x80, 0x80})) == "\"\\u00f4\\u0090\\u0080\\u0080\"");
  CHECK(quoted(bytes({0xf5, 0x80, 0x80, 0x80})) == "\"\\u00f5\\u0080\\u0080\\u0080\"");
  CHECK(quoted(bytes({0xfe, 0xff})) == "\"\\u00fe\\u00ff\"");
  // Truncated sequences: at the end, and cut short by an ASCII byte.
  CHECK(quoted(bytes({'a', 0xe2, 0x82})) == "\"a\\u00e2\\u0082\"");
  CHECK(quoted(bytes({0xe2, 0x82, 'A'})) == "\"\\u00e2\\u0082A\"");
  CHECK(quoted(bytes({0xf0, 0x9f, 0x98})) == "\"\\u00f0\\u009f\\u0098\"");
  CHECK(quoted(bytes({0xc3})) == "\"\\u00c3\"");
  // The input ends mid-sequence although the bytes after it would complete it.
  const std::string emoji = "\xF0\x9F\x98\x80";
  CHECK(quoted(std::string_view(emoji).substr(0, 3)) == "\"\\u00f0\\u009f\\u0098\"");
  CHECK(quoted(std::string_view(emoji).substr(1, 2)) == "\"\\u009f\\u0098\"");
  const std::string euro = "\xE2\x82\xAC";
  CHECK(quoted(std::string_view(euro).substr(0, 2)) == "\"\\u00e2\\u0082\"");
  const std::string e_acute = "\xC3\xA9";
  CHECK(quoted(std::string_view(e_acute).substr(0, 1)) == "\"\\u00c3\"");
  // A lone continuation byte, then a valid sequence right after an invalid one.
  CHECK(quoted(bytes({0x80, 0xc3, 0xa9})) == "\"\\u0080\xC3\xA9\"");
}

TEST_CASE("msgpack ext becomes $ext/$data with base64", "[json]") {
  const auto ext = [](int8_t type, const std::string& data) {
    return toJson(packed([&](mp::Writer& w) { w.ext(type, data); }));
  };
  CHECK(ext(1, "") == R"({"$ext":1,"$data":""})");
  CHECK(ext(1, "f") == R"({"$ext":1,"$data":"Zg=="})");
  CHECK(ext(1, "fo") == R"({"$ext":1,"$data":"Zm8="})");
  CHECK(ext(1, "foo") == R"({"$ext":1,"$data":"Zm9v"})");
  CHECK(ext(-5, "foobar") == R"({"$ext":-5,"$data":"Zm9vYmFy"})");
  CHECK(ext(127, bytes({0xfb, 0xff, 0xbf})) == R"({"$ext":127,"$data":"+/+/"})");
  CHECK(toJson(packed([](mp::Writer& w) { w.eventTime(1700000000, 5); })) ==
        R"({"$ext":0,"$data":"ZVPxAAAAAAU="})");
}

TEST_CASE("msgpack nested maps and arrays", "[json]") {
  const std::string mp = packed([](mp::Writer& w) {
    w.mapHeader(3);
    w.str("a");
    w.arrayHeader(3);
    w.uinteger(1);
    w.mapHeader(1);
    w.str("b");
    w.nil();
    w.arrayHeader(0);
    w.str("c");
    w.mapHeader(0);
    w.bin("d");
    w.arrayHeader(2);
    w.arrayHeader(1);
    w.boolean(true);
    w.float64(2.5);
  });
  CHECK(toJson(mp) == R"({"a":[1,{"b":null},[]],"c":{},"d":[[true],2.5]})");
  CHECK(toJson(packed([](mp::Writer& w) { w.arrayHeader(0); })) == "[]");
  CHECK(toJson(packed([](mp::Writer& w) { w.mapHeader(0); })) == "{}");

  // Bigger than the inline frame stack, to cover the spill path.
  std::string deep;
  for (int k = 0; k < 40; ++k)
    deep += bytes({0x81, 0xa1, 'k'});
  deep += bytes({0x92, 0x01, 0x02});
  std::string expected;
  for (int k = 0; k < 40; ++k)
    expected += "{\"k\":";
  expected += "[1,2]" + std::string(40, '}');
  CHECK(toJson(deep) == expected);
}

TEST_CASE("msgpack map keys that are not strings are quoted JSON", "[json]") {
  const std::string mp = packed([](mp::Writer& w) {
    w.mapHeader(6);
    w.uinteger(1);
    w.str("int");
    w.nil();
    w.uinteger(2);
    w.float64(1.5);
    w.boolean(false);
    w.arrayHeader(2);
    w.integer(-1);
    w.str("x");
    w.arrayHeader(0);
    w.mapHeader(1);
    w.uinteger(7);
    w.str("v");
    w.mapHeader(0);
    w.ext(3, "f");
    w.nil();
  });
  CHECK(toJson(mp) == R"({"1":"int","null":2,"1.5":false,"[-1,\"x\"]":[],"{\"7\":\"v\"}":{},)"
                      R"("{\"$ext\":3,\"$data\":\"Zg==\"}":null})");
}

TEST_CASE("msgpack container keys nest only a few levels", "[json]") {
  // {{{...{1:1}:1}...:1}: each level quotes the one inside again.
  const auto nested = [](int levels) {
    std::string mp;
    for (int k = 0; k < levels; ++k)
      mp += bytes({0x81});
    mp += bytes({0x81, 0x01, 0x01});
    for (int k = 0; k < levels; ++k)
      mp += bytes({0x01});
    return mp;
  };
  CHECK(toJson(nested(1)) == R"({"{\"1\":1}":1})");
  CHECK(toJson(nested(2)) == R"({"{\"{\\\"1\\\":1}\":1}":1})");
  const std::string ok = nested(4);
  std::string out;
  CHECK(appendMsgpack(out, u8(ok), ok.size()) == ok.size());
  const std::string too_many = nested(5);
  out = "x";
  CHECK(appendMsgpack(out, u8(too_many), too_many.size()) == 0);
  CHECK(out == "x");
  // Container keys one after another (not inside each other) are fine in any number.
  std::string wide = bytes({0xde, 0x00, 0x40});
  for (int k = 0; k < 64; ++k)
    wide += bytes({0x91, 0x81, 0x01, 0x02, 0xc0});
  CHECK(appendMsgpack(out, u8(wide), wide.size()) == wide.size());
}

TEST_CASE("appendMsgpack consumes one object and appends", "[json]") {
  const std::string two = bytes({0x92, 0x01, 0x02, 0xc3});
  std::string out = "x=";
  CHECK(appendMsgpack(out, u8(two), two.size()) == 3);
  CHECK(out == "x=[1,2]");
  CHECK(appendMsgpack(out, u8(two) + 3, 1) == 1);
  CHECK(out == "x=[1,2]true");
}

TEST_CASE("appendMsgpack returns 0 on truncated or invalid msgpack", "[json]") {
  const std::string doc = packed([](mp::Writer& w) {
    w.arrayHeader(3);
    w.str("tag");
    w.eventTime(1700000000, 1);
    w.mapHeader(4);
    w.str("n");
    w.uinteger(std::numeric_limits<uint64_t>::max());
    w.str("f");
    w.float64(0.25);
    w.str("b");
    w.bin("\x01\x02");
    w.uinteger(9);
    w.arrayHeader(2);
    w.integer(-300);
    w.nil();
  });
  CHECK(toJson(doc) ==
        R"(["tag",{"$ext":0,"$data":"ZVPxAAAAAAE="},)"
        R"({"n":18446744073709551615,"f":0.25,"b":"\u0001\u0002","9":[-300,null]}])");
  for (size_t len = 0; len < doc.size(); ++len) {
    std::string out = "keep";
    INFO("prefix length " << len);
    REQUIRE(appendMsgpack(out, u8(doc), len) == 0);
    REQUIRE(out == "keep");
  }
  std::string out;
  CHECK(appendMsgpack(out, nullptr, 0) == 0);
  CHECK(appendMsgpack(out, u8(bytes({0xc1})), 1) == 0);
  const std::string bad_inside = bytes({0x92, 0x01, 0xc1});
  CHECK(appendMsgpack(out, u8(bad_inside), bad_inside.size()) == 0);
  // Headers that promise far more than there is.
  const std::string huge_array = bytes({0xdd, 0xff, 0xff, 0xff, 0xff, 0x01});
  CHECK(appendMsgpack(out, u8(huge_array), huge_array.size()) == 0);
  const std::string huge_str = bytes({0xdb, 0xff, 0xff, 0xff, 0xff, 'a'});
  CHECK(appendMsgpack(out, u8(huge_str), huge_str.size()) == 0);
  const std::string huge_ext = bytes({0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a'});
  CHECK(appendMsgpack(out, u8(huge_ext), huge_ext.size()) == 0);
  CHECK(out.empty());
}

TEST_CASE("appendMsgpack depth limit", "[json]") {
  const auto nestedArrays = [](size_t depth) {
    std::string mp(depth, static_cast<char>(0x91));
    mp += bytes({0x01});
    return mp;
  };
  CHECK(toJson(nestedArrays(3), 3) == "[[[1]]]");
  std::string out;
  CHECK(appendMsgpack(out, u8(nestedArrays(3)), 4, 2) == 0);
  CHECK(out.empty());
  CHECK(toJson(bytes({0x01}), 0) == "1");
  CHECK(appendMsgpack(out, u8(bytes({0x91, 0x01})), 2, 0) == 0);
  CHECK(appendMsgpack(out, u8(bytes({0x91, 0x81, 0x01, 0x01})), 4, 1) == 0);
  CHECK(out.empty());
  // Empty containers are leaves: they do not count toward depth.
  CHECK(toJson(bytes({0x90}), 0) == "[]");
  CHECK(toJson(bytes({0x91, 0x80}), 1) == "[{}]");

  const std::string at_default = nestedArrays(256);
  CHECK(appendMsgpack(out, u8(at_default), at_default.size()) == at_default.size());
  out.clear();
  const std::string past_default = nestedArrays(257);
  CHECK(appendMsgpack(out, u8(past_default), past_default.size()) == 0);
  const std::string hostile = nestedArrays(1000000);
  CHECK(appendMsgpack(out, u8(hostile), hostile.size()) == 0);
  CHECK(out.empty());
}

TEST_CASE("appendMsgpack depth agrees with the msgpack reader", "[json]") {
  // A record the forward input accepted (it checks with mp::Reader / ObjectScanner) must
  // not then fail to render for depth.
  for (const size_t depth : {0, 1, 2, 15, 16, 17, 255, 256, 257, 300}) {
    for (const bool empty_inside : {false, true}) {
      std::string mp(depth, static_cast<char>(0x91));
      mp += empty_inside ? bytes({0x90}) : bytes({0x01});
      mp::Reader reader(mp);
      const bool reader_ok = reader.skip() && reader.atEnd();
      std::string out;
      INFO("depth " << depth << (empty_inside ? " + []" : " + 1"));
      CHECK((appendMsgpack(out, u8(mp), mp.size()) == mp.size()) == reader_ok);
    }
  }
}

TEST_CASE("appendMsgpack survives random and mutated input", "[json]") {
  std::mt19937 rng(7);
  const std::string seed = packed([](mp::Writer& w) {
    w.mapHeader(3);
    w.str("key");
    w.arrayHeader(3);
    w.float64(1.25);
    w.ext(2, "abc");
    w.bin("\xff\xfe");
    w.uinteger(3);
    w.mapHeader(1);
    w.arrayHeader(1);
    w.nil();
    w.str("v");
    w.str("z");
    w.integer(-70000);
  });
  for (int iter = 0; iter < 20000; ++iter) {
    std::string mp = seed;
    if (iter % 2 == 0) {
      for (int k = 0; k < 3; ++k)
        mp[rng() % mp.size()] = static_cast<char>(rng());
    } else {
      mp.resize(rng() % 24);
      for (char& c : mp)
        c = static_cast<char>(rng());
    }
    // Exact-size heap copy so ASan catches any read past the end.
    std::vector<uint8_t> buf(mp.begin(), mp.end());
    std::string out;
    const size_t n = appendMsgpack(out, buf.data(), buf.size(), 16);
    REQUIRE(n <= buf.size());
    if (n == 0) {
      REQUIRE(out.empty());
    } else {
      // Whatever was accepted is JSON this parser accepts and maps back to the same text.
      out.push_back(' ');
      Parser parser;
      std::string back;
      INFO(out);
      REQUIRE(parser.parse(out.data(), out.size(), back) == Result::Done);
    }
  }
}

TEST_CASE("Parser scalars", "[json]") {
  CHECK(parseAll("null") == bytes({0xc0}));
  CHECK(parseAll("true") == bytes({0xc3}));
  CHECK(parseAll("false") == bytes({0xc2}));
  CHECK(parseAll("\"s\"") == bytes({0xa1, 's'}));
  CHECK(parseAll("0 ") == bytes({0x00}));
  CHECK(parseAll("-0 ") == bytes({0x00}));
  CHECK(parseAll("-1 ") == bytes({0xff}));
  CHECK(parseAll("1700000000 ") == bytes({0xce, 0x65, 0x53, 0xf1, 0x00}));

  CHECK(reparse("[1e5]") == "[1e+05]");
  CHECK(reparse("[1e2]") == "[100.0]");
  CHECK(reparse("[1.5E-3]") == "[0.0015]");
  CHECK(reparse("[2.5e+2]") == "[250.0]");
  CHECK(reparse("[-0.0]") == "[-0.0]");
  CHECK(reparse("[1.0]") == "[1.0]");
  CHECK(reparse("[0.1]") == "[0.1]");
  CHECK(reparse("[-12.75e-1]") == "[-1.275]");
  CHECK(reparse("[1E400,-1e400]") == "[null,null]");  // ±infinity
  CHECK(reparse("[1e-400,-1e-400,0.0000e999999999999999999]") == "[0.0,-0.0,0.0]");
  CHECK(reparse("[1" + std::string(400, '0') + "]") == "[null]");
  CHECK(reparse("[0." + std::string(400, '0') + "1e401]") == "[1.0]");
}

TEST_CASE("Parser integers at the edges of int64 and uint64", "[json]") {
  CHECK(parseAll("[18446744073709551615]") ==
        bytes({0x91, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  CHECK(parseAll("[9223372036854775807]") ==
        bytes({0x91, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}));
  CHECK(parseAll("[-9223372036854775808]") ==
        bytes({0x91, 0xd3, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}));
  // One beyond each: float64.
  const std::string big = parseAll("[18446744073709551616]");
  REQUIRE(big.size() == 10);
  CHECK(static_cast<uint8_t>(big[1]) == 0xcb);
  CHECK(toJson(big) == "[18446744073709551616.0]");
  const std::string small = parseAll("[-9223372036854775809]");
  REQUIRE(small.size() == 10);
  CHECK(static_cast<uint8_t>(small[1]) == 0xcb);
  CHECK(toJson(small) == "[-9223372036854775808.0]");
  CHECK(reparse("[123456789012345678901234567890]") == "[1.2345678901234568e+29]");
  CHECK(reparse("[-18446744073709551615]") == "[-18446744073709551616.0]");
}

TEST_CASE("Parser strings and escapes", "[json]") {
  CHECK(parseAll(R"("")") == bytes({0xa0}));
  CHECK(parseAll(R"("a\"b\\c\/d")") ==
        "\xa7"
        "a\"b\\c/d");
  CHECK(parseAll(R"("\b\f\n\r\t")") == "\xa5\b\f\n\r\t");
  CHECK(parseAll(R"("\u0041\u00e9\u20AC")") ==
        "\xa6"
        "A\xC3\xA9\xE2\x82\xAC");
  CHECK(parseAll(R"("\u0000")") == std::string("\xa1\0", 2));
  CHECK(parseAll(R"("x\u07ffy")") == "\xa4x\xDF\xBFy");
  // Surrogate pairs, lower and upper case hex, and the extremes.
  CHECK(parseAll(R"("\ud83d\ude00")") == "\xa4\xF0\x9F\x98\x80");
  CHECK(parseAll(R"("\uD83D\uDE00!")") == "\xa5\xF0\x9F\x98\x80!");
  CHECK(parseAll(R"("\ud800\udc00")") == "\xa4\xF0\x90\x80\x80");
  CHECK(parseAll(R"("\udbff\udfff")") == "\xa4\xF4\x8F\xBF\xBF");
  // Raw UTF-8 is copied, and so are bytes that are not UTF-8 (rendered escaped later).
  CHECK(parseAll("\"\xF0\x9F\x98\x80\"") == "\xa4\xF0\x9F\x98\x80");
  CHECK(reparse("[\"a\xff\"]") == "[\"a\\u00ff\"]");
  // Escapes around a long run, and str8 beyond fixstr.
  const std::string long_text(300, 'q');
  CHECK(reparse("[\"\\t" + long_text + "\\n\"]") == "[\"\\t" + long_text + "\\n\"]");
  CHECK(reparse(R"(["\u0001\u001F\u007f"])") == "[\"\\u0001\\u001f\x7f\"]");
}

TEST_CASE("Parser arrays and objects", "[json]") {
  CHECK(parseAll("[]") == bytes({0x90}));
  CHECK(parseAll("{}") == bytes({0x80}));
  CHECK(parseAll("[ ]") == bytes({0x90}));
  CHECK(parseAll("{ \n}") == bytes({0x80}));
  CHECK(parseAll(R"({"a":1,"b":[true,null]})") ==
        bytes({0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0x92, 0xc3, 0xc0}));
  CHECK(reparse(" \t\r\n[ 1 , { \"k\" : [ ] , \"e\" : { } } , [ [ \"x\" ] ] ]") ==
        R"([1,{"k":[],"e":{}},[["x"]]])");
  // Element counts beyond fixarray/array16 come out right.
  std::string many = "[";
  std::string expected = "[";
  for (int k = 0; k < 70000; ++k) {
    many += k ? ",7" : "7";
    expected += k ? ",7" : "7";
  }
  many += "]";
  expected += "]";
  const std::string mp = parseAll(many);
  CHECK(static_cast<uint8_t>(mp[0]) == 0xdd);
  CHECK(toJson(mp) == expected);
  CHECK(reparse(R"({"dup":1,"dup":2})") == R"({"dup":1,"dup":2})");
}

TEST_CASE("Parser output renders back to the same JSON", "[json]") {
  for (const std::string json : {
           R"(["tag",1700000000,{"k":"v","n":[1,2.5,true,null]}])",
           R"({"a":{"b":{"c":[[],[{}],"\"quoted\"\\"]}},"neg":-42,"u":18446744073709551615})",
           R"([["tag",1700000001,{"message":"h\u00e9llo \ud83d\ude00"}],0.001,1e+300])",
           R"({"control":"\u0000\u001f\b\f\n\r\t","emoji":"\uD83D\uDE00"})",
       }) {
    INFO(json);
    const std::string text = reparse(json);
    // Render once more: canonical text is a fixed point.
    CHECK(reparse(text) == text);
  }
  CHECK(reparse(R"(["tag",1700000000,{"k":"v","n":[1,2.5,true,null]}])") ==
        R"(["tag",1700000000,{"k":"v","n":[1,2.5,true,null]}])");
  CHECK(reparse(R"({"m":"h\u00e9llo \ud83d\ude00","s":"\/"})") ==
        "{\"m\":\"h\xC3\xA9llo \xF0\x9F\x98\x80\",\"s\":\"/\"}");
}

TEST_CASE("Parser needs more for every proper prefix", "[json]") {
  for (const std::string& doc : {
           std::string(R"(["tag",1700000000,{"k":"v","n":[1,2.5,true,null]}])"),
           std::string(R"(  {"s":"a\"\u00e9\ud83d\ude00","f":-1.5e-3,"b":false,"e":[]})"),
       }) {
    Parser parser;
    for (size_t len = 0; len < doc.size(); ++len) {
      std::string out = "keep";
      // Exact-size copy so ASan catches any read past the end.
      const std::vector<char> buf(doc.begin(), doc.begin() + static_cast<std::ptrdiff_t>(len));
      INFO("prefix: " << doc.substr(0, len));
      REQUIRE(parser.parse(buf.data(), buf.size(), out) == Result::NeedMore);
      REQUIRE(out == "keep");
      REQUIRE(parser.consumed() == 0);
    }
    std::string out;
    REQUIRE(parser.parse(doc.data(), doc.size(), out) == Result::Done);
    CHECK(parser.consumed() == doc.size());
    CHECK(parser.error().empty());
    CHECK_FALSE(out.empty());
  }
}

TEST_CASE("Parser top-level numbers and literals at the end of the data", "[json]") {
  Parser parser;
  std::string out;
  // More digits may follow a number, so it is only complete once something else follows.
  for (const std::string partial : {"1",
                                    "123",
                                    "-",
                                    "-0",
                                    "1.",
                                    "1.5",
                                    "1e",
                                    "1e+",
                                    "1E5",
                                    "tru",
                                    "f",
                                    "nul",
                                    "\"abc",
                                    "\"\\",
                                    "\"\\u00",
                                    "\"\\ud83d",
                                    "\"\\ud83d\\",
                                    "\"\\ud83d\\u",
                                    "\"\\ud83d\\ude0",
                                    " ",
                                    ""}) {
    INFO(partial);
    CHECK(parser.parse(partial.data(), partial.size(), out) == Result::NeedMore);
  }
  CHECK(out.empty());
  CHECK(parser.parse("123 ", 4, out) == Result::Done);
  CHECK(parser.consumed() == 3);
  CHECK(parser.parse("123]", 4, out) == Result::Done);
  CHECK(parser.consumed() == 3);
  CHECK(parser.parse("true", 4, out) == Result::Done);
  CHECK(parser.consumed() == 4);
  CHECK(parser.parse("null", 4, out) == Result::Done);
  CHECK(out == bytes({0x7b, 0x7b, 0xc3, 0xc0}));
}

TEST_CASE("Parser reads concatenated values one after the other", "[json]") {
  const std::string stream = R"( {"a":1}  ["b",2.5]
"c"7 )";
  Parser parser;
  std::string out;
  size_t pos = 0;
  std::vector<std::string> values;
  while (pos < stream.size()) {
    const size_t before = out.size();
    const Result r = parser.parse(stream.data() + pos, stream.size() - pos, out);
    if (r == Result::NeedMore) break;
    REQUIRE(r == Result::Done);
    values.push_back(toJson(out.substr(before)));
    pos += parser.consumed();
  }
  CHECK(values == std::vector<std::string>{R"({"a":1})", R"(["b",2.5])", R"("c")", "7"});
  CHECK(pos == stream.size() - 1);  // the trailing space is never consumed
}

TEST_CASE("Parser rejects invalid JSON with the offset", "[json]") {
  CHECK(parseError("[1,]") == "unexpected character at offset 3");
  CHECK(parseError(R"({"a"})") == "expected ':' at offset 4");
  CHECK(parseError("tru ") == "invalid literal at offset 0");
  CHECK(parseError("[tru]") == "invalid literal at offset 1");
  CHECK(parseError("\"\x01\"") == "control character in string at offset 1");
  CHECK(parseError("[\"ab\ncd\"]") == "control character in string at offset 4");
  CHECK(parseError(R"("\ud800")") == "lone surrogate at offset 1");
  CHECK(parseError(R"("x\udc00")") == "lone surrogate at offset 2");
  CHECK(parseError(R"("\ud800\u0041")") == "lone surrogate at offset 1");
  CHECK(parseError(R"("\ud800\ud800")") == "lone surrogate at offset 1");
  CHECK(parseError(R"("\ud800\ue000")") == "lone surrogate at offset 1");
  CHECK(parseError(R"("\ud800\n")") == "lone surrogate at offset 1");
  CHECK(parseError(R"("\ud800x")") == "lone surrogate at offset 1");

  for (const std::string bad : {
           "]",
           "}",
           ",",
           ":",
           "+1",
           ".5",
           "01",
           "-01",
           "-a",
           "1.e5",
           "1.x",
           "1ex",
           "1e+x",
           "'a'",
           "[1 2]",
           "[1,2}",
           "{1:2}",
           "{\"a\" 1}",
           "{\"a\":1,}",
           "{\"a\":1 \"b\":2}",
           "[}",
           "{]",
           "\"\\x\"",
           "\"\\u12G4\"",
           "\"\\U0041\"",
           "nul1",
           "[falsy]",
           "[nan]",
           "[Infinity]",
           "[-]",
           "\xEF\xBB\xBF[]",
       }) {
    INFO(bad);
    const std::string error = parseError(bad);
    CHECK(error.find(" at offset ") != std::string::npos);
  }
}

TEST_CASE("Parser depth limit", "[json]") {
  CHECK(reparse("[[1]]") == "[[1]]");
  CHECK(parseAll("[[1]]", 2) == bytes({0x91, 0x91, 0x01}));
  CHECK(parseError("[[[1]]]", 2) == "nesting deeper than max_depth at offset 2");
  CHECK(parseError("[{\"a\":{\"b\":1}}]", 2) == "nesting deeper than max_depth at offset 6");
  CHECK(parseAll("7 ", 0) == bytes({0x07}));
  CHECK(parseError("[1]", 0) == "nesting deeper than max_depth at offset 0");
  // Empty containers are leaves, as in appendMsgpack.
  CHECK(parseAll("[]", 0) == bytes({0x90}));
  CHECK(parseAll("[{\"a\":{}}]", 2) == bytes({0x91, 0x81, 0xa1, 'a', 0x80}));

  const std::string at_default = std::string(256, '[') + std::string(256, ']');
  CHECK(parseAll(at_default).size() == 256);
  CHECK(parseAll(std::string(257, '[') + std::string(257, ']')).size() == 257);
  CHECK(parseError(std::string(257, '[') + "1" + std::string(257, ']')) ==
        "nesting deeper than max_depth at offset 256");
  // Hostile depth fails as soon as the limit is crossed, even with the data unfinished.
  CHECK(parseError(std::string(1000000, '[')) == "nesting deeper than max_depth at offset 256");
  std::string objects;
  for (int k = 0; k < 100000; ++k)
    objects += "{\"a\":";
  CHECK(parseError(objects) == "nesting deeper than max_depth at offset 1280");
}

TEST_CASE("Parser survives random and mutated input", "[json]") {
  std::mt19937 rng(99);
  const std::string seed = R"({"a":[1,-2.5e3,"x\u00e9\ud83d\ude00",true,null,{}],"b":"\\"})";
  const std::string alphabet = "[]{},:\"\\u0123456789abcdefABCDEF.eE+- \ntrunlsx";
  for (int iter = 0; iter < 20000; ++iter) {
    std::string text = seed;
    if (iter % 2 == 0) {
      for (int k = 0; k < 3; ++k) {
        text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
      }
    } else {
      text.resize(rng() % 32);
      for (char& c : text) {
        c = rng() % 4 == 0 ? static_cast<char>(rng()) : alphabet[rng() % alphabet.size()];
      }
    }
    const std::vector<char> buf(text.begin(), text.end());
    Parser parser(8);
    std::string out;
    INFO(text);
    const Result r = parser.parse(buf.data(), buf.size(), out);
    if (r == Result::Done) {
      REQUIRE(parser.consumed() <= buf.size());
      REQUIRE(parser.consumed() > 0);
      // The msgpack is one well-formed object and its JSON parses again. The first trip
      // may change text (invalid UTF-8 bytes come back as the code points U+0080..U+00FF),
      // after that the text is a fixed point.
      const std::string json = toJson(out) + " ";
      std::string again;
      REQUIRE(parser.parse(json.data(), json.size(), again) == Result::Done);
      const std::string json2 = toJson(again);
      CHECK(reparse(json2 + " ") == json2);
    } else {
      REQUIRE(out.empty());
      REQUIRE(parser.error().empty() == (r == Result::NeedMore));
    }
  }
}

}  // namespace
}  // namespace ferry::json
