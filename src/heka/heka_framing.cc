// HekaFramingSplitter and the unsigned record writer.
#include "src/heka/heka_framing.h"

#include "src/heka/message.pb.h"

namespace ferry::heka {

void HekaFramingSplitter::append(const char* data, size_t n) {
  if (off_ > 0 && (off_ >= buf_.size() || off_ > 64 * 1024)) {
    buf_.erase(0, off_);
    off_ = 0;
  }
  buf_.append(data, n);
}

void HekaFramingSplitter::skip(size_t n) {
  off_ += n;
  skipped_bytes_ += n;
}

bool HekaFramingSplitter::next(std::string& header, std::string& body) {
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
    message::Header h;
    if (!h.ParsePartialFromArray(buf_.data() + off_ + 2, static_cast<int>(hlen))) {
      skip(1);
      continue;
    }
    const size_t len = h.message_length();
    if (len > max_message_size_) {
      ++oversized_;
      skip(1);
      continue;
    }
    if (buffered() < hlen + 3 + len) return false;
    header.assign(buf_, off_ + 2, hlen);
    body.assign(buf_, off_ + 3 + hlen, len);
    off_ += hlen + 3 + len;
    return true;
  }
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
