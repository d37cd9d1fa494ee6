// The one view of an event that the matcher (and later Lua) reads, whatever protocol
// the event came in on: Heka's message model (architecture §2, bridge.md). An
// implementation answers each question lazily, reading only what is asked.
#pragma once

#include <cstdint>
#include <string_view>

namespace ferry {

// Header variables whose value is a string.
enum class StringVar : uint8_t { Uuid, Type, Logger, Payload, EnvVersion, Hostname };
// Header variables whose value is a number.
enum class NumberVar : uint8_t { Timestamp, Severity, Pid };

enum class FieldType : uint8_t { String = 0, Bytes = 1, Integer = 2, Double = 3, Bool = 4 };

// One element of one field. `s` stays valid as long as the view and its event do.
struct FieldValue {
  FieldType type = FieldType::String;
  std::string_view s;  // String, Bytes
  int64_t i = 0;       // Integer
  double d = 0;        // Double
  bool b = false;      // Bool
};

class MessageView {
 public:
  virtual ~MessageView() = default;
  // Uuid as 36-char lowercase text ("" when the uuid is not 16 bytes); others "" when
  // absent.
  virtual std::string_view stringVar(StringVar v) const = 0;
  // Timestamp in ns, Severity (7 when absent), Pid (0 when absent).
  virtual int64_t numberVar(NumberVar v) const = 0;
  // Element `element` of occurrence `occurrence` (both 0-based) of the field `name`.
  // False when the field, the occurrence or the element does not exist.
  virtual bool field(std::string_view name, uint32_t occurrence, uint32_t element,
                     FieldValue& out) const = 0;
};

}  // namespace ferry
