// HekaTcpSession: read → split → verify → route. The idle timeout and the shutdown drain
// are TcpSession's.
#include "src/heka/heka_session.h"

#include <spdlog/spdlog.h>

#include "src/heka/heka_input.h"

namespace ferry::heka {

HekaTcpSession::HekaTcpSession(TcpInput& input)
    : TcpSession(input.listener(),
                 [this](const char* why) {
                   spdlog::warn("[{}] closing connection: {}", input_.ingest().name(), why);
                   close();
                 }),
      input_(input),
      splitter_(input.ingest().maxMessageSize()) {}

void HekaTcpSession::start() {
  input_.setKeepAlive(handle());
  startReading();
}

void HekaTcpSession::onBytes(const char* data, size_t n) {
  HekaIngest& ingest = input_.ingest();
  ingest.countBytes(n);
  resetIdle();
  const size_t before = splitter_.buffered() + n;
  splitter_.append(data, n);
  ingest.consume(splitter_);
  if (closing()) return;
  flow_.afterRead(splitter_.buffered(), splitter_.buffered() < before);
}

void HekaTcpSession::onClose() {
  // Heka's splitter drops an incomplete final record too (deliver_incomplete_final is
  // meaningless for framed protobuf: a partial body cannot decode).
  input_.ingest().discard(splitter_);
}

}  // namespace ferry::heka
