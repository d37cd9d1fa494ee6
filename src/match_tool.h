// `ferryd --match EXPR FILE`: test a matcher against recorded events, as heka-cat -match
// did. FILE holds forward requests (msgpack or JSON) or a Heka stream (framed protobuf);
// matching events are printed one JSON object per line.
#pragma once

#include <string>

namespace ferry {

// Returns the process exit code: 0 when the file was read (whatever matched), 1 on a bad
// expression or an unreadable file, 2 when the file held bytes that could not be parsed.
int runMatchTool(const std::string& expr, const std::string& path);

}  // namespace ferry
