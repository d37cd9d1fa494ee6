// ForwardSession: read → split → decode → route, and ordered acks; with security, the
// handshake first (HELO on accept, one PING, then PONG) under a deadline.
#include "src/forward/forward_session.h"

#include <ctime>
#include <exception>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/forward/forward_input.h"
#include "src/json.h"
#include "src/msgpack_writer.h"
#include "src/router.h"
#include "src/stats.h"

namespace ferry::forward {
namespace {

int64_t nowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return ts.tv_sec * 1'000'000'000LL + ts.tv_nsec;
}

struct WriteReq {
  uv_write_t req;
  std::string data;
  ForwardSession* session;
  size_t acks = 0;
};

}  // namespace

ForwardSession::ForwardSession(ForwardInput& input)
    : TcpSession(input.listener(),
                 [this](const char* why) {
                   spdlog::warn("[{}] closing connection from {}: {}", input_.name(), peerAddress(),
                                why);
                   close();
                 }),
      input_(input),
      splitter_(input.limits()),
      acks_(std::make_shared<AckQueue>()) {
  acks_->session = this;
}

ForwardSession::~ForwardSession() {
  acks_->session = nullptr;
}

void ForwardSession::start() {
  uv_tcp_nodelay(&tcp_, 1);
  if (input_.security()) {
    try {
      handshake_.emplace(input_.security());
    } catch (const std::exception& e) {
      // No random nonce, no handshake: refuse the connection rather than weaken it.
      spdlog::error("[{}] cannot start the handshake: {}", input_.name(), e.what());
      close();
      return;
    }
    // The server speaks first; the client answers the HELO with its PING.
    writeBytes(handshake_->heloMessage(), 0);
    if (closing()) return;
  }
  // During the handshake the idle timer is its deadline: reads do not extend it (see
  // onBytes).
  startReading();
}

bool ForwardSession::idleExpired() {
  if (handshake_) {
    // Unauthenticated peers get idle_timeout in total, however they trickle bytes.
    input_.counters().handshake_timeouts->inc();
    spdlog::warn("[{}] closing connection from {}: no valid PING within idle_timeout",
                 input_.name(), peerAddress());
    close();
    return false;
  }
  if (!acks_->slots.empty() || writes_in_flight_ > 0) {
    // The client is waiting for acks, not idle: closing now would make it resend.
    resetIdle();
    return false;
  }
  return true;
}

void ForwardSession::onBytes(const char* data, size_t n) {
  input_.counters().bytes->inc(n);
  if (!handshake_) resetIdle();
  const size_t before = splitter_.buffered() + n;
  splitter_.append(data, n);
  in_read_ = true;
  processFrames();
  in_read_ = false;
  sendAcks();
  if (!closing()) flow_.afterRead(splitter_.buffered(), splitter_.buffered() < before);
}

uint64_t ForwardSession::unreadBytes() {
  return ack_out_.size() + uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(&tcp_));
}

void ForwardSession::processFrames() {
  while (!closing()) {
    Status st = splitter_.next(frame_);
    if (handshake_ && splitter_.isJson()) {
      // The handshake is msgpack only (SPEC-v1): a JSON client cannot authenticate.
      failHandshake(input_.counters().handshake_errors, "a JSON connection cannot authenticate",
                    "");
      return;
    }
    if (st.code == StatusCode::NeedMore) {
      if (handshake_ && splitter_.buffered() > handshake::kMaxMessageSize) {
        failHandshake(input_.counters().handshake_errors,
                      fmt::format("more than {} bytes before a PING", handshake::kMaxMessageSize),
                      handshake::failurePong(handshake::kReasonInvalidPing));
      }
      return;
    }
    if (st.code == StatusCode::CloseStream) {
      auto& c = input_.counters();
      if (st.message.find("max_frame_size") != std::string::npos) {
        c.frames_too_large->inc();
      } else {
        c.parse_errors->inc();
      }
      c.connections_closed_on_error->inc();
      spdlog::warn("[{}] closing connection: {}", input_.name(), st.message);
      sendAcks();  // acks already owed for the good requests before the bad bytes
      close();
      return;
    }
    if (handshake_) {
      if (!handleHandshakeFrame(frame_)) return;
      frame_.clear();
      continue;
    }
    if (splitter_.isJson() && !json_counted_) {
      json_counted_ = true;
      input_.counters().json_connections->inc();
    }
    handleFrame(std::move(frame_));
    frame_.clear();
  }
}

void ForwardSession::handleFrame(std::string&& frame) {
  auto& c = input_.counters();
  c.frames->inc();
  auto bytes = std::make_shared<const std::string>(std::move(frame));
  DecodedFrame df;
  Status st = decodeFrame(bytes, input_.limits(), nowNs(), df);
  if (st.code == StatusCode::SkipFrame) {
    c.frames_skipped->inc();
    switch (df.skip) {
      case SkipReason::TagTooLong:
        c.frames_tag_too_long->inc();
        break;
      case SkipReason::TooManyEntries:
        c.frames_too_many_entries->inc();
        break;
      case SkipReason::DecompressedTooLarge:
        c.frames_decompressed_too_large->inc();
        break;
      case SkipReason::BadCompression:
        c.frames_bad_compression->inc();
        break;
      default:
        break;
    }
    spdlog::warn("[{}] skipped a request: {}", input_.name(), st.message);
    return;
  }
  if (df.heartbeat) {
    c.heartbeats_tcp->inc();
    return;
  }
  if (df.ignored_root) {
    c.ignored_roots->inc();
    return;
  }
  if (df.invalid_entries) c.invalid_entries->inc(df.invalid_entries);

  std::shared_ptr<Delivery> delivery;
  if (df.chunk) {
    const uint64_t seq = acks_->next_seq++;
    acks_->slots.push_back(AckQueue::Slot{seq, std::move(*df.chunk)});
    delivery = std::make_shared<Delivery>([q = acks_, seq](bool ok) {
      if (q->slots.empty()) return;
      const uint64_t index = seq - q->slots.front().seq;
      if (index >= q->slots.size()) return;
      q->slots[index].state = ok ? AckQueue::Slot::State::Ok : AckQueue::Slot::State::Failed;
      if (q->session) q->session->flushAcks();
    });
  }
  // The session holds one share while routing, so the ack cannot fire before every
  // matched output has been handed its share.
  AckShare hold(delivery);
  if (df.batch && !df.batch->events.empty()) {
    df.batch->source = input_.source();
    c.batches->inc();
    c.events->inc(df.batch->events.size());
    input_.router().route(df.batch, delivery);
  }
  hold.accept();
}

