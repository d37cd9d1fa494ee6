// Parsing and printing of sizes ("64KiB", "8MB", 1024) and durations ("250ms", "10s",
// "1m30s") used by config values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry {

// Bytes. Accepts a plain integer or a number with unit B, KB/KiB, MB/MiB, GB/GiB (k, M, G
// alone mean the binary unit, as Fluent Bit reads them); case-insensitive; optional space.
std::optional<uint64_t> parseSize(std::string_view text);
// Milliseconds. Accepts "250ms", "10s", "5m", "2h", "1h30m", "1.5s", "0" (units required
// except for 0).
std::optional<int64_t> parseDurationMs(std::string_view text);

std::string formatSize(uint64_t bytes);
std::string formatDurationMs(int64_t ms);

}  // namespace ferry
