// bridge.md in code: Heka message ⇄ Fluentd event, with the type tables of that page.
#include "src/bridge.h"

#include <algorithm>
#include <map>
#include <vector>

#include "src/event_view.h"
#include "src/heka/message.pb.h"
#include "src/json.h"
#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace ferry {

std::string hekaTag(const MessageView& view, const HekaTagOptions& o) {
  if (o.tag_template.empty()) {
    const std::string_view type = view.stringVar(StringVar::Type);
    return type.empty() ? o.default_tag : std::string(type);
  }
  static constexpr std::pair<std::string_view, StringVar> kVars[] = {
      {"Type", StringVar::Type},
      {"Logger", StringVar::Logger},
      {"Hostname", StringVar::Hostname},
      {"Payload", StringVar::Payload},
      {"EnvVersion", StringVar::EnvVersion},
      {"Uuid", StringVar::Uuid}};
  std::string out;
  const std::string& t = o.tag_template;
  for (size_t i = 0; i < t.size();) {
    if (t.compare(i, 2, "%{") == 0) {
      const size_t close = t.find('}', i + 2);
      if (close != std::string::npos) {
        const std::string_view name(t.data() + i + 2, close - i - 2);
        bool replaced = false;
        for (const auto& [n, v] : kVars) {
          if (n == name) {
            out += view.stringVar(v);
            replaced = true;
          }
        }
        if (replaced) {
          i = close + 1;
          continue;
        }
      }
    }
    out += t[i++];
  }
  return out.empty() ? o.default_tag : out;
}

namespace {

// Appends one Field value as msgpack.
void writeValue(mp::Writer& w, const message::Field& f, int k) {
  switch (f.value_type()) {
    case message::Field::STRING: {
      const std::string& s = f.value_string(k);
      if (f.representation() == "json") {
        // STRING with representation json → the parsed JSON value.
        std::string parsed;
        json::Parser p;
        if (p.parse(s.data(), s.size(), parsed) == json::Parser::Result::Done &&
            p.consumed() == s.size()) {
          w.raw(parsed);
          return;
        }
      }
      w.str(s);
      return;
    }
    case message::Field::BYTES:
      w.bin(f.value_bytes(k));
      return;
    case message::Field::INTEGER:
      w.integer(f.value_integer(k));
      return;
    case message::Field::DOUBLE:
      w.float64(f.value_double(k));
      return;
    case message::Field::BOOL:
      w.boolean(f.value_bool(k));
      return;
  }
}

int valueCount(const message::Field& f) {
  switch (f.value_type()) {
    case message::Field::STRING:
      return f.value_string_size();
    case message::Field::BYTES:
      return f.value_bytes_size();
    case message::Field::INTEGER:
      return f.value_integer_size();
    case message::Field::DOUBLE:
      return f.value_double_size();
    case message::Field::BOOL:
      return f.value_bool_size();
  }
  return 0;
}

}  // namespace

bool hekaToFluentRecord(std::string_view body, std::string& out) {
  message::Message m;
  if (!m.ParsePartialFromArray(body.data(), static_cast<int>(body.size()))) return false;
  // Field names in first-occurrence order, each with all its occurrences.
  std::vector<std::pair<std::string, std::vector<const message::Field*>>> fields;
  for (const message::Field& f : m.fields()) {
    auto it = std::find_if(fields.begin(), fields.end(),
                           [&](const auto& e) { return e.first == f.name(); });
    if (it == fields.end()) {
      fields.push_back({f.name(), {&f}});
    } else {
      it->second.push_back(&f);
    }
  }
  const bool has_uuid = m.uuid().size() == 16;
  const uint32_t headers = has_uuid + m.has_logger() + m.has_severity() + m.has_payload() +
                           m.has_env_version() + m.has_pid() + m.has_hostname();
  mp::Writer w(out);
  w.mapHeader(headers + static_cast<uint32_t>(fields.size()));
  if (has_uuid) {
    w.str("Uuid");
    w.str(uuidText(m.uuid()));
  }
  if (m.has_logger()) {
    w.str("Logger");
    w.str(m.logger());
  }
  if (m.has_severity()) {
    w.str("Severity");
    w.integer(m.severity());
  }
  if (m.has_payload()) {
    w.str("Payload");
    w.str(m.payload());
  }
  if (m.has_env_version()) {
    w.str("EnvVersion");
    w.str(m.env_version());
  }
  if (m.has_pid()) {
    w.str("Pid");
    w.integer(m.pid());
  }
  if (m.has_hostname()) {
    w.str("Hostname");
    w.str(m.hostname());
  }
  for (const auto& [name, occurrences] : fields) {
    w.str(name);
    if (occurrences.size() == 1 && valueCount(*occurrences[0]) == 1) {
      writeValue(w, *occurrences[0], 0);
      continue;
    }
    // Several values, or a name that occurs more than once: one array, in order.
    uint32_t total = 0;
    for (const auto* f : occurrences)
      total += static_cast<uint32_t>(valueCount(*f));
    w.arrayHeader(total);
    for (const auto* f : occurrences) {
      for (int k = 0; k < valueCount(*f); ++k)
        writeValue(w, *f, k);
    }
  }
  return true;
}

