// bridge.md both ways: the Fluentd → Heka tables (header keys, value types, defaults,
// payload_key, uuid) and Heka → Fluentd (header order, duplicate names, json, bytes), then
// the round trips over the Go client's vector messages and a record of every type.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>

#include "src/bridge.h"
#include "src/event_view.h"
#include "src/heka/heka_framing.h"
#include "src/heka/message.pb.h"
#include "src/heka_view.h"
#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace {

using ferry::Batch;
using ferry::Event;
using ferry::EventFormat;
using ferry::SourceInfo;
namespace mp = ferry::mp;

const std::string kUuidRaw("\x0f\x8f\xad\x5b\xd9\xcb\x46\x9f\xa1\x65\x70\x86\x77\x28\x95\x0e", 16);
constexpr char kUuidText[] = "0f8fad5b-d9cb-469f-a165-70867728950e";

// A one-event Fluentd batch holding `record` (msgpack map).
Batch fluentBatch(const std::string& tag, int64_t time_ns, const std::string& record,
                  std::shared_ptr<const SourceInfo> source = nullptr) {
  Batch b;
  b.bytes = std::make_shared<const std::string>(record);
  b.format = EventFormat::FluentRecord;
  b.tag = tag;
  b.source = std::move(source);
  Event e;
  e.time_ns = time_ns;
  e.record_off = 0;
  e.record_len = static_cast<uint32_t>(record.size());
  b.events.push_back(e);
  return b;
}

message::Message toHeka(const Batch& b, size_t k = 0) {
  std::string body;
  ferry::fluentToHekaMessage(b, b.events[k], body);
  message::Message m;
  REQUIRE(m.ParseFromString(body));
  return m;
}

std::shared_ptr<const SourceInfo> source(const std::string& payload_key = "") {
  return std::make_shared<const SourceInfo>(SourceInfo{"fwd_in", "ferry-host", payload_key});
}

const message::Field* field(const message::Message& m, const std::string& name) {
  for (const auto& f : m.fields()) {
    if (f.name() == name) return &f;
  }
  return nullptr;
}

// A canonical text of one msgpack object, with map keys sorted, so records compare
// regardless of key order. Integers and floats stay distinct ("i:1" vs "f:1").
std::string canon(mp::Reader& r) {
  mp::Value v;
  REQUIRE(r.next(v));
  switch (v.type) {
    case mp::Type::Nil:
      return "nil";
    case mp::Type::Bool:
      return v.boolean ? "true" : "false";
    case mp::Type::PosInt:
      return v.u > static_cast<uint64_t>(INT64_MAX) ? "u:" + std::to_string(v.u)
                                                    : "i:" + std::to_string(v.i);
    case mp::Type::NegInt:
      return "i:" + std::to_string(v.i);
    case mp::Type::Float: {
      std::ostringstream o;
      o.precision(17);
      o << "f:" << v.f;
      return o.str();
    }
    case mp::Type::Str:
      return "s:" + std::string(v.str());
    case mp::Type::Bin:
      return "b:" + std::string(v.str());
    case mp::Type::Ext:
      return "x" + std::to_string(v.ext_type) + ":" + std::string(v.str());
    case mp::Type::Array: {
      std::string out = "[";
      for (uint32_t k = 0; k < v.len; ++k)
        out += canon(r) + ",";
      return out + "]";
    }
    case mp::Type::Map: {
      std::map<std::string, std::string> kv;
      for (uint32_t k = 0; k < v.len; ++k) {
        std::string key = canon(r);
        kv[key] = canon(r);
      }
      std::string out = "{";
      for (const auto& [key, val] : kv)
        out += key + "=" + val + ",";
      return out + "}";
    }
  }
  return "?";
}

std::string canon(const std::string& msgpack) {
  mp::Reader r(msgpack);
  std::string out = canon(r);
  CHECK(r.atEnd());
  return out;
}

