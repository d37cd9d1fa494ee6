// Process logging: spdlog to stderr, one line per message with time, level and text.
#pragma once

#include <string>

namespace ferry {

// Sets up the default logger on stderr. `level` is trace…off; false if unknown.
bool setupLogging(const std::string& level);
bool setLogLevel(const std::string& level);

}  // namespace ferry
