// The one explicit list of built-in plugins. Core never includes a protocol folder
// except here.
#include "src/forward/forward_input.h"
#include "src/forward/forward_output.h"
#include "src/heka/heka_input.h"
#include "src/heka/heka_output.h"
#include "src/local_outputs.h"
#include "src/plugin.h"

namespace ferry {

void registerBuiltinPlugins(PluginRegistry& registry) {
  registry.add(forward::forwardInputType());
  registry.add(heka::tcpInputType());
  registry.add(heka::udpInputType());
  registry.add(heka::hekaFramingSplitterType());
  registry.add(heka::protobufDecoderType());
  registry.add(heka::protobufEncoderType());
  // Buffer defaults per output type (docs/flow_control.md §3): outputs that promise
  // delivery push back when full; stdout, which people watch, keeps the newest lines.
  auto buffered = [&](PluginType t, const char* full_action, uint64_t memory_limit) {
    t.buffered = true;
    t.default_full_action = full_action;
    t.default_memory_limit = memory_limit;
    registry.add(std::move(t));
  };
  constexpr uint64_t kMiB = 1024 * 1024;
  buffered(stdoutOutputType(), "drop_oldest", 8 * kMiB);
  buffered(fileOutputType(), "block", 8 * kMiB);
  registry.add(nullOutputType());  // discards at once: nothing to queue
  buffered(forward::forwardOutputType(), "block", 64 * kMiB);
  PluginType tcp_output = heka::tcpOutputType();
  tcp_output.buffer_on_delivery = true;  // its own accept means only "queued"
  buffered(std::move(tcp_output), "block", 64 * kMiB);
}

}  // namespace ferry