// The record's keys in order.
std::vector<std::string> keysOf(const std::string& record) {
  mp::Reader r(record);
  mp::Value m;
  REQUIRE(r.next(m));
  REQUIRE(m.type == mp::Type::Map);
  std::vector<std::string> keys;
  for (uint32_t k = 0; k < m.len; ++k) {
    mp::Value key;
    REQUIRE(r.next(key));
    keys.emplace_back(key.str());
    REQUIRE(r.skip());
  }
  return keys;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Fluentd event → Heka message

TEST_CASE("bridge fluent→heka: header keys fill the header and are not repeated as Fields") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(9);
  w.str("a");
  w.integer(1);
  w.str("Uuid");
  w.str(kUuidText);
  w.str("Logger");
  w.str("app");
  w.str("Severity");
  w.integer(3);
  w.str("Payload");
  w.str("hello");
  w.str("EnvVersion");
  w.str("1.2");
  w.str("Pid");
  w.integer(4242);
  w.str("Hostname");
  w.str("web-1");
  w.str("z");
  w.str("last");
  const auto m = toHeka(fluentBatch("app.access", 1700000000123456789, rec, source()));
  CHECK(m.type() == "app.access");
  CHECK(m.timestamp() == 1700000000123456789);
  CHECK(m.uuid() == kUuidRaw);
  CHECK(m.logger() == "app");
  CHECK(m.has_severity());
  CHECK(m.severity() == 3);
  CHECK(m.payload() == "hello");
  CHECK(m.env_version() == "1.2");
  CHECK(m.pid() == 4242);
  CHECK(m.hostname() == "web-1");
  REQUIRE(m.fields_size() == 2);  // only the non-header keys, in record order
  CHECK(m.fields(0).name() == "a");
  CHECK(m.fields(1).name() == "z");
}

TEST_CASE("bridge fluent→heka: defaults when the record has no header keys") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(1);
  w.str("msg");
  w.str("x");
  const auto m = toHeka(fluentBatch("t", 5, rec, source()));
  CHECK(m.logger() == "fwd_in");        // the input's name
  CHECK(m.hostname() == "ferry-host");  // the configured / this machine's host name
  CHECK_FALSE(m.has_severity());        // absent, reads as 7
  CHECK(m.severity() == 7);
  CHECK_FALSE(m.has_payload());
  CHECK_FALSE(m.has_env_version());
  CHECK_FALSE(m.has_pid());
  // A new random v4 uuid.
  REQUIRE(m.uuid().size() == 16);
  CHECK((static_cast<uint8_t>(m.uuid()[6]) >> 4) == 4);
  CHECK((static_cast<uint8_t>(m.uuid()[8]) & 0xC0) == 0x80);
}

TEST_CASE("bridge fluent→heka: header keys of the wrong type stay Fields") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(5);
  w.str("Logger");
  w.integer(1);  // not a string
  w.str("Severity");
  w.str("high");  // not an integer
  w.str("Pid");
  w.float64(1.5);
  w.str("Hostname");
  w.boolean(true);
  w.str("Uuid");
  w.str("not-a-uuid");
  const auto m = toHeka(fluentBatch("t", 0, rec, source()));
  CHECK(m.logger() == "fwd_in");
  CHECK(m.hostname() == "ferry-host");
  CHECK_FALSE(m.has_severity());
  CHECK_FALSE(m.has_pid());
  CHECK(m.uuid().size() == 16);
  REQUIRE(m.fields_size() == 5);
  CHECK(m.fields(0).name() == "Logger");
  CHECK(m.fields(0).value_type() == message::Field::INTEGER);
  CHECK(m.fields(1).name() == "Severity");
  CHECK(m.fields(4).name() == "Uuid");
  CHECK(m.fields(4).value_string(0) == "not-a-uuid");
}

