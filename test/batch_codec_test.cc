// Batch codec (the spool record payload): round trips of Fluentd and Heka batches, then
// damage: every truncation, every flipped byte, counts and lengths larger than the payload,
// and each validation rule.
#include <catch2/catch.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/batch.h"
#include "src/batch_codec.h"

using ferry::Batch;
using ferry::BatchPtr;
using ferry::Event;
using ferry::EventFormat;
using ferry::SourceInfo;

namespace {

// Builds a batch the way an input does: events are offsets into one shared frame that
// holds more than the events (a header, other chunks' bytes).
struct BatchBuilder {
  std::string frame = "frame-header-junk";
  Batch batch;

  void add(int64_t time_ns, std::string_view time, std::string_view record, uint16_t signer = 0) {
    frame += "<gap>";
    Event e;
    e.time_ns = time_ns;
    e.time_off = static_cast<uint32_t>(frame.size());
    e.time_len = static_cast<uint32_t>(time.size());
    frame += time;
    frame += "|";
    e.record_off = static_cast<uint32_t>(frame.size());
    e.record_len = static_cast<uint32_t>(record.size());
    frame += record;
    e.signer = signer;
    batch.events.push_back(e);
  }
  Batch done() {
    frame += "frame-trailer";
    batch.bytes = std::make_shared<const std::string>(frame);
    return batch;
  }
};

std::string bin(std::initializer_list<int> bytes) {
  std::string s;
  for (int b : bytes)
    s.push_back(static_cast<char>(b));
  return s;
}

// msgpack EventTime (ext 8, type 0) and a positive fixint-or-uint32 time.
std::string eventTime(uint32_t sec, uint32_t nsec) {
  std::string s = bin({0xd7, 0x00});
  for (int i = 3; i >= 0; --i)
    s.push_back(static_cast<char>(sec >> (8 * i)));
  for (int i = 3; i >= 0; --i)
    s.push_back(static_cast<char>(nsec >> (8 * i)));
  return s;
}
std::string intTime(uint32_t sec) {
  std::string s = bin({0xce});
  for (int i = 3; i >= 0; --i)
    s.push_back(static_cast<char>(sec >> (8 * i)));
  return s;
}
// {"msg": <text>}
std::string record(std::string_view text) {
  std::string s = bin({0x81, 0xa3});
  s += "msg";
  s.push_back(static_cast<char>(0xd9));
  s.push_back(static_cast<char>(text.size()));
  s += text;
  return s;
}

std::shared_ptr<const SourceInfo> source(std::string name, std::string host, std::string key) {
  auto s = std::make_shared<SourceInfo>();
  s->name = std::move(name);
  s->hostname = std::move(host);
  s->payload_key = std::move(key);
  return s;
}

std::string encode(const Batch& b) {
  std::string out;
  ferry::encodeBatch(b, out);
  return out;
}

BatchPtr decodeOk(std::string_view payload) {
  std::string error;
  BatchPtr b = ferry::decodeBatch(payload, error);
  INFO(error);
  REQUIRE(b != nullptr);
  return b;
}

std::string decodeError(std::string_view payload) {
  std::string error;
  BatchPtr b = ferry::decodeBatch(payload, error);
  REQUIRE(b == nullptr);
  REQUIRE(!error.empty());
  REQUIRE(error.find('\n') == std::string::npos);
  return error;
}

void requireSame(const Batch& want, const Batch& got) {
  REQUIRE(got.format == want.format);
  REQUIRE(got.tag == want.tag);
  REQUIRE(got.source != nullptr);
  const SourceInfo none;
  const SourceInfo& ws = want.source ? *want.source : none;
  CHECK(got.source->name == ws.name);
  CHECK(got.source->hostname == ws.hostname);
  CHECK(got.source->payload_key == ws.payload_key);
  REQUIRE(got.signers == want.signers);
  REQUIRE(got.events.size() == want.events.size());
  REQUIRE(got.bytes != nullptr);
  size_t stored = 0;
  for (size_t i = 0; i < want.events.size(); ++i) {
    const Event& w = want.events[i];
    const Event& g = got.events[i];
    CHECK(g.time_ns == w.time_ns);
    CHECK(g.signer == w.signer);
    CHECK(got.record(g) == want.record(w));
    if (want.format == EventFormat::FluentRecord) {
      CHECK(got.time(g) == want.time(w));
    } else {
      CHECK(g.time_len == 0);
    }
    REQUIRE(uint64_t{g.time_off} + g.time_len <= got.bytes->size());
    REQUIRE(uint64_t{g.record_off} + g.record_len <= got.bytes->size());
    stored += g.time_len + g.record_len;
  }
  // Only the events' bytes, not the frame they were cut from.
  CHECK(got.bytes->size() == stored);
}

Batch fluentBatch() {
  BatchBuilder bb;
  bb.add(1700000000123456789, eventTime(1700000000, 123456789), record("first"));
  bb.add(1700000001000000000, intTime(1700000001), record("second, int time"));
  bb.add(-5, eventTime(0, 0), record(""));
  bb.add(1700000002999999999, eventTime(1700000002, 999999999), record(std::string(300, 'x')));
  Batch b = bb.done();
  b.format = EventFormat::FluentRecord;
  b.tag = "app.web.access";
  b.source = source("forward_in", "host-1.example", "message");
  return b;
}

Batch hekaBatch() {
  BatchBuilder bb;
  bb.add(1, "", "\x0a\x10heka-uuid-bytes!\x10\x01", 0);
  bb.add(2, "", std::string("\x0a\x10\x00\x01\x02 binary body\x00", 18), 1);
  bb.add(3, "", "third", 2);
  bb.add(INT64_MIN, "", "", 1);
  Batch b = bb.done();
  b.format = EventFormat::HekaMessage;
  b.signers = {"alice", "bob"};
  b.source = source("heka_tcp", "collector", "");
  return b;
}

}  // namespace

