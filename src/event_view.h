// MessageView over a Fluentd event (bridge.md "Fluentd event → Heka message"): Type is
// the tag, Fields[k] is record[k] with bridge.md's types, header variables come from
// record keys of the same names. Reads only the key it is asked for; never converts the
// whole record.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "src/batch.h"
#include "src/message_view.h"

namespace ferry {

class FluentEventView : public MessageView {
 public:
  FluentEventView(const Batch& batch, const Event& event) : batch_(batch), event_(event) {}

  std::string_view stringVar(StringVar v) const override;
  int64_t numberVar(NumberVar v) const override;
  // A string_view it returns for a map or mixed array (JSON text) or a generated Uuid is
  // valid until the next call on this view.
  bool field(std::string_view name, uint32_t occurrence, uint32_t element,
             FieldValue& out) const override;

 private:
  const Batch& batch_;
  const Event& event_;
  // Where the value of the last field asked for starts: expressions often test the
  // same field several times (`Fields[path] == 'a' || Fields[path] == 'b'`). The name is
  // copied (short names only), since a view may outlive the matcher that asked.
  static constexpr size_t kCachedNameMax = 32;
  mutable char cached_name_[kCachedNameMax];
  mutable size_t cached_len_ = SIZE_MAX;  // SIZE_MAX: nothing cached
  mutable uint32_t cached_occurrence_ = 0;
  mutable const uint8_t* cached_value_ = nullptr;  // null: the key is absent
  mutable std::string scratch_;
  mutable std::string uuid_;  // made once per event when first needed
};

// A view with only the tag: for matchers that read nothing else (evaluated once per
// batch). Everything else reads as absent.
class TagOnlyView : public MessageView {
 public:
  explicit TagOnlyView(std::string_view tag) : tag_(tag) {}
  std::string_view stringVar(StringVar v) const override {
    return v == StringVar::Type ? tag_ : std::string_view();
  }
  int64_t numberVar(NumberVar v) const override { return v == NumberVar::Severity ? 7 : 0; }
  bool field(std::string_view, uint32_t, uint32_t, FieldValue&) const override { return false; }

 private:
  std::string_view tag_;
};

// 36-char lowercase text of 16 raw uuid bytes.
std::string uuidText(std::string_view raw16);
// A random (version 4) uuid as 16 raw bytes.
std::string randomUuid();

}  // namespace ferry
