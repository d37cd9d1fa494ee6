// JSON text from msgpack (outputs, acks) and the JSON → msgpack parser behind Fluentd's JSON
// connection mode. Both sides face untrusted bytes, so neither recurses and every read is
// bounds-checked; the contract is in json.h.
#include "src/json.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <system_error>
#include <vector>

#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace ferry::json {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void appendEscapedByte(std::string& out, uint8_t c) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default: {
      const char esc[6] = {'\\', 'u', '0', '0', kHexDigits[c >> 4], kHexDigits[c & 0xf]};
      out.append(esc, sizeof esc);
    }
  }
}

inline bool isContinuation(uint8_t b) {
  return (b & 0xc0) == 0x80;
}

// Length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0. The second-byte
// ranges are those of Unicode's well-formed table: narrowing them after E0, ED, F0 and F4
// is what rules out overlongs, surrogates and code points above U+10FFFF.
size_t utf8SequenceLength(const uint8_t* p, size_t n) {
  const uint8_t b = p[0];
  if (b >= 0xc2 && b <= 0xdf) {
    return n >= 2 && isContinuation(p[1]) ? 2 : 0;
  }
  if (b >= 0xe0 && b <= 0xef) {
    if (n < 3) return 0;
    const uint8_t lo = b == 0xe0 ? 0xa0 : 0x80;
    const uint8_t hi = b == 0xed ? 0x9f : 0xbf;
    return p[1] >= lo && p[1] <= hi && isContinuation(p[2]) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    if (n < 4) return 0;
    const uint8_t lo = b == 0xf0 ? 0x90 : 0x80;
    const uint8_t hi = b == 0xf4 ? 0x8f : 0xbf;
    return p[1] >= lo && p[1] <= hi && isContinuation(p[2]) && isContinuation(p[3]) ? 4 : 0;
  }
  return 0;
}

template <typename T>
void appendInteger(std::string& out, T v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

void appendDouble(std::string& out, double d) {
  if (!std::isfinite(d)) {
    out += "null";  // JSON has no spelling for them
    return;
  }
  char buf[40];
  const auto r = std::to_chars(buf, buf + sizeof buf, d);
  const std::string_view text(buf, static_cast<size_t>(r.ptr - buf));
  out += text;
  // Keeps a float a float for readers that type numbers by their spelling.
  if (text.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void appendBase64(std::string& out, const uint8_t* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8) | p[i + 2];
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                          kAlphabet[v & 63]};
    out.append(quad, 4);
  }
  if (n - i == 1) {
    const uint32_t v = uint32_t{p[i]} << 16;
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], '=', '='};
    out.append(quad, 4);
  } else if (n - i == 2) {
    const uint32_t v = (uint32_t{p[i]} << 16) | (uint32_t{p[i + 1]} << 8);
    const char quad[4] = {kAlphabet[v >> 18], kAlphabet[(v >> 12) & 63], kAlphabet[(v >> 6) & 63],
                          '='};
    out.append(quad, 4);
  }
}

// ---- msgpack → JSON ----

// An open array or map while walking msgpack. Map keys and values count as separate
// elements, so `index` parity tells a key from a value.
struct Frame {
  uint64_t total = 0;
  uint64_t index = 0;
  size_t key_start = 0;  // where the text of a non-string key being quoted begins
  bool map = false;
  bool quoting_key = false;
  bool key_is_container = false;
};

// Most records nest a few levels; keep those off the heap and spill only for deep input.
class FrameStack {
 public:
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  Frame& back() { return size_ <= kInline ? inline_[size_ - 1] : spill_.back(); }
  void push(const Frame& f) {
    if (size_ < kInline) {
      inline_[size_] = f;
    } else {
      spill_.push_back(f);
    }
    ++size_;
  }
  void pop() {
    if (size_ > kInline) spill_.pop_back();
    --size_;
  }

 private:
  static constexpr size_t kInline = 16;
  Frame inline_[kInline];
  std::vector<Frame> spill_;
  size_t size_ = 0;
};

// A non-string key is written as its JSON text, quoted. A container key's own non-string
// keys are quoted again inside it, and each level doubles the backslashes, so a few bytes
// of hostile nesting could demand exponential output. Past this many container keys
// inside one another the object is refused, as if nested too deep.
constexpr uint32_t kMaxQuotedKeyNesting = 4;

// ---- JSON → msgpack ----

