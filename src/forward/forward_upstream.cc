// Nodes, data connections and load balancing for ForwardOutput. A connection carries up
// to `window` chunks awaiting acks and is dropped on the first sign it is out of step
// (timeout, mismatched ack, a reply that is not an ack), handing its chunks back to the
// output, which alone decides when (backoff) and where (load balancer) they go again.
#include "src/forward/forward_upstream.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <set>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/forward/forward_handshake.h"
#include "src/msgpack_reader.h"
#include "src/stats.h"

namespace ferry::forward {

// ---------------------------------------------------------------------------------------
// Config

namespace {

bool parseUnsigned(const std::string& s, uint64_t max, uint64_t& out) {
  if (s.empty() || s.size() > 12) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > max) return false;
  out = v;
  return true;
}

}  // namespace

std::vector<ServerSpec> parseServers(const PluginConfig& cfg) {
  const OptionValue& v = cfg.get("servers");
  if (!v.is_set || v.tables.empty()) {
    cfg.fail("servers",
             "at least one server is required, e.g. servers = [{host = \"127.0.0.1\", "
             "port = 24224}]");
  }
  static const std::set<std::string> kKeys = {"host", "port",       "weight",   "standby",
                                              "name", "shared_key", "username", "password"};
  std::vector<ServerSpec> out;
  std::set<std::string> names;
  for (size_t i = 0; i < v.tables.size(); ++i) {
    const auto& t = v.tables[i];
    const int line = i < v.table_lines.size() ? v.table_lines[i] : v.line;
    auto fail = [&](const std::string& key, const std::string& what) {
      throw ConfigError(cfg.file, line, fmt::format("{}.servers[{}].{}", cfg.name, i, key), what);
    };
    for (const auto& [k, val] : t) {
      if (!kKeys.count(k)) {
        fail(k,
             "unknown server key; known: host, port, weight, standby, name, shared_key, "
             "username, password");
      }
    }
    ServerSpec s;
    auto it = t.find("host");
    if (it == t.end() || it->second.empty()) fail("host", "required: a host name or IP address");
    s.host = it->second;
    uint64_t n = 0;
    if ((it = t.find("port")) != t.end()) {
      if (!parseUnsigned(it->second, 65535, n) || n == 0)
        fail("port", "expected a port number 1..65535, got \"" + it->second + "\"");
      s.port = static_cast<int>(n);
    }
    if ((it = t.find("weight")) != t.end()) {
      // Bounded so the weight array (weight/gcd entries per node) stays small.
      if (!parseUnsigned(it->second, 1000, n))
        fail("weight", "expected an integer 0..1000, got \"" + it->second + "\"");
      s.weight = static_cast<uint32_t>(n);
    }
    if ((it = t.find("standby")) != t.end()) {
      if (it->second != "true" && it->second != "false")
        fail("standby", "expected true or false, got \"" + it->second + "\"");
      s.standby = it->second == "true";
    }
    if ((it = t.find("shared_key")) != t.end()) s.shared_key = it->second;
    if ((it = t.find("username")) != t.end()) s.username = it->second;
    if ((it = t.find("password")) != t.end()) s.password = it->second;
    if ((!s.username.empty() || !s.password.empty()) && s.shared_key.empty()) {
      fail(s.username.empty() ? "password" : "username",
           "username/password authentication is part of the shared-key handshake: set "
           "shared_key for this server too");
    }
    const bool v6 = s.host.find(':') != std::string::npos;
    s.name = v6 ? fmt::format("[{}]:{}", s.host, s.port) : fmt::format("{}:{}", s.host, s.port);
    if ((it = t.find("name")) != t.end()) {
      if (it->second.empty()) fail("name", "must not be empty");
      s.name = it->second;
    }
    if (!names.insert(s.name).second) {
      fail(t.count("name") ? "name" : "host",
           "two servers are named \"" + s.name + "\"; give them distinct `name`s");
    }
    out.push_back(std::move(s));
  }
  bool any_regular = false;
  for (const auto& s : out)
    any_regular = any_regular || (!s.standby && s.weight > 0);
  if (!any_regular)
    cfg.fail("servers",
             "no server would get traffic: at least one needs standby = false and "
             "a weight above 0");
  return out;
}

// ---------------------------------------------------------------------------------------
// Load balancing

