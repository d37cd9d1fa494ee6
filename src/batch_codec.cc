// Batch <-> spool record payload (format at the top of batch_codec.h).
#include "src/batch_codec.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

namespace ferry {

namespace {

constexpr size_t kMaxSigners = std::numeric_limits<uint16_t>::max();
// time_ns + signer + time length + record length.
constexpr size_t kMinEventSize = 8 + 2 + 4 + 4;

// Writes into a buffer already sized for everything: no capacity checks per field.
struct Writer {
  char* p;

  void u8(uint8_t v) { *p++ = static_cast<char>(v); }
  void u16(uint16_t v) {
    p[0] = static_cast<char>(v);
    p[1] = static_cast<char>(v >> 8);
    p += 2;
  }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      p[i] = static_cast<char>(v >> (8 * i));
    p += 4;
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      p[i] = static_cast<char>(v >> (8 * i));
    p += 8;
  }
  void str(std::string_view s) {
    u32(static_cast<uint32_t>(s.size()));
    if (!s.empty()) std::memcpy(p, s.data(), s.size());
    p += s.size();
  }
};

// Bounds-checked cursor over the payload. Each read fails (returns false) rather than
// passing the end; `what` names the field for the error message.
struct Reader {
  std::string_view in;
  size_t pos = 0;
  std::string& error;

  size_t left() const { return in.size() - pos; }

  bool fail(const char* what) {
    error = std::string("batch payload: truncated ") + what + " at offset " + std::to_string(pos);
    return false;
  }
  const unsigned char* at() const {
    return reinterpret_cast<const unsigned char*>(in.data()) + pos;
  }

  bool u8(uint8_t& v, const char* what) {
    if (left() < 1) return fail(what);
    v = at()[0];
    pos += 1;
    return true;
  }
  bool u16(uint16_t& v, const char* what) {
    if (left() < 2) return fail(what);
    const unsigned char* b = at();
    v = static_cast<uint16_t>(b[0] | (b[1] << 8));
    pos += 2;
    return true;
  }
  bool u32(uint32_t& v, const char* what) {
    if (left() < 4) return fail(what);
    const unsigned char* b = at();
    v = static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
        static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24;
    pos += 4;
    return true;
  }
  bool u64(uint64_t& v, const char* what) {
    if (left() < 8) return fail(what);
    const unsigned char* b = at();
    v = 0;
    for (int i = 7; i >= 0; --i)
      v = (v << 8) | b[i];
    pos += 8;
    return true;
  }
  // A u32 length and that many bytes, as a view into the payload.
  bool str(std::string_view& s, const char* what) {
    uint32_t n = 0;
    if (!u32(n, what)) return false;
    if (left() < n) return fail(what);
    s = in.substr(pos, n);
    pos += n;
    return true;
  }
};

}  // namespace

void encodeBatch(const Batch& batch, std::string& out) {
  const SourceInfo empty_source;
  const SourceInfo& src = batch.source ? *batch.source : empty_source;
  const size_t signers = std::min(batch.signers.size(), kMaxSigners);
  const bool heka = batch.format == EventFormat::HekaMessage;

  size_t n = 2 + 1 + 4 * 4 + batch.tag.size() + src.name.size() + src.hostname.size() +
             src.payload_key.size() + 2 + 4 * signers + 4 + kMinEventSize * batch.events.size();
  for (size_t i = 0; i < signers; ++i)
    n += batch.signers[i].size();
  for (const Event& e : batch.events)
    n += (heka ? 0 : e.time_len) + e.record_len;

  const size_t start = out.size();
  out.resize(start + n);
  Writer w{out.data() + start};
  w.u8(kBatchCodecMagic);
  w.u8(kBatchCodecVersion);
  w.u8(static_cast<uint8_t>(batch.format));
  w.str(batch.tag);
  w.str(src.name);
  w.str(src.hostname);
  w.str(src.payload_key);
  w.u16(static_cast<uint16_t>(signers));
  for (size_t i = 0; i < signers; ++i)
    w.str(batch.signers[i]);
  w.u32(static_cast<uint32_t>(batch.events.size()));
  const char* bytes = batch.bytes ? batch.bytes->data() : nullptr;
  for (const Event& e : batch.events) {
    w.u64(static_cast<uint64_t>(e.time_ns));
    w.u16(e.signer);
    w.str(heka ? std::string_view() : std::string_view(bytes + e.time_off, e.time_len));
    w.str(std::string_view(bytes + e.record_off, e.record_len));
  }
}