constexpr bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}
constexpr bool isDigit(char c) {
  return c >= '0' && c <= '9';
}

int hexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void appendUtf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// For a number std::from_chars found out of double's range: whether it is too large (as
// opposed to too close to zero), from the sign of its decimal exponent.
bool tooLarge(std::string_view num) {
  size_t i = num[0] == '-' ? 1 : 0;
  int64_t exponent = 0;  // value = 0.d1d2... × 10^exponent, with d1 the first nonzero digit
  bool nonzero = false;
  for (; i < num.size() && isDigit(num[i]); ++i) {
    nonzero = nonzero || num[i] != '0';
    if (nonzero) ++exponent;
  }
  if (i < num.size() && num[i] == '.') {
    for (++i; i < num.size() && isDigit(num[i]); ++i) {
      if (nonzero) continue;
      if (num[i] == '0') {
        --exponent;
      } else {
        nonzero = true;
      }
    }
  }
  int64_t e = 0;
  bool negative = false;
  if (i < num.size() && (num[i] == 'e' || num[i] == 'E')) {
    ++i;
    if (i < num.size() && (num[i] == '+' || num[i] == '-')) negative = num[i++] == '-';
    // Saturating is safe: past 2^48 no mantissa that fits in memory can offset it.
    for (; i < num.size() && isDigit(num[i]); ++i) {
      if (e < int64_t{1} << 48) e = e * 10 + (num[i] - '0');
    }
  }
  return exponent + (negative ? -e : e) > 0;
}

enum class Step { Ok, NeedMore, Invalid };

// One pass over a JSON value. msgpack headers carry element counts that JSON only reveals
// at the closing bracket, so the parser makes two passes: the first (kEmit false)
// validates and records every container's count in opening order; the second, over text
// now known to be complete and valid, writes msgpack using those counts.
template <bool kEmit>
class Pass {
 public:
  Pass(const char* data, size_t size, uint32_t max_depth, std::vector<uint64_t>& counts,
       mp::Writer* writer)
      : data_(data), size_(size), max_depth_(max_depth), counts_(counts), writer_(writer) {}

  Step run();
  size_t end() const { return end_; }
  const std::string& error() const { return error_; }

 private:
  struct Open {
    bool object;
    size_t slot;     // index in counts_
    uint64_t count;  // elements (members for an object) seen so far
  };

  Step fail(const char* what, size_t at) {
    error_ = std::string(what) + " at offset " + std::to_string(at);
    return Step::Invalid;
  }
  size_t skipSpace(size_t p) const {
    while (p < size_ && isSpace(data_[p]))
      ++p;
    return p;
  }

  Step openContainer(size_t& p);
  Step memberKey(size_t& p);
  Step scalar(size_t& p);
  Step string(size_t& p);
  Step hex4(size_t at, uint32_t& v);
  Step number(size_t& p);
  Step literal(size_t& p);
  void emitNumber(std::string_view num, bool integral);

  const char* data_;
  size_t size_;
  uint32_t max_depth_;
  std::vector<uint64_t>& counts_;
  mp::Writer* writer_;
  size_t next_slot_ = 0;
  std::vector<Open> stack_;
  std::string scratch_;
  std::string error_;
  size_t end_ = 0;
};

template <bool kEmit>
Step Pass<kEmit>::run() {
  size_t p = skipSpace(0);
  for (;;) {
    // A value starts at p.
    if (p == size_) return Step::NeedMore;
    const char c = data_[p];
    if (c == '[' || c == '{') {
      const size_t depth_before = stack_.size();
      if (const Step s = openContainer(p); s != Step::Ok) return s;
      if (stack_.size() > depth_before) continue;  // not empty: its first value is next
    } else if (const Step s = scalar(p); s != Step::Ok) {
      return s;
    }
    // A value just ended at p: close every container it completes, then find the next.
    for (;;) {
      if (stack_.empty()) {
        end_ = p;
        return Step::Ok;
      }
      p = skipSpace(p);
      if (p == size_) return Step::NeedMore;
      Open& top = stack_.back();
      const char d = data_[p];
      if (d == ',') {
        ++top.count;
        p = skipSpace(p + 1);
        if (top.object) {
          if (const Step s = memberKey(p); s != Step::Ok) return s;
        }
        break;
      }
      if (d != (top.object ? '}' : ']')) {
        return fail(top.object ? "expected ',' or '}'" : "expected ',' or ']'", p);
      }
      ++top.count;
      if constexpr (!kEmit) {
        if (top.count > std::numeric_limits<uint32_t>::max()) return fail("too many elements", p);
        counts_[top.slot] = top.count;
      }
      stack_.pop_back();
      ++p;
    }
  }
}