namespace {

bool parseUuidText(std::string_view s, std::string& raw) {
  if (s.size() != 36) return false;
  raw.clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 36;) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
      ++i;
      continue;
    }
    const int hi = hex(s[i]), lo = hex(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    raw += static_cast<char>(hi * 16 + lo);
    i += 2;
  }
  return raw.size() == 16;
}

// Scalar kinds of bridge.md's type table; Other = nil, containers.
enum class Kind { String, Bytes, Integer, Double, Bool, Other };

Kind kindOf(const mp::Value& v) {
  switch (v.type) {
    case mp::Type::Str:
      return Kind::String;
    case mp::Type::Bin:
      return Kind::Bytes;
    case mp::Type::PosInt:
      return v.u > static_cast<uint64_t>(INT64_MAX) ? Kind::Double : Kind::Integer;
    case mp::Type::NegInt:
      return Kind::Integer;
    case mp::Type::Float:
      return Kind::Double;
    case mp::Type::Bool:
      return Kind::Bool;
    default:
      return Kind::Other;
  }
}

void addScalar(message::Field& f, Kind kind, const mp::Value& v) {
  switch (kind) {
    case Kind::String:
      f.add_value_string(std::string(v.str()));
      break;
    case Kind::Bytes:
      f.add_value_bytes(std::string(v.str()));
      break;
    case Kind::Integer:
      f.add_value_integer(v.i);
      break;
    case Kind::Double:
      f.add_value_double(v.type == mp::Type::Float ? v.f : static_cast<double>(v.u));
      break;
    case Kind::Bool:
      f.add_value_bool(v.boolean);
      break;
    case Kind::Other:
      break;
  }
}

message::Field::ValueType valueType(Kind k) {
  switch (k) {
    case Kind::Bytes:
      return message::Field::BYTES;
    case Kind::Integer:
      return message::Field::INTEGER;
    case Kind::Double:
      return message::Field::DOUBLE;
    case Kind::Bool:
      return message::Field::BOOL;
    default:
      return message::Field::STRING;
  }
}

}  // namespace

