// TOML loading with toml11 and validation against the plugin option tables.
#include "src/config_loader.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <toml.hpp>

#include "src/units.h"

namespace ferry {
namespace {

int lineOf(const toml::value& v) {
  return static_cast<int>(v.location().line());
}

std::string boundText(const OptionSpec& spec, int64_t v) {
  switch (spec.type) {
    case OptionType::Size:
      return formatSize(static_cast<uint64_t>(v));
    case OptionType::Duration:
      return formatDurationMs(v);
    default:
      return std::to_string(v);
  }
}

// A table whose values are scalars, as key → text.
std::map<std::string, std::string> scalarTable(const toml::value& v, const std::string& file,
                                               const std::string& key) {
  std::map<std::string, std::string> out;
  for (const auto& kv : v.as_table()) {
    const toml::value& e = kv.second;
    if (e.is_string()) {
      out[kv.first] = e.as_string().str;
    } else if (e.is_integer()) {
      out[kv.first] = std::to_string(e.as_integer());
    } else if (e.is_boolean()) {
      out[kv.first] = e.as_boolean() ? "true" : "false";
    } else if (e.is_floating()) {
      out[kv.first] = fmt::format("{}", e.as_floating());
    } else {
      throw ConfigError(file, lineOf(e), key + "." + kv.first,
                        "expected a string, number or boolean");
    }
  }
  return out;
}

OptionValue convert(const OptionSpec& spec, const toml::value& v, const std::string& file,
                    const std::string& key) {
  OptionValue out;
  out.type = spec.type;
  out.line = lineOf(v);
  out.is_set = true;
  auto wrong = [&](const std::string& expected) {
    throw ConfigError(file, out.line, key, "expected " + expected);
  };
  auto checkBounds = [&](int64_t n) {
    if (n < spec.min || n > spec.max) {
      throw ConfigError(file, out.line, key,
                        fmt::format("value {} is out of range [{}, {}]", boundText(spec, n),
                                    boundText(spec, spec.min), boundText(spec, spec.max)));
    }
  };
  switch (spec.type) {
    case OptionType::String:
      if (!v.is_string()) wrong("a string");
      out.s = v.as_string().str;
      break;
    case OptionType::StringList:
      if (v.is_string()) {
        out.list.push_back(v.as_string().str);
        break;
      }
      if (!v.is_array()) wrong("an array of strings");
      for (const auto& e : v.as_array()) {
        if (!e.is_string()) wrong("an array of strings");
        out.list.push_back(e.as_string().str);
      }
      break;
    case OptionType::Bool:
      if (!v.is_boolean()) wrong("true or false");
      out.b = v.as_boolean();
      break;
    case OptionType::Int:
      if (!v.is_integer()) wrong("an integer");
      out.i = v.as_integer();
      checkBounds(out.i);
      break;
    case OptionType::Float:
      if (v.is_integer()) {
        out.f = static_cast<double>(v.as_integer());
      } else if (v.is_floating()) {
        out.f = v.as_floating();
      } else {
        wrong("a number");
      }
      if (out.f < static_cast<double>(spec.min) || out.f > static_cast<double>(spec.max)) {
        throw ConfigError(
            file, out.line, key,
            fmt::format("value {} is out of range [{}, {}]", out.f, spec.min, spec.max));
      }
      break;
    case OptionType::Size: {
      if (v.is_integer()) {
        if (v.as_integer() < 0) wrong("a size such as 65536 or \"64KiB\"");
        out.i = v.as_integer();
      } else if (v.is_string()) {
        auto n = parseSize(v.as_string().str);
        if (!n || *n > static_cast<uint64_t>(INT64_MAX)) {
          wrong("a size such as 65536 or \"64KiB\" (units B, KiB, MiB, GiB, KB, MB, GB)");
        }
        out.i = static_cast<int64_t>(*n);
      } else {
        wrong("a size such as 65536 or \"64KiB\"");
      }
      checkBounds(out.i);
      break;
    }
    case OptionType::Signers: {
      // signer = { name_version = { hmac_key = "..." }, ... }
      if (!v.is_table()) wrong("signer sub-tables: [<plugin>.signer.<name>_<version>]");
      for (const auto& kv : v.as_table()) {
        const std::string& id = kv.first;
        const toml::value& t = kv.second;
        const std::string sub = key + "." + id;
        const auto us = id.rfind('_');
        const bool version_ok = us != std::string::npos && us > 0 && us + 1 < id.size() &&
                                id.find_first_not_of("0123456789", us + 1) == std::string::npos;
        if (!version_ok) {
          throw ConfigError(file, lineOf(t), sub,
                            "a signer table is named <signer>_<version>, e.g. signer.test_0");
        }
        if (!t.is_table())
          throw ConfigError(file, lineOf(t), sub, "expected a table with hmac_key");
        for (const auto& f : t.as_table()) {
          if (f.first != "hmac_key") {
            throw ConfigError(file, lineOf(f.second), sub + "." + f.first,
                              "unknown key for a signer (known keys: hmac_key)");
          }
          if (!f.second.is_string()) {
            throw ConfigError(file, lineOf(f.second), sub + ".hmac_key", "expected a string");
          }
          out.signers[id] = f.second.as_string().str;
        }
        if (!out.signers.count(id)) {
          throw ConfigError(file, lineOf(t), sub + ".hmac_key", "required key is missing");
        }
      }
      break;
    }
    case OptionType::Table: {
      if (!v.is_table()) wrong("a table, e.g. [" + key + "]");
      // A Table may also hold arrays of scalar tables (ForwardInput's security.users, as
      // `users = [{...}]` or `[[<plugin>.security.users]]`). Their entries go to `tables`,
      // with the key each came from in `list` and its line in `table_lines`.
      toml::value scalars = v;
      for (const auto& kv : v.as_table()) {
        if (!kv.second.is_array()) continue;
        scalars.as_table().erase(kv.first);
        for (const auto& entry : kv.second.as_array()) {
          if (!entry.is_table()) {
            throw ConfigError(file, lineOf(entry), key + "." + kv.first,
                              "expected a string, number, boolean or an array of tables");
          }
          out.tables.push_back(scalarTable(entry, file, key + "." + kv.first));
          out.list.push_back(kv.first);
          out.table_lines.push_back(lineOf(entry));
        }
      }
      out.table = scalarTable(scalars, file, key);
      break;
    }
    case OptionType::TableList:
      if (!v.is_array()) wrong("an array of tables, e.g. " + key + " = [{...}, {...}]");
      for (const auto& e : v.as_array()) {
        if (!e.is_table()) {
          throw ConfigError(file, lineOf(e), key, "expected an array of tables");
        }
        out.tables.push_back(scalarTable(e, file, key));
        out.table_lines.push_back(lineOf(e));
      }
      break;
    case OptionType::Duration: {
      if (v.is_integer() && v.as_integer() == 0) {
        out.i = 0;
      } else if (v.is_string()) {
        auto n = parseDurationMs(v.as_string().str);
        if (!n) wrong("a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\"");
        out.i = *n;
      } else {
        wrong("a duration such as \"250ms\", \"10s\", \"5m\" or \"1h\"");
      }
      checkBounds(out.i);
      break;
    }
  }
  return out;
}

OptionValue defaultValue(const OptionSpec& spec) {
  OptionValue out;
  out.type = spec.type;
  if (spec.default_value.empty() && spec.type != OptionType::Bool) {
    return out;  // unset
  }
  out.is_set = true;
  const std::string& d = spec.default_value;
  switch (spec.type) {
    case OptionType::String:
      out.s = d;
      break;
    case OptionType::StringList:
      out.list.push_back(d);
      break;
    case OptionType::Bool:
      out.b = d == "true";
      break;
    case OptionType::Int:
      out.i = std::stoll(d);
      break;
    case OptionType::Float:
      out.f = std::stod(d);
      break;
    case OptionType::Size:
      out.i = static_cast<int64_t>(parseSize(d).value());
      break;
    case OptionType::Duration:
      out.i = parseDurationMs(d).value();
      break;
    case OptionType::Signers:
    case OptionType::Table:
    case OptionType::TableList:
      break;
  }
  return out;
}

std::string knownKeys(const std::vector<OptionSpec>& specs) {
  std::string out;
  for (const auto& s : specs) {
    if (!out.empty()) out += ", ";
    out += s.key;
  }
  return out;
}

// Validates one table against `specs`, filling defaults. `skip` names keys handled by
// the caller (`type`).
void fillOptions(PluginConfig& pc, const toml::value& table, const std::vector<OptionSpec>& specs,
                 const std::string& file) {
  for (const auto& kv : table.as_table()) {
    const std::string& key = kv.first;
    const toml::value& v = kv.second;
    if (key == "type" && pc.kind != PluginKind::Global) continue;
    auto it = std::find_if(specs.begin(), specs.end(), [&](const auto& s) { return s.key == key; });
    if (it == specs.end()) {
      throw ConfigError(file, lineOf(v), pc.name + "." + key,
                        fmt::format("unknown key for {} (known keys: {})",
                                    pc.kind == PluginKind::Global ? "[" + pc.name + "]" : pc.type,
                                    knownKeys(specs)));
    }
    pc.values[key] = convert(*it, v, file, pc.name + "." + key);
  }
  for (const auto& spec : specs) {
    if (pc.values.count(spec.key)) continue;
    if (spec.required) {
      throw ConfigError(file, pc.line, pc.name + "." + spec.key, "required key is missing");
    }
    pc.values[spec.key] = defaultValue(spec);
  }
}

Config build(const toml::value& root, const std::string& file, const PluginRegistry& registry) {
  Config cfg;
  cfg.file = file;
  cfg.global.name = "ferry";
  cfg.global.type = "ferry";
  cfg.global.kind = PluginKind::Global;
  cfg.global.file = file;
  cfg.global.line = 0;

  // Tables in file order, so outputs and messages follow what the user wrote.
  std::vector<std::pair<std::string, const toml::value*>> tables;
  for (const auto& [name, v] : root.as_table())
    tables.emplace_back(name, &v);
  std::stable_sort(tables.begin(), tables.end(), [](const auto& a, const auto& b) {
    return lineOf(*a.second) < lineOf(*b.second);
  });

  const toml::value* global = nullptr;
  std::string global_name;
  for (const auto& [name, v] : tables) {
    if (!v->is_table()) {
      throw ConfigError(file, lineOf(*v), name,
                        "top-level keys must be tables: write [" + name +
                            "] with the plugin's "
                            "options, or put global settings under [ferry]");
    }
    if (name == "ferry" || name == "hekad") {
      if (global) {
        throw ConfigError(file, lineOf(*v), name,
                          fmt::format("duplicate global table: [{}] and [{}] are the same "
                                      "section ([hekad] is an alias of [ferry])",
                                      global_name, name));
      }
      global = v;
      global_name = name;
      continue;
    }
    PluginConfig pc;
    pc.name = name;
    pc.file = file;
    pc.line = lineOf(*v);
    pc.type = name;
    if (v->as_table().count("type")) {
      const auto& t = v->as_table().at("type");
      if (!t.is_string()) throw ConfigError(file, lineOf(t), name + ".type", "expected a string");
      pc.type = t.as_string().str;
      pc.line = lineOf(t);
    }
    const PluginType* pt = registry.find(pc.type);
    if (!pt) {
      std::string known;
      for (PluginKind k : {PluginKind::Input, PluginKind::Output, PluginKind::Splitter,
                           PluginKind::Decoder, PluginKind::Encoder}) {
        const std::string names = registry.knownNames(k);
        if (names.empty()) continue;
        known += fmt::format("{}{}s: {}", known.empty() ? "" : "; ", pluginKindName(k), names);
      }
      throw ConfigError(file, pc.line, name + ".type",
                        fmt::format("unknown plugin type '{}' ({})", pc.type, known));
    }
    pc.kind = pt->kind;
    fillOptions(pc, *v, pt->options, file);
    if (pt->validate) pt->validate(pc);
    if (pc.kind == PluginKind::Input) {
      cfg.inputs.push_back(std::move(pc));
    } else if (pc.kind == PluginKind::Output) {
      cfg.outputs.push_back(std::move(pc));
    } else {
      cfg.others.push_back(std::move(pc));
    }
  }
  if (global) {
    cfg.global.name = global_name;
    cfg.global.line = lineOf(*global);
    fillOptions(cfg.global, *global, PluginRegistry::globalOptions(), file);
  } else {
    fillOptions(cfg.global, toml::value(toml::table{}), PluginRegistry::globalOptions(), file);
  }
  for (const auto* list : {&cfg.inputs, &cfg.outputs}) {
    for (const PluginConfig& pc : *list) {
      const PluginType* pt = registry.find(pc.type);
      if (pt && pt->validate_with_config) pt->validate_with_config(pc, cfg);
    }
  }
  const std::string& level = cfg.global.str("log_level");
  static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
  if (!kLevels.count(level)) {
    cfg.global.fail("log_level", "expected one of trace, debug, info, warn, error, off");
  }
  return cfg;
}

Config parseAndBuild(std::istream& in, const std::string& name, const PluginRegistry& registry) {
  toml::value root;
  try {
    root = toml::parse(in, name);
  } catch (const toml::syntax_error& e) {
    // toml11's message already carries "[error] ... --> file" and the line; keep it whole.
    throw ConfigError(name, static_cast<int>(e.location().line()), "",
                      std::string("TOML syntax error: ") + e.what());
  }
  return build(root, name, registry);
}

}  // namespace

Config loadConfigFile(const std::string& path, const PluginRegistry& registry) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw ConfigError(path, 0, "", "cannot read config file: it is a directory");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw ConfigError(path, 0, "", std::string("cannot read config file: ") + std::strerror(errno));
  }
  return parseAndBuild(in, path, registry);
}

