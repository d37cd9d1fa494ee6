// splitHostPort: the one host:port syntax of ferry's configs.
#include "src/net_address.h"

namespace ferry {

bool splitHostPort(std::string_view text, std::string_view example, HostPort& out,
                   std::string& error) {
  out = HostPort{};
  std::string_view port_text;
  if (!text.empty() && text[0] == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      error = "expected \"[ipv6]:port\"";
      return false;
    }
    out.host = std::string(text.substr(1, close - 1));
    out.bracketed = true;
    port_text = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) {
      error = "expected host:port, e.g. \"" + std::string(example) + "\"";
      return false;
    }
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos) {
      error =
          "an IPv6 address needs brackets: \"[::1]:" + std::string(text.substr(colon + 1)) + "\"";
      return false;
    }
    port_text = text.substr(colon + 1);
  }
  const bool digits = !port_text.empty() && port_text.size() <= 5 &&
                      port_text.find_first_not_of("0123456789") == std::string_view::npos;
  const int port = digits ? std::stoi(std::string(port_text)) : -1;
  if (port < 0 || port > 65535) {
    error = "the port must be a number from 0 to 65535";
    return false;
  }
  out.port = port;
  return true;
}

}  // namespace ferry
