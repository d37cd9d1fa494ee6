// Zero-copy msgpack header decoding and the resumable object scanner (see the header for
// why this is hand-written).
#include "src/msgpack_reader.h"

#include <cstring>

namespace ferry::mp {
namespace {

inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>((p[0] << 8) | p[1]);
}
inline uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t be64(const uint8_t* p) {
  return (uint64_t{be32(p)} << 32) | be32(p + 4);
}

int64_t payload(const uint8_t* p, size_t n, size_t hdr, uint32_t len, Value& out) {
  if (n < hdr) return 0;
  // Compare in 64 bits: hdr + len cannot overflow.
  if (static_cast<uint64_t>(n) < static_cast<uint64_t>(hdr) + len) return 0;
  out.len = len;
  out.data = p + hdr;
  return static_cast<int64_t>(hdr) + len;
}

void setUnsigned(Value& out, uint64_t v) {
  out.type = Type::PosInt;
  out.u = v;
  out.i = v <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(v) : 0;
}
void setSigned(Value& out, int64_t v) {
  if (v >= 0) {
    setUnsigned(out, static_cast<uint64_t>(v));
    return;
  }
  out.type = Type::NegInt;
  out.i = v;
}

}  // namespace

int64_t readValue(const uint8_t* p, size_t n, Value& out) {
  if (n == 0) return 0;
  const uint8_t b = p[0];
  out.len = 0;
  out.data = nullptr;
  if (b <= 0x7f) {
    setUnsigned(out, b);
    return 1;
  }
  if (b >= 0xe0) {
    setSigned(out, static_cast<int8_t>(b));
    return 1;
  }
  if ((b & 0xf0) == 0x80) {
    out.type = Type::Map;
    out.len = b & 0x0f;
    return 1;
  }
  if ((b & 0xf0) == 0x90) {
    out.type = Type::Array;
    out.len = b & 0x0f;
    return 1;
  }
  if ((b & 0xe0) == 0xa0) {
    out.type = Type::Str;
    return payload(p, n, 1, b & 0x1f, out);
  }
  switch (b) {
    case 0xc0:
      out.type = Type::Nil;
      return 1;
    case 0xc2:
    case 0xc3:
      out.type = Type::Bool;
      out.boolean = b == 0xc3;
      return 1;
    case 0xc4:
      out.type = Type::Bin;
      return n < 2 ? 0 : payload(p, n, 2, p[1], out);
    case 0xc5:
      out.type = Type::Bin;
      return n < 3 ? 0 : payload(p, n, 3, be16(p + 1), out);
    case 0xc6:
      out.type = Type::Bin;
      return n < 5 ? 0 : payload(p, n, 5, be32(p + 1), out);
    case 0xc7:
    case 0xc8:
    case 0xc9: {
      const size_t lsz = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
      if (n < 2 + lsz) return 0;
      const uint32_t len = lsz == 1 ? p[1] : lsz == 2 ? be16(p + 1) : be32(p + 1);
      out.type = Type::Ext;
      out.ext_type = static_cast<int8_t>(p[1 + lsz]);
      return payload(p, n, 2 + lsz, len, out);
    }
    case 0xca: {
      if (n < 5) return 0;
      uint32_t bits = be32(p + 1);
      float f;
      std::memcpy(&f, &bits, 4);
      out.type = Type::Float;
      out.f = f;
      return 5;
    }
    case 0xcb: {
      if (n < 9) return 0;
      uint64_t bits = be64(p + 1);
      double d;
      std::memcpy(&d, &bits, 8);
      out.type = Type::Float;
      out.f = d;
      return 9;
    }
    case 0xcc:
      if (n < 2) return 0;
      setUnsigned(out, p[1]);
      return 2;
    case 0xcd:
      if (n < 3) return 0;
      setUnsigned(out, be16(p + 1));
      return 3;
    case 0xce:
      if (n < 5) return 0;
      setUnsigned(out, be32(p + 1));
      return 5;
    case 0xcf:
      if (n < 9) return 0;
      setUnsigned(out, be64(p + 1));
      return 9;
    case 0xd0:
      if (n < 2) return 0;
      setSigned(out, static_cast<int8_t>(p[1]));
      return 2;
    case 0xd1:
      if (n < 3) return 0;
      setSigned(out, static_cast<int16_t>(be16(p + 1)));
      return 3;
    case 0xd2:
      if (n < 5) return 0;
      setSigned(out, static_cast<int32_t>(be32(p + 1)));
      return 5;
    case 0xd3:
      if (n < 9) return 0;
      setSigned(out, static_cast<int64_t>(be64(p + 1)));
      return 9;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: {
      if (n < 2) return 0;
      out.type = Type::Ext;
      out.ext_type = static_cast<int8_t>(p[1]);
      return payload(p, n, 2, 1u << (b - 0xd4), out);
    }
    case 0xd9:
      out.type = Type::Str;
      return n < 2 ? 0 : payload(p, n, 2, p[1], out);
    case 0xda:
      out.type = Type::Str;
      return n < 3 ? 0 : payload(p, n, 3, be16(p + 1), out);
    case 0xdb:
      out.type = Type::Str;
      return n < 5 ? 0 : payload(p, n, 5, be32(p + 1), out);
    case 0xdc:
      if (n < 3) return 0;
      out.type = Type::Array;
      out.len = be16(p + 1);
      return 3;
    case 0xdd:
      if (n < 5) return 0;
      out.type = Type::Array;
      out.len = be32(p + 1);
      return 5;
    case 0xde:
      if (n < 3) return 0;
      out.type = Type::Map;
      out.len = be16(p + 1);
      return 3;
    case 0xdf:
      if (n < 5) return 0;
      out.type = Type::Map;
      out.len = be32(p + 1);
      return 5;
    default:  // 0xc1 is never used
      return -1;
  }
}

