// HekaFramingSplitter, the allocation-free Header decoder (Heka's Go rules: a known field
// with the wrong wire type is not a header) and the unsigned record writer.
#include "src/heka/heka_framing.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include "src/heka/message.pb.h"

namespace ferry::heka {

namespace {
using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedInputStream;

// Reads a length-delimited value as a view into `bytes`.
bool readBytes(CodedInputStream& in, std::string_view bytes, std::string_view& out) {
  uint64_t len = 0;
  if (!in.ReadVarint64(&len)) return false;
  const size_t pos = static_cast<size_t>(in.CurrentPosition());
  if (len > bytes.size() - pos) return false;
  out = bytes.substr(pos, static_cast<size_t>(len));
  return in.Skip(static_cast<int>(len));
}
}  // namespace

bool parseHekaHeader(std::string_view bytes, HekaHeader& out) {
  out = HekaHeader{};
  if (bytes.size() > kMaxHeaderSize) return false;
  CodedInputStream in(reinterpret_cast<const uint8_t*>(bytes.data()),
                      static_cast<int>(bytes.size()));
  while (static_cast<size_t>(in.CurrentPosition()) < bytes.size()) {
    const uint32_t tag = in.ReadTag();
    if (tag == 0 || (tag >> 3) == 0) return false;
    const uint32_t wire = tag & 7;
    // Heka's (gogo) decoder refuses a known field with the wrong wire type, so a header
    // that libprotobuf would accept (treating the field as unknown) is "not a header".
    switch (tag >> 3) {
      case 1:
        if (wire != WireFormatLite::WIRETYPE_VARINT || !in.ReadVarint32(&out.message_length))
          return false;
        break;
      case 3:
        if (wire != WireFormatLite::WIRETYPE_VARINT || !in.ReadVarint32(&out.hash_function))
          return false;
        break;
      case 4:
        if (wire != WireFormatLite::WIRETYPE_LENGTH_DELIMITED || !readBytes(in, bytes, out.signer))
          return false;
        break;
      case 5:
        if (wire != WireFormatLite::WIRETYPE_VARINT || !in.ReadVarint32(&out.key_version))
          return false;
        break;
      case 6:
        if (wire != WireFormatLite::WIRETYPE_LENGTH_DELIMITED || !readBytes(in, bytes, out.hmac))
          return false;
        out.has_hmac = true;
        break;
      default:
        if (wire == WireFormatLite::WIRETYPE_END_GROUP || !WireFormatLite::SkipField(&in, tag))
          return false;
        break;
    }
  }
  return true;
}

void HekaFramingSplitter::append(const char* data, size_t n) {
  if (off_ > 0 && (off_ >= buf_.size() || off_ > 64 * 1024)) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data, n);
}

void HekaFramingSplitter::reset() {
  skipped_bytes_ += buffered();
  buf_.clear();
  off_ = 0;
}

void HekaFramingSplitter::skip(size_t n) {
  off_ += n;
  skipped_bytes_ += n;
}

bool HekaFramingSplitter::next(HekaRecord& rec) {
  for (;;) {
    const size_t start = buf_.find(static_cast<char>(kRecordSeparator), off_);
    if (start == std::string::npos) {
      skip(buf_.size() - off_);
      return false;
    }
    if (start > off_) skip(start - off_);
    if (buffered() < 2) return false;
    const size_t hlen = static_cast<uint8_t>(buf_[off_ + 1]);
    if (buffered() < hlen + 3) return false;
    if (static_cast<uint8_t>(buf_[off_ + 2 + hlen]) != kUnitSeparator) {
      skip(1);  // not a header: resynchronise on the next separator
      continue;
    }
    const std::string_view header = std::string_view(buf_).substr(off_ + 2, hlen);
    if (!parseHekaHeader(header, rec.parsed)) {
      skip(1);
      continue;
    }
    const size_t len = rec.parsed.message_length;
    if (len > max_message_size_) {
      // As hekad: the header is invalid, so the search goes on inside the oversized
      // body (its bytes end up counted as skipped).
      ++oversized_;
      skip(1);
      continue;
    }
    if (buffered() < hlen + 3 + len) return false;
    rec.header = header;
    rec.body = std::string_view(buf_).substr(off_ + 3 + hlen, len);
    off_ += hlen + 3 + len;
    return true;
  }
}

bool HekaFramingSplitter::next(std::string& header, std::string& body) {
  HekaRecord rec;
  if (!next(rec)) return false;
  header.assign(rec.header);
  body.assign(rec.body);
  return true;
}

std::string frameHekaRecord(std::string_view body) {
  message::Header h;
  h.set_message_length(static_cast<uint32_t>(body.size()));
  const std::string hdr = h.SerializeAsString();
  std::string out;
  out.reserve(hdr.size() + 3 + body.size());
  out += static_cast<char>(kRecordSeparator);
  out += static_cast<char>(hdr.size());
  out += hdr;
  out += static_cast<char>(kUnitSeparator);
  out.append(body);
  return out;
}

}  // namespace ferry::heka
