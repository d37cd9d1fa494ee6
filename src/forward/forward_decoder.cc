// Forward request decoding: mode detection as Fluentd does it (by the type of element
// 1), tolerant entry validation, limits, gzip, and stream splitting.
#include "src/forward/forward_decoder.h"

#include <cmath>

#include "src/gzip.h"
#include "src/json.h"

namespace ferry::forward {

const char* modeName(Mode m) {
  switch (m) {
    case Mode::None:
      return "none";
    case Mode::Message:
      return "Message";
    case Mode::Forward:
      return "Forward";
    case Mode::PackedForward:
      return "PackedForward";
    case Mode::CompressedPackedForward:
      return "CompressedPackedForward";
  }
  return "?";
}

namespace {

constexpr int64_t kNsPerSec = 1'000'000'000;
// Seconds beyond this would overflow int64 nanoseconds (year 2262).
constexpr uint64_t kMaxSeconds = static_cast<uint64_t>(INT64_MAX / kNsPerSec) - 1;

bool timeFromScalar(const mp::Value& v, int64_t now_ns, int64_t& out) {
  switch (v.type) {
    case mp::Type::PosInt:
      if (v.u > kMaxSeconds) return false;
      out = v.u == 0 ? now_ns : static_cast<int64_t>(v.u) * kNsPerSec;
      return true;
    case mp::Type::NegInt:
      if (v.i < -static_cast<int64_t>(kMaxSeconds)) return false;
      out = v.i * kNsPerSec;
      return true;
    case mp::Type::Float: {
      if (!std::isfinite(v.f) || std::fabs(v.f) > static_cast<double>(kMaxSeconds)) return false;
      if (v.f == 0) {
        out = now_ns;
        return true;
      }
      // Split first: f * 1e9 alone would lose the nanoseconds to double rounding.
      const double sec = std::floor(v.f);
      out = static_cast<int64_t>(sec) * kNsPerSec + std::llround((v.f - sec) * 1e9);
      return true;
    }
    case mp::Type::Ext: {
      if (v.ext_type != 0 || v.len != 8) return false;
      const uint8_t* p = v.data;
      const uint32_t sec =
          (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
      const uint32_t nsec =
          (uint32_t{p[4]} << 24) | (uint32_t{p[5]} << 16) | (uint32_t{p[6]} << 8) | p[7];
      if (nsec >= kNsPerSec) return false;
      // Fluentd replaces a time whose seconds are 0 (`time.to_i == 0`).
      out = sec == 0 ? now_ns : int64_t{sec} * kNsPerSec + nsec;
      return true;
    }
    default:
      return false;
  }
}

}  // namespace

bool parseEventTime(mp::Reader& r, int64_t now_ns, int64_t& time_ns) {
  mp::Value v;
  if (!r.next(v)) return false;
  if (v.type != mp::Type::Array) return timeFromScalar(v, now_ns, time_ns);
  // v1.5: [EventTime, {metadata}]; the metadata is not kept.
  if (v.len < 1) return false;
  mp::Value t;
  if (!r.next(t) || !timeFromScalar(t, now_ns, time_ns)) return false;
  for (uint32_t k = 1; k < v.len; ++k) {
    if (!r.skip()) return false;
  }
  return true;
}

namespace {

// Reads one `[time, record]` entry at the reader. On success fills `e` with offsets
// relative to `base`. On an invalid entry, skips it whole and returns false; `ok_stream`
// turns false when the bytes cannot even be skipped (truncated packed data).
bool readEntry(mp::Reader& r, const uint8_t* base, const Limits& limits, int64_t now_ns, Event& e,
               bool& ok_stream) {
  // Find where the entry ends first (with the reader's own depth bound), so an entry
  // that is only too deep for our limit is skipped alone and the entries after it stand.
  mp::Reader end = r;
  if (!end.skip(mp::Reader::kDefaultMaxDepth)) {
    ok_stream = false;
    return false;
  }
  ok_stream = true;
  mp::Reader in = r;
  r = end;
  mp::Value v;
  in.next(v);
  if (v.type != mp::Type::Array || v.len < 2) return false;
  const uint8_t* time_start = in.pos();
  int64_t t;
  mp::Reader tr = in;
  const bool time_ok = parseEventTime(tr, now_ns, t);
  if (!in.skip(limits.max_depth)) return false;
  const uint8_t* record_start = in.pos();
  mp::Value rv;
  mp::Reader rp = in;
  const bool record_is_map = rp.next(rv) && rv.type == mp::Type::Map;
  if (!in.skip(limits.max_depth)) return false;
  const uint8_t* record_end = in.pos();
  if (!time_ok || !record_is_map) return false;
  e.time_ns = t;
  e.time_off = static_cast<uint32_t>(time_start - base);
  e.time_len = static_cast<uint32_t>(record_start - time_start);
  e.record_off = static_cast<uint32_t>(record_start - base);
  e.record_len = static_cast<uint32_t>(record_end - record_start);
  return true;
}

struct Options {
  std::optional<std::string> chunk;
  std::optional<std::string> compressed;
  int64_t size = -1;
};

// Reads the option element: absent, nil, or a map. Anything else is ignored (liberal).
bool readOptions(mp::Reader& r, const Limits& limits, Options& o) {
  mp::Value v;
  mp::Reader probe = r;
  if (!probe.next(v)) return false;
  if (v.type != mp::Type::Map) return r.skip(limits.max_depth);
  r.next(v);
  for (uint32_t k = 0; k < v.len; ++k) {
    mp::Value key;
    if (!r.next(key)) return false;
    if (!key.isStrOrBin()) {
      if (!r.skip(limits.max_depth)) return false;
      continue;
    }
    const std::string_view name = key.str();
    mp::Reader vr = r;
    mp::Value val;
    if (!vr.next(val)) return false;
    if (name == "chunk" && val.isStrOrBin()) {
      o.chunk = std::string(val.str());
    } else if (name == "compressed" && val.isStrOrBin()) {
      o.compressed = std::string(val.str());
    } else if (name == "size" && val.type == mp::Type::PosInt) {
      o.size = static_cast<int64_t>(std::min<uint64_t>(val.u, INT64_MAX));
    }
    if (!r.skip(limits.max_depth)) return false;
  }
  return true;
}

Status skipWith(DecodedFrame& out, SkipReason reason, std::string message) {
  out.skip = reason;
  out.batch.reset();
  return Status::skip(std::move(message));
}

}  // namespace

Status decodeFrame(std::shared_ptr<const std::string> frame, const Limits& limits, int64_t now_ns,
                   DecodedFrame& out) {
  out = DecodedFrame{};
  const auto* base = reinterpret_cast<const uint8_t*>(frame->data());
  mp::Reader r(base, frame->size());
  mp::Value root;
  if (!r.next(root)) return skipWith(out, SkipReason::InvalidRoot, "unreadable request");
  if (root.type == mp::Type::Nil) {
    out.heartbeat = true;
    return Status::ok();
  }
  if (root.type != mp::Type::Array) {
    out.ignored_root = true;
    return Status::ok();
  }
  if (root.len < 2)
    return skipWith(out, SkipReason::BadShape, "request array has fewer than 2 elements");
  mp::Value tag;
  if (!r.next(tag) || !tag.isStrOrBin()) {
    return skipWith(out, SkipReason::BadShape, "tag is not a string");
  }
  if (tag.len > limits.max_tag_length) {
    return skipWith(out, SkipReason::TagTooLong,
                    "tag of " + std::to_string(tag.len) + " bytes exceeds max_tag_length");
  }
  auto batch = std::make_shared<Batch>();
  batch->tag.assign(tag.str());
  batch->bytes = frame;

  mp::Value second;
  mp::Reader peek = r;
  if (!peek.next(second)) return skipWith(out, SkipReason::BadShape, "truncated request");

  // An array in slot 1 is Forward mode, unless it is exactly a v1.5 time
  // `[EventTime, {meta}]` in a Message: two elements, a time scalar then a map.
  bool v15_message_time = false;
  if (second.type == mp::Type::Array && second.len == 2 && root.len >= 3) {
    mp::Value first, meta;
    mp::Reader inner = peek;
    v15_message_time = inner.next(first) &&
                       (first.type == mp::Type::Ext || first.type == mp::Type::PosInt) &&
                       inner.next(meta) && meta.type == mp::Type::Map;
  }

  Options opts;
  if (second.type == mp::Type::Array && !v15_message_time) {
    // Forward: [tag, [[time, record], ...], option?]
    out.mode = Mode::Forward;
    r.next(second);
    if (second.len > limits.max_entries) {
      return skipWith(out, SkipReason::TooManyEntries,
                      std::to_string(second.len) + " entries exceed max_entries_per_frame");
    }
    batch->events.reserve(second.len);
    for (uint32_t k = 0; k < second.len; ++k) {
      Event e;
      bool ok_stream;
      if (readEntry(r, base, limits, now_ns, e, ok_stream)) {
        batch->events.push_back(e);
      } else {
        ++out.invalid_entries;
        if (!ok_stream) return skipWith(out, SkipReason::BadShape, "truncated entry");
      }
    }
  } else if (second.isStrOrBin()) {
    // PackedForward, possibly compressed: [tag, bytes, option?]
    r.next(second);
    const uint8_t* payload = second.data;
    size_t payload_len = second.len;
    if (root.len >= 3 && !readOptions(r, limits, opts)) {
      return skipWith(out, SkipReason::BadShape, "unreadable option map");
    }
    const bool gzip_magic = payload_len >= 2 && payload[0] == 0x1f && payload[1] == 0x8b;
    const bool says_compressed = opts.compressed && *opts.compressed != "text";
    if (says_compressed && *opts.compressed != "gzip") {
      return skipWith(out, SkipReason::BadCompression,
                      "unsupported compression '" + *opts.compressed + "' (only gzip)");
    }
    if (says_compressed || gzip_magic) {
      // As Fluent Bit does, the gzip magic wins over a missing or "text" option.
      out.mode = Mode::CompressedPackedForward;
      auto plain = std::make_shared<std::string>();
      const GunzipResult gz =
          gunzip(std::string_view(reinterpret_cast<const char*>(payload), payload_len),
                 limits.max_decompressed_size, *plain);
      if (gz == GunzipResult::TooLarge) {
        return skipWith(out, SkipReason::DecompressedTooLarge,
                        "decompressed payload exceeds max_decompressed_size");
      }
      if (gz == GunzipResult::Corrupt) {
        return skipWith(out, SkipReason::BadCompression, "corrupt gzip payload");
      }
      batch->bytes = plain;
      base = reinterpret_cast<const uint8_t*>(plain->data());
      payload = base;
      payload_len = plain->size();
    } else {
      out.mode = Mode::PackedForward;
    }
    if (opts.size > 0) {
      batch->events.reserve(static_cast<size_t>(std::min<int64_t>(opts.size, limits.max_entries)));
    }
    mp::Reader pr(payload, payload_len);
    while (!pr.atEnd()) {
      if (batch->events.size() + out.invalid_entries >= limits.max_entries) {
        return skipWith(out, SkipReason::TooManyEntries,
                        "packed entries exceed max_entries_per_frame");
      }
      Event e;
      bool ok_stream;
      if (readEntry(pr, base, limits, now_ns, e, ok_stream)) {
        batch->events.push_back(e);
      } else {
        ++out.invalid_entries;
        if (!ok_stream) break;  // truncated tail: the entries before it stand
      }
    }
    out.chunk = std::move(opts.chunk);
    out.batch = std::move(batch);
    return Status::ok();
  } else {
    // Message: [tag, time, record, option?]
    out.mode = Mode::Message;
    const uint8_t* time_start = r.pos();
    int64_t t;
    mp::Reader tr = r;
    const bool time_ok = parseEventTime(tr, now_ns, t);
    if (!r.skip(limits.max_depth)) return skipWith(out, SkipReason::BadShape, "truncated time");
    if (root.len < 3) {
      ++out.invalid_entries;
    } else {
      const uint8_t* record_start = r.pos();
      mp::Value rv;
      mp::Reader rp = r;
      const bool is_map = rp.next(rv) && rv.type == mp::Type::Map;
      if (!r.skip(limits.max_depth)) return skipWith(out, SkipReason::BadShape, "truncated record");
      if (time_ok && is_map) {
        Event e;
        e.time_ns = t;
        e.time_off = static_cast<uint32_t>(time_start - base);
        e.time_len = static_cast<uint32_t>(record_start - time_start);
        e.record_off = static_cast<uint32_t>(record_start - base);
        e.record_len = static_cast<uint32_t>(r.pos() - record_start);
        batch->events.push_back(e);
      } else {
        ++out.invalid_entries;
      }
    }
  }
  // Forward and Message: the option element follows.
  const uint32_t option_index = out.mode == Mode::Message ? 3 : 2;
  if (root.len > option_index && !readOptions(r, limits, opts)) {
    return skipWith(out, SkipReason::BadShape, "unreadable option map");
  }
  out.chunk = std::move(opts.chunk);
  out.batch = std::move(batch);
  return Status::ok();
}

FrameSplitter::FrameSplitter(const Limits& limits) : limits_(limits), scanner_(limits.max_depth) {}

void FrameSplitter::append(const char* data, size_t n) {
  // Compact once the consumed prefix dominates, so the buffer does not grow forever.
  if (off_ > 0 && (off_ >= buf_.size() || off_ > 64 * 1024)) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data, n);
}

void FrameSplitter::consume(size_t n) {
  off_ += n;
  if (off_ == buf_.size()) {
    buf_.clear();
    off_ = 0;
  }
}

Status FrameSplitter::next(std::string& frame) {
  if (mode_ == StreamMode::Unknown) {
    if (buffered() == 0) return Status::needMore();
    const char c = buf_[off_];
    mode_ = (c == '{' || c == '[') ? StreamMode::Json : StreamMode::Msgpack;
  }
  if (mode_ == StreamMode::Json) return nextJson(frame);
  const auto* p = reinterpret_cast<const uint8_t*>(buf_.data() + off_);
  switch (scanner_.scan(p, buffered())) {
    case mp::ObjectScanner::Result::Done: {
      const size_t len = scanner_.end();
      if (len > limits_.max_frame_size) {
        return Status::close("request of " + std::to_string(len) + " bytes exceeds max_frame_size");
      }
      frame.assign(buf_.data() + off_, len);
      scanner_.reset();
      consume(len);
      return Status::ok();
    }
    case mp::ObjectScanner::Result::NeedMore:
      if (buffered() > limits_.max_frame_size) {
        return Status::close("incomplete request of over " + std::to_string(buffered()) +
                             " bytes exceeds max_frame_size");
      }
      return Status::needMore();
    case mp::ObjectScanner::Result::TooDeep:
      return Status::close("msgpack nested deeper than max_nesting_depth");
    case mp::ObjectScanner::Result::Invalid:
      break;
  }
  return Status::close("invalid msgpack byte");
}

Status FrameSplitter::nextJson(std::string& frame) {
  // Skip whitespace between values.
  while (!json_started_ && off_ < buf_.size() &&
         (buf_[off_] == ' ' || buf_[off_] == '\n' || buf_[off_] == '\r' || buf_[off_] == '\t')) {
    consume(1);
  }
  if (buffered() == 0) return Status::needMore();
  const char* p = buf_.data() + off_;
  const size_t n = buffered();
  // Find where the top-level array or object ends with a resumable bracket scan, so a
  // large request arriving in pieces is parsed once, not once per piece.
  size_t end = 0;
  if (p[0] == '[' || p[0] == '{') {
    json_started_ = true;
    for (; json_pos_ < n; ++json_pos_) {
      const char c = p[json_pos_];
      if (json_in_string_) {
        if (json_escape_) {
          json_escape_ = false;
        } else if (c == '\\') {
          json_escape_ = true;
        } else if (c == '"') {
          json_in_string_ = false;
        }
        continue;
      }
      if (c == '"') {
        json_in_string_ = true;
      } else if (c == '[' || c == '{') {
        ++json_depth_;
        if (json_depth_ > limits_.max_depth)
          return Status::close("JSON nested deeper than max_nesting_depth");
      } else if (c == ']' || c == '}') {
        if (--json_depth_ == 0) {
          end = json_pos_ + 1;
          break;
        }
      }
    }
    if (end == 0) {
      if (n > limits_.max_frame_size) return Status::close("JSON request exceeds max_frame_size");
      return Status::needMore();
    }
  } else {
    end = n;  // a scalar root: let the parser decide where it ends
  }
  if (end > limits_.max_frame_size) return Status::close("JSON request exceeds max_frame_size");
  json::Parser parser(limits_.max_depth);
  frame.clear();
  switch (parser.parse(p, end, frame)) {
    case json::Parser::Result::Done:
      json_pos_ = 0;
      json_depth_ = 0;
      json_in_string_ = json_escape_ = json_started_ = false;
      consume(parser.consumed());
      return Status::ok();
    case json::Parser::Result::NeedMore:
      if (n > limits_.max_frame_size) return Status::close("JSON request exceeds max_frame_size");
      return Status::needMore();
    case json::Parser::Result::Invalid:
      break;
  }
  return Status::close("invalid JSON: " + parser.error());
}

}  // namespace ferry::forward