bool Reader::next(Value& v) {
  const int64_t r = readValue(p_, remaining(), v);
  if (r <= 0) return false;
  p_ += r;
  return true;
}

bool Reader::skip(uint32_t max_depth) {
  // Iterative with a fixed stack of "elements left" per open container, so hostile
  // nesting costs neither recursion nor allocation.
  uint64_t stack[kDefaultMaxDepth + 1];
  if (max_depth > kDefaultMaxDepth) max_depth = kDefaultMaxDepth;
  uint32_t sp = 0;
  uint64_t left = 1;
  for (;;) {
    while (left == 0) {
      if (sp == 0) return true;
      left = stack[--sp];
    }
    Value v;
    if (!next(v)) return false;
    --left;
    if ((v.type == Type::Array || v.type == Type::Map) && v.len > 0) {
      if (sp >= max_depth) return false;
      stack[sp++] = left;
      left = v.type == Type::Map ? uint64_t{v.len} * 2 : v.len;
    }
  }
}

ObjectScanner::Result ObjectScanner::scan(const uint8_t* data, size_t size) {
  if (!started_) {
    pending_.clear();
    pending_.push_back(1);
    started_ = true;
  }
  for (;;) {
    while (!pending_.empty() && pending_.back() == 0)
      pending_.pop_back();
    if (pending_.empty()) return Result::Done;
    Value v;
    const int64_t r = readValue(data + pos_, size - pos_, v);
    if (r == 0) return Result::NeedMore;
    if (r < 0) return Result::Invalid;
    pos_ += static_cast<size_t>(r);
    --pending_.back();
    if ((v.type == Type::Array || v.type == Type::Map) && v.len > 0) {
      if (pending_.size() > max_depth_) return Result::TooDeep;
      pending_.push_back(v.type == Type::Map ? uint64_t{v.len} * 2 : v.len);
    }
  }
}

void ObjectScanner::reset() {
  pos_ = 0;
  started_ = false;
  pending_.clear();
}

}  // namespace ferry::mp
