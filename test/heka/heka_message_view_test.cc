// Every matcher vector of heka.md §3.4 evaluated on the spec's test message built twice:
// as a real Heka protobuf Message (HekaMessageView) and as the equivalent Fluentd event
// (FluentEventView over a msgpack record, bridge.md). Plus the Heka framing splitter.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "src/event_view.h"
#include "src/heka/heka_framing.h"
#include "src/heka/heka_message_view.h"
#include "src/matcher.h"
#include "src/msgpack_writer.h"

namespace {

constexpr char kUuidText[] = "0f8fad5b-d9cb-469f-a165-70867728950e";
const std::string kUuidRaw("\x0f\x8f\xad\x5b\xd9\xcb\x46\x9f\xa1\x65\x70\x86\x77\x28\x95\x0e", 16);

message::Message testHekaMessage() {
  message::Message m;
  m.set_uuid(kUuidRaw);
  m.set_timestamp(1700000000123456789);
  m.set_type("TEST");
  m.set_logger("GoSpec");
  m.set_severity(6);
  m.set_payload("Test Payload");
  m.set_env_version("0.8");
  m.set_pid(4242);
  m.set_hostname("ferry-test-host");
  auto str = [&](const char* name, std::initializer_list<const char*> values) {
    auto* f = m.add_fields();
    f->set_name(name);
    for (const char* v : values)
      f->add_value_string(v);
  };
  str("foo", {"bar"});
  auto* number = m.add_fields();
  number->set_name("number");
  number->set_value_type(message::Field::INTEGER);
  number->add_value_integer(64);
  auto* bytes = m.add_fields();
  bytes->set_name("bytes");
  bytes->set_value_type(message::Field::BYTES);
  bytes->add_value_bytes("data");
  auto* ints = m.add_fields();
  ints->set_name("int");
  ints->set_value_type(message::Field::INTEGER);
  ints->add_value_integer(999);
  ints->add_value_integer(1024);
  auto* dbl = m.add_fields();
  dbl->set_name("double");
  dbl->set_value_type(message::Field::DOUBLE);
  dbl->add_value_double(99.9);
  auto* b = m.add_fields();
  b->set_name("bool");
  b->set_value_type(message::Field::BOOL);
  b->add_value_bool(true);
  str("foo", {"alternate"});
  str("Payload", {"name=test;type=web;"});
  str("Timestamp", {"Mon Jan 02 15:04:05 -0700 2006"});
  auto* zero = m.add_fields();
  zero->set_name("zero");
  zero->set_value_type(message::Field::INTEGER);
  zero->add_value_integer(0);
  str("string", {"43"});
  return m;
}

// The same message as a Fluentd event: header values under their Heka names, each
// field as a record key (a second `foo` key is legal msgpack and reads as occurrence 1).
// A field named `Payload` cannot exist beside the Payload header (bridge.md), so it is
// left out; vectors that read Fields[Payload] are Heka-only.
ferry::Batch testFluentBatch() {
  std::string rec;
  ferry::mp::Writer w(rec);
  w.mapHeader(18);
  w.str("Uuid");
  w.str(kUuidText);
  w.str("Logger");
  w.str("GoSpec");
  w.str("Severity");
  w.integer(6);
  w.str("Payload");
  w.str("Test Payload");
  w.str("EnvVersion");
  w.str("0.8");
  w.str("Pid");
  w.integer(4242);
  w.str("Hostname");
  w.str("ferry-test-host");
  w.str("foo");
  w.str("bar");
  w.str("number");
  w.integer(64);
  w.str("bytes");
  w.bin("data");
  w.str("int");
  w.arrayHeader(2);
  w.integer(999);
  w.integer(1024);
  w.str("double");
  w.float64(99.9);
  w.str("bool");
  w.boolean(true);
  w.str("foo");
  w.str("alternate");
  w.str("Timestamp");
  w.str("Mon Jan 02 15:04:05 -0700 2006");
  w.str("zero");
  w.integer(0);
  w.str("string");
  w.str("43");
  w.str("none");
  w.nil();
  ferry::Batch b;
  b.bytes = std::make_shared<const std::string>(rec);
  b.tag = "TEST";
  b.events.push_back(ferry::Event{.time_ns = 1700000000123456789,
                                  .record_off = 0,
                                  .record_len = static_cast<uint32_t>(rec.size())});
  return b;
}

struct Vector {
  std::string verdict, expr;
};

std::vector<Vector> readVectors() {
  std::ifstream in(std::string(FERRY_SOURCE_DIR) + "/test/data/matcher_vectors.txt");
  REQUIRE(in.good());
  std::vector<Vector> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    const auto tab = line.find('\t');
    REQUIRE(tab != std::string::npos);
    out.push_back({line.substr(0, tab), line.substr(tab + 1)});
  }
  return out;
}

}  // namespace

TEST_CASE("matcher vectors hold on a real Heka message and on the Fluentd event",
          "[matcher][heka]") {
  const auto vectors = readVectors();
  REQUIRE(vectors.size() >= 90);
  const message::Message hm = testHekaMessage();
  // Round-trip through the wire form, as a received message would be.
  message::Message received;
  REQUIRE(ferry::heka::parseHekaMessage(hm.SerializeAsString(), received));
  const ferry::heka::HekaMessageView heka_view(received);
  const ferry::Batch batch = testFluentBatch();
  const ferry::FluentEventView fluent_view(batch, batch.events[0]);
  size_t both = 0, heka_only = 0;
  for (const auto& v : vectors) {
    if (v.verdict == "parse_error") continue;
    std::string error;
    auto m = ferry::Matcher::compile(v.expr, error);
    INFO(v.expr << " (" << error << ")");
    REQUIRE(m);
    const bool want = v.verdict == "true";
    CHECK(m->matches(heka_view) == want);
    if (v.expr.find("Fields[Payload]") != std::string::npos) {
      ++heka_only;
      continue;
    }
    CHECK(m->matches(fluent_view) == want);
    ++both;
  }
  CHECK(both >= 60);
  CHECK(heka_only == 5);  // the Fields[Payload] vectors
}