// Consumes `[` or `{` at p. An empty container is consumed whole and not pushed; otherwise
// p is left at its first value (after the first key for an object).
template <bool kEmit>
Step Pass<kEmit>::openContainer(size_t& p) {
  const bool object = data_[p] == '{';
  const size_t open_at = p;
  const size_t slot = next_slot_++;
  if constexpr (kEmit) {
    const auto n = static_cast<uint32_t>(counts_[slot]);
    object ? writer_->mapHeader(n) : writer_->arrayHeader(n);
  } else {
    counts_.push_back(0);
  }
  p = skipSpace(p + 1);
  if (p == size_) return Step::NeedMore;
  if (data_[p] == (object ? '}' : ']')) {
    ++p;
    return Step::Ok;
  }
  // Empty containers do not count toward depth, matching appendMsgpack and the msgpack
  // readers that will see this output.
  if (stack_.size() >= max_depth_) return fail("nesting deeper than max_depth", open_at);
  stack_.push_back(Open{object, slot, 0});
  return object ? memberKey(p) : Step::Ok;
}

// Reads `"key" :` at p and the whitespace after it.
template <bool kEmit>
Step Pass<kEmit>::memberKey(size_t& p) {
  if (p == size_) return Step::NeedMore;
  if (data_[p] != '"') return fail("expected string key", p);
  if (const Step s = string(p); s != Step::Ok) return s;
  p = skipSpace(p);
  if (p == size_) return Step::NeedMore;
  if (data_[p] != ':') return fail("expected ':'", p);
  p = skipSpace(p + 1);
  return Step::Ok;
}

template <bool kEmit>
Step Pass<kEmit>::scalar(size_t& p) {
  const char c = data_[p];
  if (c == '"') return string(p);
  if (c == '-' || isDigit(c)) return number(p);
  if (c == 't' || c == 'f' || c == 'n') return literal(p);
  return fail("unexpected character", p);
}

template <bool kEmit>
Step Pass<kEmit>::hex4(size_t at, uint32_t& v) {
  v = 0;
  for (size_t k = 0; k < 4; ++k) {
    if (at + k == size_) return Step::NeedMore;
    const int h = hexValue(data_[at + k]);
    if (h < 0) return fail("invalid \\u escape", at + k);
    v = (v << 4) | static_cast<uint32_t>(h);
  }
  return Step::Ok;
}

// Bytes that are not valid UTF-8 are carried through rather than refused (RFC 8259 §9
// allows it): one stray Latin-1 byte should not cost a whole connection, and JSON output
// escapes such bytes anyway.
template <bool kEmit>
Step Pass<kEmit>::string(size_t& p) {
  size_t i = p + 1;
  size_t run = i;  // start of bytes not yet copied to scratch_
  bool escaped = false;
  if constexpr (kEmit) scratch_.clear();
  for (;;) {
    while (i < size_ && data_[i] != '"' && data_[i] != '\\' &&
           static_cast<unsigned char>(data_[i]) >= 0x20) {
      ++i;
    }
    if (i == size_) return Step::NeedMore;
    if (data_[i] == '"') break;
    if (data_[i] != '\\') return fail("control character in string", i);
    const size_t esc = i;
    if constexpr (kEmit) scratch_.append(data_ + run, esc - run);
    escaped = true;
    if (++i == size_) return Step::NeedMore;
    char decoded = 0;
    switch (data_[i]) {
      case '"':
      case '\\':
      case '/':
        decoded = data_[i];
        break;
      case 'b':
        decoded = '\b';
        break;
      case 'f':
        decoded = '\f';
        break;
      case 'n':
        decoded = '\n';
        break;
      case 'r':
        decoded = '\r';
        break;
      case 't':
        decoded = '\t';
        break;
      case 'u': {
        uint32_t cp = 0;
        if (const Step s = hex4(i + 1, cp); s != Step::Ok) return s;
        i += 5;
        if (cp >= 0xdc00 && cp <= 0xdfff) return fail("lone surrogate", esc);
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (i == size_) return Step::NeedMore;
          if (data_[i] != '\\') return fail("lone surrogate", esc);
          if (i + 1 == size_) return Step::NeedMore;
          if (data_[i + 1] != 'u') return fail("lone surrogate", esc);
          uint32_t low = 0;
          if (const Step s = hex4(i + 2, low); s != Step::Ok) return s;
          if (low < 0xdc00 || low > 0xdfff) return fail("lone surrogate", esc);
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          i += 6;
        }
        if constexpr (kEmit) appendUtf8(scratch_, cp);
        run = i;
        continue;
      }
      default:
        return fail("invalid escape", esc);
    }
    if constexpr (kEmit) scratch_.push_back(decoded);
    run = ++i;
  }
  if constexpr (kEmit) {
    if (escaped) {
      scratch_.append(data_ + run, i - run);
      writer_->str(scratch_);
    } else {
      writer_->str(std::string_view(data_ + p + 1, i - p - 1));
    }
  }
  p = i + 1;
  return Step::Ok;
}

