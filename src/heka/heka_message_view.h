// MessageView over a decoded Heka message (the protobuf Message of heka.md §1), so the
// matcher sees Heka and Fluentd events alike.
#pragma once

#include <string>
#include <string_view>

#include "src/heka/message.pb.h"
#include "src/message_view.h"

namespace ferry::heka {

class HekaMessageView : public MessageView {
 public:
  explicit HekaMessageView(const message::Message& m) : m_(m) {}

  std::string_view stringVar(StringVar v) const override;
  int64_t numberVar(NumberVar v) const override;
  bool field(std::string_view name, uint32_t occurrence, uint32_t element,
             FieldValue& out) const override;

 private:
  const message::Message& m_;
  mutable std::string uuid_;
};

// Decodes a Heka message body leniently, as Heka does: missing required fields are
// accepted. False when the bytes are not protobuf.
bool parseHekaMessage(std::string_view body, message::Message& out);

}  // namespace ferry::heka

namespace ferry::heka {
// The message as one JSON object: header fields present (Uuid as text, Timestamp in ns)
// and "Fields": {name: value, or [values] when there are several}.
std::string hekaMessageJson(const message::Message& m);
}  // namespace ferry::heka