TEST_CASE("bridge fluent→heka: Uuid as 16 raw bytes, upper-case text, and a new one per event") {
  SECTION("raw bytes (bin) are taken as they are") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(1);
    w.str("Uuid");
    w.bin(kUuidRaw);
    CHECK(toHeka(fluentBatch("t", 0, rec)).uuid() == kUuidRaw);
  }
  SECTION("upper-case text is parsed") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(1);
    w.str("Uuid");
    w.str("0F8FAD5B-D9CB-469F-A165-70867728950E");
    const auto m = toHeka(fluentBatch("t", 0, rec));
    CHECK(m.uuid() == kUuidRaw);
    CHECK(m.fields_size() == 0);
  }
  SECTION("events without one get different uuids") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(0);
    Batch b = fluentBatch("t", 0, rec);
    b.events.push_back(b.events[0]);
    CHECK(toHeka(b, 0).uuid() != toHeka(b, 1).uuid());
  }
}

TEST_CASE("bridge fluent→heka: payload_key") {
  SECTION("the key's string becomes Payload and is not repeated as a Field") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(2);
    w.str("log");
    w.str("GET / 200");
    w.str("stream");
    w.str("stdout");
    const auto m = toHeka(fluentBatch("docker", 0, rec, source("log")));
    CHECK(m.payload() == "GET / 200");
    REQUIRE(m.fields_size() == 1);
    CHECK(m.fields(0).name() == "stream");
  }
  SECTION("a Payload key wins; the payload_key stays a Field") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(2);
    w.str("log");
    w.str("from log");
    w.str("Payload");
    w.str("from Payload");
    const auto m = toHeka(fluentBatch("docker", 0, rec, source("log")));
    CHECK(m.payload() == "from Payload");
    REQUIRE(m.fields_size() == 1);
    CHECK(m.fields(0).name() == "log");
  }
  SECTION("a payload_key value that is not a string stays a Field") {
    std::string rec;
    mp::Writer w(rec);
    w.mapHeader(1);
    w.str("log");
    w.integer(5);
    const auto m = toHeka(fluentBatch("docker", 0, rec, source("log")));
    CHECK_FALSE(m.has_payload());
    REQUIRE(m.fields_size() == 1);
    CHECK(m.fields(0).value_type() == message::Field::INTEGER);
  }
}