Config loadConfigString(const std::string& text, const std::string& name,
                        const PluginRegistry& registry) {
  std::istringstream in(text);
  return parseAndBuild(in, name, registry);
}

namespace {
std::string valueText(const OptionValue& v) {
  if (!v.is_set) return "(unset)";
  switch (v.type) {
    case OptionType::String:
      return "\"" + v.s + "\"";
    case OptionType::StringList: {
      std::string out = "[";
      for (size_t i = 0; i < v.list.size(); ++i)
        out += (i ? ", \"" : "\"") + v.list[i] + "\"";
      return out + "]";
    }
    case OptionType::Bool:
      return v.b ? "true" : "false";
    case OptionType::Int:
      return std::to_string(v.i);
    case OptionType::Float:
      return fmt::format("{}", v.f);
    case OptionType::Size:
      return formatSize(static_cast<uint64_t>(v.i));
    case OptionType::Duration:
      return formatDurationMs(v.i);
    case OptionType::Table: {
      std::string out = "{";
      for (const auto& [k, val] : v.table) {
        out += (out.size() > 1 ? ", " : "") + k + " = " +
               (k.find("key") != std::string::npos ? std::string("(hidden)") : val);
      }
      for (size_t i = 0; i < v.tables.size() && i < v.list.size(); ++i) {
        out += (out.size() > 1 ? ", " : "") + v.list[i] + " = {";
        bool first = true;
        for (const auto& [k, val] : v.tables[i]) {
          out += (first ? "" : ", ") + k + " = " +
                 (k.find("key") != std::string::npos || k == "password" ? "(hidden)" : val);
          first = false;
        }
        out += "}";
      }
      return out + "}";
    }
    case OptionType::TableList: {
      std::string out = "[";
      for (const auto& t : v.tables) {
        out += out.size() > 1 ? ", {" : "{";
        bool first = true;
        for (const auto& [k, val] : t) {
          out += (first ? "" : ", ") + k + " = " +
                 (k.find("key") != std::string::npos || k == "password" ? "(hidden)" : val);
          first = false;
        }
        out += "}";
      }
      return out + "]";
    }
    case OptionType::Signers: {
      std::string out = "{";
      for (const auto& [id, k] : v.signers)
        out += (out.size() > 1 ? ", " : "") + id + " (key hidden)";
      return out + "}";
    }
  }
  return "?";
}

void describeOne(std::string& out, const PluginConfig& pc) {
  out += fmt::format("[{}] type = {} ({}:{})\n", pc.name, pc.type, pc.file, pc.line);
  for (const auto& [key, v] : pc.values)
    out += fmt::format("  {} = {}\n", key, valueText(v));
}
}  // namespace

