// HekaWireView and hekaCheckMessage: on-demand reads of a protobuf Message body with
// CodedInputStream. Scalar header fields follow protobuf's rule (the last occurrence
// wins); Fields are read in message order.
#include "src/heka_view.h"

#include <google/protobuf/io/coded_stream.h>

#include <cstring>

#include "src/event_view.h"

namespace ferry {
namespace {

using google::protobuf::io::CodedInputStream;

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

// One field of a protobuf message: its number, wire type and value.
struct WireField {
  uint32_t number = 0;
  uint32_t wire_type = 0;
  uint64_t scalar = 0;     // varint, fixed64, fixed32
  std::string_view bytes;  // length-delimited
};

CodedInputStream makeStream(std::string_view data) {
  return CodedInputStream(reinterpret_cast<const uint8_t*>(data.data()),
                          static_cast<int>(data.size()));
}

// Reads the next field. False at the end (`ok` true) or on malformed bytes (`ok` false).
bool nextField(CodedInputStream& in, std::string_view all, WireField& f, bool& ok) {
  ok = true;
  const uint32_t tag = in.ReadTag();
  if (tag == 0) {
    ok = in.ConsumedEntireMessage() || in.CurrentPosition() == static_cast<int>(all.size());
    return false;
  }
  f.number = tag >> 3;
  f.wire_type = tag & 7;
  switch (f.wire_type) {
    case kVarint:
      ok = in.ReadVarint64(&f.scalar);
      return ok;
    case kFixed64:
      ok = in.ReadLittleEndian64(&f.scalar);
      return ok;
    case kFixed32: {
      uint32_t v;
      ok = in.ReadLittleEndian32(&v);
      f.scalar = v;
      return ok;
    }
    case kLengthDelimited: {
      uint32_t len;
      if (!in.ReadVarint32(&len)) {
        ok = false;
        return false;
      }
      const int pos = in.CurrentPosition();
      if (static_cast<uint64_t>(pos) + len > all.size()) {
        ok = false;
        return false;
      }
      f.bytes = all.substr(static_cast<size_t>(pos), len);
      ok = in.Skip(static_cast<int>(len));
      return ok;
    }
    default:  // groups and reserved types: not in Heka's messages
      ok = false;
      return false;
  }
}

// The last length-delimited value of top-level field `number` (protobuf: last wins).
bool lastBytes(std::string_view body, uint32_t number, std::string_view& out) {
  CodedInputStream in = makeStream(body);
  WireField f;
  bool ok, found = false;
  while (nextField(in, body, f, ok)) {
    if (f.number == number && f.wire_type == kLengthDelimited) {
      out = f.bytes;
      found = true;
    }
  }
  return found;
}

bool lastVarint(std::string_view body, uint32_t number, uint64_t& out) {
  CodedInputStream in = makeStream(body);
  WireField f;
  bool ok, found = false;
  while (nextField(in, body, f, ok)) {
    if (f.number == number && f.wire_type == kVarint) {
      out = f.scalar;
      found = true;
    }
  }
  return found;
}

// The k-th element of a repeated numeric field that may be packed or not.
bool numericElement(std::string_view field_msg, uint32_t number, uint32_t element,
                    uint32_t unpacked_wire_type, uint64_t& out) {
  CodedInputStream in = makeStream(field_msg);
  WireField f;
  bool ok;
  uint32_t index = 0;
  while (nextField(in, field_msg, f, ok)) {
    if (f.number != number) continue;
    if (f.wire_type == unpacked_wire_type) {
      if (index++ == element) {
        out = f.scalar;
        return true;
      }
    } else if (f.wire_type == kLengthDelimited) {
      CodedInputStream packed = makeStream(f.bytes);
      while (packed.CurrentPosition() < static_cast<int>(f.bytes.size())) {
        uint64_t v = 0;
        bool read;
        if (unpacked_wire_type == kFixed64) {
          read = packed.ReadLittleEndian64(&v);
        } else {
          read = packed.ReadVarint64(&v);
        }
        if (!read) return false;
        if (index++ == element) {
          out = v;
          return true;
        }
      }
    }
  }
  return false;
}

}  // namespace

std::string_view HekaWireView::uuidBytes() const {
  std::string_view u;
  return lastBytes(body_, 1, u) ? u : std::string_view();
}

std::string_view HekaWireView::stringVar(StringVar v) const {
  uint32_t number = 0;
  switch (v) {
    case StringVar::Uuid: {
      const std::string_view raw = uuidBytes();
      if (raw.size() != 16) return {};
      if (uuid_text_.empty()) uuid_text_ = uuidText(raw);
      return uuid_text_;
    }
    case StringVar::Type:
      number = 3;
      break;
    case StringVar::Logger:
      number = 4;
      break;
    case StringVar::Payload:
      number = 6;
      break;
    case StringVar::EnvVersion:
      number = 7;
      break;
    case StringVar::Hostname:
      number = 9;
      break;
  }
  std::string_view s;
  return lastBytes(body_, number, s) ? s : std::string_view();
}

int64_t HekaWireView::numberVar(NumberVar v) const {
  uint64_t raw = 0;
  switch (v) {
    case NumberVar::Timestamp:
      return lastVarint(body_, 2, raw) ? static_cast<int64_t>(raw) : 0;
    case NumberVar::Severity:
      // int32 on the wire: Heka writes negatives as 32-bit truncated varints.
      return lastVarint(body_, 5, raw) ? static_cast<int32_t>(static_cast<uint32_t>(raw)) : 7;
    case NumberVar::Pid:
      return lastVarint(body_, 8, raw) ? static_cast<int32_t>(static_cast<uint32_t>(raw)) : 0;
  }
  return 0;
}

bool HekaWireView::field(std::string_view name, uint32_t occurrence, uint32_t element,
                         FieldValue& out) const {
  CodedInputStream in = makeStream(body_);
  WireField f;
  bool ok;
  while (nextField(in, body_, f, ok)) {
    if (f.number != 10 || f.wire_type != kLengthDelimited) continue;
    // The name may come after the values on the wire: find it, and the value type.
    std::string_view field_name;
    uint64_t value_type = 0;  // STRING
    {
      CodedInputStream fin = makeStream(f.bytes);
      WireField ff;
      bool fok;
      while (nextField(fin, f.bytes, ff, fok)) {
        if (ff.number == 1 && ff.wire_type == kLengthDelimited) field_name = ff.bytes;
        if (ff.number == 2 && ff.wire_type == kVarint) value_type = ff.scalar;
      }
    }
    if (field_name != name) continue;
    if (occurrence-- != 0) continue;
    switch (value_type) {
      case 0:    // STRING
      case 1: {  // BYTES
        const uint32_t number = value_type == 0 ? 4 : 5;
        CodedInputStream fin = makeStream(f.bytes);
        WireField ff;
        bool fok;
        uint32_t index = 0;
        while (nextField(fin, f.bytes, ff, fok)) {
          if (ff.number == number && ff.wire_type == kLengthDelimited && index++ == element) {
            out.type = value_type == 0 ? FieldType::String : FieldType::Bytes;
            out.s = ff.bytes;
            return true;
          }
        }
        return false;
      }
      case 2: {  // INTEGER
        uint64_t v;
        if (!numericElement(f.bytes, 6, element, kVarint, v)) return false;
        out.type = FieldType::Integer;
        out.i = static_cast<int64_t>(v);
        return true;
      }
      case 3: {  // DOUBLE
        uint64_t v;
        if (!numericElement(f.bytes, 7, element, kFixed64, v)) return false;
        out.type = FieldType::Double;
        std::memcpy(&out.d, &v, sizeof(double));
        return true;
      }
      case 4: {  // BOOL
        uint64_t v;
        if (!numericElement(f.bytes, 8, element, kVarint, v)) return false;
        out.type = FieldType::Bool;
        out.b = v != 0;
        return true;
      }
      default:
        return false;
    }
  }
  return false;
}

bool hekaCheckMessage(std::string_view body, int64_t& timestamp_ns) {
  timestamp_ns = 0;
  if (body.size() > static_cast<size_t>(INT32_MAX)) return false;
  CodedInputStream in = makeStream(body);
  WireField f;
  bool ok;
  while (nextField(in, body, f, ok)) {
    switch (f.number) {
      case 1:
      case 3:
      case 4:
      case 6:
      case 7:
      case 9:
      case 10:
        // Errors inside a nested Field are ignored, as Heka's decoder does.
        if (f.wire_type != kLengthDelimited) return false;
        break;
      case 2:
      case 5:
      case 8:
        if (f.wire_type != kVarint) return false;
        if (f.number == 2) timestamp_ns = static_cast<int64_t>(f.scalar);
        break;
      default:
        break;  // unknown fields are kept (and relayed), not an error
    }
  }
  return ok;
}

}  // namespace ferry