TEST_CASE("batch codec: FluentRecord round trip with EventTime and int times", "[batch_codec]") {
  const Batch b = fluentBatch();
  const std::string enc = encode(b);
  REQUIRE(enc.size() >= 3);
  CHECK(static_cast<uint8_t>(enc[0]) == 'B');
  CHECK(static_cast<uint8_t>(enc[1]) == 1);
  CHECK(static_cast<uint8_t>(enc[2]) == 0);
  CHECK(enc.size() < b.bytes->size() + 200);  // the frame's gaps are not stored
  const BatchPtr d = decodeOk(enc);
  requireSame(b, *d);
  CHECK(encode(*d) == enc);
}

TEST_CASE("batch codec: HekaMessage round trip with signers", "[batch_codec]") {
  Batch b = hekaBatch();
  const std::string enc = encode(b);
  const BatchPtr d = decodeOk(enc);
  requireSame(b, *d);
  CHECK(d->signers == std::vector<std::string>{"alice", "bob"});
  CHECK(d->events[2].signer == 2);
  CHECK(encode(*d) == enc);

  // A Heka event's time fields are unused: whatever they hold is not stored.
  b.events[0].time_off = 0;
  b.events[0].time_len = 5;
  CHECK(encode(b) == enc);
}

TEST_CASE("batch codec: empty tag, empty batch, no source", "[batch_codec]") {
  SECTION("empty tag") {
    Batch b = fluentBatch();
    b.tag.clear();
    const BatchPtr d = decodeOk(encode(b));
    requireSame(b, *d);
    CHECK(d->tag.empty());
  }
  SECTION("no events, no bytes, no source") {
    Batch b;
    b.tag = "t";
    const std::string enc = encode(b);
    CHECK(enc.size() == 2 + 1 + 4 + 1 + 3 * 4 + 2 + 4);
    const BatchPtr d = decodeOk(enc);
    requireSame(b, *d);
    CHECK(d->events.empty());
    CHECK(d->bytes->empty());
    CHECK(d->source->name.empty());
  }
  SECTION("events with empty time and record") {
    BatchBuilder bb;
    bb.add(7, "", "");
    bb.add(8, "", "");
    Batch b = bb.done();
    const BatchPtr d = decodeOk(encode(b));
    requireSame(b, *d);
  }
}

TEST_CASE("batch codec: encodeBatch appends", "[batch_codec]") {
  const Batch b = fluentBatch();
  std::string out = "prefix";
  ferry::encodeBatch(b, out);
  ferry::encodeBatch(b, out);
  const std::string one = encode(b);
  REQUIRE(out == "prefix" + one + one);
}

