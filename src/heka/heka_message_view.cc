// HekaMessageView: Heka 0.10's getters (absent strings read "", Severity 7, Pid 0) and
// Field lookup by name, occurrence and element.
#include "src/heka/heka_message_view.h"

#include <vector>

#include "src/event_view.h"
#include "src/json.h"
#include "src/msgpack_writer.h"

namespace ferry::heka {

std::string_view HekaMessageView::stringVar(StringVar v) const {
  switch (v) {
    case StringVar::Uuid:
      if (m_.uuid().size() != 16) return {};
      if (uuid_.empty()) uuid_ = uuidText(m_.uuid());
      return uuid_;
    case StringVar::Type:
      return m_.type();
    case StringVar::Logger:
      return m_.logger();
    case StringVar::Payload:
      return m_.payload();
    case StringVar::EnvVersion:
      return m_.env_version();
    case StringVar::Hostname:
      return m_.hostname();
  }
  return {};
}

int64_t HekaMessageView::numberVar(NumberVar v) const {
  switch (v) {
    case NumberVar::Timestamp:
      return m_.timestamp();
    case NumberVar::Severity:
      return m_.severity();  // proto default 7 when absent
    case NumberVar::Pid:
      return m_.pid();
  }
  return 0;
}

bool HekaMessageView::field(std::string_view name, uint32_t occurrence, uint32_t element,
                            FieldValue& out) const {
  for (const message::Field& f : m_.fields()) {
    if (f.name() != name) continue;
    if (occurrence-- != 0) continue;
    // Compare as sizes: a huge element index must read as missing, not wrap negative.
    const size_t e = element;
    auto has = [e](int n) { return e < static_cast<size_t>(n); };
    switch (f.value_type()) {
      case message::Field::STRING:
        if (!has(f.value_string_size())) return false;
        out.type = FieldType::String;
        out.s = f.value_string(static_cast<int>(e));
        return true;
      case message::Field::BYTES:
        if (!has(f.value_bytes_size())) return false;
        out.type = FieldType::Bytes;
        out.s = f.value_bytes(static_cast<int>(e));
        return true;
      case message::Field::INTEGER:
        if (!has(f.value_integer_size())) return false;
        out.type = FieldType::Integer;
        out.i = f.value_integer(static_cast<int>(e));
        return true;
      case message::Field::DOUBLE:
        if (!has(f.value_double_size())) return false;
        out.type = FieldType::Double;
        out.d = f.value_double(static_cast<int>(e));
        return true;
      case message::Field::BOOL:
        if (!has(f.value_bool_size())) return false;
        out.type = FieldType::Bool;
        out.b = f.value_bool(static_cast<int>(e));
        return true;
    }
    return false;
  }
  return false;
}

bool parseHekaMessage(std::string_view body, message::Message& out) {
  return out.ParsePartialFromArray(body.data(), static_cast<int>(body.size()));
}

}  // namespace ferry::heka

namespace ferry::heka {

std::string hekaMessageJson(const message::Message& m) {
  std::string out = "{";
  auto key = [&](const char* k) {
    if (out.size() > 1) out += ',';
    json::appendString(out, k);
    out += ':';
  };
  if (m.uuid().size() == 16) {
    key("Uuid");
    json::appendString(out, uuidText(m.uuid()));
  }
  key("Timestamp");
  out += std::to_string(m.timestamp());
  if (m.has_type()) {
    key("Type");
    json::appendString(out, m.type());
  }
  if (m.has_logger()) {
    key("Logger");
    json::appendString(out, m.logger());
  }
  key("Severity");
  out += std::to_string(m.severity());
  if (m.has_payload()) {
    key("Payload");
    json::appendString(out, m.payload());
  }
  if (m.has_env_version()) {
    key("EnvVersion");
    json::appendString(out, m.env_version());
  }
  if (m.has_pid()) {
    key("Pid");
    out += std::to_string(m.pid());
  }
  if (m.has_hostname()) {
    key("Hostname");
    json::appendString(out, m.hostname());
  }
  key("Fields");
  out += '{';
  bool first = true;
  for (const message::Field& f : m.fields()) {
    if (!first) out += ',';
    first = false;
    json::appendString(out, f.name());
    out += ':';
    std::vector<std::string> values;
    auto add = [&](std::string v) { values.push_back(std::move(v)); };
    switch (f.value_type()) {
      case message::Field::STRING:
        for (const auto& v : f.value_string()) {
          std::string s;
          json::appendString(s, v);
          add(std::move(s));
        }
        break;
      case message::Field::BYTES:
        for (const auto& v : f.value_bytes()) {
          std::string s;
          json::appendString(s, v);
          add(std::move(s));
        }
        break;
      case message::Field::INTEGER:
        for (int64_t v : f.value_integer())
          add(std::to_string(v));
        break;
      case message::Field::DOUBLE:
        for (double v : f.value_double()) {
          std::string s;
          mp::Writer(s).float64(v);
          std::string j;
          json::appendMsgpack(j, reinterpret_cast<const uint8_t*>(s.data()), s.size());
          add(std::move(j));
        }
        break;
      case message::Field::BOOL:
        for (bool v : f.value_bool())
          add(v ? "true" : "false");
        break;
    }
    if (values.size() == 1) {
      out += values[0];
    } else {
      out += '[';
      for (size_t k = 0; k < values.size(); ++k)
        out += (k ? "," : "") + values[k];
      out += ']';
    }
  }
  out += "}}";
  return out;
}

}  // namespace ferry::heka
