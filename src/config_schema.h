// Option declarations: every plugin option is declared once (type, default, bounds,
// unit, reloadable, description). The same tables drive validation, --check-config and
// the generated option reference in docs/configuration.md.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace ferry {

// Signers: Heka's `[<plugin>.signer.<name>_<version>] hmac_key = "..."` sub-tables,
// kept as "<name>_<version>" → key.
// Table: a sub-table of scalars (e.g. an output's `[out.signer]` with name, hmac_hash,
// hmac_key, version), kept as key → value text; the plugin's validate hook checks it.
// TableList: an array of such tables (`servers = [{host = "a", port = 24224}, ...]` or
// `[[out.servers]]`), each kept like a Table.
enum class OptionType {
  String,
  Int,
  Bool,
  Size,
  Duration,
  Float,
  StringList,
  Signers,
  Table,
  TableList
};

const char* optionTypeName(OptionType t);

struct OptionSpec {
  std::string key;
  OptionType type = OptionType::String;
  std::string default_value;  // as written in TOML docs; empty with required=false: unset
  bool required = false;
  int64_t min = 0;  // bounds for Int, Size (bytes) and Duration (ms); Float uses them too
  int64_t max = INT64_MAX;
  bool reloadable = true;
  std::string description;
};

// Splitter, Decoder and Encoder are Heka config tables that ferry reads but runs no
// instance for (HekaFramingSplitter carries signers; ProtobufDecoder/Encoder name what
// ferry does anyway), so a hekad.toml using them loads as is.
enum class PluginKind { Global, Input, Output, Splitter, Decoder, Encoder };
const char* pluginKindName(PluginKind k);

// One option's validated value, with the line it came from (0 for defaults).
struct OptionValue {
  OptionType type = OptionType::String;
  std::string s;
  int64_t i = 0;  // Int, Size (bytes), Duration (ms)
  bool b = false;
  double f = 0;
  std::vector<std::string> list;
  std::map<std::string, std::string> signers;  // Signers: "<name>_<version>" → hmac_key
  std::map<std::string, std::string> table;    // Table: key → value as text
  std::vector<std::map<std::string, std::string>> tables;  // TableList
  std::vector<int> table_lines;                            // TableList: line of each
  int line = 0;
  bool is_set = false;  // false: a declared option with no value and no default
};

// A config error that names the file, line and key.
class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& file, int line, const std::string& key, const std::string& what);
};

// The validated settings of one plugin instance (or of the global [ferry] table).
class PluginConfig {
 public:
  std::string name;  // the TOML table name
  std::string type;  // the plugin type
  PluginKind kind = PluginKind::Global;
  std::string file;
  int line = 0;
  std::map<std::string, OptionValue> values;

  const OptionValue& get(const std::string& key) const;
  bool has(const std::string& key) const;
  const std::string& str(const std::string& key) const { return get(key).s; }
  int64_t integer(const std::string& key) const { return get(key).i; }
  uint64_t size(const std::string& key) const { return static_cast<uint64_t>(get(key).i); }
  int64_t durationMs(const std::string& key) const { return get(key).i; }
  bool boolean(const std::string& key) const { return get(key).b; }
  // Throws ConfigError naming this option's file and line.
  [[noreturn]] void fail(const std::string& key, const std::string& what) const;
};

}  // namespace ferry
