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
  registry.add(stdoutOutputType());
  registry.add(fileOutputType());
  registry.add(nullOutputType());
  registry.add(forward::forwardOutputType());
  registry.add(heka::tcpOutputType());
}

}  // namespace ferry
