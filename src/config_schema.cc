// Option-spec helpers and ConfigError formatting.
#include "src/config_schema.h"

#include <fmt/format.h>

namespace ferry {

const char* optionTypeName(OptionType t) {
  switch (t) {
    case OptionType::String:
      return "string";
    case OptionType::Int:
      return "integer";
    case OptionType::Bool:
      return "boolean";
    case OptionType::Size:
      return "size";
    case OptionType::Duration:
      return "duration";
    case OptionType::Float:
      return "float";
    case OptionType::StringList:
      return "array of strings";
    case OptionType::Signers:
      return "signer tables";
    case OptionType::Table:
      return "table";
    case OptionType::TableList:
      return "array of tables";
  }
  return "?";
}

const char* pluginKindName(PluginKind k) {
  switch (k) {
    case PluginKind::Global:
      return "global";
    case PluginKind::Input:
      return "input";
    case PluginKind::Output:
      return "output";
    case PluginKind::Splitter:
      return "splitter";
    case PluginKind::Decoder:
      return "decoder";
    case PluginKind::Encoder:
      return "encoder";
  }
  return "?";
}

ConfigError::ConfigError(const std::string& file, int line, const std::string& key,
                         const std::string& what)
    : std::runtime_error(key.empty() ? fmt::format("{}:{}: {}", file, line, what)
                                     : fmt::format("{}:{}: key '{}': {}", file, line, key, what)) {}

const OptionValue& PluginConfig::get(const std::string& key) const {
  auto it = values.find(key);
  if (it == values.end()) {
    // A plugin asking for an option it did not declare is a programming error.
    throw std::logic_error("undeclared option '" + key + "' read by " + type);
  }
  return it->second;
}

bool PluginConfig::has(const std::string& key) const {
  auto it = values.find(key);
  return it != values.end() && it->second.is_set;
}

void PluginConfig::fail(const std::string& key, const std::string& what) const {
  auto it = values.find(key);
  const int at = it != values.end() && it->second.line > 0 ? it->second.line : line;
  throw ConfigError(file, at, name + "." + key, what);
}

}  // namespace ferry
