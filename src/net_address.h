// "host:port" text as config files write it, split once for every plugin: listeners and
// peers then apply their own rules (empty host = all interfaces, names resolved or not).
#pragma once

#include <string>
#include <string_view>

namespace ferry {

struct HostPort {
  std::string host;        // without brackets; empty for ":port"
  int port = 0;            // 0-65535
  bool bracketed = false;  // written as "[v6]:port"
};

// Splits "host:port", "[v6]:port" or ":port". On error returns false and sets `error` to
// what was expected (`example` is shown as a sample address, e.g. "127.0.0.1:24224").
bool splitHostPort(std::string_view text, std::string_view example, HostPort& out,
                   std::string& error);

}  // namespace ferry