std::string describeConfig(const Config& config) {
  std::string out = fmt::format("config {} is valid\n", config.file);
  out += fmt::format("[{}]\n", config.global.name);
  for (const auto& [key, v] : config.global.values)
    out += fmt::format("  {} = {}\n", key, valueText(v));
  out += fmt::format("{} input(s):\n", config.inputs.size());
  for (const auto& pc : config.inputs)
    describeOne(out, pc);
  out += fmt::format("{} output(s):\n", config.outputs.size());
  for (const auto& pc : config.outputs)
    describeOne(out, pc);
  return out;
}

namespace {
void optionTable(std::string& out, const std::vector<OptionSpec>& specs) {
  out += "| key | type | default | bounds | reload | description |\n";
  out += "|---|---|---|---|---|---|\n";
  for (const auto& s : specs) {
    std::string bounds;
    if (s.type == OptionType::Int || s.type == OptionType::Size || s.type == OptionType::Duration) {
      auto fmtb = [&](int64_t v) {
        return s.type == OptionType::Size       ? formatSize(static_cast<uint64_t>(v))
               : s.type == OptionType::Duration ? formatDurationMs(v)
                                                : std::to_string(v);
      };
      bounds = fmtb(s.min) + " – " + (s.max == INT64_MAX ? std::string("∞") : fmtb(s.max));
    }
    std::string def = s.required                ? "required"
                      : s.default_value.empty() ? "—"
                                                : "`" + s.default_value + "`";
    if (s.type == OptionType::Bool && s.default_value.empty()) def = "`false`";
    out += fmt::format("| `{}` | {} | {} | {} | {} | {} |\n", s.key, optionTypeName(s.type), def,
                       bounds, s.reloadable ? "yes" : "restart", s.description);
  }
}
}  // namespace

