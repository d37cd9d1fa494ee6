// Zero-copy, bounds-checked msgpack reading over contiguous bytes, plus a resumable
// scanner that finds where one object ends in a stream that arrives in pieces.
//
// Why our own and not msgpack-c's unpacker: the unpacker builds a msgpack_object tree in
// a zone for every value it sees. The forward hot path only needs to find entry
// boundaries, read a tag, a time and an option map, and keep the entry bytes as they
// arrived; building and freeing a tree per event would cost an allocation per value.
// This reader touches each header once and never allocates (the scanner keeps a small
// stack that is reused across frames). msgpack-c is still used for writing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace ferry::mp {

enum class Type : uint8_t { Nil, Bool, PosInt, NegInt, Float, Str, Bin, Array, Map, Ext };

// One decoded object header. For Str/Bin/Ext `data` points at the payload (of `len`
// bytes); for Array/Map `len` is the element count (pairs for a map).
struct Value {
  Type type = Type::Nil;
  bool boolean = false;
  uint64_t u = 0;  // PosInt
  int64_t i = 0;   // NegInt, and PosInt up to INT64_MAX (0 above it: read `u`)
  double f = 0;    // Float (float32 widened)
  uint32_t len = 0;
  int8_t ext_type = 0;
  const uint8_t* data = nullptr;

  std::string_view str() const { return {reinterpret_cast<const char*>(data), len}; }
  bool isInt() const { return type == Type::PosInt || type == Type::NegInt; }
  bool isStrOrBin() const { return type == Type::Str || type == Type::Bin; }
};

// Result of reading a header: number of bytes consumed (header plus, for Str/Bin/Ext,
// payload), 0 when more bytes are needed, -1 when the byte is not msgpack (0xc1).
int64_t readValue(const uint8_t* p, size_t n, Value& out);

// A cursor over bytes known to hold complete objects (e.g. one framed request).
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : begin_(data), p_(data), end_(data + size) {}
  explicit Reader(std::string_view s)
      : Reader(reinterpret_cast<const uint8_t*>(s.data()), s.size()) {}

  // Reads one header (and the payload of Str/Bin/Ext). Array and Map elements follow
  // and must be read or skipped by the caller. False on truncated or invalid bytes.
  bool next(Value& v);
  // Skips one whole object, nested containers included. False on truncated/invalid
  // bytes or nesting deeper than `max_depth` (which is capped at kDefaultMaxDepth: the
  // skip uses a fixed stack so hostile input costs no allocation).
  bool skip(uint32_t max_depth = kDefaultMaxDepth);

  const uint8_t* pos() const { return p_; }
  size_t offset() const { return static_cast<size_t>(p_ - begin_); }
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }
  bool atEnd() const { return p_ == end_; }

  static constexpr uint32_t kDefaultMaxDepth = 256;

 private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
};

// Finds the end of one msgpack object in a growing buffer without rescanning what it
// has already seen. Feed it the whole buffer each time (the same prefix plus new bytes).
class ObjectScanner {
 public:
  enum class Result { Done, NeedMore, Invalid, TooDeep };

  explicit ObjectScanner(uint32_t max_depth = Reader::kDefaultMaxDepth) : max_depth_(max_depth) {}

  // Continues scanning `data[0..size)`. On Done, `end()` is the object's length.
  Result scan(const uint8_t* data, size_t size);
  size_t end() const { return pos_; }
  // Bytes scanned so far (for frame-size limits while incomplete).
  size_t scanned() const { return pos_; }
  // Forget the current object; call after consuming it from the buffer.
  void reset();

 private:
  uint32_t max_depth_;
  size_t pos_ = 0;
  bool started_ = false;
  std::vector<uint64_t> pending_;  // elements still to read, per open container
};

}  // namespace ferry::mp