TEST_CASE("bridge fluent→heka: value types (bridge.md type table)") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(17);
  w.str("str");
  w.str("v");
  w.str("bin");
  w.bin(std::string("\x00\x1e\x1f", 3));
  w.str("pos");
  w.integer(42);
  w.str("neg");
  w.integer(-7);
  w.str("huge");
  w.uinteger(UINT64_MAX);  // above INT64_MAX → DOUBLE
  w.str("f64");
  w.float64(2.5);
  w.str("f32");
  w.raw(std::string("\xca\x3f\xc0\x00\x00", 5));  // float32 1.5
  w.str("t");
  w.boolean(true);
  w.str("ints");
  w.arrayHeader(3);
  w.integer(1);
  w.integer(-2);
  w.integer(3);
  w.str("strs");
  w.arrayHeader(2);
  w.str("a");
  w.str("b");
  w.str("empty");
  w.arrayHeader(0);
  w.str("map");
  w.mapHeader(1);
  w.str("k");
  w.arrayHeader(2);
  w.integer(1);
  w.nil();
  w.str("mixed");
  w.arrayHeader(2);
  w.integer(1);
  w.str("a");
  w.str("nested");
  w.arrayHeader(1);
  w.arrayHeader(1);
  w.integer(1);
  w.str("nil");
  w.nil();
  w.str("ext");
  w.ext(5, "abc");
  w.str("bools");
  w.arrayHeader(2);
  w.boolean(false);
  w.boolean(true);
  const auto m = toHeka(fluentBatch("t", 0, rec));

  auto f = [&](const char* name) {
    const message::Field* p = field(m, name);
    INFO(name);
    REQUIRE(p != nullptr);
    return *p;
  };
  CHECK(f("str").value_type() == message::Field::STRING);
  CHECK(f("str").value_string(0) == "v");
  CHECK(f("bin").value_type() == message::Field::BYTES);
  CHECK(f("bin").value_bytes(0) == std::string("\x00\x1e\x1f", 3));
  CHECK(f("pos").value_type() == message::Field::INTEGER);
  CHECK(f("pos").value_integer(0) == 42);
  CHECK(f("neg").value_integer(0) == -7);
  CHECK(f("huge").value_type() == message::Field::DOUBLE);
  CHECK(f("huge").value_double(0) == static_cast<double>(UINT64_MAX));
  CHECK(f("f64").value_type() == message::Field::DOUBLE);
  CHECK(f("f64").value_double(0) == 2.5);
  CHECK(f("f32").value_type() == message::Field::DOUBLE);
  CHECK(f("f32").value_double(0) == 1.5);
  CHECK(f("t").value_type() == message::Field::BOOL);
  CHECK(f("t").value_bool(0));
  CHECK(f("ints").value_type() == message::Field::INTEGER);
  CHECK(f("ints").value_integer_size() == 3);
  CHECK(f("ints").value_integer(1) == -2);
  CHECK(f("strs").value_string_size() == 2);
  CHECK(f("empty").value_type() == message::Field::STRING);
  CHECK(f("empty").value_string_size() == 0);
  CHECK(f("map").value_type() == message::Field::STRING);
  CHECK(f("map").representation() == "json");
  CHECK(f("map").value_string(0) == R"({"k":[1,null]})");
  CHECK(f("mixed").representation() == "json");
  CHECK(f("mixed").value_string(0) == R"([1,"a"])");
  CHECK(f("nested").representation() == "json");
  CHECK(f("nested").value_string(0) == "[[1]]");
  CHECK(field(m, "nil") == nullptr);  // nil: no Field
  CHECK(f("ext").value_type() == message::Field::BYTES);
  CHECK(f("ext").representation() == "msgpack-ext:5");
  CHECK(f("ext").value_bytes(0) == "abc");
  CHECK(f("bools").value_type() == message::Field::BOOL);
  CHECK(f("bools").value_bool_size() == 2);
  // Fields in record order, nil skipped.
  std::vector<std::string> names;
  for (const auto& x : m.fields())
    names.push_back(x.name());
  CHECK(names == std::vector<std::string>{"str", "bin", "pos", "neg", "huge", "f64", "f32", "t",
                                          "ints", "strs", "empty", "map", "mixed", "nested", "ext",
                                          "bools"});
}

// ---------------------------------------------------------------------------------------
// Heka message → Fluentd record

TEST_CASE("bridge heka→fluent: header fields under their Heka names, then Fields") {
  message::Message m;
  m.set_uuid(kUuidRaw);
  m.set_timestamp(1);
  m.set_type("T");
  m.set_logger("L");
  m.set_severity(2);
  m.set_payload("P");
  m.set_env_version("0.8");
  m.set_pid(-1);
  m.set_hostname("H");
  auto* f = m.add_fields();
  f->set_name("n");
  f->set_value_type(message::Field::INTEGER);
  f->add_value_integer(5);
  std::string record;
  REQUIRE(ferry::hekaToFluentRecord(m.SerializeAsString(), record));

  std::string expected;
  mp::Writer w(expected);
  w.mapHeader(8);
  w.str("Uuid");
  w.str(kUuidText);
  w.str("Logger");
  w.str("L");
  w.str("Severity");
  w.integer(2);
  w.str("Payload");
  w.str("P");
  w.str("EnvVersion");
  w.str("0.8");
  w.str("Pid");
  w.integer(-1);
  w.str("Hostname");
  w.str("H");
  w.str("n");
  w.integer(5);
  CHECK(record == expected);  // byte for byte: key order and msgpack types
}

TEST_CASE("bridge heka→fluent: absent headers are absent; a uuid that is not 16 bytes too") {
  message::Message m;
  m.set_uuid("short");
  m.set_timestamp(1);
  std::string record;
  REQUIRE(ferry::hekaToFluentRecord(m.SerializeAsString(), record));
  CHECK(keysOf(record).empty());
}

