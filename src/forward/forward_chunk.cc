// Chunk encoding for ForwardOutput: entries copied as received (time rewritten only when
// the wire format asks for it), request framing around an unmoved payload, chunk ids,
// and the replies a server sends back.
#include "src/forward/forward_chunk.h"

#include <ctime>
#include <limits>

#include "src/forward/forward_decoder.h"
#include "src/msgpack_reader.h"

namespace ferry::forward {
namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;

void putBe32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void appendInt(std::string& out, int64_t v) {
  if (v >= 0 && v < 128) {
    out.push_back(static_cast<char>(v));
  } else if (v >= 0 && v <= 0xffffffffLL) {
    out.push_back(static_cast<char>(0xce));
    putBe32(out, static_cast<uint32_t>(v));
  } else {
    out.push_back(static_cast<char>(0xd3));
    const auto u = static_cast<uint64_t>(v);
    putBe32(out, static_cast<uint32_t>(u >> 32));
    putBe32(out, static_cast<uint32_t>(u));
  }
}

int64_t floorSeconds(int64_t time_ns) {
  int64_t s = time_ns / kNsPerSec;
  if (time_ns % kNsPerSec < 0) --s;
  return s;
}

enum class TimeShape { Missing, Integer, EventTime, Array, Other };

// What the received time bytes are. A zero time (integer 0 or EventTime with 0 seconds)
// is "Other": the receiver would replace it by its own clock, while `time_ns` already
// holds the time our input chose for it.
TimeShape classify(std::string_view bytes) {
  if (bytes.empty()) return TimeShape::Missing;
  const auto b0 = static_cast<uint8_t>(bytes[0]);
  // The common cases by their first bytes (this runs once per event): fixext8 EventTime
  // and positive fixint; the rest through the generic reader.
  if (b0 == 0xd7 && bytes.size() == 10 && bytes[1] == 0) {
    return (bytes[2] | bytes[3] | bytes[4] | bytes[5]) == 0 ? TimeShape::Other
                                                            : TimeShape::EventTime;
  }
  if (b0 >= 0x01 && b0 <= 0x7f) return TimeShape::Integer;
  mp::Value v;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const int64_t n = mp::readValue(p, bytes.size(), v);
  if (n <= 0) return TimeShape::Other;
  switch (v.type) {
    case mp::Type::PosInt:
      return v.u == 0 ? TimeShape::Other : TimeShape::Integer;
    case mp::Type::NegInt:
      return TimeShape::Integer;
    case mp::Type::Ext:
      if (v.ext_type != 0 || v.len != 8) return TimeShape::Other;
      if (v.data[0] == 0 && v.data[1] == 0 && v.data[2] == 0 && v.data[3] == 0)
        return TimeShape::Other;
      return TimeShape::EventTime;
    case mp::Type::Array:
      return TimeShape::Array;
    default:
      return TimeShape::Other;  // float times: invalid for Fluentd (forward.md §1.3)
  }
}

}  // namespace

void appendEventTime(std::string& out, int64_t time_ns) {
  int64_t sec = floorSeconds(time_ns);
  int64_t nsec = time_ns - sec * kNsPerSec;
  if (sec < 0) {
    sec = 0;
    nsec = 0;
  } else if (sec > 0xffffffffLL) {
    sec = 0xffffffffLL;
    nsec = kNsPerSec - 1;
  }
  out.push_back(static_cast<char>(0xd7));
  out.push_back(0);
  putBe32(out, static_cast<uint32_t>(sec));
  putBe32(out, static_cast<uint32_t>(nsec));
}

void appendEntry(std::string& out, std::string_view time_bytes, int64_t time_ns,
                 std::string_view record, TimeFormat format) {
  out.push_back(static_cast<char>(0x92));
  const TimeShape shape = classify(time_bytes);
  switch (format) {
    case TimeFormat::EventTime:
      if (shape == TimeShape::Integer || shape == TimeShape::EventTime) {
        out.append(time_bytes);
      } else {
        appendEventTime(out, time_ns);
      }
      break;
    case TimeFormat::Integer:
      if (shape == TimeShape::Integer) {
        out.append(time_bytes);
      } else {
        appendInt(out, floorSeconds(time_ns));
      }
      break;
    case TimeFormat::Metadata:
      if (shape == TimeShape::Array) {
        out.append(time_bytes);
      } else {
        out.push_back(static_cast<char>(0x92));
        if (shape == TimeShape::EventTime) {
          out.append(time_bytes);
        } else {
          appendEventTime(out, time_ns);
        }
        out.push_back(static_cast<char>(0x80));  // {} : no metadata of our own
      }
      break;
  }
  out.append(record);
}

