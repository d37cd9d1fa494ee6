// Unit tests for forward request decoding: every mode, every time form, options, gzip,
// limits, stream splitting (msgpack and JSON), and the real client captures.
#include <catch2/catch.hpp>

#include <fstream>
#include <functional>

#include "src/forward/forward_decoder.h"
#include "src/gzip.h"
#include "src/json.h"
#include "src/msgpack_writer.h"

using ferry::forward::DecodedFrame;
using ferry::forward::decodeFrame;
using ferry::forward::FrameSplitter;
using ferry::forward::Limits;
using ferry::forward::Mode;
using ferry::forward::SkipReason;
using ferry::mp::Writer;

namespace {

constexpr int64_t kNow = 1'800'000'000'000'000'000;

std::string build(const std::function<void(Writer&)>& f) {
  std::string s;
  Writer w(s);
  f(w);
  return s;
}

DecodedFrame decode(const std::string& bytes, ferry::StatusCode expect = ferry::StatusCode::Ok,
                    const Limits& limits = Limits{}) {
  DecodedFrame df;
  auto st = decodeFrame(std::make_shared<const std::string>(bytes), limits, kNow, df);
  INFO(st.message);
  REQUIRE(st.code == expect);
  return df;
}

std::string recordJson(const DecodedFrame& df, size_t k) {
  const auto rec = df.batch->record(df.batch->events.at(k));
  std::string out;
  REQUIRE(ferry::json::appendMsgpack(out, reinterpret_cast<const uint8_t*>(rec.data()),
                                     rec.size()) == rec.size());
  return out;
}

void entry(Writer& w, const std::function<void(Writer&)>& time, const std::string& key,
           int64_t value) {
  w.arrayHeader(2);
  time(w);
  w.mapHeader(1);
  w.str(key);
  w.integer(value);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("Message mode with each time form", "[forward]") {
  struct Case {
    const char* name;
    std::function<void(Writer&)> time;
    int64_t expect_ns;
  };
  const std::vector<Case> cases = {
      {"EventTime fixext8", [](Writer& w) { w.eventTime(1700000000, 123456789); },
       1700000000123456789},
      {"EventTime ext8",
       [](Writer& w) { w.raw(std::string("\xc7\x08\x00\x65\x53\xf1\x00\x07\x5b\xcd\x15", 11)); },
       1700000000123456789},
      {"integer", [](Writer& w) { w.uinteger(1700000000); }, 1700000000000000000},
      {"float", [](Writer& w) { w.float64(1700000000.25); }, 1700000000250000000},
      {"v1.5 [EventTime, meta]",
       [](Writer& w) {
         w.arrayHeader(2);
         w.eventTime(1700000000, 5);
         w.mapHeader(1);
         w.str("m");
         w.integer(1);
       },
       1700000000000000005},
      {"zero becomes receive time", [](Writer& w) { w.uinteger(0); }, kNow},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    for (bool with_option : {false, true}) {
      auto df = decode(build([&](Writer& w) {
        w.arrayHeader(with_option ? 4 : 3);
        w.str("app.t");
        c.time(w);
        w.mapHeader(1);
        w.str("k");
        w.str("v");
        if (with_option) {
          w.mapHeader(1);
          w.str("chunk");
          w.str("abc=\n");
        }
      }));
      CHECK(df.mode == Mode::Message);
      REQUIRE(df.batch->events.size() == 1);
      CHECK(df.batch->tag == "app.t");
      CHECK(df.batch->events[0].time_ns == c.expect_ns);
      CHECK(recordJson(df, 0) == R"({"k":"v"})");
      CHECK(df.chunk.has_value() == with_option);
      if (with_option) CHECK(*df.chunk == "abc=\n");
    }
  }
}

TEST_CASE("Message mode with an invalid record still asks for its ack", "[forward]") {
  auto df = decode(build([](Writer& w) {
    w.arrayHeader(4);
    w.str("t");
    w.uinteger(1);
    w.str("not a map");
    w.mapHeader(1);
    w.str("chunk");
    w.str("id");
  }));
  CHECK(df.batch->events.empty());
  CHECK(df.invalid_entries == 1);
  REQUIRE(df.chunk);
  CHECK(*df.chunk == "id");
}

TEST_CASE("Forward mode keeps valid entries and counts invalid ones", "[forward]") {
  auto df = decode(build([](Writer& w) {
    w.arrayHeader(3);
    w.str("fw");
    w.arrayHeader(5);
    entry(
        w, [](Writer& x) { x.eventTime(10, 1); }, "a", 1);
    entry(
        w, [](Writer& x) { x.uinteger(11); }, "b", 2);
    w.str("junk entry");
    w.arrayHeader(2);  // time is a string: invalid
    w.str("t");
    w.mapHeader(0);
    entry(
        w, [](Writer& x) { x.float64(12.5); }, "c", 3);
    w.nil();  // option nil
  }));
  CHECK(df.mode == Mode::Forward);
  REQUIRE(df.batch->events.size() == 3);
  CHECK(df.invalid_entries == 2);
  CHECK(df.batch->events[0].time_ns == 10'000'000'001);
  CHECK(df.batch->events[1].time_ns == 11'000'000'000);
  CHECK(df.batch->events[2].time_ns == 12'500'000'000);
  CHECK(recordJson(df, 2) == R"({"c":3})");
  CHECK_FALSE(df.chunk);
}

TEST_CASE("PackedForward as bin and as str, compressed or not", "[forward]") {
  const std::string entries = build([](Writer& w) {
    for (int k = 0; k < 3; ++k)
      entry(
          w, [&](Writer& x) { x.eventTime(100 + k, 0); }, "n", k);
  });
  struct Case {
    const char* name;
    std::string payload;
    bool as_bin;
    const char* compressed;
    Mode mode;
  };
  const std::string gz =
      ferry::gzipCompress(entries.substr(0, 10)) + ferry::gzipCompress(entries.substr(10));
  const std::vector<Case> cases = {
      {"bin", entries, true, nullptr, Mode::PackedForward},
      {"str32 like Fluentd", entries, false, "text", Mode::PackedForward},
      {"gzip, two members", gz, false, "gzip", Mode::CompressedPackedForward},
      {"gzip bin, magic only", ferry::gzipCompress(entries), true, nullptr,
       Mode::CompressedPackedForward},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto df = decode(build([&](Writer& w) {
      w.arrayHeader(3);
      w.str("pk");
      if (c.as_bin) {
        w.bin(c.payload);
      } else {
        w.raw(std::string("\xdb", 1));
        const uint32_t n = static_cast<uint32_t>(c.payload.size());
        const char len[4] = {char(n >> 24), char(n >> 16), char(n >> 8), char(n)};
        w.raw(std::string(len, 4));
        w.raw(c.payload);
      }
      w.mapHeader(c.compressed ? 3 : 2);
      w.str("size");
      w.uinteger(3);
      w.str("chunk");
      w.str("p8n9gmxTQVC8/nh2wlKKeQ==");
      if (c.compressed) {
        w.str("compressed");
        w.str(c.compressed);
      }
    }));
    CHECK(df.mode == c.mode);
    REQUIRE(df.batch->events.size() == 3);
    CHECK(df.batch->events[2].time_ns == 102'000'000'000);
    CHECK(recordJson(df, 1) == R"({"n":1})");
    CHECK(*df.chunk == "p8n9gmxTQVC8/nh2wlKKeQ==");
  }
}

TEST_CASE("a truncated packed tail is counted, the entries before it stand", "[forward]") {
  std::string entries = build([](Writer& w) {
    entry(
        w, [](Writer& x) { x.uinteger(1); }, "a", 1);
    entry(
        w, [](Writer& x) { x.uinteger(2); }, "b", 2);
  });
  entries.pop_back();
  auto df = decode(build([&](Writer& w) {
    w.arrayHeader(2);
    w.str("t");
    w.bin(entries);
  }));
  CHECK(df.batch->events.size() == 1);
  CHECK(df.invalid_entries == 1);
}

TEST_CASE("heartbeats and non-array roots are ignored", "[forward]") {
  CHECK(decode(std::string("\xc0", 1)).heartbeat);
  CHECK(decode(std::string("\x05", 1)).ignored_root);
  CHECK(decode(build([](Writer& w) { w.mapHeader(0); })).ignored_root);
}

TEST_CASE("limits skip the frame with a reason", "[forward]") {
  Limits limits;
  limits.max_tag_length = 4;
  limits.max_entries = 2;
  limits.max_decompressed_size = 4096;
  auto frame = [](const std::string& tag, int n) {
    return build([&](Writer& w) {
      w.arrayHeader(2);
      w.str(tag);
      w.arrayHeader(static_cast<uint32_t>(n));
      for (int k = 0; k < n; ++k)
        entry(
            w, [](Writer& x) { x.uinteger(1); }, "k", k);
    });
  };
  CHECK(decode(frame("abcd", 2), ferry::StatusCode::Ok, limits).batch->events.size() == 2);
  CHECK(decode(frame("abcde", 1), ferry::StatusCode::SkipFrame, limits).skip ==
        SkipReason::TagTooLong);
  CHECK(decode(frame("a", 3), ferry::StatusCode::SkipFrame, limits).skip ==
        SkipReason::TooManyEntries);
  const std::string bomb = build([&](Writer& w) {
    w.arrayHeader(3);
    w.str("t");
    w.bin(ferry::gzipCompress(std::string(1 << 20, '\0')));
    w.mapHeader(1);
    w.str("compressed");
    w.str("gzip");
  });
  CHECK(decode(bomb, ferry::StatusCode::SkipFrame, limits).skip ==
        SkipReason::DecompressedTooLarge);
  const std::string zstd = build([&](Writer& w) {
    w.arrayHeader(3);
    w.str("t");
    w.bin("xx");
    w.mapHeader(1);
    w.str("compressed");
    w.str("zstd");
  });
  CHECK(decode(zstd, ferry::StatusCode::SkipFrame, limits).skip == SkipReason::BadCompression);
  const std::string corrupt = build([&](Writer& w) {
    w.arrayHeader(3);
    w.str("t");
    w.bin(std::string("\x1f\x8b garbage", 10));
    w.mapHeader(0);
  });
  CHECK(decode(corrupt, ferry::StatusCode::SkipFrame, limits).skip == SkipReason::BadCompression);
  // Packed entries over the limit.
  const std::string packed = build([&](Writer& w) {
    w.arrayHeader(2);
    w.str("t");
    std::string e;
    Writer ew(e);
    for (int k = 0; k < 3; ++k)
      entry(
          ew, [](Writer& x) { x.uinteger(1); }, "k", k);
    w.bin(e);
  });
  CHECK(decode(packed, ferry::StatusCode::SkipFrame, limits).skip == SkipReason::TooManyEntries);
}

TEST_CASE("the splitter yields requests across any split and enforces the frame limit",
          "[forward]") {
  std::string stream;
  for (int k = 0; k < 5; ++k) {
    stream += build([&](Writer& w) {
      w.arrayHeader(3);
      w.str("s");
      w.uinteger(static_cast<uint64_t>(k + 1));
      w.mapHeader(1);
      w.str("pad");
      w.str(std::string(static_cast<size_t>(k) * 1000, 'p'));
    });
  }
  for (size_t step : {1u, 3u, 999u, 100000u}) {
    FrameSplitter sp{Limits{}};
    int frames = 0;
    std::string f;
    for (size_t off = 0; off < stream.size(); off += step) {
      sp.append(stream.data() + off, std::min(step, stream.size() - off));
      for (int guard = 0; guard < 10; ++guard) {
        auto st = sp.next(f);
        if (st.code == ferry::StatusCode::NeedMore) break;
        REQUIRE(st.code == ferry::StatusCode::Ok);
        auto df = decode(f);
        CHECK(df.batch->events[0].time_ns == (frames + 1) * 1'000'000'000LL);
        ++frames;
      }
    }
    INFO(step);
    CHECK(frames == 5);
    CHECK(sp.buffered() == 0);
  }
  Limits small;
  small.max_frame_size = 1024;
  FrameSplitter sp(small);
  const std::string big = build([](Writer& w) { w.bin(std::string(5000, 'x')); });
  sp.append(big.data(), 2000);
  std::string f;
  CHECK(sp.next(f).code == ferry::StatusCode::CloseStream);
  FrameSplitter bad{Limits{}};
  bad.append("\xc1", 1);
  CHECK(bad.next(f).code == ferry::StatusCode::CloseStream);
}

TEST_CASE("JSON connections are read as the same shapes", "[forward]") {
  const std::string text =
      R"(["app.j", 1700000000, {"k":"v"}, {"chunk":"xyz"}]  ["app.j",[[1700000001,{"n":1}],[1700000002,{"n":2}]]])";
  for (size_t step : {1u, 5u, 1000u}) {
    FrameSplitter sp{Limits{}};
    std::vector<DecodedFrame> frames;
    std::string f;
    for (size_t off = 0; off < text.size(); off += step) {
      sp.append(text.data() + off, std::min(step, text.size() - off));
      for (int guard = 0; guard < 10; ++guard) {
        auto st = sp.next(f);
        if (st.code == ferry::StatusCode::NeedMore) break;
        REQUIRE(st.code == ferry::StatusCode::Ok);
        frames.push_back(decode(f));
      }
    }
    INFO(step);
    CHECK(sp.isJson());
    REQUIRE(frames.size() == 2);
    CHECK(frames[0].mode == Mode::Message);
    CHECK(*frames[0].chunk == "xyz");
    CHECK(recordJson(frames[0], 0) == R"({"k":"v"})");
    CHECK(frames[1].mode == Mode::Forward);
    CHECK(frames[1].batch->events.size() == 2);
    CHECK(frames[1].batch->events[1].time_ns == 1700000002'000'000'000);
  }
  FrameSplitter bad{Limits{}};
  bad.append("[1,]", 4);
  std::string f;
  CHECK(bad.next(f).code == ferry::StatusCode::CloseStream);
}

TEST_CASE("real client captures decode to the events they carry", "[forward][vectors]") {
  struct Capture {
    const char* file;
    size_t events;
    Mode mode;
  };
  const std::vector<Capture> captures = {
      {"pylogger-eventtime.bin", 3, Mode::Message},
      {"pylogger-inttime.bin", 3, Mode::Message},
      {"fluentcat-event-time.bin", 0, Mode::Forward},
      {"fluentd-out-gzip.bin", 0, Mode::CompressedPackedForward},
      {"fluentd-out-ack.bin", 0, Mode::PackedForward},
      {"fluentbit-out-default.bin", 0, Mode::Forward},
      {"fluentbit-out-default-metadata.bin", 0, Mode::Forward},
      {"fluentbit-out-gzip.bin", 0, Mode::CompressedPackedForward},
      {"fluentbit-out-time-as-integer.bin", 0, Mode::Forward},
  };
  for (const auto& c : captures) {
    INFO(c.file);
    const std::string bytes =
        readFile(std::string(FERRY_SHARED_DIR) + "/vectors/forward/" + c.file);
    FrameSplitter sp{Limits{}};
    sp.append(bytes.data(), bytes.size());
    std::string f;
    size_t events = 0, invalid = 0, frames = 0;
    bool saw_mode = false;
    for (int guard = 0; guard < 10000; ++guard) {
      auto st = sp.next(f);
      if (st.code == ferry::StatusCode::NeedMore) break;
      REQUIRE(st.code == ferry::StatusCode::Ok);
      auto df = decode(f);
      ++frames;
      if (df.batch) events += df.batch->events.size();
      invalid += df.invalid_entries;
      saw_mode = saw_mode || df.mode == c.mode;
      for (size_t k = 0; df.batch && k < df.batch->events.size(); ++k) {
        CHECK(df.batch->events[k].time_ns > 1'600'000'000'000'000'000);  // a real, recent time
        CHECK(recordJson(df, k).front() == '{');
      }
    }
    CHECK(sp.buffered() == 0);
    CHECK(frames > 0);
    CHECK(invalid == 0);
    CHECK(saw_mode);
    if (c.events) CHECK(events == c.events);
    CHECK(events > 0);
  }
}
