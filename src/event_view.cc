// FluentEventView: lazy bridge.md mapping of one msgpack record to Heka's view.
#include "src/event_view.h"

#include <cstring>
#include <random>

#include "src/json.h"
#include "src/msgpack_reader.h"

namespace ferry {
namespace {

constexpr std::string_view kHeaderKeys[] = {"Uuid",       "Logger", "Severity", "Payload",
                                            "EnvVersion", "Pid",    "Hostname"};

bool isUuidText(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < 36; ++i) {
    const char c = s[i];
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (c != '-') return false;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

// Finds the `occurrence`-th value of key `name` in the record map. On success `r` is
// positioned at the value.
bool findKey(const Batch& batch, const Event& event, std::string_view name, uint32_t occurrence,
             mp::Reader& r) {
  const std::string_view rec = batch.record(event);
  r = mp::Reader(rec);
  mp::Value m;
  if (!r.next(m) || m.type != mp::Type::Map) return false;
  for (uint32_t k = 0; k < m.len; ++k) {
    mp::Value key;
    if (!r.next(key)) return false;
    if (key.isStrOrBin() && key.str() == name) {
      if (occurrence == 0) return true;
      --occurrence;
    } else if (!key.isStrOrBin() && !r.skip()) {
      // non-string keys are passed over (and their values below)
      return false;
    }
    if (!r.skip()) return false;
  }
  return false;
}

// Reads a scalar into a FieldValue of bridge.md's type. False for nil, containers.
bool scalar(const mp::Value& v, FieldValue& out) {
  switch (v.type) {
    case mp::Type::Str:
      out.type = FieldType::String;
      out.s = v.str();
      return true;
    case mp::Type::Bin:
    case mp::Type::Ext:
      out.type = FieldType::Bytes;
      out.s = std::string_view(reinterpret_cast<const char*>(v.data), v.len);
      return true;
    case mp::Type::PosInt:
      if (v.u > static_cast<uint64_t>(INT64_MAX)) {
        out.type = FieldType::Double;
        out.d = static_cast<double>(v.u);
      } else {
        out.type = FieldType::Integer;
        out.i = v.i;
      }
      return true;
    case mp::Type::NegInt:
      out.type = FieldType::Integer;
      out.i = v.i;
      return true;
    case mp::Type::Float:
      out.type = FieldType::Double;
      out.d = v.f;
      return true;
    case mp::Type::Bool:
      out.type = FieldType::Bool;
      out.b = v.boolean;
      return true;
    default:
      return false;
  }
}

// True when the header key `name` holds a value of the type that fills its header
// variable (then it is not a Field).
bool fillsHeader(const Batch& batch, const Event& event, std::string_view name) {
  mp::Reader r(std::string_view{});
  if (!findKey(batch, event, name, 0, r)) return false;
  mp::Value v;
  if (!r.next(v)) return false;
  if (name == "Severity" || name == "Pid") return v.isInt();
  if (name == "Uuid") {
    return (v.type == mp::Type::Str && isUuidText(v.str())) || (v.isStrOrBin() && v.len == 16);
  }
  return v.type == mp::Type::Str;
}

}  // namespace

std::string uuidText(std::string_view raw) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < raw.size() && i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    const auto b = static_cast<unsigned char>(raw[i]);
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

std::string randomUuid() {
  // Not for security: a per-thread generator seeded once from the OS.
  thread_local std::mt19937_64 gen{std::random_device{}()};
  std::string raw(16, '\0');
  for (int half = 0; half < 2; ++half) {
    uint64_t x = gen();
    for (int k = 0; k < 8; ++k)
      raw[half * 8 + k] = static_cast<char>(x >> (8 * k));
  }
  raw[6] = static_cast<char>((raw[6] & 0x0f) | 0x40);  // version 4
  raw[8] = static_cast<char>((raw[8] & 0x3f) | 0x80);  // RFC 4122 variant
  return raw;
}

std::string_view FluentEventView::stringVar(StringVar v) const {
  auto recordString = [&](std::string_view key, std::string_view& out) {
    mp::Reader r(std::string_view{});
    mp::Value val;
    if (findKey(batch_, event_, key, 0, r) && r.next(val) && val.type == mp::Type::Str) {
      out = val.str();
      return true;
    }
    return false;
  };
  std::string_view s;
  switch (v) {
    case StringVar::Type:
      return batch_.tag;
    case StringVar::Logger:
      if (recordString("Logger", s)) return s;
      return batch_.source ? std::string_view(batch_.source->name) : std::string_view();
    case StringVar::Payload:
      if (recordString("Payload", s)) return s;
      if (batch_.source && !batch_.source->payload_key.empty() &&
          recordString(batch_.source->payload_key, s)) {
        return s;
      }
      return {};
    case StringVar::EnvVersion:
      return recordString("EnvVersion", s) ? s : std::string_view();
    case StringVar::Hostname:
      if (recordString("Hostname", s)) return s;
      return batch_.source ? std::string_view(batch_.source->hostname) : std::string_view();
    case StringVar::Uuid: {
      if (!uuid_.empty()) return uuid_;
      mp::Reader r(std::string_view{});
      mp::Value val;
      if (findKey(batch_, event_, "Uuid", 0, r) && r.next(val)) {
        if (val.type == mp::Type::Str && isUuidText(val.str())) {
          uuid_.assign(val.str());
          for (char& c : uuid_)
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          return uuid_;
        }
        if (val.isStrOrBin() && val.len == 16) {
          uuid_ = uuidText(val.str());
          return uuid_;
        }
      }
      uuid_ = uuidText(randomUuid());
      return uuid_;
    }
  }
  return {};
}

int64_t FluentEventView::numberVar(NumberVar v) const {
  if (v == NumberVar::Timestamp) return event_.time_ns;
  mp::Reader r(std::string_view{});
  mp::Value val;
  const std::string_view key = v == NumberVar::Severity ? "Severity" : "Pid";
  if (findKey(batch_, event_, key, 0, r) && r.next(val) && val.isInt()) {
    return val.type == mp::Type::PosInt && val.u > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX
                                                                                    : val.i;
  }
  return v == NumberVar::Severity ? 7 : 0;
}

bool FluentEventView::field(std::string_view name, uint32_t occurrence, uint32_t element,
                            FieldValue& out) const {
  for (std::string_view h : kHeaderKeys) {
    if (name == h && fillsHeader(batch_, event_, name)) return false;
  }
  if (batch_.source && !batch_.source->payload_key.empty() && name == batch_.source->payload_key &&
      !fillsHeader(batch_, event_, "Payload") && stringVar(StringVar::Payload).data() != nullptr) {
    // The payload key filled Payload, so it is not a Field either.
    mp::Reader r(std::string_view{});
    mp::Value val;
    if (findKey(batch_, event_, name, 0, r) && r.next(val) && val.type == mp::Type::Str)
      return false;
  }
  const std::string_view rec = batch_.record(event_);
  const auto* rec_begin = reinterpret_cast<const uint8_t*>(rec.data());
  const uint8_t* value_start;
  if (cached_len_ != SIZE_MAX && cached_occurrence_ == occurrence &&
      std::string_view(cached_name_, cached_len_) == name) {
    value_start = cached_value_;
  } else {
    mp::Reader found(std::string_view{});
    value_start = findKey(batch_, event_, name, occurrence, found) ? found.pos() : nullptr;
    if (name.size() <= kCachedNameMax) {
      std::memcpy(cached_name_, name.data(), name.size());
      cached_len_ = name.size();
      cached_occurrence_ = occurrence;
      cached_value_ = value_start;
    }
  }
  if (value_start == nullptr) return false;
  mp::Reader r(value_start, rec.size() - static_cast<size_t>(value_start - rec_begin));
  mp::Value v;
  if (!r.next(v)) return false;
  if (v.type == mp::Type::Nil) return false;
  if (v.type != mp::Type::Array && v.type != mp::Type::Map) {
    return element == 0 && scalar(v, out);
  }
  if (v.type == mp::Type::Array) {
    // One scalar kind → that kind, n values; empty → no values; mixed → JSON.
    mp::Reader probe = r;
    bool uniform = true;
    int kind = -1;
    FieldValue first, wanted;
    bool have_wanted = false;
    for (uint32_t k = 0; k < v.len && uniform; ++k) {
      mp::Value e;
      if (!probe.next(e)) return false;
      FieldValue fv;
      if (!scalar(e, fv)) {
        uniform = false;
        break;
      }
      if (kind == -1) kind = static_cast<int>(fv.type);
      if (kind != static_cast<int>(fv.type)) uniform = false;
      if (k == element) {
        wanted = fv;
        have_wanted = true;
      }
    }
    if (uniform) {
      if (!have_wanted) return false;
      out = wanted;
      return true;
    }
  }
  // A map, or an array of mixed or nested values: one STRING holding the JSON text.
  if (element != 0) return false;
  scratch_.clear();
  const size_t avail = rec.size() - static_cast<size_t>(value_start - rec_begin);
  if (json::appendMsgpack(scratch_, value_start, avail) == 0) return false;
  out.type = FieldType::String;
  out.s = scratch_;
  return true;
}

}  // namespace ferry
