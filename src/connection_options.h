// Option specs every TCP input shares (one declaration, one default, one bound), so the
// forward and Heka listeners cannot drift apart.
#pragma once

#include <string>

#include "src/config_schema.h"

namespace ferry {

inline OptionSpec maxConnectionsOption() {
  return {.key = "max_connections",
          .type = OptionType::Int,
          .default_value = "1024",
          .min = 1,
          .max = 1'000'000,
          .description =
              "Most open client connections. Past it ferry stops accepting: new "
              "connections wait in the kernel's listen backlog and are accepted as others "
              "close (`accept_paused`)."};
}

// `note` says what else keeps a connection from counting as idle (e.g. an ack it waits for).
inline OptionSpec idleTimeoutOption(const std::string& note) {
  return {.key = "idle_timeout",
          .type = OptionType::Duration,
          .default_value = "10m",
          .min = 0,
          .max = 86'400'000,
          .description = "Close a connection that sent nothing for this long" + note +
                         " (`connections_idle_closed`); 0 = never."};
}

// A slow-loris guard; the default leaves room for a large chunk on a slow link.
inline OptionSpec frameTimeoutOption() {
  return {.key = "frame_timeout",
          .type = OptionType::Duration,
          .default_value = "2m",
          .min = 0,
          .max = 86'400'000,
          .description =
              "Close a connection whose request (frame) has started but not "
              "completed after this long (`frame_timeouts`); time paused by ferry "
              "does not count. 0 = never."};
}

}  // namespace ferry
