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
inline constexpr size_t kMaxHeaderSize = 255;

// Header.HmacHashFunction.
enum class HmacHash : uint32_t { MD5 = 0, SHA1 = 1 };

// A parsed framing Header (heka.md §1.1) whose strings point into the header bytes.
struct HekaHeader {
  uint32_t message_length = 0;
  uint32_t hash_function = 0;  // raw enum value: 0 MD5 (also when absent), 1 SHA1, else unknown
  uint32_t key_version = 0;    // 0 when absent, as Heka's lookup does
  std::string_view signer;     // hmac_signer ("" when absent)
  std::string_view hmac;       // the digest ("" when absent; see has_hmac)
  bool has_hmac = false;       // field 6 present, even if empty
};

// Decodes Header bytes without allocating. False when they are not a valid Header the
// way Heka's Go decoder sees it: malformed protobuf, or a known field with the wrong
// wire type. Unknown fields (tag 2 of Heka ≤ 0.3) are skipped.
bool parseHekaHeader(std::string_view bytes, HekaHeader& out);

// One record: views into the splitter's buffer, valid until its next append() or reset().
struct HekaRecord {
  std::string_view header;  // the Header protobuf (without 0x1E, length byte and 0x1F)
  std::string_view body;    // message_length bytes after 0x1F
  HekaHeader parsed;        // `header` decoded
};

class HekaFramingSplitter {
 public:
  explicit HekaFramingSplitter(size_t max_message_size = kDefaultMaxMessageSize)
      : max_message_size_(max_message_size) {}

  void append(const char* data, size_t n);
  // True with the next record's header and body bytes (copied out). False: more bytes
  // are needed. Garbage and headers that do not parse are skipped and counted.
  bool next(std::string& header, std::string& body);
  // Same without copying: `rec` points into the buffer until the next append()/reset().
  bool next(HekaRecord& rec);
  // Forgets buffered bytes (a datagram's records never join the next one's). The bytes
  // dropped are counted as skipped; the counters are kept.
  void reset();

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