std::vector<size_t> buildWeightArray(const std::vector<NodeWeight>& nodes, std::mt19937_64& rng) {
  std::vector<size_t> chosen;
  uint64_t lost = 0;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const NodeWeight& n = nodes[i];
    if (n.standby || n.weight == 0) continue;
    if (n.available) {
      chosen.push_back(i);
    } else {
      lost += n.weight;
    }
  }
  // Standby nodes stand in for lost weight only, so while every regular node is healthy
  // they get nothing (Fluentd's rule).
  uint64_t covered = 0;
  for (size_t i = 0; i < nodes.size() && covered < lost; ++i) {
    const NodeWeight& n = nodes[i];
    if (!n.standby || n.weight == 0 || !n.available) continue;
    chosen.push_back(i);
    covered += n.weight;
  }
  if (chosen.empty()) return {};
  uint32_t g = 0;
  for (size_t i : chosen)
    g = std::gcd(g, nodes[i].weight);
  std::vector<size_t> cycle;
  for (size_t i : chosen) {
    for (uint32_t k = 0; k < nodes[i].weight / g; ++k)
      cycle.push_back(i);
  }
  std::vector<size_t> out;
  do {
    out.insert(out.end(), cycle.begin(), cycle.end());
  } while (out.size() < 6 * chosen.size());
  std::shuffle(out.begin(), out.end(), rng);
  return out;
}

void LoadBalancer::rebuild(const std::vector<NodeWeight>& nodes) {
  order_ = buildWeightArray(nodes, rng_);
  cursor_ = 0;
}

std::optional<size_t> LoadBalancer::peek() const {
  if (order_.empty()) return std::nullopt;
  return order_[cursor_ % order_.size()];
}

void LoadBalancer::advance() {
  if (!order_.empty()) cursor_ = (cursor_ + 1) % order_.size();
}

