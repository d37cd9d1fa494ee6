// Unit tests for ForwardOutput's pure parts: entry and request encoding (checked by
// decoding with our own ForwardInput decoder and against real client captures), chunk
// ids, replies and ack matching, the load balancer's weight array, and `servers` config.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>
#include <map>
#include <set>

#include "src/config_loader.h"
#include "src/forward/forward_chunk.h"
#include "src/forward/forward_decoder.h"
#include "src/forward/forward_upstream.h"
#include "src/gzip.h"
#include "src/json.h"
#include "src/msgpack_writer.h"
#include "src/plugin.h"

using namespace ferry::forward;
using ferry::mp::Writer;

namespace {

constexpr int64_t kNow = 1'800'000'000'000'000'000;
constexpr int64_t kT = 1'700'000'000'123'456'789;  // 2023-11-14T22:13:20.123456789Z

std::string mp(const std::function<void(Writer&)>& f) {
  std::string s;
  Writer w(s);
  f(w);
  return s;
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

const std::string kRecord = mp([](Writer& w) {
  w.mapHeader(1);
  w.str("k");
  w.str("v");
});

std::string entryWith(std::string_view time_bytes, TimeFormat f, int64_t time_ns = kT) {
  std::string out;
  appendEntry(out, time_bytes, time_ns, kRecord, f);
  return out;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The request bytes as they go on the wire: prefix, payload, suffix.
std::string request(const Chunk& c) {
  return c.framing.prefix + std::string(c.payload()) + c.framing.suffix;
}

DecodedFrame decode(const std::string& bytes) {
  DecodedFrame df;
  const auto st = decodeFrame(std::make_shared<const std::string>(bytes), Limits{}, kNow, df);
  INFO(st.message);
  REQUIRE(st.code == ferry::StatusCode::Ok);
  return df;
}

}  // namespace

TEST_CASE("EventTime is fixext8, clamped to what its unsigned fields hold", "[forward_output]") {
  std::string out;
  appendEventTime(out, kT);
  CHECK(hex(out) ==
        "d700"
        "6553f100"
        "075bcd15");
  out.clear();
  appendEventTime(out, -5);
  CHECK(hex(out) ==
        "d700"
        "00000000"
        "00000000");
}

TEST_CASE("entries copy the time as received unless the format needs another", "[forward_output]") {
  const std::string fixext = mp([](Writer& w) { w.eventTime(1700000000, 123456789); });
  const std::string ext8 = std::string("\xc7\x08\x00", 3) + fixext.substr(2);
  const std::string integer = mp([](Writer& w) { w.uinteger(1700000000); });
  const std::string flt = mp([](Writer& w) { w.float64(1700000000.5); });
  const std::string zero = mp([](Writer& w) { w.uinteger(0); });
  const std::string v15 = mp([](Writer& w) {
    w.arrayHeader(2);
    w.eventTime(1700000000, 123456789);
    w.mapHeader(1);
    w.str("m");
    w.integer(1);
  });
  const std::string et_now = fixext;  // what appendEventTime(kT) writes

  SECTION("EventTime format") {
    CHECK(entryWith(fixext, TimeFormat::EventTime) == "\x92" + fixext + kRecord);
    CHECK(entryWith(ext8, TimeFormat::EventTime) == "\x92" + ext8 + kRecord);
    CHECK(entryWith(integer, TimeFormat::EventTime) == "\x92" + integer + kRecord);
    // Float (invalid for Fluentd), zero (the receiver would use its own clock), the v1.5
    // array (rejected by Fluentd 1.19) and no time at all (Heka) are written from time_ns.
    CHECK(entryWith(flt, TimeFormat::EventTime) == "\x92" + et_now + kRecord);
    CHECK(entryWith(zero, TimeFormat::EventTime) == "\x92" + et_now + kRecord);
    CHECK(entryWith(v15, TimeFormat::EventTime) == "\x92" + et_now + kRecord);
    CHECK(entryWith("", TimeFormat::EventTime) == "\x92" + et_now + kRecord);
  }
  SECTION("Integer format (time_as_integer)") {
    const std::string secs("\xce\x65\x53\xf1\x00", 5);
    CHECK(entryWith(integer, TimeFormat::Integer) == "\x92" + integer + kRecord);
    CHECK(entryWith(fixext, TimeFormat::Integer) == "\x92" + secs + kRecord);
    CHECK(entryWith(v15, TimeFormat::Integer) == "\x92" + secs + kRecord);
    CHECK(entryWith("", TimeFormat::Integer, 5'000'000'000) == "\x92\x05" + kRecord);
  }
  SECTION("Metadata format (send_metadata)") {
    CHECK(entryWith(v15, TimeFormat::Metadata) == "\x92" + v15 + kRecord);
    CHECK(entryWith(fixext, TimeFormat::Metadata) == "\x92\x92" + fixext + "\x80" + kRecord);
    CHECK(entryWith(integer, TimeFormat::Metadata) == "\x92\x92" + et_now + "\x80" + kRecord);
  }
}

TEST_CASE("base64 matches RFC 4648's vectors", "[forward_output]") {
  CHECK(base64Encode("") == "");
  CHECK(base64Encode("f") == "Zg==");
  CHECK(base64Encode("fo") == "Zm8=");
  CHECK(base64Encode("foo") == "Zm9v");
  CHECK(base64Encode("foob") == "Zm9vYg==");
  CHECK(base64Encode("fooba") == "Zm9vYmE=");
  CHECK(base64Encode("foobar") == "Zm9vYmFy");
  CHECK(base64Encode(std::string("\xff\xfe\x00", 3)) == "//4A");
}

TEST_CASE("chunk ids are 16 random bytes in base64, distinct", "[forward_output]") {
  ChunkIdGenerator gen(42);
  std::set<std::string> seen;
  for (int i = 0; i < 10000; ++i) {
    const std::string id = gen.next();
    REQUIRE(id.size() == 24);
    REQUIRE(id.substr(22) == "==");
    REQUIRE(seen.insert(id).second);
  }
  // Two generators seeded from random_device do not repeat each other.
  ChunkIdGenerator a, b;
  CHECK(a.next() != b.next());
}

TEST_CASE("a chunk request is PackedForward with bin entries and {size, chunk}",
          "[forward_output]") {
  const std::string tag = GENERATE(std::string("app.t"), std::string(31, 'a'), std::string(32, 'b'),
                                   std::string(300, 'c'));
  const size_t events = GENERATE(1, 3, 700);  // bin8, bin16 and bin32 payloads
  Chunk c;
  c.tag = tag;
  for (size_t i = 0; i < events; ++i) {
    const std::string t = mp([&](Writer& w) { w.eventTime(1700000000, static_cast<uint32_t>(i)); });
    appendEntry(c.entries, t, 0, kRecord, TimeFormat::EventTime);
  }
  c.events = static_cast<uint32_t>(events);
  c.id = ChunkIdGenerator(7).next();
  c.framing = frameRequest(c.tag, c.entries.size(), c.events, c.id, false);
  const std::string req = request(c);

  // Exactly one msgpack object, which ForwardInput reads as PackedForward.
  ferry::mp::Reader r(req);
  REQUIRE(r.skip());
  REQUIRE(r.atEnd());
  CHECK(static_cast<uint8_t>(req[0]) == 0x93);
  const DecodedFrame df = decode(req);
  CHECK(df.mode == Mode::PackedForward);
  REQUIRE(df.chunk);
  CHECK(*df.chunk == c.id);
  REQUIRE(df.batch);
  CHECK(df.batch->tag == tag);
  REQUIRE(df.batch->events.size() == events);
  CHECK(df.batch->events.back().time_ns ==
        1700000000LL * 1'000'000'000 + static_cast<int64_t>(events - 1));
  // The bin header, not str (clients SHOULD send bin).
  const size_t n = c.entries.size();
  const size_t at = c.framing.prefix.size() - (n < 256 ? 2 : n < 65536 ? 3 : 5);
  CHECK((static_cast<uint8_t>(req[at]) & 0xfc) == 0xc4);
  // The option map: size, chunk and nothing else.
  const std::string opt = c.framing.suffix;
  CHECK(opt.substr(0, 6) == "\x82\xa4size");
}

TEST_CASE("without acks there is no chunk option; gzip adds compressed", "[forward_output]") {
  Chunk c;
  c.tag = "z";
  for (int i = 0; i < 50; ++i)
    appendEntry(c.entries, "", kT + i, kRecord, TimeFormat::EventTime);
  c.events = 50;
  SECTION("plain") {
    c.framing = frameRequest(c.tag, c.entries.size(), c.events, "", false);
    CHECK(c.framing.suffix == std::string("\x81\xa4size\x32"));
    const DecodedFrame df = decode(request(c));
    CHECK_FALSE(df.chunk);
    CHECK(df.batch->events.size() == 50);
  }
  SECTION("gzip") {
    c.gzipped = ferry::gzipCompress(c.entries);
    c.id = "abc";
    c.framing = frameRequest(c.tag, c.gzipped.size(), c.events, c.id, true);
    CHECK(c.framing.suffix == std::string("\x83\xa4size\x32\xa5"
                                          "chunk\xa3"
                                          "abc\xaa"
                                          "compressed\xa4gzip"));
    const DecodedFrame df = decode(request(c));
    CHECK(df.mode == Mode::CompressedPackedForward);
    CHECK(*df.chunk == "abc");
    REQUIRE(df.batch->events.size() == 50);
    CHECK(df.batch->events[49].time_ns == kT + 49);
  }
}

TEST_CASE("passthrough copies captured entries byte for byte", "[forward_output][vectors]") {
  const std::string dir = std::string(FERRY_SHARED_DIR) + "/vectors/forward/";
  SECTION("Fluentd out_forward PackedForward (str32 entries)") {
    const std::string frame = readFile(dir + "fluentd-out-ack.bin");
    const DecodedFrame df = decode(frame);
    REQUIRE(df.batch);
    std::string entries;
    for (const auto& e : df.batch->events)
      appendEntry(entries, df.batch->time(e), e.time_ns, df.batch->record(e),
                  TimeFormat::EventTime);
    // Fluentd's payload is these entries exactly: we must find it verbatim in its frame.
    CHECK(frame.find(entries) != std::string::npos);
  }
  SECTION("Fluent Bit v1.5 entries stay v1.5 with send_metadata, EventTime without") {
    const std::string frame = readFile(dir + "fluentbit-out-default.bin");
    const DecodedFrame df = decode(frame);
    REQUIRE(df.batch);
    REQUIRE(df.batch->events.size() == 3);
    std::string meta, plain;
    for (const auto& e : df.batch->events) {
      appendEntry(meta, df.batch->time(e), e.time_ns, df.batch->record(e), TimeFormat::Metadata);
      appendEntry(plain, df.batch->time(e), e.time_ns, df.batch->record(e), TimeFormat::EventTime);
    }
    CHECK(frame.find(meta) != std::string::npos);
    // Re-read as a PackedForward payload: same times, same records, plain EventTime.
    Chunk c;
    c.tag = df.batch->tag;
    c.entries = plain;
    c.events = 3;
    c.framing = frameRequest(c.tag, c.entries.size(), 3, "", false);
    const DecodedFrame back = decode(request(c));
    for (size_t i = 0; i < 3; ++i) {
      CHECK(back.batch->events[i].time_ns == df.batch->events[i].time_ns);
      CHECK(back.batch->record(back.batch->events[i]) == df.batch->record(df.batch->events[i]));
      CHECK(static_cast<uint8_t>(back.batch->time(back.batch->events[i])[0]) == 0xd7);
    }
  }
}

TEST_CASE("replies: acks, negative acks, HELO, anything else", "[forward_output]") {
  Reply r = parseReply(mp([](Writer& w) {
    w.mapHeader(1);
    w.str("ack");
    w.str("p8n9gmxTQVC8/nh2wlKKeQ==");
  }));
  CHECK(r.kind == ReplyKind::Ack);
  CHECK(r.ack == "p8n9gmxTQVC8/nh2wlKKeQ==");
  r = parseReply(mp([](Writer& w) {
    w.mapHeader(2);
    w.str("x");
    w.arrayHeader(1);
    w.integer(1);
    w.str("ack");
    w.bin("id\n");
  }));
  CHECK(r.kind == ReplyKind::Ack);
  CHECK(r.ack == "id\n");
  CHECK(parseReply("\x80").kind == ReplyKind::NegativeAck);  // Vector's {}
  CHECK(parseReply(mp([](Writer& w) {
          w.arrayHeader(2);
          w.str("HELO");
          w.mapHeader(0);
        })).kind == ReplyKind::Helo);
  CHECK(parseReply(mp([](Writer& w) {
          w.mapHeader(1);
          w.str("ack");
          w.integer(5);
        })).kind == ReplyKind::Invalid);
  CHECK(parseReply(mp([](Writer& w) {
          w.mapHeader(1);
          w.str("nak");
          w.str("x");
        })).kind == ReplyKind::Invalid);
  CHECK(parseReply("\xc0").kind == ReplyKind::Invalid);
  CHECK(parseReply("").kind == ReplyKind::Invalid);
}

TEST_CASE("an ack matches the in-flight chunk with that exact id", "[forward_output]") {
  std::deque<ChunkPtr> in_flight;
  for (const char* id : {"a", "b", "c"}) {
    auto c = std::make_shared<Chunk>();
    c->id = id;
    in_flight.push_back(c);
  }
  CHECK(findAcked(in_flight, "a") == 0);
  CHECK(findAcked(in_flight, "c") == 2);  // out of order: still found
  CHECK(findAcked(in_flight, "d") == -1);
  CHECK(findAcked(in_flight, "a\n") == -1);  // exact match, as Fluentd compares
  CHECK(findAcked(in_flight, "") == -1);
  in_flight.front()->id.clear();  // no ack asked for: never matched
  CHECK(findAcked(in_flight, "") == -1);
  CHECK(findAcked({}, "a") == -1);
}

TEST_CASE("a chunk given up becomes a batch again for the secondary", "[forward_output]") {
  std::string entries;
  const std::string t = mp([](Writer& w) { w.eventTime(1700000000, 5); });
  appendEntry(entries, t, 0, kRecord, TimeFormat::EventTime);
  appendEntry(entries, "", kT, kRecord, TimeFormat::Metadata);
  uint32_t invalid = 9;
  auto b = batchFromEntries("sec.t", entries, invalid);
  CHECK(invalid == 0);
  CHECK(b->tag == "sec.t");
  REQUIRE(b->events.size() == 2);
  CHECK(b->events[0].time_ns == 1700000000LL * 1'000'000'000 + 5);
  CHECK(b->events[1].time_ns == kT);
  CHECK(b->record(b->events[1]) == kRecord);
  b = batchFromEntries("x", entries + "\x92\x01", invalid);
  CHECK(b->events.size() == 2);
  CHECK(invalid == 1);
}

namespace {
std::map<size_t, size_t> counts(const std::vector<size_t>& order) {
  std::map<size_t, size_t> m;
  for (size_t i : order)
    ++m[i];
  return m;
}
}  // namespace

TEST_CASE("the weight array follows weights, and standby only covers lost weight",
          "[forward_output][lb]") {
  std::mt19937_64 rng(1);
  using W = NodeWeight;
  SECTION("60/40 with a standby: 3:2, the standby gets nothing") {
    const auto order =
        buildWeightArray({W{60, false, true}, W{40, false, true}, W{60, true, true}}, rng);
    const auto m = counts(order);
    REQUIRE(m.size() == 2);
    CHECK(m.at(0) * 2 == m.at(1) * 3);
    CHECK(order.size() >= 12);  // at least 6 per node
  }
  SECTION("one regular down: its weight is covered by the standby") {
    const auto m =
        counts(buildWeightArray({W{60, false, false}, W{40, false, true}, W{60, true, true}}, rng));
    REQUIRE(m.size() == 2);
    CHECK(m.at(1) * 3 == m.at(2) * 2);
  }
  SECTION("both regulars down: only the standby") {
    const auto m = counts(
        buildWeightArray({W{60, false, false}, W{40, false, false}, W{60, true, true}}, rng));
    REQUIRE(m.size() == 1);
    CHECK(m.count(2));
  }
  SECTION("standbys are added in order until the lost weight is covered") {
    const auto m =
        counts(buildWeightArray({W{100, false, false}, W{10, false, true}, W{60, true, true},
                                 W{60, true, true}, W{60, true, true}},
                                rng));
    CHECK(m.count(1));
    CHECK(m.count(2));
    CHECK(m.count(3));
    CHECK_FALSE(m.count(4));
  }
  SECTION("a down standby is skipped; weight 0 never appears") {
    const auto m = counts(buildWeightArray(
        {W{60, false, false}, W{0, false, true}, W{60, true, false}, W{30, true, true}}, rng));
    REQUIRE(m.size() == 1);
    CHECK(m.count(3));
  }
  SECTION("nothing available: empty") {
    CHECK(buildWeightArray({W{60, false, false}, W{60, true, false}}, rng).empty());
    CHECK(buildWeightArray({}, rng).empty());
  }
  SECTION("coprime weights keep their exact ratio") {
    const auto m = counts(buildWeightArray({W{7, false, true}, W{3, false, true}}, rng));
    CHECK(m.at(0) * 3 == m.at(1) * 7);
  }
}

TEST_CASE("the load balancer walks the array round robin", "[forward_output][lb]") {
  LoadBalancer lb(99);
  CHECK_FALSE(lb.peek());
  lb.rebuild({NodeWeight{60, false, true}, NodeWeight{40, false, true}});
  std::map<size_t, size_t> m;
  const size_t cycles = 40;
  for (size_t i = 0; i < cycles * lb.order().size(); ++i) {
    const auto p = lb.peek();
    REQUIRE(p);
    CHECK(lb.peek() == p);  // peek does not move on
    ++m[*p];
    lb.advance();
  }
  // Whole cycles: exactly 3:2.
  CHECK(m[0] * 2 == m[1] * 3);
  lb.rebuild({NodeWeight{60, false, false}, NodeWeight{40, false, true}});
  for (int i = 0; i < 20; ++i) {
    CHECK(lb.peek() == 1u);
    lb.advance();
  }
}

namespace {
ferry::Config load(const std::string& servers, const std::string& extra = "") {
  ferry::PluginRegistry reg;
  ferry::registerBuiltinPlugins(reg);
  return ferry::loadConfigString(
      "[out]\ntype = \"ForwardOutput\"\nmatch = \"**\"\nservers = " + servers + "\n" + extra,
      "t.toml", reg);
}
std::string loadError(const std::string& servers, const std::string& extra = "") {
  try {
    load(servers, extra);
  } catch (const ferry::ConfigError& e) {
    return e.what();
  }
  return "";
}
}  // namespace

TEST_CASE("servers: defaults and errors with file, line and key", "[forward_output][config]") {
  const auto cfg = load(
      "[{host = \"10.0.0.1\"},\n"
      " {host = \"::1\", port = 24225, weight = 40, standby = true, name = \"b\", "
      "shared_key = \"k\", username = \"u\", password = \"p\"}]");
  const auto specs = parseServers(cfg.outputs.at(0));
  REQUIRE(specs.size() == 2);
  CHECK(specs[0].name == "10.0.0.1:24224");
  CHECK(specs[0].port == 24224);
  CHECK(specs[0].weight == 60);
  CHECK_FALSE(specs[0].standby);
  CHECK(specs[1].name == "b");
  CHECK(specs[1].standby);
  CHECK(specs[1].weight == 40);
  CHECK(specs[1].shared_key == "k");

  CHECK_THAT(loadError("[{port = 1}]"), Catch::Contains("t.toml:4: key 'out.servers[0].host'"));
  CHECK_THAT(loadError("[{host = \"a\", prot = 1}]"),
             Catch::Contains("out.servers[0].prot': unknown server key"));
  CHECK_THAT(loadError("[{host = \"a\"},\n{host = \"a\", port = 70000}]"),
             Catch::Contains("t.toml:5: key 'out.servers[1].port'"));
  CHECK_THAT(loadError("[{host = \"a\", weight = -1}]"), Catch::Contains("servers[0].weight"));
  CHECK_THAT(loadError("[{host = \"a\", standby = \"yes\"}]"), Catch::Contains("standby"));
  CHECK_THAT(loadError("[{host = \"a\"}, {host = \"a\"}]"), Catch::Contains("distinct"));
  CHECK_THAT(loadError("[{host = \"a\", username = \"u\"}]"), Catch::Contains("shared_key"));
  CHECK_THAT(loadError("[{host = \"a\", standby = true}]"),
             Catch::Contains("no server would get traffic"));
  CHECK_THAT(loadError("[]"), Catch::Contains("at least one server"));
  CHECK_THAT(loadError("[{host = \"a\"}]", "time_as_integer = true\nsend_metadata = true"),
             Catch::Contains("send_metadata"));
  CHECK_THAT(loadError("[{host = \"a\"}]", "compress = \"zstd\""), Catch::Contains("compress"));
  CHECK_THAT(loadError("[{host = \"a\"}]", "heartbeat_type = \"icmp\""),
             Catch::Contains("heartbeat_type"));
  CHECK_THAT(loadError("[{host = \"a\"}]", "secondary = \"out\""), Catch::Contains("itself"));
  CHECK_THAT(loadError("[{host = \"a\"}]", "retry_wait = \"2m\""),
             Catch::Contains("retry_max_interval"));
  CHECK(loadError("[{host = \"a\"}]", "heartbeat_type = \"tcp\"\ncompress = \"gzip\"").empty());
}
