// Fluentd forward protocol decoding (forward.md §1): splitting a byte stream into
// requests (msgpack, or JSON when the connection starts with `{` or `[`), and decoding
// one request of any mode (Message, Forward, PackedForward, CompressedPackedForward)
// into a Batch that keeps the entry bytes as they arrived.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "src/batch.h"
#include "src/msgpack_reader.h"
#include "src/status.h"

namespace ferry::forward {

enum class Mode { None, Message, Forward, PackedForward, CompressedPackedForward };
const char* modeName(Mode m);

struct Limits {
  size_t max_frame_size = 64u << 20;
  size_t max_decompressed_size = 256u << 20;
  uint32_t max_entries = 1'000'000;
  uint32_t max_tag_length = 1024;
  uint32_t max_depth = 128;
};

// Why a frame was skipped (SkipFrame), so the session can count each reason.
enum class SkipReason {
  None,
  InvalidRoot,
  TagTooLong,
  TooManyEntries,
  DecompressedTooLarge,
  BadCompression,
  BadShape
};

struct DecodedFrame {
  Mode mode = Mode::None;
  std::shared_ptr<Batch> batch;      // null for heartbeats and ignored roots
  std::optional<std::string> chunk;  // the `chunk` option: an ack was asked for
  uint32_t invalid_entries = 0;
  bool heartbeat = false;     // a bare nil
  bool ignored_root = false;  // a root that is not an array (ignored, as Fluentd does)
  SkipReason skip = SkipReason::None;
};

// Decodes one complete request. `frame` holds exactly one msgpack object; events point
// into it (or into a decompressed buffer). Returns Ok (possibly with zero events, e.g.
// an invalid Message-mode event, which still gets its ack as in Fluentd) or SkipFrame
// with `out.skip` set; never CloseStream (the framing is intact). `now_ns` replaces a
// time of 0, as Fluentd does.
Status decodeFrame(std::shared_ptr<const std::string> frame, const Limits& limits, int64_t now_ns,
                   DecodedFrame& out);

// Parses an event time (integer, float, EventTime ext 0 as fixext8 or ext8, or the v1.5
// [EventTime, {metadata}] form). False when it is none of these.
bool parseEventTime(mp::Reader& r, int64_t now_ns, int64_t& time_ns);

// Splits a connection's bytes into requests. Decides msgpack or JSON from the first
// byte, then yields one request at a time as msgpack bytes.
class FrameSplitter {
 public:
  explicit FrameSplitter(const Limits& limits);

  void append(const char* data, size_t n);
  // Ok: `frame` holds the next request as msgpack. NeedMore: wait for bytes.
  // CloseStream: the bytes cannot be parsed or a request exceeds max_frame_size.
  Status next(std::string& frame);

  bool isJson() const { return mode_ == StreamMode::Json; }
  // Bytes buffered for a request that is not complete yet.
  size_t buffered() const { return buf_.size() - off_; }

 private:
  enum class StreamMode { Unknown, Msgpack, Json };
  Status nextJson(std::string& frame);
  void consume(size_t n);

  Limits limits_;
  StreamMode mode_ = StreamMode::Unknown;
  std::string buf_;
  size_t off_ = 0;
  mp::ObjectScanner scanner_;
  // JSON: where the end of the current top-level value is being looked for.
  size_t json_pos_ = 0;
  uint32_t json_depth_ = 0;
  bool json_in_string_ = false;
  bool json_escape_ = false;
  bool json_started_ = false;
};

}  // namespace ferry::forward