const char* failureName(Failure f) {
  switch (f) {
    case Failure::ConnectFailed:
      return "connect failed";
    case Failure::Handshake:
      return "handshake failed";
    case Failure::ConnectionLost:
      return "connection lost";
    case Failure::SendTimeout:
      return "send timeout";
    case Failure::AckTimeout:
      return "ack timeout";
    case Failure::AckMismatch:
      return "ack mismatch";
    case Failure::NegativeAck:
      return "negative ack";
    case Failure::NodeDown:
      return "server down";
    case Failure::NoServer:
      return "no server available";
    case Failure::Aborted:
      return "aborted";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// Connection: one TCP connection to a node carrying chunks.

class Connection {
 public:
  explicit Connection(Node& node);

  bool resolving() const { return state_ == State::Resolving; }
  bool canTake() const;
  size_t inFlight() const { return in_flight_.size(); }
  void enqueue(const ChunkPtr& chunk);
  void connectTo(const sockaddr* addr);
  // Reports `why` from the loop (a timer), never from inside the caller's call.
  void deferFail(Failure why, std::string detail);
  // Closes and hands every chunk back to the output with `why`.
  void fail(Failure why, const std::string& detail);

 private:
  enum class State { Resolving, Connecting, Handshake, Ready, Closed };
  enum class Deadline { None, Connect, Send, Ack, Idle, Deferred };

  struct ChunkWrite {
    uv_write_t req;
    Connection* conn;
    ChunkPtr chunk;
    uint64_t attempt;
  };
  struct BytesWrite {
    uv_write_t req;
    Connection* conn;
    std::string data;
  };

  static void onConnect(uv_connect_t* req, int status);
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onTimer(uv_timer_t* t);
  static void onClosed(uv_handle_t* h);

  void startReady();
  void writeChunk(const ChunkPtr& chunk);
  void writeBytes(std::string data);
  void onChunkWritten(ChunkWrite* w, int status);
  void handleHandshake();
  void handleReplies();
  void delivered(size_t index);
  void beginClose();
  void closeIfDone();
  void rearm();
  int64_t now() const { return static_cast<int64_t>(uv_now(node_.loop())); }

  Node& node_;
  const UpstreamSettings& settings_;
  uv_tcp_t tcp_;
  uv_timer_t timer_;
  uv_connect_t connect_req_;
  int open_handles_ = 0;
  State state_ = State::Resolving;
  Deadline deadline_ = Deadline::None;
  // Oldest first. Chunks are written in this order as soon as the connection is ready,
  // and servers ack in request order, so the front is the next ack expected.
  std::deque<ChunkPtr> in_flight_;
  std::deque<int64_t> write_starts_;  // start of each write not completed yet, oldest first
  bool single_use_;                   // keepalive off: one chunk, then close
  uint64_t carried_ = 0;              // chunks handed to this connection
  int64_t started_ms_;
  int64_t idle_since_ms_ = 0;
  std::string in_;  // reply bytes not consumed yet
  mp::ObjectScanner scanner_{16};
  char read_buf_[4096];
  std::unique_ptr<handshake::ClientHandshake> hs_;
  bool have_helo_ = false;
  Failure deferred_why_ = Failure::ConnectFailed;
  std::string deferred_detail_;
};

Connection::Connection(Node& node)
    : node_(node), settings_(node.settings()), single_use_(!node.settings().keepalive) {
  uv_tcp_init(node_.loop(), &tcp_);
  uv_timer_init(node_.loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  connect_req_.data = this;
  open_handles_ = 2;
  started_ms_ = now();
  rearm();
}

bool Connection::canTake() const {
  if (state_ == State::Closed) return false;
  // Until the HELO says whether the server keeps connections open, one chunk: the rest
  // of a window would be lost (and resent) if it does not.
  const bool helo_pending = !node_.spec().shared_key.empty() && state_ != State::Ready;
  if (single_use_ || helo_pending) return carried_ == 0;
  return in_flight_.size() < settings_.window;
}

void Connection::enqueue(const ChunkPtr& chunk) {
  ++chunk->attempt;
  chunk->written = false;
  ++carried_;
  in_flight_.push_back(chunk);
  if (state_ == State::Ready) writeChunk(chunk);
}

void Connection::connectTo(const sockaddr* addr) {
  if (state_ != State::Resolving) return;
  state_ = State::Connecting;
  const int rc = uv_tcp_connect(&connect_req_, &tcp_, addr, &Connection::onConnect);
  if (rc < 0) deferFail(Failure::ConnectFailed, uv_strerror(rc));
}

void Connection::deferFail(Failure why, std::string detail) {
  if (state_ == State::Closed || deadline_ == Deadline::Deferred) return;
  deferred_why_ = why;
  deferred_detail_ = std::move(detail);
  deadline_ = Deadline::Deferred;
  uv_timer_start(&timer_, &Connection::onTimer, 0, 0);
}

void Connection::onConnect(uv_connect_t* req, int status) {
  auto* self = static_cast<Connection*>(req->data);
  if (self->state_ != State::Connecting) return;  // closed meanwhile (ECANCELED)
  if (status < 0) {
    self->fail(Failure::ConnectFailed, uv_strerror(status));
    return;
  }
  self->node_.counters().connections_opened->inc();
  uv_tcp_nodelay(&self->tcp_, 1);
  // Idle keepalive connections may sit behind NATs and load balancers that forget them.
  if (!self->single_use_) uv_tcp_keepalive(&self->tcp_, 1, 60);
  uv_read_start(reinterpret_cast<uv_stream_t*>(&self->tcp_), &Connection::onAlloc,
                &Connection::onRead);
  const ServerSpec& spec = self->node_.spec();
  if (spec.shared_key.empty()) {
    self->startReady();
    return;
  }
  self->state_ = State::Handshake;
  try {
    self->hs_ = std::make_unique<handshake::ClientHandshake>(handshake::ClientOptions{
        self->settings_.self_hostname, spec.shared_key, spec.username, spec.password});
  } catch (const std::exception& e) {
    self->fail(Failure::Handshake, e.what());
    return;
  }
  self->rearm();  // the HELO and PONG must come within connect_timeout too
}

void Connection::startReady() {
  state_ = State::Ready;
  idle_since_ms_ = now();
  // Copy: a write that fails at once closes the connection and empties in_flight_.
  const std::vector<ChunkPtr> pending(in_flight_.begin(), in_flight_.end());
  for (const ChunkPtr& c : pending) {
    if (state_ != State::Ready) break;
    writeChunk(c);
  }
  if (state_ != State::Ready) return;
  rearm();
  // After a handshake the window opens (unless the HELO denied keepalive).
  if (canTake()) node_.events().onCapacity(node_);
}

void Connection::writeChunk(const ChunkPtr& chunk) {
  auto* w = new ChunkWrite{{}, this, chunk, chunk->attempt};
  w->req.data = w;
  const std::string_view payload = chunk->payload();
  uv_buf_t bufs[3] = {
      uv_buf_init(chunk->framing.prefix.data(),
                  static_cast<unsigned>(chunk->framing.prefix.size())),
      uv_buf_init(const_cast<char*>(payload.data()), static_cast<unsigned>(payload.size())),
      uv_buf_init(chunk->framing.suffix.data(),
                  static_cast<unsigned>(chunk->framing.suffix.size())),
  };
  write_starts_.push_back(now());
  NodeCounters& c = node_.counters();
  c.chunks_sent->inc();
  c.events_sent->inc(chunk->events);
  const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, 3,
                          [](uv_write_t* req, int status) {
                            auto* w = static_cast<ChunkWrite*>(req->data);
                            w->conn->onChunkWritten(w, status);
                            delete w;
                          });
  if (rc < 0) {
    write_starts_.pop_back();
    delete w;
    deferFail(Failure::ConnectionLost, uv_strerror(rc));
    return;
  }
  rearm();
}

void Connection::writeBytes(std::string data) {
  auto* w = new BytesWrite{{}, this, std::move(data)};
  w->req.data = w;
  uv_buf_t buf = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
  const int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), &buf, 1,
                          [](uv_write_t* req, int status) {
                            auto* w = static_cast<BytesWrite*>(req->data);
                            Connection* c = w->conn;
                            delete w;
                            if (status < 0 && c->state_ != State::Closed)
                              c->fail(Failure::Handshake, uv_strerror(status));
                          });
  if (rc < 0) {
    delete w;
    deferFail(Failure::Handshake, uv_strerror(rc));
  }
}