std::string optionReferenceMarkdown(const PluginRegistry& registry) {
  std::string out =
      "<!-- Generated by `ferryd --print-option-reference` from the option tables in the "
      "source; a test fails when this file and the tables differ. -->\n"
      "# Option reference\n\n"
      "Sizes accept an integer (bytes) or a string with a unit: `\"64KiB\"`, `\"8MiB\"`, "
      "`\"1GiB\"`, `\"500KB\"` (KB, MB, GB are decimal; K, KiB, M, MiB, G, GiB binary). "
      "Durations are strings with units `ms`, `s`, `m`, `h`, `d`, combinable: `\"250ms\"`, "
      "`\"1m30s\"`; `0` alone means off where an option allows it.\n\n"
      "## [ferry] (alias [hekad])\n\n";
  optionTable(out, PluginRegistry::globalOptions());
  for (PluginKind kind : {PluginKind::Input, PluginKind::Output, PluginKind::Splitter,
                          PluginKind::Decoder, PluginKind::Encoder}) {
    for (const auto& t : registry.all()) {
      if (t.kind != kind) continue;
      out += fmt::format("\n## {} ({})\n\n{}\n\n", t.name, pluginKindName(kind), t.summary);
      optionTable(out, t.options);
    }
  }
  return out;
}

}  // namespace ferry
