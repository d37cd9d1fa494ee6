// Counter registry and its JSON report (SIGUSR1 prints it).
#include "src/stats.h"

#include "src/json.h"

namespace ferry {

Counter& StatsRegistry::counter(const std::string& component, const std::string& name) {
  return counters_[component][name];
}

uint64_t StatsRegistry::value(const std::string& component, const std::string& name) const {
  auto c = counters_.find(component);
  if (c == counters_.end()) return 0;
  auto n = c->second.find(name);
  return n == c->second.end() ? 0 : n->second.value();
}

std::string StatsRegistry::toJson() const {
  std::string out = "{";
  bool first_c = true;
  for (const auto& [component, names] : counters_) {
    if (!first_c) out += ',';
    first_c = false;
    json::appendString(out, component);
    out += ":{";
    bool first_n = true;
    for (const auto& [name, counter] : names) {
      if (!first_n) out += ',';
      first_n = false;
      json::appendString(out, name);
      out += ':';
      out += std::to_string(counter.value());
    }
    out += '}';
  }
  out += '}';
  return out;
}

}  // namespace ferry