TEST_CASE("bridge heka→fluent: values, arrays, duplicates, json, bytes") {
  message::Message m;
  m.set_uuid(kUuidRaw);
  m.set_timestamp(1);
  auto add = [&](const char* name, message::Field::ValueType t) {
    auto* f = m.add_fields();
    f->set_name(name);
    f->set_value_type(t);
    return f;
  };
  add("one", message::Field::STRING)->add_value_string("x");
  auto* many = add("many", message::Field::DOUBLE);
  many->add_value_double(1.5);
  many->add_value_double(-2);
  add("none", message::Field::INTEGER);
  add("dup", message::Field::STRING)->add_value_string("first");
  add("blob", message::Field::BYTES)->add_value_bytes(std::string("\x00\x1e", 2));
  auto* dup2 = add("dup", message::Field::STRING);
  dup2->add_value_string("second");
  dup2->add_value_string("third");
  auto* js = add("js", message::Field::STRING);
  js->set_representation("json");
  js->add_value_string(R"({"a":[1,2.5,null,"s"]})");
  auto* bad = add("badjs", message::Field::STRING);
  bad->set_representation("json");
  bad->add_value_string("{nope");
  auto* unit = add("ms", message::Field::INTEGER);
  unit->set_representation("ms");
  unit->add_value_integer(12);
  add("b", message::Field::BOOL)->add_value_bool(false);
  std::string record;
  REQUIRE(ferry::hekaToFluentRecord(m.SerializeAsString(), record));

  std::string expected;
  mp::Writer w(expected);
  w.mapHeader(10);
  w.str("Uuid");
  w.str(kUuidText);
  w.str("one");
  w.str("x");
  w.str("many");
  w.arrayHeader(2);
  w.float64(1.5);
  w.float64(-2);
  w.str("none");
  w.arrayHeader(0);
  w.str("dup");  // first occurrence's position, all values in order
  w.arrayHeader(3);
  w.str("first");
  w.str("second");
  w.str("third");
  w.str("blob");
  w.bin(std::string("\x00\x1e", 2));
  w.str("js");
  w.mapHeader(1);
  w.str("a");
  w.arrayHeader(4);
  w.integer(1);
  w.float64(2.5);
  w.nil();
  w.str("s");
  w.str("badjs");  // representation json but not JSON: kept as the string
  w.str("{nope");
  w.str("ms");  // other representations do not survive
  w.integer(12);
  w.str("b");
  w.boolean(false);
  CHECK(record == expected);
}

TEST_CASE("bridge heka→fluent: a body that is not protobuf is refused") {
  std::string record;
  CHECK_FALSE(ferry::hekaToFluentRecord(std::string("\xff\xff\xff", 3), record));
}

// ---------------------------------------------------------------------------------------
// Round trips

