// Local outputs: StdoutOutput (Fluentd's stdout shape), FileOutput (JSON lines, reopened
// on SIGUSR1) and NullOutput (counts and discards, for benchmarks).
#pragma once

#include <cstdint>
#include <string>

#include "src/batch.h"
#include "src/plugin.h"

namespace ferry {

PluginType stdoutOutputType();
PluginType fileOutputType();
PluginType nullOutputType();

// `2023-11-14 22:13:20.123456789 +0000` in local time (Fluentd's stdout time format).
void appendLocalTime(std::string& out, int64_t time_ns);
// `2023-11-14T22:13:20.123456789Z` (RFC 3339, UTC, always 9 fraction digits).
void appendUtcTime(std::string& out, int64_t time_ns);

// One event as Fluentd's stdout output prints it: `<time> <tag>: <record JSON>\n`.
void formatStdoutLine(std::string& out, const Batch& batch, const Event& event);
// One event as a FileOutput line: {"tag":..,"time":..,"record":{..}}\n
void formatJsonLine(std::string& out, const Batch& batch, const Event& event);

}  // namespace ferry
