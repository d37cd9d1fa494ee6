// Named counters per component (plugin instance). Counters live as long as the registry
// and their addresses are stable, so hot paths keep a reference and just increment.
#pragma once

#include <cstdint>
#include <map>
#include <string>

namespace ferry {

class Counter {
 public:
  void inc(uint64_t n = 1) { value_ += n; }
  // For gauges (queued bytes, open connections): the current value, not a running total.
  void set(uint64_t v) { value_ = v; }
  uint64_t value() const { return value_; }

 private:
  uint64_t value_ = 0;
};

class StatsRegistry {
 public:
  // Returns the counter `name` of `component`, creating it at zero.
  Counter& counter(const std::string& component, const std::string& name);
  // Current value, 0 when absent.
  uint64_t value(const std::string& component, const std::string& name) const;
  // {"component":{"counter":N,...},...} in name order.
  std::string toJson() const;

 private:
  std::map<std::string, std::map<std::string, Counter>> counters_;
};

}  // namespace ferry
