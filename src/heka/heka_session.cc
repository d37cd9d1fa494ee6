// HekaTcpSession: read → split → verify → route, the idle timeout, and the shutdown drain
// that reads what the kernel already holds before the connection closes.
#include "src/heka/heka_session.h"
#include "src/uv_util.h"

#include <spdlog/spdlog.h>

#include "src/heka/heka_input.h"
#include "src/stats.h"

namespace ferry::heka {
namespace {
// One read takes at most this much; a whole default-size record fits in one read.
constexpr size_t kReadSize = 64 * 1024;
}  // namespace

HekaTcpSession::HekaTcpSession(TcpInput& input, uv_loop_t* loop)
    : input_(input),
      splitter_(input.ingest().maxMessageSize()),
      flow_(loop, reinterpret_cast<uv_stream_t*>(&tcp_), &HekaTcpSession::onAlloc,
            &HekaTcpSession::onRead, input.sessionLimits(), input.flowCounters(),
            [this](const char* why) {
              spdlog::warn("[{}] closing connection: {}", input_.ingest().name(), why);
              close();
            }) {
  uv_tcp_init(loop, &tcp_);
  uv_timer_init(loop, &idle_);
  tcp_.data = this;
  idle_.data = this;
  open_handles_ = 2;
}

void HekaTcpSession::start() {
  read_buf_.resize(kReadSize);
  // Starts paused when a fanout is active (a connection accepted under pressure).
  flow_.start(input_.flow());
  resetIdle();
}

void HekaTcpSession::resetIdle() {
  if (input_.idleTimeoutMs() > 0 && !closing_) {
    uv_timer_start(&idle_, &HekaTcpSession::onIdle, static_cast<uint64_t>(input_.idleTimeoutMs()),
                   0);
  }
}

void HekaTcpSession::onIdle(uv_timer_t* t) {
  auto* self = static_cast<HekaTcpSession*>(t->data);
  if (self->flow_.paused()) {
    // We stopped reading it: the silence is ours, and pressure never closes a connection.
    self->resetIdle();
    return;
  }
  self->input_.idleClosed().inc();
  spdlog::debug("[{}] closing idle connection", self->input_.ingest().name());
  self->close();
}

void HekaTcpSession::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<HekaTcpSession*>(h->data);
  buf->base = self->read_buf_.data();
  buf->len = self->read_buf_.size();
}

void HekaTcpSession::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<HekaTcpSession*>(s->data);
  if (nread > 0) {
    HekaIngest& ingest = self->input_.ingest();
    ingest.countBytes(static_cast<uint64_t>(nread));
    self->resetIdle();
    const size_t before = self->splitter_.buffered() + static_cast<size_t>(nread);
    self->splitter_.append(buf->base, static_cast<size_t>(nread));
    ingest.consume(self->splitter_);
    if (self->closing_) return;
    self->flow_.afterRead(self->splitter_.buffered(), self->splitter_.buffered() < before);
    if (!self->closing_ && self->draining_) self->checkDrained();
    return;
  }
  if (nread == 0) return;
  if (nread != UV_EOF) {
    self->input_.closedOnError().inc();
    spdlog::debug("[{}] read error: {}", self->input_.ingest().name(),
                  uv_strerror(static_cast<int>(nread)));
  }
  self->close();
}

void HekaTcpSession::beginDrain() {
  draining_ = true;
  checkDrained();
}

void HekaTcpSession::checkDrained() {
  if (drained_) return;
  if (closing_ || !hasUnreadBytes(&tcp_)) {
    // Everything the client sent before the stop has been read and routed.
    drained_ = true;
    if (!closing_) flow_.stop();
    input_.onSessionDrained();
  }
}

void HekaTcpSession::close() {
  if (closing_) return;
  closing_ = true;
  // Heka's splitter drops an incomplete final record too (deliver_incomplete_final is
  // meaningless for framed protobuf: a partial body cannot decode).
  input_.ingest().discard(splitter_);
  flow_.close();
  uv_timer_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &HekaTcpSession::onClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), &HekaTcpSession::onClosed);
}

void HekaTcpSession::onClosed(uv_handle_t* h) {
  auto* self = static_cast<HekaTcpSession*>(h->data);
  if (--self->open_handles_ == 0) {
    // Last handle closed: nothing in libuv refers to us any more.
    self->input_.onSessionClosed(self);
  }
}

}  // namespace ferry::heka