// Any number that reaches the end of the data is incomplete: more digits may follow.
template <bool kEmit>
Step Pass<kEmit>::number(size_t& p) {
  size_t i = p;
  if (data_[i] == '-') ++i;
  if (i == size_) return Step::NeedMore;
  if (data_[i] == '0') {
    ++i;
  } else if (isDigit(data_[i])) {
    while (i < size_ && isDigit(data_[i]))
      ++i;
  } else {
    return fail("expected digit", i);
  }
  if (i == size_) return Step::NeedMore;
  if (isDigit(data_[i])) return fail("leading zero", p);
  bool integral = true;
  if (data_[i] == '.') {
    integral = false;
    if (++i == size_) return Step::NeedMore;
    if (!isDigit(data_[i])) return fail("expected digit after '.'", i);
    while (i < size_ && isDigit(data_[i]))
      ++i;
    if (i == size_) return Step::NeedMore;
  }
  if (data_[i] == 'e' || data_[i] == 'E') {
    integral = false;
    if (++i == size_) return Step::NeedMore;
    if (data_[i] == '+' || data_[i] == '-') {
      if (++i == size_) return Step::NeedMore;
    }
    if (!isDigit(data_[i])) return fail("expected digit in exponent", i);
    while (i < size_ && isDigit(data_[i]))
      ++i;
    if (i == size_) return Step::NeedMore;
  }
  if constexpr (kEmit) emitNumber(std::string_view(data_ + p, i - p), integral);
  p = i;
  return Step::Ok;
}

template <bool kEmit>
void Pass<kEmit>::emitNumber(std::string_view num, bool integral) {
  const bool negative = num[0] == '-';
  if (integral) {
    const std::string_view digits = num.substr(negative ? 1 : 0);
    uint64_t magnitude = 0;
    const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), magnitude);
    if (r.ec == std::errc()) {
      constexpr uint64_t kMinMagnitude = uint64_t{1} << 63;  // of int64's minimum
      if (!negative) {
        writer_->uinteger(magnitude);
        return;
      }
      if (magnitude <= kMinMagnitude) {
        // Negating in uint64 then converting avoids overflowing on -2^63.
        writer_->integer(static_cast<int64_t>(0 - magnitude));
        return;
      }
    }
  }
  double d = 0;
  const auto r = std::from_chars(num.data(), num.data() + num.size(), d);
  if (r.ec == std::errc::result_out_of_range) {
    // from_chars leaves `d` untouched here; settle on what strtod would give.
    d = tooLarge(num) ? std::numeric_limits<double>::infinity() : 0.0;
    if (negative) d = -d;
  }
  writer_->float64(d);
}

template <bool kEmit>
Step Pass<kEmit>::literal(size_t& p) {
  const std::string_view word = data_[p] == 't' ? "true" : data_[p] == 'f' ? "false" : "null";
  for (size_t k = 0; k < word.size(); ++k) {
    if (p + k == size_) return Step::NeedMore;
    if (data_[p + k] != word[k]) return fail("invalid literal", p);
  }
  if constexpr (kEmit) {
    if (word[0] == 'n') {
      writer_->nil();
    } else {
      writer_->boolean(word[0] == 't');
    }
  }
  p += word.size();
  return Step::Ok;
}

}  // namespace