void Connection::onChunkWritten(ChunkWrite* w, int status) {
  if (state_ == State::Closed) return;  // its chunks were handed back already
  if (!write_starts_.empty()) write_starts_.pop_front();
  if (status < 0) {
    fail(Failure::ConnectionLost, uv_strerror(status));
    return;
  }
  const ChunkPtr& chunk = w->chunk;
  node_.counters().bytes_sent->inc(chunk->framing.prefix.size() + chunk->payload().size() +
                                   chunk->framing.suffix.size());
  // An ack may already have come back (read before this callback ran): then the chunk is
  // no longer ours, and there is nothing to do.
  size_t index = in_flight_.size();
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    if (in_flight_[i] == chunk && chunk->attempt == w->attempt) {
      index = i;
      break;
    }
  }
  if (index < in_flight_.size()) {
    chunk->written = true;
    chunk->ever_written = true;
    chunk->written_ms = now();
    if (!settings_.require_ack) {
      delivered(index);  // at-most-once: in the kernel is as far as we can know
      return;
    }
  }
  rearm();
}

void Connection::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(h->data);
  buf->base = self->read_buf_;
  buf->len = sizeof(self->read_buf_);
}

void Connection::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
  auto* self = static_cast<Connection*>(s->data);
  if (self->state_ == State::Closed) return;
  if (nread > 0) {
    self->in_.append(buf->base, static_cast<size_t>(nread));
    if (self->state_ == State::Handshake) {
      self->handleHandshake();
    } else {
      self->handleReplies();
    }
    return;
  }
  if (nread == 0) return;
  if (self->state_ == State::Handshake) {
    self->fail(Failure::Handshake, nread == UV_EOF ? "server closed the connection"
                                                   : uv_strerror(static_cast<int>(nread)));
    return;
  }
  if (self->in_flight_.empty()) {
    // The server closed an idle connection (its idle timeout, a restart): not a failure.
    self->beginClose();
    return;
  }
  self->fail(Failure::ConnectionLost, nread == UV_EOF ? "server closed the connection"
                                                      : uv_strerror(static_cast<int>(nread)));
}

void Connection::handleHandshake() {
  const int64_t len = handshake::messageLength(in_);
  if (len == 0) return;
  if (len < 0) {
    fail(Failure::Handshake, "the server sent bytes that are not a handshake message");
    return;
  }
  const std::string msg = in_.substr(0, static_cast<size_t>(len));
  in_.erase(0, static_cast<size_t>(len));
  if (!have_helo_) {
    std::string error;
    if (!hs_->onHelo(msg, error)) {
      node_.counters().handshake_failures->inc();
      fail(Failure::Handshake, "invalid HELO: " + error);
      return;
    }
    have_helo_ = true;
    // A server that denies keepalive closes after one request: send one chunk per
    // connection rather than lose the rest of the window every time.
    if (!hs_->keepalive()) single_use_ = true;
    writeBytes(hs_->ping());
    if (!in_.empty()) handleHandshake();
    return;
  }
  const handshake::PongCheck check = hs_->checkPong(msg);
  if (!check.ok) {
    node_.counters().handshake_failures->inc();
    fail(Failure::Handshake, check.error);
    return;
  }
  spdlog::debug("[{}] {}: handshake done with {}", settings_.output_name, node_.name(),
                check.server_hostname);
  hs_.reset();
  startReady();
  if (state_ == State::Ready && !in_.empty()) handleReplies();
}

