// libFuzzer target for everything a forward client's bytes reach: the stream splitter
// (msgpack and JSON modes), request decoding of every mode, gzip, and the JSON rendering
// of decoded records. Built with -DFERRY_FUZZ=ON (clang).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "src/forward/forward_decoder.h"
#include "src/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  ferry::forward::Limits limits;
  limits.max_frame_size = 1 << 20;
  limits.max_decompressed_size = 1 << 20;
  limits.max_entries = 10000;
  limits.max_depth = 64;
  ferry::forward::FrameSplitter splitter(limits);
  // Feed in two pieces, split where the first byte says, so partial-frame paths run too.
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const char* bytes = reinterpret_cast<const char*>(data);
  std::string frame;
  for (int piece = 0; piece < 2; ++piece) {
    if (piece == 0) {
      splitter.append(bytes, cut);
    } else {
      splitter.append(bytes + cut, size - cut);
    }
    for (int guard = 0; guard < 100000; ++guard) {
      ferry::Status st = splitter.next(frame);
      if (st.code != ferry::StatusCode::Ok) {
        if (st.code == ferry::StatusCode::CloseStream) return 0;
        break;
      }
      ferry::forward::DecodedFrame df;
      auto shared = std::make_shared<const std::string>(std::move(frame));
      frame.clear();
      ferry::forward::decodeFrame(shared, limits, 1, df);
      if (!df.batch) continue;
      std::string out;
      for (const auto& e : df.batch->events) {
        const auto rec = df.batch->record(e);
        ferry::json::appendMsgpack(out, reinterpret_cast<const uint8_t*>(rec.data()), rec.size());
      }
    }
  }
  return 0;
}
