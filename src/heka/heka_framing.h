// Heka stream framing (heka.md §2.1, §2.4): 0x1E, header length, Header protobuf, 0x1F,
// message body. Splits a byte stream into records and resynchronises on garbage the way
// Heka's HekaFramingSplitter does (skip one byte, search the next 0x1E).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry::heka {

inline constexpr uint8_t kRecordSeparator = 0x1E;
inline constexpr uint8_t kUnitSeparator = 0x1F;
inline constexpr size_t kDefaultMaxMessageSize = 64 * 1024;

class HekaFramingSplitter {
 public:
  explicit HekaFramingSplitter(size_t max_message_size = kDefaultMaxMessageSize)
      : max_message_size_(max_message_size) {}

  void append(const char* data, size_t n);
  // True with the next record's header and body bytes (copied out). False: more bytes
  // are needed. Garbage and headers that do not parse are skipped and counted.
  bool next(std::string& header, std::string& body);

  uint64_t skippedBytes() const { return skipped_bytes_; }
  uint64_t oversizedRecords() const { return oversized_; }
  size_t buffered() const { return buf_.size() - off_; }

 private:
  void skip(size_t n);

  size_t max_message_size_;
  std::string buf_;
  size_t off_ = 0;
  uint64_t skipped_bytes_ = 0;
  uint64_t oversized_ = 0;
};

// Frames `body` with an unsigned header (`message_length` only), as Heka's writers do.
std::string frameHekaRecord(std::string_view body);

}  // namespace ferry::heka
