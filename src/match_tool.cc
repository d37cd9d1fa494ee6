// The --match tool: one matcher, one file, both protocols through the same MessageView.
#include "src/match_tool.h"

#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>

#include "src/event_view.h"
#include "src/forward/forward_decoder.h"
#include "src/heka/heka_framing.h"
#include "src/heka/heka_message_view.h"
#include "src/local_outputs.h"
#include "src/matcher.h"

namespace ferry {

int runMatchTool(const std::string& expr, const std::string& path) {
  std::string error;
  auto matcher = Matcher::compile(expr, error);
  if (!matcher) {
    std::fprintf(stderr, "ferryd: invalid matcher: %s\n", error.c_str());
    return 1;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "ferryd: cannot read %s\n", path.c_str());
    return 1;
  }
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t seen = 0, matched = 0;
  int rc = 0;
  if (!data.empty() && static_cast<uint8_t>(data[0]) == heka::kRecordSeparator) {
    heka::HekaFramingSplitter splitter;
    splitter.append(data.data(), data.size());
    std::string header, body;
    while (splitter.next(header, body)) {
      message::Message m;
      if (!heka::parseHekaMessage(body, m)) {
        rc = 2;
        continue;
      }
      ++seen;
      if (matcher->matches(heka::HekaMessageView(m))) {
        ++matched;
        std::printf("%s\n", heka::hekaMessageJson(m).c_str());
      }
    }
    if (splitter.skippedBytes()) {
      std::fprintf(stderr, "ferryd: skipped %llu bytes that were not Heka records\n",
                   static_cast<unsigned long long>(splitter.skippedBytes()));
    }
  } else {
    forward::Limits limits;
    forward::FrameSplitter splitter(limits);
    splitter.append(data.data(), data.size());
    std::string frame;
    for (;;) {
      Status st = splitter.next(frame);
      if (st.code == StatusCode::NeedMore) break;
      if (st.code != StatusCode::Ok) {
        std::fprintf(stderr, "ferryd: %s\n", st.message.c_str());
        rc = 2;
        break;
      }
      forward::DecodedFrame df;
      decodeFrame(std::make_shared<const std::string>(std::move(frame)), limits, 0, df);
      frame.clear();
      if (!df.batch) continue;
      const Batch& b = *df.batch;
      const bool constant = matcher->readsOnlyType();
      const bool batch_match = constant && matcher->matches(TagOnlyView(b.tag));
      for (const Event& e : b.events) {
        ++seen;
        if (constant ? batch_match : matcher->matches(FluentEventView(b, e))) {
          ++matched;
          std::string line;
          formatJsonLine(line, b.tag, e.time_ns, b.record(e));
          std::fputs(line.c_str(), stdout);
        }
      }
    }
  }
  std::fprintf(stderr, "ferryd: %llu of %llu events matched\n",
               static_cast<unsigned long long>(matched), static_cast<unsigned long long>(seen));
  return rc;
}

}  // namespace ferry
