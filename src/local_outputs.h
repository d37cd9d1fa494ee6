// Local outputs: StdoutOutput (Fluentd's stdout shape), FileOutput (JSON lines, reopened
// on SIGUSR1) and NullOutput (counts and discards, for benchmarks).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "src/batch.h"
#include "src/bridge.h"
#include "src/plugin.h"

namespace ferry {

PluginType stdoutOutputType();
PluginType fileOutputType();
PluginType nullOutputType();

// The options of an output that prints Heka messages as Fluentd events: default_tag, tag.
std::vector<OptionSpec> hekaTagOptionSpecs();
std::vector<OptionSpec> withHekaTagOptions(std::vector<OptionSpec> specs);

// `2023-11-14 22:13:20.123456789 +0000` in local time (Fluentd's stdout time format).
void appendLocalTime(std::string& out, int64_t time_ns);
// `2023-11-14T22:13:20.123456789Z` (RFC 3339, UTC, always 9 fraction digits).
void appendUtcTime(std::string& out, int64_t time_ns);

// One event as Fluentd's stdout output prints it: `<time> <tag>: <record JSON>\n`.
// `record` is a msgpack map.
void formatStdoutLine(std::string& out, std::string_view tag, int64_t time_ns,
                      std::string_view record);
// One event as a FileOutput line: {"tag":..,"time":..,"record":{..}}\n
void formatJsonLine(std::string& out, std::string_view tag, int64_t time_ns,
                    std::string_view record);

// Calls `emit(tag, time_ns, record_msgpack)` for each event of `batch` as a Fluentd event:
// a Fluentd batch as it is, a Heka batch through the bridge (bridge.md) with `tags`.
// Heka bodies that are not protobuf are skipped (inputs validate them first).
void forEachAsFluent(const Batch& batch, const HekaTagOptions& tags,
                     const std::function<void(std::string_view, int64_t, std::string_view)>& emit);

}  // namespace ferry
