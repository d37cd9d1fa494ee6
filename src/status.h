// Status codes for the data path: no exceptions there. A decode error says whether the
// stream can continue (skip this frame or entry) or the connection must close.
#pragma once

#include <string>
#include <utility>

namespace ferry {

enum class StatusCode {
  Ok,
  NeedMore,     // incomplete input: wait for more bytes
  SkipFrame,    // this frame is bad or over a limit; the stream is still in sync
  CloseStream,  // framing lost or a hard limit crossed: close the connection
};

struct Status {
  StatusCode code = StatusCode::Ok;
  std::string message;

  static Status ok() { return {}; }
  static Status needMore() { return {StatusCode::NeedMore, {}}; }
  static Status skip(std::string m) { return {StatusCode::SkipFrame, std::move(m)}; }
  static Status close(std::string m) { return {StatusCode::CloseStream, std::move(m)}; }
  bool isOk() const { return code == StatusCode::Ok; }
};

}  // namespace ferry
