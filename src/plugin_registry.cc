// Plugin type registry and the options every output and the [ferry] table share.
#include <stdexcept>

#include "src/output_buffer.h"
#include "src/plugin.h"

namespace ferry {

void PluginRegistry::add(PluginType type) {
  if (find(type.name)) throw std::logic_error("plugin type registered twice: " + type.name);
  if (type.kind == PluginKind::Output) {
    type.options.insert(type.options.begin(),
                        OptionSpec{.key = "match",
                                   .type = OptionType::String,
                                   .description = "Fluentd tag pattern(s) selecting the events "
                                                  "this output receives: `*`, `**`, `{a,b}`, "
                                                  "`/regex/`, space-separated alternatives."});
    type.options.insert(type.options.begin() + 1,
                        OptionSpec{.key = "message_matcher",
                                   .type = OptionType::String,
                                   .description = "Heka matcher expression (docs/matcher.md), "
                                                  "e.g. `Type == 'app.access' && "
                                                  "Fields[status] >= 500`. With `match` too, "
                                                  "both must hold."});
    type.options.insert(type.options.begin() + 2,
                        OptionSpec{.key = "message_signer",
                                   .type = OptionType::String,
                                   .description = "Only Heka messages whose framing header was "
                                                  "verified for this signer name (as hekad)."});
    if (type.buffered) {
      type.options.push_back(bufferOptionSpec());
      // Check `[<output>.buffer]` at load, so --check-config catches what start would.
      PluginType defaults;
      defaults.name = type.name;
      defaults.default_full_action = type.default_full_action;
      defaults.default_memory_limit = type.default_memory_limit;
      auto previous = type.validate_with_config;
      type.validate_with_config = [previous, defaults](const PluginConfig& cfg,
                                                       const Config& full) {
        if (previous) previous(cfg, full);
        parseBufferOptions(cfg, defaults, full);
      };
    }
  }
  types_.push_back(std::move(type));
}

const PluginType* PluginRegistry::find(const std::string& name) const {
  for (const auto& t : types_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

std::string PluginRegistry::knownNames(PluginKind kind) const {
  std::string out;
  for (const auto& t : types_) {
    if (t.kind != kind) continue;
    if (!out.empty()) out += ", ";
    out += t.name;
  }
  return out;
}

const std::vector<OptionSpec>& PluginRegistry::globalOptions() {
  static const std::vector<OptionSpec> kOptions = {
      {.key = "shutdown_timeout",
       .type = OptionType::Duration,
       .default_value = "10s",
       .min = 0,
       .max = 3'600'000,
       .reloadable = true,
       .description = "On SIGTERM/SIGINT: how long to drain inputs and flush outputs "
                      "before exiting anyway."},
      {.key = "log_level",
       .type = OptionType::String,
       .default_value = "info",
       .description = "trace, debug, info, warn, error or off (`--log-level` overrides)."},
      {.key = "hostname",
       .type = OptionType::String,
       .description = "This host's name as reported to peers; default: gethostname()."},
      {.key = "max_message_size",
       .type = OptionType::Size,
       .default_value = "64KiB",
       .min = 1025,
       .max = int64_t{64} << 20,
       .reloadable = false,
       .description = "Largest Heka message body, as hekad's `max_message_size`: larger "
                      "framed records are dropped and counted, the stream goes on."},
      {.key = "memory_limit",
       .type = OptionType::Size,
       .default_value = "1GiB",
       .min = 0,
       .reloadable = false,
       .description = "Process-wide memory budget above every output's own "
                      "`buffer.memory_limit`: past it every input stops reading until the "
                      "total falls to half of it (`flow.budget_pressure`). 0: no budget."},
      {.key = "base_dir",
       .type = OptionType::String,
       .default_value = "/var/lib/ferry",
       .reloadable = false,
       .description = "Where outputs with `[<output>.buffer] type = \"file\"` keep their "
                      "spools, one directory per output name (`<base_dir>/spool/<name>`)."},
  };
  return kOptions;
}

}  // namespace ferry