void appendString(std::string& out, std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  out.reserve(out.size() + n + 2);
  out.push_back('"');
  size_t run = 0;  // start of bytes not yet copied
  size_t i = 0;
  while (i < n) {
    const uint8_t c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      ++i;
      continue;
    }
    if (c >= 0x80) {
      if (const size_t len = utf8SequenceLength(p + i, n - i); len != 0) {
        i += len;
        continue;
      }
    }
    out.append(s.data() + run, i - run);
    appendEscapedByte(out, c);
    run = ++i;
  }
  out.append(s.data() + run, n - run);
  out.push_back('"');
}

size_t appendMsgpack(std::string& out, const uint8_t* data, size_t size, uint32_t max_depth) {
  const size_t initial = out.size();
  const auto fail = [&] {
    out.resize(initial);
    return size_t{0};
  };
  FrameStack stack;
  uint32_t quoted_key_nesting = 0;
  size_t pos = 0;
  for (;;) {
    mp::Value v;
    const int64_t r = mp::readValue(data + pos, size - pos, v);
    if (r <= 0) return fail();
    pos += static_cast<size_t>(r);

    if (!stack.empty()) {
      Frame& top = stack.back();
      const bool is_key = top.map && top.index % 2 == 0;
      if (top.index > 0) out.push_back(is_key || !top.map ? ',' : ':');
      if (is_key && !v.isStrOrBin()) {
        top.quoting_key = true;
        top.key_is_container = false;
        top.key_start = out.size();
      }
    }

    switch (v.type) {
      case mp::Type::Nil:
        out += "null";
        break;
      case mp::Type::Bool:
        out += v.boolean ? "true" : "false";
        break;
      case mp::Type::PosInt:
        appendInteger(out, v.u);
        break;
      case mp::Type::NegInt:
        appendInteger(out, v.i);
        break;
      case mp::Type::Float:
        appendDouble(out, v.f);
        break;
      case mp::Type::Str:
      case mp::Type::Bin:
        appendString(out, v.str());
        break;
      case mp::Type::Ext:
        out += "{\"$ext\":";
        appendInteger(out, int{v.ext_type});
        out += ",\"$data\":\"";
        appendBase64(out, v.data, v.len);
        out += "\"}";
        break;
      case mp::Type::Array:
      case mp::Type::Map: {
        const bool map = v.type == mp::Type::Map;
        out.push_back(map ? '{' : '[');
        if (v.len == 0) {
          out.push_back(map ? '}' : ']');
          break;
        }
        // Only containers with elements count toward depth, as in mp::Reader::skip and
        // mp::ObjectScanner, so whatever they accepted also renders.
        if (stack.size() >= max_depth) return fail();
        if (!stack.empty() && stack.back().quoting_key) {
          stack.back().key_is_container = true;
          if (++quoted_key_nesting > kMaxQuotedKeyNesting) return fail();
        }
        Frame f;
        f.total = map ? uint64_t{v.len} * 2 : v.len;
        f.map = map;
        stack.push(f);
        continue;  // its elements come next
      }
    }

    // An element is complete: finish it in its container, and close every container
    // that this completes in turn.
    for (;;) {
      if (stack.empty()) return pos;
      Frame& top = stack.back();
      if (top.quoting_key) {
        const std::string key = out.substr(top.key_start);
        out.resize(top.key_start);
        appendString(out, key);
        top.quoting_key = false;
        if (top.key_is_container) --quoted_key_nesting;
      }
      if (++top.index < top.total) break;
      out.push_back(top.map ? '}' : ']');
      stack.pop();
    }
  }
}

Parser::Result Parser::parse(const char* data, size_t size, std::string& out) {
  consumed_ = 0;
  error_.clear();
  std::vector<uint64_t> counts;
  Pass<false> check(data, size, max_depth_, counts, nullptr);
  switch (check.run()) {
    case Step::NeedMore:
      return Result::NeedMore;
    case Step::Invalid:
      error_ = check.error();
      return Result::Invalid;
    case Step::Ok:
      break;
  }
  const size_t initial = out.size();
  mp::Writer writer(out);
  Pass<true> emit(data, size, max_depth_, counts, &writer);
  if (emit.run() != Step::Ok || emit.end() != check.end()) {
    // Unreachable unless the two passes disagree; never hand out half a value.
    out.resize(initial);
    error_ = "internal error: emit pass disagrees with check pass at offset " +
             std::to_string(emit.end());
    return Result::Invalid;
  }
  consumed_ = check.end();
  return Result::Done;
}

}  // namespace ferry::json