void Connection::handleReplies() {
  size_t off = 0;
  while (state_ != State::Closed) {
    const auto* data = reinterpret_cast<const uint8_t*>(in_.data()) + off;
    const size_t avail = in_.size() - off;
    if (avail == 0) break;
    const auto r = scanner_.scan(data, avail);
    if (r == mp::ObjectScanner::Result::NeedMore) {
      if (avail > kMaxReplySize) {
        node_.counters().ack_mismatches->inc();
        fail(Failure::AckMismatch, "reply larger than 64 KiB");
        return;
      }
      break;
    }
    if (r != mp::ObjectScanner::Result::Done) {
      node_.counters().ack_mismatches->inc();
      fail(Failure::AckMismatch, "the server sent bytes that are not msgpack");
      return;
    }
    const size_t len = scanner_.end();
    scanner_.reset();
    const Reply reply = parseReply(std::string_view(in_).substr(off, len));
    off += len;
    switch (reply.kind) {
      case ReplyKind::Ack: {
        if (findAcked(in_flight_, reply.ack) < 0) {
          node_.counters().ack_mismatches->inc();
          fail(Failure::AckMismatch, "ack \"" + reply.ack + "\" matches no chunk in flight");
          return;
        }
        node_.heartbeatOk();  // a reply is as good a sign of life as a heartbeat
        if (state_ == State::Closed) return;
        // Found again: the owner may have queued more chunks here meanwhile.
        delivered(static_cast<size_t>(findAcked(in_flight_, reply.ack)));
        break;
      }
      case ReplyKind::NegativeAck: {
        if (in_flight_.empty()) {
          node_.counters().ack_mismatches->inc();
          fail(Failure::AckMismatch, "negative ack with no chunk in flight");
          return;
        }
        // The stream is in step (the server answered the oldest request): keep the
        // connection, hand back only that chunk.
        node_.counters().negative_acks->inc();
        ChunkPtr chunk = in_flight_.front();
        in_flight_.pop_front();
        node_.events().onFailed(node_, {chunk}, Failure::NegativeAck);
        closeIfDone();
        break;
      }
      case ReplyKind::Helo:
        node_.counters().handshake_failures->inc();
        fail(Failure::Handshake,
             "the server sent HELO: it requires the shared-key handshake; set shared_key "
             "for this server");
        return;
      case ReplyKind::Invalid:
        node_.counters().ack_mismatches->inc();
        fail(Failure::AckMismatch, "the server sent a reply that is not an ack");
        return;
    }
  }
  if (state_ != State::Closed) {
    in_.erase(0, off);
    rearm();
  }
}

void Connection::delivered(size_t index) {
  ChunkPtr chunk = in_flight_[index];
  in_flight_.erase(in_flight_.begin() + static_cast<std::ptrdiff_t>(index));
  if (in_flight_.empty()) idle_since_ms_ = now();
  NodeCounters& c = node_.counters();
  c.chunks_delivered->inc();
  c.events_delivered->inc(chunk->events);
  node_.events().onDelivered(node_, chunk);
  if (state_ == State::Closed) return;
  closeIfDone();
  if (state_ != State::Closed) {
    rearm();
    node_.events().onCapacity(node_);
  }
}

void Connection::closeIfDone() {
  if (single_use_ && in_flight_.empty() && state_ != State::Closed) beginClose();
}

void Connection::rearm() {
  if (state_ == State::Closed || deadline_ == Deadline::Deferred) return;
  int64_t at = INT64_MAX;
  Deadline kind = Deadline::None;
  auto consider = [&](int64_t t, Deadline k) {
    if (t < at) {
      at = t;
      kind = k;
    }
  };
  if (state_ != State::Ready) {
    consider(started_ms_ + settings_.connect_timeout_ms, Deadline::Connect);
  } else {
    if (!write_starts_.empty())
      consider(write_starts_.front() + settings_.send_timeout_ms, Deadline::Send);
    if (settings_.require_ack) {
      for (const ChunkPtr& c : in_flight_) {
        if (c->written) {
          // Written in order, so the first written one has the earliest deadline.
          consider(c->written_ms + settings_.ack_timeout_ms, Deadline::Ack);
          break;
        }
      }
    }
    if (in_flight_.empty() && !single_use_ && settings_.keepalive_timeout_ms > 0)
      consider(idle_since_ms_ + settings_.keepalive_timeout_ms, Deadline::Idle);
  }
  deadline_ = kind;
  if (kind == Deadline::None) {
    uv_timer_stop(&timer_);
    return;
  }
  const int64_t wait = std::max<int64_t>(at - now(), 0);
  uv_timer_start(&timer_, &Connection::onTimer, static_cast<uint64_t>(wait), 0);
}

