// Size and duration parsing for config values.
#include "src/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace ferry {
namespace {

std::string lower(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s)
    out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

// Reads a non-negative decimal number (digits with an optional fraction) at `s[i..]`.
std::optional<double> readNumber(std::string_view s, size_t& i) {
  const size_t start = i;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.'))
    ++i;
  if (i == start) return std::nullopt;
  double v = 0;
  auto [p, ec] = std::from_chars(s.data() + start, s.data() + i, v);
  if (ec != std::errc() || p != s.data() + i) return std::nullopt;
  return v;
}

}  // namespace

std::optional<uint64_t> parseSize(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && text[i] == ' ')
    ++i;
  auto num = readNumber(text, i);
  if (!num) return std::nullopt;
  while (i < text.size() && text[i] == ' ')
    ++i;
  const std::string unit = lower(text.substr(i));
  double mult;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kib" || unit == "kb" || unit == "ki") {
    mult = unit == "kb" ? 1000.0 : 1024.0;
  } else if (unit == "m" || unit == "mib" || unit == "mb" || unit == "mi") {
    mult = unit == "mb" ? 1e6 : 1024.0 * 1024;
  } else if (unit == "g" || unit == "gib" || unit == "gb" || unit == "gi") {
    mult = unit == "gb" ? 1e9 : 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  const double bytes = *num * mult;
  if (bytes > 1.8e19 || bytes != std::floor(bytes)) return std::nullopt;
  return static_cast<uint64_t>(bytes);
}

std::optional<int64_t> parseDurationMs(std::string_view text) {
  if (text == "0") return 0;
  size_t i = 0;
  double total_ms = 0;
  bool any = false;
  while (i < text.size()) {
    auto num = readNumber(text, i);
    if (!num) return std::nullopt;
    size_t u = i;
    while (u < text.size() && std::isalpha(static_cast<unsigned char>(text[u])))
      ++u;
    const std::string unit = lower(text.substr(i, u - i));
    i = u;
    double mult;
    if (unit == "ms") {
      mult = 1;
    } else if (unit == "s") {
      mult = 1000;
    } else if (unit == "m") {
      mult = 60'000;
    } else if (unit == "h") {
      mult = 3'600'000;
    } else if (unit == "d") {
      mult = 86'400'000;
    } else {
      return std::nullopt;
    }
    total_ms += *num * mult;
    any = true;
  }
  if (!any || total_ms > 9.2e15) return std::nullopt;
  return static_cast<int64_t>(std::llround(total_ms));
}

std::string formatSize(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"GiB", "MiB", "KiB"};
  static constexpr uint64_t kScale[] = {1ull << 30, 1ull << 20, 1ull << 10};
  for (int k = 0; k < 3; ++k) {
    if (bytes != 0 && bytes % kScale[k] == 0) return std::to_string(bytes / kScale[k]) + kUnits[k];
  }
  return std::to_string(bytes);
}

std::string formatDurationMs(int64_t ms) {
  if (ms == 0) return "0";
  if (ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

}  // namespace ferry
