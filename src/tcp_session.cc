// TcpSession and TcpListener: the handle pair and its close sequence, idle and drain
// handling, and the accept loop, for every TCP input.
#include "src/tcp_session.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/stats.h"
#include "src/uv_util.h"

namespace ferry {
namespace {
// One read takes at most this much; a whole default-size record fits in one read.
constexpr size_t kReadSize = 64 * 1024;

void closeAndDelete(uv_tcp_t* tcp) {
  uv_close(reinterpret_cast<uv_handle_t*>(tcp),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}
}  // namespace

// ---------------------------------------------------------------------------------------
// TcpSession

TcpSession::TcpSession(TcpListener& listener, std::function<void(const char* why)> expire)
    : flow_(listener.settings().loop, reinterpret_cast<uv_stream_t*>(&tcp_), &TcpSession::onAlloc,
            &TcpSession::onRead, listener.settings().limits, listener.settings().flow_counters,
            std::move(expire)),
      listener_(listener) {
  uv_tcp_init(listener.settings().loop, &tcp_);
  uv_timer_init(listener.settings().loop, &idle_);
  tcp_.data = this;
  idle_.data = this;
  open_handles_ = 2;
}

const std::string& TcpSession::inputName() const {
  return listener_.settings().name;
}

void TcpSession::startReading() {
  read_buf_.resize(kReadSize);
  // Starts paused when a fanout is active (a connection accepted under pressure).
  flow_.start(listener_.settings().flow);
  resetIdle();
}

void TcpSession::resetIdle() {
  const int64_t ms = listener_.settings().idle_timeout_ms;
  if (ms > 0 && !closing_) {
    uv_timer_start(&idle_, &TcpSession::onIdle, static_cast<uint64_t>(ms), 0);
  }
}

void TcpSession::onIdle(uv_timer_t* t) {
  auto* self = static_cast<TcpSession*>(t->data);
  if (self->flow_.paused()) {
    // We stopped reading it: the silence is ours, and pressure never closes a connection.
    self->resetIdle();
    return;
  }
  if (!self->idleExpired()) return;
  self->listener_.settings().idle_closed->inc();
  spdlog::debug("[{}] closing idle connection", self->inputName());
  self->close();
}

void TcpSession::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<TcpSession*>(h->data);
  buf->base = self->read_buf_.data();
  buf->len = self->read_buf_.size();
}

void TcpSession::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<TcpSession*>(s->data);
  if (nread > 0) {
    self->onBytes(buf->base, static_cast<size_t>(nread));
    if (!self->closing_ && self->draining_) self->checkDrained();
    return;
  }
  if (nread == 0) return;
  if (nread != UV_EOF) {
    if (Counter* c = self->listener_.settings().read_errors) c->inc();
    spdlog::debug("[{}] read error: {}", self->inputName(), uv_strerror(static_cast<int>(nread)));
    self->close();
    return;
  }
  // EOF: the client may still wait for replies on its read side (half-close).
  self->closeAfterWrites();
}

void TcpSession::beginDrain() {
  draining_ = true;
  checkDrained();
}

void TcpSession::checkDrained() {
  if (drained_) return;
  if (closing_ || !hasUnreadBytes(&tcp_)) {
    // Everything the client sent before the stop has been read and routed.
    drained_ = true;
    if (!closing_) flow_.stop();
    listener_.onSessionDrained();
  }
}

void TcpSession::close() {
  if (closing_) return;
  closing_ = true;
  onClose();
  flow_.close();
  uv_timer_stop(&idle_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &TcpSession::onClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&idle_), &TcpSession::onClosed);
}

void TcpSession::onClosed(uv_handle_t* h) {
  auto* self = static_cast<TcpSession*>(h->data);
  if (--self->open_handles_ == 0) {
    // Last handle closed: nothing in libuv refers to us any more.
    self->listener_.onSessionClosed(self);
  }
}

// ---------------------------------------------------------------------------------------
// TcpListener

TcpListener::TcpListener(TcpListenerSettings settings, std::function<TcpSession*()> make)
    : settings_(std::move(settings)),
      make_(std::move(make)),
      gate_(
          settings_.name, settings_.max_connections, settings_.flow_counters.accept_paused,
          [this] { return sessions_.size(); }, [this] { acceptOne(); }) {}

void TcpListener::listen(const sockaddr* addr, unsigned flags, const std::string& address) {
  tcp_ = new uv_tcp_t;
  uv_tcp_init(settings_.loop, tcp_);
  tcp_->data = this;
  int rc = uv_tcp_bind(tcp_, addr, flags);
  if (rc == 0)
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(tcp_), 511, &TcpListener::onConnection);
  if (rc != 0) {
    closeAndDelete(tcp_);
    tcp_ = nullptr;
    throw std::runtime_error(
        fmt::format("[{}] cannot listen on {}: {}", settings_.name, address, uv_strerror(rc)));
  }
  gate_.join(settings_.flow);
}

void TcpListener::onConnection(uv_stream_t* server, int status) {
  auto* self = static_cast<TcpListener*>(server->data);
  if (status < 0) {
    spdlog::warn("[{}] accept failed: {}", self->settings_.name, uv_strerror(status));
    return;
  }
  self->gate_.onConnection(self->settings_.loop);
}

void TcpListener::acceptOne() {
  TcpSession* s = make_();
  sessions_.insert(s);
  if (uv_accept(reinterpret_cast<uv_stream_t*>(tcp_),
                reinterpret_cast<uv_stream_t*>(s->handle())) != 0) {
    settings_.rejected->inc();
    s->close();
    return;
  }
  settings_.accepted->inc();
  s->start();
}

void TcpListener::stopAccepting() {
  gate_.stop();
  if (tcp_) {
    closeAndDelete(tcp_);
    tcp_ = nullptr;
  }
}

void TcpListener::drain(std::function<void()> done) {
  drain_done_ = std::move(done);
  std::vector<TcpSession*> all(sessions_.begin(), sessions_.end());
  for (TcpSession* s : all) {
    if (!s->closing()) s->beginDrain();
  }
  onSessionDrained();
}

void TcpListener::onSessionDrained() {
  if (!drain_done_) return;
  for (TcpSession* s : sessions_) {
    if (!s->closing() && !s->drained()) return;
  }
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  done();
}

void TcpListener::closeAll() {
  std::vector<TcpSession*> all(sessions_.begin(), sessions_.end());
  for (TcpSession* s : all)
    s->closeAfterWrites();
}

void TcpListener::onSessionClosed(TcpSession* s) {
  sessions_.erase(s);
  delete s;
  if (tcp_) gate_.retry();
  onSessionDrained();
}

}  // namespace ferry