std::string base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const size_t n = bytes.size();
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = p[i];
    const uint32_t b1 = i + 1 < n ? p[i + 1] : 0;
    const uint32_t b2 = i + 2 < n ? p[i + 2] : 0;
    const uint32_t w = (b0 << 16) | (b1 << 8) | b2;
    out.push_back(kAlphabet[(w >> 18) & 63]);
    out.push_back(kAlphabet[(w >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(w >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[w & 63] : '=');
  }
  return out;
}

ChunkIdGenerator::ChunkIdGenerator() {
  std::random_device rd;
  std::seed_seq seq{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
  rng_.seed(seq);
}

ChunkIdGenerator::ChunkIdGenerator(uint64_t seed) : rng_(seed) {}

std::string ChunkIdGenerator::next() {
  char raw[16];
  for (int half = 0; half < 2; ++half) {
    const uint64_t v = rng_();
    for (int i = 0; i < 8; ++i)
      raw[half * 8 + i] = static_cast<char>(v >> (8 * i));
  }
  return base64Encode(std::string_view(raw, sizeof raw));
}

RequestFraming frameRequest(std::string_view tag, size_t payload_size, uint32_t events,
                            std::string_view chunk_id, bool gzip) {
  RequestFraming f;
  std::string& p = f.prefix;
  p.push_back(static_cast<char>(0x93));
  const size_t t = tag.size();
  if (t < 32) {
    p.push_back(static_cast<char>(0xa0 | t));
  } else if (t < 256) {
    p.push_back(static_cast<char>(0xd9));
    p.push_back(static_cast<char>(t));
  } else if (t < 65536) {
    p.push_back(static_cast<char>(0xda));
    p.push_back(static_cast<char>(t >> 8));
    p.push_back(static_cast<char>(t));
  } else {
    p.push_back(static_cast<char>(0xdb));
    putBe32(p, static_cast<uint32_t>(t));
  }
  p.append(tag);
  // bin, not str: SPEC-v1 says clients SHOULD, and a str would promise UTF-8.
  if (payload_size < 256) {
    p.push_back(static_cast<char>(0xc4));
    p.push_back(static_cast<char>(payload_size));
  } else if (payload_size < 65536) {
    p.push_back(static_cast<char>(0xc5));
    p.push_back(static_cast<char>(payload_size >> 8));
    p.push_back(static_cast<char>(payload_size));
  } else {
    p.push_back(static_cast<char>(0xc6));
    putBe32(p, static_cast<uint32_t>(payload_size));
  }

  std::string& s = f.suffix;
  const int pairs = 1 + (chunk_id.empty() ? 0 : 1) + (gzip ? 1 : 0);
  s.push_back(static_cast<char>(0x80 | pairs));
  s.append("\xa4size");
  appendInt(s, events);
  if (!chunk_id.empty()) {
    s.append(
        "\xa5"
        "chunk");
    // Ids are generated here (24 characters), so a fixstr or str8 always fits.
    if (chunk_id.size() < 32) {
      s.push_back(static_cast<char>(0xa0 | chunk_id.size()));
    } else {
      s.push_back(static_cast<char>(0xd9));
      s.push_back(static_cast<char>(chunk_id.size()));
    }
    s.append(chunk_id);
  }
  if (gzip)
    s.append(
        "\xaa"
        "compressed\xa4gzip");
  return f;
}

Reply parseReply(std::string_view object) {
  Reply reply;
  mp::Reader r(object);
  mp::Value v;
  if (!r.next(v)) return reply;
  if (v.type == mp::Type::Array) {
    mp::Value first;
    if (v.len >= 1 && r.next(first) && first.isStrOrBin() && first.str() == "HELO")
      reply.kind = ReplyKind::Helo;
    return reply;
  }
  if (v.type != mp::Type::Map) return reply;
  if (v.len == 0) {
    reply.kind = ReplyKind::NegativeAck;
    return reply;
  }
  for (uint32_t i = 0; i < v.len; ++i) {
    mp::Value key;
    if (!r.next(key)) return reply;
    if (key.isStrOrBin() && key.str() == "ack") {
      mp::Value val;
      if (!r.next(val) || !val.isStrOrBin()) return reply;
      reply.kind = ReplyKind::Ack;
      reply.ack.assign(val.str());
      return reply;
    }
    if (!r.skip()) return reply;
  }
  return reply;  // a map without "ack"
}

void settleShare(ChunkShare& share, bool ok) {
  if (!ok) share.failed = true;
  if (share.chunks > 0 && --share.chunks == 0) {
    if (share.failed) {
      share.ack.fail();
    } else {
      share.ack.accept();
    }
  }
}

int findAcked(const std::deque<ChunkPtr>& in_flight, std::string_view ack) {
  for (size_t i = 0; i < in_flight.size(); ++i) {
    if (!in_flight[i]->id.empty() && in_flight[i]->id == ack) return static_cast<int>(i);
  }
  return -1;
}

BatchPtr batchFromEntries(std::string tag, std::string entries, uint32_t& invalid) {
  auto batch = std::make_shared<Batch>();
  batch->format = EventFormat::FluentRecord;
  batch->tag = std::move(tag);
  auto bytes = std::make_shared<const std::string>(std::move(entries));
  batch->bytes = bytes;
  invalid = 0;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t now_ns = ts.tv_sec * kNsPerSec + ts.tv_nsec;
  mp::Reader r(*bytes);
  while (!r.atEnd()) {
    // Our own chunks only hold entries the input validated, so a bad one means the bytes
    // are damaged: count it and stop rather than guess where the next entry starts.
    mp::Value head;
    if (!r.next(head) || head.type != mp::Type::Array || head.len != 2) {
      ++invalid;
      break;
    }
    Event e;
    const size_t time_start = r.offset();
    if (!parseEventTime(r, now_ns, e.time_ns)) {
      ++invalid;
      break;
    }
    const size_t record_start = r.offset();
    mp::Value rec;
    const auto* at = r.pos();
    if (mp::readValue(at, r.remaining(), rec) <= 0 || rec.type != mp::Type::Map || !r.skip()) {
      ++invalid;
      break;
    }
    e.time_off = static_cast<uint32_t>(time_start);
    e.time_len = static_cast<uint32_t>(record_start - time_start);
    e.record_off = static_cast<uint32_t>(record_start);
    e.record_len = static_cast<uint32_t>(r.offset() - record_start);
    batch->events.push_back(e);
  }
  return batch;
}

}  // namespace ferry::forward
