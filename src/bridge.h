// The bridge between Heka messages and Fluentd events (../shared/spec/bridge.md), in both
// directions. Used by Fluentd-shaped outputs receiving Heka messages and by Heka outputs
// receiving Fluentd events. Same-protocol paths never come here: they copy bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/batch.h"
#include "src/message_view.h"

namespace ferry {

// How a Fluentd-shaped output names a Heka message's tag.
struct HekaTagOptions {
  std::string default_tag = "heka";  // when Type is empty
  std::string tag_template;          // e.g. "heka.%{Logger}.%{Type}"; empty: Type
};

// The tag of a Heka message (view) by `o`. In a template, %{Type}, %{Logger},
// %{Hostname}, %{Payload}, %{EnvVersion}, %{Uuid} are replaced by the header values.
std::string hekaTag(const MessageView& view, const HekaTagOptions& o);

// The Fluentd record (a msgpack map) for a Heka Message body: the header fields present,
// under their Heka names, then each Field by name. False when the body is not protobuf.
bool hekaToFluentRecord(std::string_view body, std::string& record_out);

// The Heka Message body (protobuf) for a Fluentd event of a FluentRecord batch.
void fluentToHekaMessage(const Batch& batch, const Event& event, std::string& body_out);

}  // namespace ferry
