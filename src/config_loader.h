// TOML → validated Config, Heka style: one table per plugin instance, `type` names the
// plugin (default: the table name), and a global [ferry] table ([hekad] is an alias).
// Every error is a ConfigError naming file, line and key.
#pragma once

#include <string>
#include <vector>

#include "src/config_schema.h"
#include "src/plugin.h"

namespace ferry {

struct Config {
  std::string file;
  PluginConfig global;
  std::vector<PluginConfig> inputs;
  std::vector<PluginConfig> outputs;
  std::vector<PluginConfig> others;  // splitters, decoders, encoders (config only)

  // The splitter, decoder or encoder table called `name`, or null.
  const PluginConfig* other(const std::string& name) const {
    for (const auto& pc : others) {
      if (pc.name == name) return &pc;
    }
    return nullptr;
  }
};

// Reads and validates `path`. Throws ConfigError.
Config loadConfigFile(const std::string& path, const PluginRegistry& registry);
// Same, from text (`name` is used in messages as the file name).
Config loadConfigString(const std::string& text, const std::string& name,
                        const PluginRegistry& registry);

// Human-readable summary of what would run (for --check-config).
std::string describeConfig(const Config& config);
// The option reference (docs/configuration.md) generated from the option tables.
std::string optionReferenceMarkdown(const PluginRegistry& registry);

}  // namespace ferry