void fluentToHekaMessage(const Batch& batch, const Event& event, std::string& body_out) {
  const std::string_view rec = batch.record(event);
  const SourceInfo* src = batch.source.get();
  message::Message m;
  m.set_timestamp(event.time_ns);
  m.set_type(batch.tag);
  std::string uuid_raw;
  bool have_uuid = false, have_logger = false, have_payload = false, have_hostname = false;
  std::string payload_from_key;
  const std::string payload_key = src ? src->payload_key : std::string();

  mp::Reader r(rec);
  mp::Value map;
  std::vector<std::pair<mp::Value, const uint8_t*>> others;  // key, value position
  if (r.next(map) && map.type == mp::Type::Map) {
    for (uint32_t k = 0; k < map.len; ++k) {
      mp::Value key;
      if (!r.next(key)) break;
      const uint8_t* value_pos = r.pos();
      mp::Reader vr = r;
      mp::Value v;
      if (!vr.next(v) || !r.skip()) break;
      if (!key.isStrOrBin()) continue;  // a non-string key has no Field name
      const std::string_view name = key.str();
      // Header keys of the right type fill the header and are not repeated as Fields.
      if (name == "Uuid" && !have_uuid &&
          ((v.type == mp::Type::Str && parseUuidText(v.str(), uuid_raw)) ||
           (v.isStrOrBin() && v.len == 16 && (uuid_raw.assign(v.str()), true)))) {
        have_uuid = true;
        continue;
      }
      if (name == "Logger" && v.type == mp::Type::Str) {
        m.set_logger(std::string(v.str()));
        have_logger = true;
        continue;
      }
      if (name == "Severity" && v.isInt()) {
        m.set_severity(static_cast<int32_t>(v.i));
        continue;
      }
      if (name == "Payload" && v.type == mp::Type::Str) {
        m.set_payload(std::string(v.str()));
        have_payload = true;
        continue;
      }
      if (name == "EnvVersion" && v.type == mp::Type::Str) {
        m.set_env_version(std::string(v.str()));
        continue;
      }
      if (name == "Pid" && v.isInt()) {
        m.set_pid(static_cast<int32_t>(v.i));
        continue;
      }
      if (name == "Hostname" && v.type == mp::Type::Str) {
        m.set_hostname(std::string(v.str()));
        have_hostname = true;
        continue;
      }
      others.push_back({key, value_pos});
    }
  }
  // payload_key fills Payload only when the record has no Payload of its own.
  if (!have_payload && !payload_key.empty()) {
    for (auto it = others.begin(); it != others.end(); ++it) {
      mp::Value v;
      mp::Reader vr(it->second,
                    rec.size() - static_cast<size_t>(it->second -
                                                     reinterpret_cast<const uint8_t*>(rec.data())));
      if (it->first.str() == payload_key && vr.next(v) && v.type == mp::Type::Str) {
        m.set_payload(std::string(v.str()));
        others.erase(it);
        break;
      }
    }
  }
  if (!have_uuid) uuid_raw = randomUuid();
  m.set_uuid(uuid_raw);
  if (!have_logger && src) m.set_logger(src->name);
  if (!have_hostname && src && !src->hostname.empty()) m.set_hostname(src->hostname);

  for (const auto& [key, pos] : others) {
    const size_t avail =
        rec.size() - static_cast<size_t>(pos - reinterpret_cast<const uint8_t*>(rec.data()));
    mp::Reader vr(pos, avail);
    mp::Value v;
    if (!vr.next(v) || v.type == mp::Type::Nil) continue;  // nil: no Field
    message::Field* f = m.add_fields();
    f->set_name(std::string(key.str()));
    if (v.type == mp::Type::Ext) {
      f->set_value_type(message::Field::BYTES);
      f->set_representation("msgpack-ext:" + std::to_string(v.ext_type));
      f->add_value_bytes(std::string(v.str()));
      continue;
    }
    if (v.type != mp::Type::Array && v.type != mp::Type::Map) {
      const Kind k = kindOf(v);
      f->set_value_type(valueType(k));
      addScalar(*f, k, v);
      continue;
    }
    if (v.type == mp::Type::Array) {
      // One scalar kind → that kind with n values; empty → STRING with none.
      mp::Reader er = vr;
      Kind kind = Kind::Other;
      bool uniform = true;
      for (uint32_t k = 0; k < v.len && uniform; ++k) {
        mp::Value e;
        if (!er.next(e)) {
          uniform = false;
          break;
        }
        const Kind ek = kindOf(e);
        if (ek == Kind::Other || (k > 0 && ek != kind)) uniform = false;
        kind = ek;
      }
      if (uniform) {
        f->set_value_type(valueType(v.len == 0 ? Kind::String : kind));
        mp::Reader er2 = vr;
        for (uint32_t k = 0; k < v.len; ++k) {
          mp::Value e;
          er2.next(e);
          addScalar(*f, kind, e);
        }
        continue;
      }
    }
    // A map, or an array of mixed or nested values: STRING holding the JSON text.
    std::string text;
    json::appendMsgpack(text, pos, avail);
    f->set_value_type(message::Field::STRING);
    f->set_representation("json");
    f->add_value_string(std::move(text));
  }
  body_out.clear();
  m.SerializeToString(&body_out);
}

}  // namespace ferry