void Connection::onTimer(uv_timer_t* t) {
  auto* self = static_cast<Connection*>(t->data);
  if (self->state_ == State::Closed) return;
  NodeCounters& c = self->node_.counters();
  const UpstreamSettings& s = self->settings_;
  switch (self->deadline_) {
    case Deadline::None:
      return;
    case Deadline::Deferred:
      self->deadline_ = Deadline::None;
      self->fail(self->deferred_why_, self->deferred_detail_);
      return;
    case Deadline::Connect:
      if (self->state_ == State::Handshake) {
        c.handshake_failures->inc();
        self->fail(Failure::Handshake, fmt::format("no HELO/PONG within connect_timeout ({} ms)",
                                                   s.connect_timeout_ms));
      } else {
        self->fail(
            Failure::ConnectFailed,
            fmt::format("not connected within connect_timeout ({} ms)", s.connect_timeout_ms));
      }
      return;
    case Deadline::Send:
      c.send_timeouts->inc();
      self->fail(Failure::SendTimeout,
                 fmt::format("a write did not complete within send_timeout ({} ms): the server "
                             "is not reading",
                             s.send_timeout_ms));
      return;
    case Deadline::Ack:
      c.ack_timeouts->inc();
      self->fail(Failure::AckTimeout,
                 fmt::format("no ack within ack_response_timeout ({} ms)", s.ack_timeout_ms));
      return;
    case Deadline::Idle:
      spdlog::debug("[{}] {}: closing idle connection (keepalive_timeout)", s.output_name,
                    self->node_.name());
      self->beginClose();
      return;
  }
}

void Connection::fail(Failure why, const std::string& detail) {
  if (state_ == State::Closed) return;
  const bool never_connected = state_ == State::Resolving || state_ == State::Connecting;
  std::vector<ChunkPtr> chunks(in_flight_.begin(), in_flight_.end());
  in_flight_.clear();
  NodeCounters& c = node_.counters();
  if (why == Failure::ConnectFailed) {
    c.connect_failures->inc();
  } else if (why == Failure::ConnectionLost) {
    c.connections_lost->inc();
  }
  const auto log_level = why == Failure::Aborted ? spdlog::level::debug : spdlog::level::warn;
  spdlog::log(log_level, "[{}] {}: {}: {}{}", settings_.output_name, node_.name(), failureName(why),
              detail, chunks.empty() ? "" : fmt::format(" ({} chunk(s) not acked)", chunks.size()));
  // A server that cannot be reached, refuses our handshake, or takes chunks and never
  // acks them gets no more traffic until a heartbeat says it is back (as Fluentd
  // disables the node).
  // Before the close is reported (which lets the output send here again), and with
  // nothing in flight here any more, so marking down does not fail this connection twice.
  if ((why == Failure::ConnectFailed && never_connected) || why == Failure::AckTimeout ||
      why == Failure::Handshake)
    node_.markDown(fmt::format("{}: {}", failureName(why), detail));
  beginClose();
  if (!chunks.empty()) node_.events().onFailed(node_, std::move(chunks), why);
}

void Connection::beginClose() {
  if (state_ == State::Closed) return;
  state_ = State::Closed;
  uv_timer_stop(&timer_);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &Connection::onClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &Connection::onClosed);
  node_.connectionClosed(this);
}

void Connection::onClosed(uv_handle_t* h) {
  auto* self = static_cast<Connection*>(h->data);
  // Pending writes and the connect request were cancelled (their callbacks ran, saw
  // Closed and did nothing) before libuv calls this.
  if (--self->open_handles_ == 0) delete self;
}

// ---------------------------------------------------------------------------------------
// Probe: one transport heartbeat (a TCP connect, closed at once).

struct Probe {
  uv_tcp_t tcp;
  uv_connect_t req;
  Node* node;  // null once abandoned
};

namespace {
void closeProbe(Probe* p) {
  p->node = nullptr;
  uv_close(reinterpret_cast<uv_handle_t*>(&p->tcp),
           [](uv_handle_t* h) { delete static_cast<Probe*>(h->data); });
}
}  // namespace