namespace {

// What Heka → Fluentd → Heka must give back for `in` (bridge.md "Round trip"): the same
// message, with duplicate names joined at the first occurrence, representations other
// than json dropped, an empty Type replaced by the default tag, and (not listed in
// bridge.md, but what the type table implies) a Field with no values coming back as an
// empty STRING Field, since an empty array carries no type.
message::Message expectedRoundTrip(const message::Message& in) {
  message::Message out = in;
  out.clear_fields();
  if (!in.has_type() || in.type().empty()) out.set_type("heka");
  for (const auto& f : in.fields()) {
    message::Field* into = nullptr;
    for (auto& g : *out.mutable_fields()) {
      if (g.name() == f.name()) into = &g;
    }
    if (into == nullptr) {
      into = out.add_fields();
      into->set_name(f.name());
      into->set_value_type(f.value_type());
      if (f.representation() == "json") into->set_representation("json");
    }
    into->mutable_value_string()->MergeFrom(f.value_string());
    into->mutable_value_bytes()->MergeFrom(f.value_bytes());
    into->mutable_value_integer()->MergeFrom(f.value_integer());
    into->mutable_value_double()->MergeFrom(f.value_double());
    into->mutable_value_bool()->MergeFrom(f.value_bool());
  }
  for (auto& g : *out.mutable_fields()) {
    const int n = g.value_string_size() + g.value_bytes_size() + g.value_integer_size() +
                  g.value_double_size() + g.value_bool_size();
    if (n == 0) g.set_value_type(message::Field::STRING);
  }
  return out;
}

// Semantic equality (presence of optional headers included), with a readable diff.
void checkSameMessage(const message::Message& want, const message::Message& got) {
  INFO("want: " << want.ShortDebugString());
  INFO("got:  " << got.ShortDebugString());
  CHECK(want.uuid() == got.uuid());
  CHECK(want.timestamp() == got.timestamp());
  CHECK(want.type() == got.type());
  CHECK(want.has_logger() == got.has_logger());
  CHECK(want.logger() == got.logger());
  CHECK(want.has_severity() == got.has_severity());
  CHECK(want.severity() == got.severity());
  CHECK(want.has_payload() == got.has_payload());
  CHECK(want.payload() == got.payload());
  CHECK(want.has_env_version() == got.has_env_version());
  CHECK(want.env_version() == got.env_version());
  CHECK(want.has_pid() == got.has_pid());
  CHECK(want.pid() == got.pid());
  CHECK(want.has_hostname() == got.has_hostname());
  CHECK(want.hostname() == got.hostname());
  REQUIRE(want.fields_size() == got.fields_size());
  for (int k = 0; k < want.fields_size(); ++k) {
    const auto& a = want.fields(k);
    const auto& b = got.fields(k);
    INFO("field " << a.name());
    CHECK(a.name() == b.name());
    CHECK(a.value_type() == b.value_type());
    CHECK(a.representation() == b.representation());
    CHECK(std::equal(a.value_string().begin(), a.value_string().end(), b.value_string().begin(),
                     b.value_string().end()));
    CHECK(std::equal(a.value_bytes().begin(), a.value_bytes().end(), b.value_bytes().begin(),
                     b.value_bytes().end()));
    CHECK(std::equal(a.value_integer().begin(), a.value_integer().end(), b.value_integer().begin(),
                     b.value_integer().end()));
    CHECK(std::equal(a.value_double().begin(), a.value_double().end(), b.value_double().begin(),
                     b.value_double().end()));
    CHECK(std::equal(a.value_bool().begin(), a.value_bool().end(), b.value_bool().begin(),
                     b.value_bool().end()));
  }
}

// Heka body → Fluentd event (tag by hekaTag's defaults, time = Timestamp) → Heka body.
message::Message hekaRoundTrip(const std::string& body,
                               std::shared_ptr<const SourceInfo> src = nullptr) {
  message::Message in;
  REQUIRE(in.ParseFromString(body));
  std::string record;
  REQUIRE(ferry::hekaToFluentRecord(body, record));
  const std::string tag = in.type().empty() ? "heka" : in.type();
  return toHeka(fluentBatch(tag, in.timestamp(), record, std::move(src)));
}

}  // namespace

TEST_CASE("bridge round trip heka→fluent→heka: the Go client's 7 vector messages") {
  const std::string stream =
      readFile(std::string(FERRY_SHARED_DIR) + "/vectors/heka/go-client-gen-none.bin");
  ferry::heka::HekaFramingSplitter sp;
  sp.append(stream.data(), stream.size());
  std::string header, body;
  int n = 0;
  while (sp.next(header, body)) {
    ++n;
    message::Message in;
    REQUIRE(in.ParseFromString(body));
    INFO("message " << n << " type " << in.type());
    checkSameMessage(expectedRoundTrip(in), hekaRoundTrip(body));
  }
  CHECK(n == 7);
}

TEST_CASE("bridge round trip heka→fluent→heka: through an input, absent Logger/Hostname appear") {
  message::Message in;
  in.set_uuid(kUuidRaw);
  in.set_timestamp(-1);
  in.set_type("x");
  const message::Message back = hekaRoundTrip(in.SerializeAsString(), source());
  // Documented defaults of the Fluentd → Heka direction (bridge.md first table).
  CHECK(back.logger() == "fwd_in");
  CHECK(back.hostname() == "ferry-host");
  CHECK(back.uuid() == kUuidRaw);
  CHECK(back.timestamp() == -1);
}

