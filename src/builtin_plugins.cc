// The one explicit list of built-in plugins. Core never includes a protocol folder
// except here.
#include "src/forward/forward_input.h"
#include "src/local_outputs.h"
#include "src/plugin.h"

namespace ferry {

void registerBuiltinPlugins(PluginRegistry& registry) {
  registry.add(forward::forwardInputType());
  registry.add(stdoutOutputType());
  registry.add(fileOutputType());
  registry.add(nullOutputType());
}

}  // namespace ferry