// ---------------------------------------------------------------------------------------
// Node

Node::Node(uv_loop_t* loop, size_t index, ServerSpec spec, const UpstreamSettings& settings,
           UpstreamEvents& events, StatsRegistry& stats)
    : loop_(loop), index_(index), spec_(std::move(spec)), settings_(settings), events_(events) {
  const std::string component = settings_.output_name + "." + spec_.name;
  auto c = [&](const char* n) { return &stats.counter(component, n); };
  counters_ = NodeCounters{
      c("chunks_sent"),        c("events_sent"),      c("bytes_sent"),
      c("chunks_delivered"),   c("events_delivered"), c("connections_opened"),
      c("connect_failures"),   c("connections_lost"), c("send_timeouts"),
      c("ack_timeouts"),       c("ack_mismatches"),   c("negative_acks"),
      c("handshake_failures"), c("heartbeats_ok"),    c("heartbeats_missed"),
      c("marked_down"),        c("marked_up"),
  };
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr_);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr_);
  if (uv_ip4_addr(spec_.host.c_str(), spec_.port, v4) == 0 ||
      uv_ip6_addr(spec_.host.c_str(), spec_.port, v6) == 0) {
    literal_ = true;
    resolved_ = true;
  }
}

Node::~Node() = default;

bool Node::canTake() const {
  return !closed_ && (conn_ == nullptr || conn_->canTake());
}

size_t Node::inFlight() const {
  return conn_ ? conn_->inFlight() : 0;
}

void Node::send(const ChunkPtr& chunk) {
  const bool fresh = conn_ == nullptr;
  if (fresh) conn_ = new Connection(*this);
  conn_->enqueue(chunk);
  if (fresh) ensureAddress();
}

bool Node::cacheFresh() const {
  if (literal_) return true;
  if (!resolved_) return false;
  if (settings_.dns_ttl_ms < 0) return true;
  if (settings_.dns_ttl_ms == 0) return false;
  return static_cast<int64_t>(uv_now(loop_)) - resolved_at_ms_ < settings_.dns_ttl_ms;
}

void Node::ensureAddress() {
  if (cacheFresh()) {
    addressReady(0);
    return;
  }
  if (resolving_) return;  // one lookup at a time; everyone waiting gets its answer
  resolving_ = new uv_getaddrinfo_t;
  resolving_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string port = std::to_string(spec_.port);
  const int rc = uv_getaddrinfo(loop_, resolving_, &Node::onResolved, spec_.host.c_str(),
                                port.c_str(), &hints);
  if (rc < 0) {
    delete resolving_;
    resolving_ = nullptr;
    addressReady(rc);
  }
}

void Node::onResolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* self = static_cast<Node*>(req->data);
  delete req;
  self->resolving_ = nullptr;
  if (status == 0 && res != nullptr && !self->closed_) {
    size_t count = 0;
    for (addrinfo* a = res; a; a = a->ai_next)
      ++count;
    // After a failure the next lookup uses the next address, so a host name with a dead
    // first address (e.g. ::1 without a listener) still gets through.
    addrinfo* pick = res;
    for (size_t k = self->address_rotation_ % count; k > 0; --k)
      pick = pick->ai_next;
    std::memset(&self->addr_, 0, sizeof(self->addr_));
    std::memcpy(&self->addr_, pick->ai_addr,
                std::min<size_t>(pick->ai_addrlen, sizeof(self->addr_)));
    self->resolved_ = true;
    self->resolved_at_ms_ = static_cast<int64_t>(uv_now(self->loop_));
  }
  if (res) uv_freeaddrinfo(res);
  if (self->closed_) return;
  if (status == 0 && res == nullptr) status = UV_EAI_NONAME;
  self->addressReady(status);
}

void Node::addressReady(int status) {
  const auto* addr = reinterpret_cast<const sockaddr*>(&addr_);
  if (status < 0) {
    spdlog::warn("[{}] {}: cannot resolve {}: {}", settings_.output_name, spec_.name, spec_.host,
                 uv_strerror(status));
  }
  if (conn_ && conn_->resolving()) {
    if (status == 0) {
      conn_->connectTo(addr);
    } else {
      conn_->deferFail(Failure::ConnectFailed,
                       std::string("cannot resolve: ") + uv_strerror(status));
    }
  }
  if (probe_wants_address_ && probe_) {
    probe_wants_address_ = false;
    Probe* p = probe_;
    const int rc =
        status < 0 ? status : uv_tcp_connect(&p->req, &p->tcp, addr, [](uv_connect_t* r, int st) {
          auto* pr = static_cast<Probe*>(r->data);
          if (pr->node) pr->node->probeDone(pr, st == 0);
        });
    if (rc < 0) probeDone(p, false);
  }
  if (udp_waiting_address_) {
    udp_waiting_address_ = false;
    // Sent directly: with expire_dns_cache = 0 the address is never "fresh", and asking
    // again would loop.
    if (status == 0) sendUdp();
  }
}

