// libFuzzer target for message_matcher expressions (config text, but also what an operator
// may paste from anywhere): compiles the bytes with limits and, when they compile, evaluates
// the matcher against a small fixed message so every test kind runs. Built with -DFERRY_FUZZ=ON.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "src/matcher.h"
#include "src/message_view.h"

namespace {

// Type "app.web", one field of each value type, `multi` with two occurrences and `arr` with
// three elements, so indexes, typed tests and the missing cases are all reachable.
class FixedMessage : public ferry::MessageView {
 public:
  std::string_view stringVar(ferry::StringVar v) const override {
    switch (v) {
      case ferry::StringVar::Uuid:
        return "0f8fad5b-d9cb-469f-a165-70867728950e";
      case ferry::StringVar::Type:
        return "app.web";
      case ferry::StringVar::Logger:
        return "ForwardInput";
      case ferry::StringVar::Payload:
        return "GET /index.html 200\n";
      case ferry::StringVar::EnvVersion:
        return "";
      case ferry::StringVar::Hostname:
        return "host-1";
    }
    return {};
  }

  int64_t numberVar(ferry::NumberVar v) const override {
    switch (v) {
      case ferry::NumberVar::Timestamp:
        return 1700000000123456789;
      case ferry::NumberVar::Severity:
        return 6;
      case ferry::NumberVar::Pid:
        return 0;
    }
    return 0;
  }

  bool field(std::string_view name, uint32_t occurrence, uint32_t element,
             ferry::FieldValue& out) const override {
    out = ferry::FieldValue();
    if (name == "multi") {
      if (occurrence > 1 || element > 0) return false;
      out.s = occurrence == 0 ? "first" : "second";
      return true;
    }
    if (occurrence != 0) return false;
    if (name == "arr") {
      if (element > 2) return false;
      out.type = ferry::FieldType::Integer;
      out.i = static_cast<int64_t>(element) - 1;
      return true;
    }
    if (element != 0) return false;
    if (name == "s") {
      out.s = "TRUE";
    } else if (name == "b") {
      out.type = ferry::FieldType::Bytes;
      out.s = std::string_view("\xff\x00z", 3);
    } else if (name == "i") {
      out.type = ferry::FieldType::Integer;
      out.i = -42;
    } else if (name == "d") {
      out.type = ferry::FieldType::Double;
      out.d = 2.5;
    } else if (name == "t") {
      out.type = ferry::FieldType::Bool;
      out.b = true;
    } else {
      return false;
    }
    return true;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::MatcherLimits limits;
  limits.max_length = 1024;
  limits.max_depth = 16;
  std::string error;
  const std::string_view expr(reinterpret_cast<const char*>(data), size);
  auto matcher = ferry::Matcher::compile(expr, error, limits);
  if (matcher == nullptr) {
    // Every failure must explain itself with a column.
    if (error.rfind("column ", 0) != 0) __builtin_trap();
    return 0;
  }
  static const FixedMessage message;
  const bool first = matcher->matches(message);
  // Evaluation is a pure function of the message.
  if (matcher->matches(message) != first) __builtin_trap();
  (void)matcher->readsOnlyType();
  return 0;
}