BatchPtr decodeBatch(std::string_view payload, std::string& error) {
  if (payload.size() > std::numeric_limits<uint32_t>::max()) {
    error = "batch payload: larger than 4 GiB";
    return nullptr;
  }
  Reader r{payload, 0, error};
  uint8_t magic = 0, version = 0, format = 0;
  if (!r.u8(magic, "magic") || !r.u8(version, "version")) return nullptr;
  if (magic != kBatchCodecMagic) {
    error = "batch payload: bad magic " + std::to_string(magic);
    return nullptr;
  }
  if (version != kBatchCodecVersion) {
    error = "batch payload: unsupported version " + std::to_string(version);
    return nullptr;
  }
  if (!r.u8(format, "format")) return nullptr;
  if (format > static_cast<uint8_t>(EventFormat::HekaMessage)) {
    error = "batch payload: unknown event format " + std::to_string(format);
    return nullptr;
  }

  auto batch = std::make_shared<Batch>();
  batch->format = static_cast<EventFormat>(format);
  const bool heka = batch->format == EventFormat::HekaMessage;
  std::string_view tag, name, hostname, payload_key;
  if (!r.str(tag, "tag") || !r.str(name, "source name") || !r.str(hostname, "source hostname") ||
      !r.str(payload_key, "source payload_key"))
    return nullptr;
  batch->tag.assign(tag);
  auto source = std::make_shared<SourceInfo>();
  source->name.assign(name);
  source->hostname.assign(hostname);
  source->payload_key.assign(payload_key);
  batch->source = std::move(source);

  uint16_t signer_count = 0;
  if (!r.u16(signer_count, "signer count")) return nullptr;
  if (r.left() / 4 < signer_count) {
    r.fail("signer names");
    return nullptr;
  }
  batch->signers.reserve(signer_count);
  for (uint16_t i = 0; i < signer_count; ++i) {
    std::string_view s;
    if (!r.str(s, "signer name")) return nullptr;
    batch->signers.emplace_back(s);
  }

  uint32_t event_count = 0;
  if (!r.u32(event_count, "event count")) return nullptr;
  if (r.left() / kMinEventSize < event_count) {
    r.fail("events");
    return nullptr;
  }
  batch->events.reserve(event_count);
  // The events' bytes are what is left minus their fixed-size fields: one allocation.
  std::string buf;
  buf.reserve(r.left() - kMinEventSize * event_count);
  for (uint32_t i = 0; i < event_count; ++i) {
    Event e;
    uint64_t t = 0;
    std::string_view time, record;
    if (!r.u64(t, "event time_ns") || !r.u16(e.signer, "event signer") ||
        !r.str(time, "event time") || !r.str(record, "event record"))
      return nullptr;
    if (e.signer > signer_count) {
      error = "batch payload: event " + std::to_string(i) + " refers to signer " +
              std::to_string(e.signer) + " of " + std::to_string(signer_count);
      return nullptr;
    }
    if (heka && !time.empty()) {
      error = "batch payload: Heka event " + std::to_string(i) + " has time bytes";
      return nullptr;
    }
    e.time_ns = static_cast<int64_t>(t);
    // buf stays below payload.size() <= UINT32_MAX, so the offsets fit.
    e.time_off = static_cast<uint32_t>(buf.size());
    e.time_len = static_cast<uint32_t>(time.size());
    buf.append(time);
    e.record_off = static_cast<uint32_t>(buf.size());
    e.record_len = static_cast<uint32_t>(record.size());
    buf.append(record);
    batch->events.push_back(e);
  }
  if (r.left() != 0) {
    error = "batch payload: " + std::to_string(r.left()) + " trailing bytes at offset " +
            std::to_string(r.pos);
    return nullptr;
  }
  batch->bytes = std::make_shared<const std::string>(std::move(buf));
  return batch;
}

}  // namespace ferry