bool ForwardSession::handleHandshakeFrame(const std::string& frame) {
  auto& c = input_.counters();
  if (frame.size() > handshake::kMaxMessageSize) {
    failHandshake(c.handshake_errors, fmt::format("a {}-byte request before a PING", frame.size()),
                  handshake::failurePong(handshake::kReasonInvalidPing));
    return false;
  }
  const std::string peer = peerAddress();
  const handshake::PingVerdict v = handshake_->verifyPing(frame, false, peer);
  if (!v.ok) {
    // A request that is not a PING is a protocol error; a PING that does not match is
    // an authentication failure (what an operator watches for).
    Counter* counter =
        v.reason == handshake::kReasonInvalidPing ? c.handshake_errors : c.auth_failures;
    failHandshake(counter,
                  v.client_hostname.empty() ? v.reason
                                            : fmt::format("{} (hostname \"{}\", username \"{}\")",
                                                          v.reason, v.client_hostname, v.username),
                  v.pong);
    return false;
  }
  handshake_.reset();
  c.handshakes->inc();
  spdlog::debug("[{}] handshake done with {} (hostname \"{}\")", input_.name(), peer,
                v.client_hostname);
  writeBytes(v.pong, 0);
  if (closing()) return false;
  resetIdle();  // from here on, the ordinary idle timeout
  return true;
}

void ForwardSession::failHandshake(Counter* counter, const std::string& why,
                                   const std::string& pong) {
  counter->inc();
  spdlog::warn("[{}] handshake failed from {}: {}", input_.name(), peerAddress(), why);
  // Fluentd's behaviour: the failure PONG, then close once it is written.
  if (!pong.empty()) writeBytes(pong, 0);
  closeAfterWrites();
}

std::string ForwardSession::peerAddress() {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(&tcp_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return "?";
  char host[64] = {0};
  if (addr.ss_family == AF_INET6) {
    const auto* a6 = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a6, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(a6->sin6_port));
  }
  const auto* a4 = reinterpret_cast<const sockaddr_in*>(&addr);
  uv_ip4_name(a4, host, sizeof(host));
  return fmt::format("{}:{}", host, ntohs(a4->sin_port));
}

void ForwardSession::flushAcks() {
  auto& q = *acks_;
  while (!q.slots.empty() && q.slots.front().state != AckQueue::Slot::State::Pending) {
    if (q.slots.front().state == AckQueue::Slot::State::Ok) {
      writeAck(q.slots.front().chunk);
    } else {
      // An output failed to take the chunk: no ack, so the client retries it.
      input_.counters().acks_withheld->inc();
    }
    q.slots.pop_front();
  }
  if (close_after_writes_ && q.slots.empty() && writes_in_flight_ == 0 && ack_out_.empty()) {
    close();
  }
}

void ForwardSession::writeAck(const std::string& chunk) {
  if (closing()) return;
  if (splitter_.isJson()) {
    ack_out_ += "{\"ack\":";
    json::appendString(ack_out_, chunk);
    ack_out_ += "}";
  } else {
    mp::Writer mw(ack_out_);
    mw.mapHeader(1);
    mw.str("ack");
    mw.str(chunk);
  }
  ++acks_buffered_;
  // Acks that become ready while a read is being processed go out in one write at its
  // end (one syscall per read, not per request); others go out at once.
  if (!in_read_) sendAcks();
}

void ForwardSession::sendAcks() {
  if (ack_out_.empty() || closing()) return;
  std::string data;
  data.swap(ack_out_);
  const size_t acks = acks_buffered_;
  acks_buffered_ = 0;
  writeBytes(std::move(data), acks);
}

void ForwardSession::writeBytes(std::string data, size_t acks) {
  if (closing()) return;
  auto* w = new WriteReq{};
  w->session = this;
  w->data = std::move(data);
  w->acks = acks;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  w->req.data = w;
  ++writes_in_flight_;
  const int rc = uv_write(
      &w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1, [](uv_write_t* req, int status) {
        auto* w = static_cast<WriteReq*>(req->data);
        ForwardSession* s = w->session;
        const size_t acks = w->acks;
        delete w;
        --s->writes_in_flight_;
        if (status < 0) {
          s->close();
          return;
        }
        if (acks > 0) s->input_.counters().acks_sent->inc(acks);
        s->flow_.ackQueue(s->unreadBytes());
        if (s->close_after_writes_ && s->acks_->slots.empty() && s->writes_in_flight_ == 0) {
          s->close();
        }
      });
  if (rc < 0) {
    --writes_in_flight_;
    delete w;
    close();
    return;
  }
  flow_.ackQueue(unreadBytes());
}

void ForwardSession::closeAfterWrites() {
  if (closing()) return;
  close_after_writes_ = true;
  flow_.stop();
  if (acks_->slots.empty() && writes_in_flight_ == 0) close();
}

void ForwardSession::onClose() {
  acks_->session = nullptr;
}

}  // namespace ferry::forward
