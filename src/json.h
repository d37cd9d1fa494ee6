// JSON for ferry: msgpack → JSON text (stdout and file outputs, JSON acks), and a JSON →
// msgpack parser for Fluentd's JSON connection mode (a connection whose first byte is
// `{` or `[`). No JSON library is among our dependencies, and both directions are small.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::json {

// Appends `s` as a JSON string literal (with quotes). Valid UTF-8 is copied; `"`, `\` and
// control characters are escaped; each byte that is not part of valid UTF-8 is written
// as \u00XX (the byte's value), so output is always valid JSON.
void appendString(std::string& out, std::string_view s);

// Appends one msgpack object from `data[0..size)` as JSON. Returns the number of bytes
// of msgpack consumed, or 0 when the bytes are truncated, invalid, or nested deeper than
// `max_depth`. Mapping: nil→null, bool, integers exact (uint64 too), float as the
// shortest text that reads back to the same double (with ".0" when integral; NaN and
// infinities → null), str and bin → string (see appendString), array, map (a key that
// is not str/bin is written as the JSON text of the key, quoted), ext → {"$ext":TYPE,
// "$data":"BASE64"}.
size_t appendMsgpack(std::string& out, const uint8_t* data, size_t size, uint32_t max_depth = 256);

// Streaming JSON → msgpack, one top-level value at a time.
class Parser {
 public:
  enum class Result { Done, NeedMore, Invalid };

  explicit Parser(uint32_t max_depth = 256) : max_depth_(max_depth) {}

  // Parses one JSON value at the start of `data[0..size)` (leading whitespace is
  // skipped) and appends it to `out` as msgpack. Done: consumed() bytes were used
  // (whitespace after the value is not consumed). NeedMore: the value is incomplete,
  // nothing was appended; call again with the same bytes plus more. Invalid: not JSON
  // (or deeper than max_depth); error() says what and at which byte offset.
  // Numbers: integers that fit int64/uint64 → msgpack int; others → float64. Strings →
  // msgpack str (escapes decoded, \u surrogate pairs → UTF-8).
  Result parse(const char* data, size_t size, std::string& out);

  size_t consumed() const { return consumed_; }
  const std::string& error() const { return error_; }

 private:
  uint32_t max_depth_;
  size_t consumed_ = 0;
  std::string error_;
};

}  // namespace ferry::json