TEST_CASE("bridge round trip fluent→heka→fluent: same tag, time and record") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(14);
  w.str("s");
  w.str("text ✓");
  w.str("i");
  w.integer(-5);
  w.str("big");
  w.integer(INT64_MAX);
  w.str("f");
  w.float64(0.1);
  w.str("b");
  w.boolean(true);
  w.str("bin");
  w.bin(std::string("\x00\x01\x1e", 3));
  w.str("ints");
  w.arrayHeader(2);
  w.integer(1);
  w.integer(2);
  w.str("empty");
  w.arrayHeader(0);
  w.str("map");
  w.mapHeader(2);
  w.str("a");
  w.arrayHeader(3);
  w.integer(1);
  w.float64(2.5);
  w.nil();
  w.str("b");
  w.mapHeader(0);
  w.str("mixed");
  w.arrayHeader(3);
  w.integer(1);
  w.str("two");
  w.boolean(false);
  w.str("nested");
  w.arrayHeader(2);
  w.arrayHeader(1);
  w.integer(1);
  w.arrayHeader(0);
  w.str("Logger");
  w.str("my-logger");
  w.str("Severity");
  w.integer(4);
  w.str("ext");
  w.ext(7, "xyz");
  const Batch b = fluentBatch("app.web", 1700000000987654321, rec);
  std::string body;
  ferry::fluentToHekaMessage(b, b.events[0], body);
  message::Message m;
  REQUIRE(m.ParseFromString(body));
  // Tag and time (ns) survive as Type and Timestamp.
  CHECK(ferry::hekaTag(ferry::HekaWireView(body), {}) == "app.web");
  CHECK(m.timestamp() == 1700000000987654321);

  std::string back;
  REQUIRE(ferry::hekaToFluentRecord(body, back));
  // Expected: the same record plus the new Uuid, with the ext value as bin.
  std::string want;
  {
    mp::Writer f(want);
    f.mapHeader(15);
    mp::Reader r(rec);
    mp::Value top;
    REQUIRE(r.next(top));
    for (uint32_t k = 0; k < top.len; ++k) {
      mp::Value key;
      REQUIRE(r.next(key));
      f.str(key.str());
      const uint8_t* start = r.pos();
      mp::Reader vr = r;
      mp::Value v;
      REQUIRE(vr.next(v));
      REQUIRE(r.skip());
      if (v.type == mp::Type::Ext) {
        f.bin(v.str());
      } else {
        f.raw(std::string(reinterpret_cast<const char*>(start), r.pos() - start));
      }
    }
    f.str("Uuid");
    f.str(ferry::uuidText(m.uuid()));
  }
  CHECK(canon(back) == canon(want));
  // Headers come first in a bridged record; the rest keep their order.
  const auto keys = keysOf(back);
  REQUIRE(keys.size() == 15);
  CHECK(keys[0] == "Uuid");
  CHECK(keys[1] == "Logger");
  CHECK(keys[2] == "Severity");
  CHECK(keys[3] == "s");
}

TEST_CASE("bridge round trip fluent→heka→fluent: through an input, Logger and Hostname appear") {
  std::string rec;
  mp::Writer w(rec);
  w.mapHeader(1);
  w.str("k");
  w.str("v");
  const Batch b = fluentBatch("t", 0, rec, source());
  std::string body, back;
  ferry::fluentToHekaMessage(b, b.events[0], body);
  REQUIRE(ferry::hekaToFluentRecord(body, back));
  // Not listed in bridge.md's round-trip paragraph, which names only the new Uuid: the
  // first table's defaults (Logger = input name, Hostname = this host) become keys too.
  CHECK(keysOf(back) == std::vector<std::string>{"Uuid", "Logger", "Hostname", "k"});
}
