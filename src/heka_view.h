// Zero-copy reading of Heka protobuf Message bodies (heka.md §1): the MessageView the
// matcher and outputs read for Heka events, plus the checks an input needs. Reads the
// wire format with libprotobuf's CodedInputStream on demand instead of building a
// message::Message per event, so the heka → heka relay allocates nothing per message.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/message_view.h"

namespace ferry {

class HekaWireView : public MessageView {
 public:
  explicit HekaWireView(std::string_view body) : body_(body) {}

  std::string_view stringVar(StringVar v) const override;
  int64_t numberVar(NumberVar v) const override;
  bool field(std::string_view name, uint32_t occurrence, uint32_t element,
             FieldValue& out) const override;

  // Raw uuid bytes ("" when absent).
  std::string_view uuidBytes() const;

 private:
  std::string_view body_;
  mutable std::string uuid_text_;
};

// Lenient validation as Heka's decoder does it: true when `body` is well-formed protobuf
// whose known fields have the right wire types (missing required fields are fine;
// unknown fields are skipped). Also yields the timestamp (0 when absent).
bool hekaCheckMessage(std::string_view body, int64_t& timestamp_ns);

}  // namespace ferry