void Node::probe() {
  if (closed_ || settings_.heartbeat != HeartbeatType::Transport) return;
  if (probe_) {
    // Still unanswered a whole interval later: a miss.
    Probe* old = probe_;
    probe_ = nullptr;
    probe_wants_address_ = false;
    closeProbe(old);
    heartbeatMissed();
    if (closed_) return;
  }
  auto* p = new Probe{};
  p->node = this;
  uv_tcp_init(loop_, &p->tcp);
  p->tcp.data = p;
  p->req.data = p;
  probe_ = p;
  probe_wants_address_ = true;
  ensureAddress();
}

void Node::probeDone(Probe* p, bool ok) {
  if (p != probe_) return;
  probe_ = nullptr;
  closeProbe(p);
  if (ok) {
    counters_.heartbeats_ok->inc();
    heartbeatOk();
  } else {
    heartbeatMissed();
  }
}

void Node::udpPing() {
  if (closed_ || settings_.heartbeat != HeartbeatType::Udp) return;
  if (udp_outstanding_) {
    udp_outstanding_ = false;
    heartbeatMissed();
  }
  if (!cacheFresh()) {
    udp_waiting_address_ = true;
    ensureAddress();
    return;
  }
  sendUdp();
}

void Node::sendUdp() {
  uv_udp_t* udp = addr_.ss_family == AF_INET6 ? udp_v6_ : udp_v4_;
  if (udp == nullptr) return;
  char zero = 0;
  uv_buf_t b = uv_buf_init(&zero, 1);
  // Non-blocking: a ping that cannot be sent right now is simply a miss next time.
  uv_udp_try_send(udp, &b, 1, reinterpret_cast<const sockaddr*>(&addr_));
  udp_outstanding_ = true;
}

void Node::udpAnswered() {
  if (!udp_outstanding_) return;
  udp_outstanding_ = false;
  counters_.heartbeats_ok->inc();
  heartbeatOk();
}

void Node::heartbeatOk() {
  missed_ = 0;
  if (available_ || closed_) return;
  available_ = true;
  counters_.marked_up->inc();
  spdlog::info("[{}] server {} is back", settings_.output_name, spec_.name);
  events_.onAvailabilityChanged(*this);
}

void Node::heartbeatMissed() {
  counters_.heartbeats_missed->inc();
  if (++missed_ >= settings_.max_missed_heartbeats)
    markDown(fmt::format("{} heartbeat(s) missed", missed_));
}

void Node::markDown(const std::string& why) {
  // heartbeat_type = "none": nothing could ever bring a node back, so none goes down.
  if (settings_.heartbeat == HeartbeatType::None || closed_) return;
  if (!literal_) {
    // Re-resolve next time (Fluentd clears its DNS cache on detach), on the next address.
    resolved_ = false;
    ++address_rotation_;
  }
  if (!available_) return;
  available_ = false;
  counters_.marked_down->inc();
  spdlog::warn("[{}] server {} is down: {}", settings_.output_name, spec_.name, why);
  // Chunks waiting for acks there would otherwise wait out ack_response_timeout.
  if (conn_ && conn_->inFlight() > 0) conn_->fail(Failure::NodeDown, why);
  events_.onAvailabilityChanged(*this);
}

void Node::connectionClosed(Connection* c) {
  if (conn_ != c) return;
  conn_ = nullptr;
  // A closed connection frees the node for a new one (keepalive off: after every chunk).
  if (!closed_) events_.onCapacity(*this);
}

void Node::abort(Failure why) {
  if (conn_) conn_->fail(why, "the output is stopping");
}

void Node::close() {
  if (closed_) return;
  abort(Failure::Aborted);
  closed_ = true;
  if (probe_) {
    closeProbe(probe_);
    probe_ = nullptr;
  }
  if (resolving_) uv_cancel(reinterpret_cast<uv_req_t*>(resolving_));
}

}  // namespace ferry::forward