TEST_CASE("batch codec: every truncation fails cleanly", "[batch_codec]") {
  for (const Batch& b : {fluentBatch(), hekaBatch(), Batch{}}) {
    const std::string enc = encode(b);
    for (size_t n = 0; n < enc.size(); ++n) {
      INFO("length " << n << " of " << enc.size());
      // A copy of exactly n bytes, so ASan catches any read past the end.
      const std::unique_ptr<char[]> buf(new char[n + 1]);
      std::copy(enc.begin(), enc.begin() + static_cast<std::ptrdiff_t>(n), buf.get());
      decodeError(std::string_view(buf.get(), n));
    }
    const std::string err = decodeError(enc + "x");
    CHECK(err.find("trailing") != std::string::npos);
  }
}

TEST_CASE("batch codec: flipped bytes never crash", "[batch_codec]") {
  for (const Batch& b : {fluentBatch(), hekaBatch()}) {
    const std::string enc = encode(b);
    size_t accepted = 0;
    for (size_t pos = 0; pos < enc.size(); ++pos) {
      for (int mask : {0x01, 0x10, 0x80, 0xff}) {
        std::string bad = enc;
        bad[pos] = static_cast<char>(bad[pos] ^ mask);
        std::string error;
        const BatchPtr d = ferry::decodeBatch(bad, error);
        if (d) {
          // Whatever is accepted is exactly what the encoder writes for it.
          ++accepted;
          INFO("pos " << pos << " mask " << mask);
          CHECK(encode(*d) == bad);
        } else {
          CHECK(!error.empty());
        }
      }
    }
    // Flips inside times, records and names still decode; flips in structure do not.
    CHECK(accepted > 0);
    CHECK(accepted < 4 * enc.size());
  }
}

TEST_CASE("batch codec: counts and lengths larger than the payload", "[batch_codec]") {
  const std::string head = bin({'B', 1, 0}) + std::string(16, '\0');  // format, 4 empty strings
  SECTION("signer count") {
    const std::string err = decodeError(head + bin({0xff, 0xff}) + std::string(12, 'a'));
    CHECK(err.find("signer") != std::string::npos);
  }
  SECTION("event count") {
    std::string p = head + bin({0, 0, 0xff, 0xff, 0xff, 0xff}) + std::string(40, '\0');
    std::string err;
    REQUIRE_NOTHROW(err = decodeError(p));
    CHECK(err.find("events") != std::string::npos);
    // Just enough bytes for the fixed fields of 2 events, but 3 claimed.
    p = head + bin({0, 0, 3, 0, 0, 0}) + std::string(2 * 18, '\0');
    REQUIRE_NOTHROW(decodeError(p));
  }
  SECTION("string lengths") {
    REQUIRE_NOTHROW(decodeError(bin({'B', 1, 0, 0xff, 0xff, 0xff, 0xff, 'a'})));
    std::string p = head + bin({0, 0, 1, 0, 0, 0}) + std::string(10, '\0') +
                    bin({0xff, 0xff, 0xff, 0x7f}) + std::string(8, '\0');
    REQUIRE_NOTHROW(decodeError(p));
  }
}

TEST_CASE("batch codec: validation rules", "[batch_codec]") {
  const std::string good = encode(hekaBatch());
  SECTION("magic and version") {
    std::string p = good;
    p[0] = 'X';
    CHECK(decodeError(p).find("magic") != std::string::npos);
    p = good;
    p[1] = 2;
    CHECK(decodeError(p).find("version") != std::string::npos);
  }
  SECTION("unknown format") {
    std::string p = good;
    p[2] = 2;
    CHECK(decodeError(p).find("format") != std::string::npos);
  }
  SECTION("signer index above the signer count") {
    Batch b = hekaBatch();
    b.events[1].signer = 3;
    CHECK(decodeError(encode(b)).find("signer 3 of 2") != std::string::npos);
    b.events[1].signer = 2;  // the last signer is fine
    decodeOk(encode(b));
  }
  SECTION("time bytes on a Heka event") {
    Batch b = fluentBatch();
    std::string p = encode(b);
    p[2] = static_cast<char>(EventFormat::HekaMessage);
    CHECK(decodeError(p).find("time bytes") != std::string::npos);
  }
}