TEST_CASE("Fluentd event view follows bridge.md types", "[matcher][bridge]") {
  std::string rec;
  ferry::mp::Writer w(rec);
  w.mapHeader(9);
  w.str("nested");
  w.mapHeader(1);
  w.str("a");
  w.arrayHeader(2);
  w.integer(1);
  w.str("x");
  w.str("mixed");
  w.arrayHeader(2);
  w.integer(1);
  w.str("two");
  w.str("empty");
  w.arrayHeader(0);
  w.str("big");
  w.uinteger(UINT64_MAX);
  w.str("nil");
  w.nil();
  w.str("strs");
  w.arrayHeader(2);
  w.str("p");
  w.str("q");
  w.str("Severity");
  w.str("not an int");  // wrong type: not a header, stays a Field
  w.str("Logger");
  w.integer(5);  // likewise
  w.str("log");
  w.str("docker line");
  ferry::Batch b;
  b.bytes = std::make_shared<const std::string>(rec);
  b.tag = "docker.web";
  b.source = std::make_shared<const ferry::SourceInfo>(ferry::SourceInfo{"fwd", "host-1", "log"});
  b.events.push_back(
      ferry::Event{.time_ns = 5, .record_off = 0, .record_len = static_cast<uint32_t>(rec.size())});
  ferry::FluentEventView view(b, b.events[0]);
  auto eval = [&](const char* expr) {
    std::string error;
    auto m = ferry::Matcher::compile(expr, error);
    INFO(expr << " " << error);
    REQUIRE(m);
    return m->matches(view);
  };
  CHECK(eval(R"(Fields[nested] == '{"a":[1,"x"]}')"));
  CHECK(eval(R"(Fields[mixed] == '[1,"two"]')"));
  CHECK(eval("Fields[empty] == NIL"));
  CHECK(eval("Fields[big] > 1.8e19"));
  CHECK(eval("Fields[nil] == NIL"));
  CHECK(eval("Fields[strs][0][1] == 'q'"));
  CHECK(eval("Fields[strs] == 'p'"));
  CHECK(eval("Severity == 7"));  // the Severity key is not an integer
  CHECK(eval("Fields[Severity] == 'not an int'"));
  CHECK(eval("Logger == 'fwd'"));  // defaults to the input's name
  CHECK(eval("Fields[Logger] == 5"));
  CHECK(eval("Hostname == 'host-1'"));
  CHECK(eval("Payload == 'docker line'"));  // payload_key
  CHECK(eval("Fields[log] == NIL"));        // it filled Payload, so it is not a Field
  CHECK(eval("Type == 'docker.web' && Timestamp == 5"));
  CHECK(view.stringVar(ferry::StringVar::Uuid).size() == 36);  // generated once
  CHECK(view.stringVar(ferry::StringVar::Uuid) == view.stringVar(ferry::StringVar::Uuid));
}

TEST_CASE("Heka framing splits records and resynchronises on garbage", "[heka]") {
  // heka.md §2.3's 67-byte record.
  const std::string hex =
      "1e02083e1f0a10901d5627ec494c8fba8e849baaf7a6f610a6978a8fb6c1ae8e131a0968656b6162656e6368"
      "28063a03302e3840bfe5014a0a7472696e6b2d78323330";
  std::string record;
  for (size_t i = 0; i < hex.size(); i += 2)
    record += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  REQUIRE(record.size() == 67);
  const std::string stream = "BOGUS" + record + std::string("\x1e\x05garbage", 9) + record;
  for (size_t step : {1u, 7u, 1000u}) {
    ferry::heka::HekaFramingSplitter sp;
    std::string header, body;
    std::vector<message::Message> got;
    for (size_t off = 0; off < stream.size(); off += step) {
      sp.append(stream.data() + off, std::min(step, stream.size() - off));
      while (sp.next(header, body)) {
        message::Message m;
        REQUIRE(ferry::heka::parseHekaMessage(body, m));
        got.push_back(m);
      }
    }
    INFO(step);
    REQUIRE(got.size() == 2);
    CHECK(got[1].type() == "hekabench");
    CHECK(got[1].timestamp() == 1377180144118172582);
    CHECK(got[1].pid() == 29375);
    CHECK(ferry::uuidText(got[1].uuid()) == "901d5627-ec49-4c8f-ba8e-849baaf7a6f6");
    CHECK(sp.skippedBytes() == 5 + 9);
  }
  // An oversized declared length is skipped, not waited for.
  ferry::heka::HekaFramingSplitter small(16);
  small.append(record.data(), record.size());
  std::string h, b;
  CHECK_FALSE(small.next(h, b));
  CHECK(small.oversizedRecords() == 1);
  CHECK(ferry::heka::frameHekaRecord(std::string(62, 'x')).substr(0, 5) ==
        std::string("\x1e\x02\x08\x3e\x1f", 5));
}
