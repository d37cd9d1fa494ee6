// spdlog set-up for ferryd.
#include "src/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace ferry {

bool setLogLevel(const std::string& level) {
  const auto l = spdlog::level::from_str(level);
  if (l == spdlog::level::off && level != "off") return false;
  spdlog::set_level(l);
  return true;
}

bool setupLogging(const std::string& level) {
  auto logger = spdlog::stderr_logger_st("ferryd");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z [%l] %v");
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
  return setLogLevel(level);
}

}  // namespace ferry
