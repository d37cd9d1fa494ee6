// TcpOutput: resolve → connect → write coalesced framed records → on error or EOF close
// and reconnect with backoff; a byte-bounded in-memory queue in front (drop oldest when
// full); the option table and its checks.
#include "src/heka/heka_output.h"

#include "src/net_address.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <memory>
#include <set>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/backoff.h"
#include "src/bridge.h"
#include "src/config_loader.h"
#include "src/heka/heka_signer.h"
#include "src/stats.h"

namespace ferry::heka {

namespace {

// One uv_write carries records up to about this many bytes: large enough that a busy
// relay makes one syscall per few hundred messages, small enough that a chunk resent
// after a dropped connection duplicates little.
constexpr size_t kChunkBytes = 256 * 1024;
// Chunks handed to libuv and not yet called back. Together with the check on libuv's
// write_queue_size (bytes the kernel has not taken yet), this bounds what sits in libuv:
// at most kMaxWritesInFlight chunks of about kChunkBytes each (one may run over by its
// last record), and a new one only while libuv holds less than kChunkBytes unwritten.
// These bytes stay counted in queue_max_bytes (inflight_bytes_) until called back.
constexpr size_t kMaxWritesInFlight = 8;
// A host name rarely resolves to more; the rest are not tried.
constexpr size_t kMaxAddresses = 16;
// Longest signer name whose header still fits the one-byte header length with the
// largest possible body length and a SHA1 digest (heka.md §2.2 rule 3).
constexpr size_t kMaxSignerName = 200;

size_t varintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

// Counters only count up; a gauge is set by adding the difference, which unsigned
// arithmetic makes exact in both directions.
void setGauge(Counter& c, uint64_t value) {
  c.inc(value - c.value());
}

bool parseHostChars(const std::string& host) {
  return std::all_of(host.begin(), host.end(), [](char ch) {
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '-' || ch == '_';
  });
}

// An IP literal and port as a socket address.
bool ipLiteral(const std::string& host, uint16_t port, sockaddr_storage& out) {
  out = {};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&out)) == 0) return true;
  out = {};
  return uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&out)) == 0;
}

// local_address: an IP literal, or "localhost" (the one name configs commonly bind to;
// binding happens before any resolution could run, so other names are refused).
bool localAddress(const std::string& host, uint16_t port, sockaddr_storage& out) {
  return ipLiteral(host == "localhost" ? "127.0.0.1" : host, port, out);
}

std::string addressText(const sockaddr_storage& a) {
  char ip[64] = {};
  int port = 0;
  if (a.ss_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&a);
    uv_ip6_name(s6, ip, sizeof(ip));
    port = ntohs(s6->sin6_port);
    return fmt::format("[{}]:{}", ip, port);
  }
  const auto* s4 = reinterpret_cast<const sockaddr_in*>(&a);
  uv_ip4_name(s4, ip, sizeof(ip));
  port = ntohs(s4->sin_port);
  return fmt::format("{}:{}", ip, port);
}

// The encoder may name a table, which only the whole config knows (tables load in file
// order, so the per-table validate hook cannot see one defined further down).
void checkEncoder(const PluginConfig& cfg, const Config* config) {
  const std::string& encoder = cfg.str("encoder");
  if (encoder == "ProtobufEncoder") return;
  const PluginConfig* et = config ? config->other(encoder) : nullptr;
  if (et == nullptr || et->type != "ProtobufEncoder") {
    cfg.fail("encoder", fmt::format("'{}' is {}: TcpOutput writes Heka protobuf messages and "
                                    "takes \"ProtobufEncoder\" or a table of that type",
                                    encoder, et ? "a " + et->type : "not defined in the config"));
  }
}

// At most one log line per second for a kind of drop; the counters hold exact totals.
class RateLimitedLog {
 public:
  void warn(uv_loop_t* loop, const std::string& who, uint64_t n, std::string_view what) {
    pending_ += n;
    const uint64_t now = uv_now(loop);
    if (logged_ && now - last_ms_ < 1000) return;
    spdlog::warn("[{}] {}: {} (at most one such line per second; see the counters)", who, what,
                 pending_);
    pending_ = 0;
    last_ms_ = now;
    logged_ = true;
  }

 private:
  uint64_t last_ms_ = 0;
  uint64_t pending_ = 0;
  bool logged_ = false;
};

class TcpOutput;

enum class ConnState { Connecting, Connected, ShuttingDown, Closing };

// One connection attempt or connection. Heap-allocated and deleted from its close
// callback, so it outlives whatever closed it; `owner` is cleared when the output goes
// away first.
struct Conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_shutdown_t shutdown_req;
  TcpOutput* owner = nullptr;
  ConnState state = ConnState::Connecting;
  uint64_t messages = 0;            // records handed to this connection (reconnect_after)
  int64_t reconnect_delay_ms = -1;  // when it has closed: -1 none, else reconnect after
  bool rotated = false;             // closed by reconnect_after, not by a failure
  std::string peer;                 // the peer's address, once connected
  // send_timeout: when each write not yet called back was handed to libuv (libuv
  // completes a stream's writes in order, so the front is the oldest), and when the last
  // one completed. The oldest write's clock starts at the later of the two: a write
  // queued behind others cannot progress before they are done.
  std::deque<uint64_t> write_starts;
  uint64_t last_write_done_ms = 0;
};

// Delivery mode (resolveOnDelivery): one submitted batch's ack share, held by its queued
// batch while it has events not framed yet and by every write that carries some of its
// records; resolved when the last holder is done: accepted if every record was written,
// failed if any was dropped. Destroying it unresolved fails the share (AckShare's rule).
struct PendingShare {
  AckShare ack;
  uint32_t holders = 0;
  bool failed = false;
};
using PendingSharePtr = std::shared_ptr<PendingShare>;

void settle(PendingShare& s, bool ok) {
  if (!ok) s.failed = true;
  if (s.holders > 0 && --s.holders == 0) {
    if (s.failed) {
      s.ack.fail();
    } else {
      s.ack.accept();
    }
  }
}

void settleAll(std::vector<PendingSharePtr> shares, bool ok) {
  for (auto& s : shares)
    settle(*s, ok);
}

// One coalesced write: framed records in one buffer, kept for reuse (no allocation per
// write once the pool is warm) and, if the connection fails before the callback says it
// was written, resent whole on the next connection.
struct WriteReq {
  uv_write_t req;
  std::string buf;
  uint64_t events = 0;
  uint64_t seq = 0;  // order of creation: resent chunks keep their order
  Conn* conn = nullptr;
  std::vector<PendingSharePtr> shares;  // delivery mode: batches it carries records of
};

struct Resolve {
  uv_getaddrinfo_t req;
  TcpOutput* owner = nullptr;
};

// A batch of Heka message bodies waiting to be framed into chunks.
struct QueuedBatch {
  BatchPtr batch;
  size_t next = 0;        // first event not yet framed into a chunk
  size_t bytes = 0;       // framed size of events [next, end)
  PendingSharePtr share;  // delivery mode only
};

class TcpOutput : public Output {
 public:
  explicit TcpOutput(const PluginContext& ctx);
  ~TcpOutput() override;

  // Queues the batch (dropping the oldest waiting data past queue_max_bytes) and accepts
  // `ack` at once; after resolveOnDelivery(), only once all its records were written to
  // the socket (uv_write called back with success), failed once they are done and any
  // was dropped (queue full, the peer unreachable while stopping, close). Records whose
  // write failed are resent on the next connection, as always, and keep the share open.
  void submit(BatchPtr batch, AckShare ack) override;
  void flush(std::function<void()> done) override;
  void resolveOnDelivery() override { on_delivery_ = true; }
  // A quarter of queue_max_bytes: converted records may grow, and the buffer in front must
  // never make this queue drop.
  uint64_t maxInflightBytes() const override { return std::max<uint64_t>(max_bytes_ / 4, 1); }
  void close() override;

 private:
  // Connection life cycle.
  void connect();
  void startConnect();
  void connectFailed(const std::string& why);
  void onConnected(Conn* c);
  void lose(Conn* c, int status, std::string_view what);
  void closeConn(Conn* c, int64_t reconnect_delay_ms);
  void rotate(Conn* c);
  void scheduleReconnect(int64_t ms);
  void armSendTimer();
  void onSendTimer();
  void sendTimedOut(Conn* c);
  // Why connecting to `addr` failed; names the address only when `address` is a host
  // name (an IP address is already in every log line).
  std::string attemptError(const sockaddr_storage& addr, int status) const {
    return literal_ ? uv_strerror(status)
                    : fmt::format("{}: {}", addressText(addr), uv_strerror(status));
  }
  static void onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res);
  static void onConnect(uv_connect_t* req, int status);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onWrite(uv_write_t* req, int status);
  static void onShutdown(uv_shutdown_t* req, int status);
  static void onClosed(uv_handle_t* h);

  // Queue.
  BatchPtr bridgeBatch(const Batch& b);
  size_t framedBytes(const Batch& b) const;
  uint64_t pendingBytes() const { return queue_bytes_ + retry_bytes_ + inflight_bytes_; }
  void makeRoom(size_t incoming);
  void dropOldest();
  void dropAll(std::string_view why);
  void schedulePump();
  void pump();
  void fillChunk(WriteReq& w, uint64_t max_events);
  void appendRecord(std::string& out, std::string_view body);
  void writeDone(WriteReq* w, int status);
  void requeue(WriteReq* w);
  WriteReq* takeReq();
  void recycle(WriteReq* w);
  void updateGauges();
  void checkFlushed();

  std::string name_;
  uv_loop_t* loop_;
  std::string address_;
  std::string host_;
  std::string port_text_;
  bool literal_ = false;
  sockaddr_storage literal_addr_{};
  bool has_local_ = false;
  sockaddr_storage local_addr_{};
  bool keep_alive_;
  int64_t keep_alive_period_s_;
  uint64_t reconnect_after_;
  int64_t send_timeout_ms_;  // 0: off
  uint64_t max_bytes_;
  size_t max_message_size_;
  std::unique_ptr<OutputSigner> signer_;
  Backoff backoff_;

  // Connections: conn_ is the current one (connecting or connected); conns_ holds every
  // Conn not yet called back as closed, so the destructor can detach them.
  Conn* conn_ = nullptr;
  std::set<Conn*> conns_;
  Resolve* resolving_ = nullptr;
  std::vector<sockaddr_storage> addrs_;
  size_t next_addr_ = 0;
  std::string last_error_;
  uint64_t failed_attempts_ = 0;  // connection attempts failed since the last success
  uv_timer_t* timer_ = nullptr;
  uv_timer_t* send_timer_ = nullptr;  // send_timeout: the oldest unfinished write's deadline
  uv_check_t* check_ = nullptr;       // runs pump() once per loop turn, after the reads
  bool pump_scheduled_ = false;
  char read_buf_[4096];  // peers send nothing; what they do send is read and discarded

  // Everything not yet written: batches to frame, chunks to resend, chunks in libuv.
  std::deque<QueuedBatch> queue_;
  std::deque<WriteReq*> retry_;
  std::vector<WriteReq*> free_reqs_;
  uint64_t queue_bytes_ = 0;
  uint64_t retry_bytes_ = 0;
  uint64_t inflight_bytes_ = 0;
  size_t inflight_ = 0;
  uint64_t pending_events_ = 0;
  uint64_t next_seq_ = 0;
  std::string scratch_;

  std::function<void()> flush_done_;
  bool on_delivery_ = false;
  bool flushing_ = false;
  bool gave_up_ = false;
  bool closed_ = false;

  Counter& events_out_;
  Counter& bytes_out_;
  Counter& connects_;
  Counter& connect_failures_;
  Counter& disconnects_;
  Counter& send_timeouts_;
  Counter& dropped_events_;
  Counter& oversize_events_;
  Counter& queued_bytes_;
  Counter& queued_events_;
  RateLimitedLog drop_log_;
  std::string drop_what_;  // its text, made once: drops come in bursts
  RateLimitedLog oversize_log_;
};

TcpOutput::TcpOutput(const PluginContext& ctx)
    : name_(ctx.config->name),
      loop_(ctx.loop),
      address_(ctx.config->str("address")),
      keep_alive_(ctx.config->boolean("keep_alive")),
      keep_alive_period_s_(ctx.config->integer("keep_alive_period")),
      reconnect_after_(static_cast<uint64_t>(ctx.config->integer("reconnect_after"))),
      send_timeout_ms_(ctx.config->durationMs("send_timeout")),
      max_bytes_(ctx.config->size("queue_max_bytes")),
      max_message_size_(ctx.full_config ? ctx.full_config->global.size("max_message_size")
                                        : kDefaultMaxMessageSize),
      backoff_(ctx.config->durationMs("retry_initial"), ctx.config->durationMs("retry_max")),
      events_out_(ctx.stats->counter(name_, "events_out")),
      bytes_out_(ctx.stats->counter(name_, "bytes_out")),
      connects_(ctx.stats->counter(name_, "connects")),
      connect_failures_(ctx.stats->counter(name_, "connect_failures")),
      disconnects_(ctx.stats->counter(name_, "disconnects")),
      send_timeouts_(ctx.stats->counter(name_, "send_timeouts")),
      dropped_events_(ctx.stats->counter(name_, "dropped_events")),
      oversize_events_(ctx.stats->counter(name_, "oversize_events")),
      queued_bytes_(ctx.stats->counter(name_, "queued_bytes")),
      queued_events_(ctx.stats->counter(name_, "queued_events")) {
  const PluginConfig& cfg = *ctx.config;
  checkEncoder(cfg, ctx.full_config);  // already done at load; kept for configs built in code
  uint16_t port = 0;
  std::string error;
  if (!splitOutputAddress(address_, false, host_, port, error)) cfg.fail("address", error);
  port_text_ = std::to_string(port);
  literal_ = ipLiteral(host_, port, literal_addr_);
  if (cfg.has("local_address") && !cfg.str("local_address").empty()) {
    std::string local_host;
    uint16_t local_port = 0;
    if (!splitOutputAddress(cfg.str("local_address"), true, local_host, local_port, error) ||
        !localAddress(local_host, local_port, local_addr_)) {
      cfg.fail("local_address", "expected an IP address and port, e.g. \"127.0.0.1:0\"");
    }
    has_local_ = true;
  }
  if (cfg.has("signer")) {
    signer_ = std::make_unique<OutputSigner>();
    std::string key;
    if (!parseOutputSigner(cfg.get("signer").table, *signer_, key, error))
      cfg.fail("signer", error);
  }
  if (cfg.boolean("use_buffering") || cfg.has("buffering")) {
    spdlog::warn(
        "[{}] use_buffering/buffering: ferry has no disk buffer for TcpOutput yet; "
        "messages wait in memory, up to queue_max_bytes ({} bytes)",
        name_, max_bytes_);
  }
  drop_what_ =
      fmt::format("queue full (queue_max_bytes = {}): dropped the oldest events", max_bytes_);
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
  send_timer_ = new uv_timer_t;
  uv_timer_init(loop_, send_timer_);
  send_timer_->data = this;
  check_ = new uv_check_t;
  uv_check_init(loop_, check_);
  check_->data = this;
  // Connect now rather than on the first message (hekad connects lazily): a wrong peer
  // shows up in the log at start, and the first batch does not wait for a handshake.
  // Nothing here blocks: a peer that is down only schedules a retry.
  connect();
}

TcpOutput::~TcpOutput() {
  // Normally close() ran and the loop already called everything back. If not, detach:
  // callbacks still to come see a null owner and only free their own memory.
  for (Conn* c : conns_) {
    c->owner = nullptr;
    auto* h = reinterpret_cast<uv_handle_t*>(&c->tcp);
    if (!uv_is_closing(h)) uv_close(h, &TcpOutput::onClosed);
  }
  if (resolving_) {
    resolving_->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
  }
  for (uv_timer_t* t : {timer_, send_timer_}) {
    if (t) {
      uv_close(reinterpret_cast<uv_handle_t*>(t),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
    }
  }
  if (check_) {
    uv_close(reinterpret_cast<uv_handle_t*>(check_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
  }
  for (WriteReq* w : retry_)
    delete w;
  for (WriteReq* w : free_reqs_)
    delete w;
}

// ---------------------------------------------------------------------------------------
// Connection life cycle

void TcpOutput::connect() {
  if (closed_ || conn_ || resolving_) return;
  last_error_.clear();
  if (literal_) {
    addrs_.assign(1, literal_addr_);
    next_addr_ = 0;
    startConnect();
    return;
  }
  // Resolved at every attempt, not once at start: a peer that moved to another address
  // (a restarted container, a DNS failover) is found on the next reconnect.
  auto* r = new Resolve;
  r->owner = this;
  r->req.data = r;
  addrinfo hints{};
  hints.ai_family = has_local_ ? local_addr_.ss_family : AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  const int rc = uv_getaddrinfo(loop_, &r->req, &TcpOutput::onResolved, host_.c_str(),
                                port_text_.c_str(), &hints);
  if (rc != 0) {
    delete r;
    connectFailed(fmt::format("cannot resolve '{}': {}", host_, uv_strerror(rc)));
    return;
  }
  resolving_ = r;
}

void TcpOutput::onResolved(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  auto* r = static_cast<Resolve*>(req->data);
  TcpOutput* self = r->owner;
  delete r;
  if (self == nullptr) {
    if (res) uv_freeaddrinfo(res);
    return;
  }
  self->resolving_ = nullptr;
  self->addrs_.clear();
  for (addrinfo* ai = status == 0 ? res : nullptr;
       ai != nullptr && self->addrs_.size() < kMaxAddresses; ai = ai->ai_next) {
    if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
    sockaddr_storage ss{};
    std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
    self->addrs_.push_back(ss);
  }
  if (res) uv_freeaddrinfo(res);
  if (self->addrs_.empty()) {
    self->connectFailed(fmt::format("cannot resolve '{}': {}", self->host_,
                                    status != 0 ? uv_strerror(status) : "no address"));
    return;
  }
  self->next_addr_ = 0;
  self->startConnect();
}

// Tries the resolved addresses in order, as Go's Dial does, so "localhost" reaches a
// peer listening on 127.0.0.1 even when ::1 comes first.
void TcpOutput::startConnect() {
  while (next_addr_ < addrs_.size()) {
    const sockaddr_storage& addr = addrs_[next_addr_++];
    auto* c = new Conn;
    c->owner = this;
    uv_tcp_init(loop_, &c->tcp);
    c->tcp.data = c;
    conns_.insert(c);
    int rc = 0;
    if (has_local_) rc = uv_tcp_bind(&c->tcp, reinterpret_cast<const sockaddr*>(&local_addr_), 0);
    if (rc == 0) {
      rc = uv_tcp_connect(&c->connect_req, &c->tcp, reinterpret_cast<const sockaddr*>(&addr),
                          &TcpOutput::onConnect);
    }
    if (rc == 0) {
      conn_ = c;
      return;
    }
    last_error_ = attemptError(addr, rc);
    closeConn(c, -1);
  }
  connectFailed(last_error_);
}

void TcpOutput::onConnect(uv_connect_t* req, int status) {
  Conn* c = static_cast<Conn*>(req->handle->data);
  TcpOutput* self = c->owner;
  if (self == nullptr || c->state != ConnState::Connecting) return;  // closed meanwhile
  if (status != 0) {
    const size_t k = self->next_addr_ - 1;
    self->last_error_ = self->attemptError(self->addrs_[k], status);
    self->conn_ = nullptr;
    self->closeConn(c, -1);
    self->startConnect();
    return;
  }
  self->onConnected(c);
}

void TcpOutput::onConnected(Conn* c) {
  c->state = ConnState::Connected;
  connects_.inc();
  const uint64_t failures = failed_attempts_;
  failed_attempts_ = 0;
  backoff_.reset();
  uv_tcp_nodelay(&c->tcp, 1);  // chunks are coalesced here; Nagle would only add delay
  if (keep_alive_) {
    if (keep_alive_period_s_ > 0) {
      uv_tcp_keepalive(&c->tcp, 1, static_cast<unsigned>(keep_alive_period_s_));
    } else {
      // Period 0 = the OS default, as Go's SetKeepAlive without a period.
      uv_os_fd_t fd;
      if (uv_fileno(reinterpret_cast<uv_handle_t*>(&c->tcp), &fd) == 0) {
        const int on = 1;
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
      }
    }
  }
  // Reading is how a peer's close is noticed while there is nothing to write.
  uv_read_start(
      reinterpret_cast<uv_stream_t*>(&c->tcp),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* cc = static_cast<Conn*>(h->data);
        if (cc->owner == nullptr) {
          *buf = uv_buf_init(nullptr, 0);
          return;
        }
        *buf = uv_buf_init(cc->owner->read_buf_, sizeof(cc->owner->read_buf_));
      },
      &TcpOutput::onRead);
  sockaddr_storage peer{};
  int len = sizeof(peer);
  uv_tcp_getpeername(&c->tcp, reinterpret_cast<sockaddr*>(&peer), &len);
  c->peer = addressText(peer);
  if (reconnect_after_ == 0 || failures > 0 || connects_.value() == 1) {
    spdlog::info("[{}] connected to {} ({}){}", name_, address_, c->peer,
                 failures ? fmt::format(" after {} failed attempt(s)", failures) : "");
  } else {
    spdlog::debug("[{}] reconnected to {} (reconnect_after)", name_, address_);
  }
  pump();
  checkFlushed();
}

void TcpOutput::onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t*) {
  Conn* c = static_cast<Conn*>(s->data);
  if (c->owner == nullptr || nread >= 0) return;
  c->owner->lose(c, static_cast<int>(nread),
                 nread == UV_EOF ? "the peer closed the connection" : "read error");
}

void TcpOutput::onWrite(uv_write_t* req, int status) {
  auto* w = static_cast<WriteReq*>(req->data);
  TcpOutput* self = w->conn->owner;
  if (self == nullptr) {
    delete w;
    return;
  }
  self->writeDone(w, status);
}

// A failure on the current connection: close it, reconnect after a backoff. Chunks not
// yet written come back through their (cancelled) write callbacks before the close
// callback, which is what starts the next connection, so they are resent first.
void TcpOutput::lose(Conn* c, int status, std::string_view what) {
  if (c != conn_ || c->state != ConnState::Connected) return;
  disconnects_.inc();
  conn_ = nullptr;
  // The backoff was reset when this connection was made, so this is short unless the
  // peer keeps dropping connections (then it grows, also while stopping).
  const int64_t delay = backoff_.next();
  spdlog::warn("[{}] {} ({}): {}; reconnecting in {} ms", name_, what, address_,
               status == UV_EOF ? "EOF" : uv_strerror(status), delay);
  closeConn(c, delay);
}

void TcpOutput::closeConn(Conn* c, int64_t reconnect_delay_ms) {
  c->reconnect_delay_ms = reconnect_delay_ms;
  if (c->state == ConnState::Connected) uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->state = ConnState::Closing;
  auto* h = reinterpret_cast<uv_handle_t*>(&c->tcp);
  if (!uv_is_closing(h)) uv_close(h, &TcpOutput::onClosed);
  armSendTimer();
}

// send_timeout: the earliest deadline of any open connection's oldest write (a rotated
// connection finishing its writes counts too: a peer that stops reading then would hold
// its FIN forever).
void TcpOutput::armSendTimer() {
  if (send_timer_ == nullptr || send_timeout_ms_ <= 0) return;
  uint64_t at = UINT64_MAX;
  for (const Conn* c : conns_) {
    if (c->write_starts.empty() ||
        (c->state != ConnState::Connected && c->state != ConnState::ShuttingDown)) {
      continue;
    }
    at = std::min(at, std::max(c->write_starts.front(), c->last_write_done_ms) +
                          static_cast<uint64_t>(send_timeout_ms_));
  }
  if (at == UINT64_MAX) {
    uv_timer_stop(send_timer_);
    return;
  }
  const uint64_t now = uv_now(loop_);
  uv_timer_start(
      send_timer_, [](uv_timer_t* t) { static_cast<TcpOutput*>(t->data)->onSendTimer(); },
      at > now ? at - now : 0, 0);
}

void TcpOutput::onSendTimer() {
  const uint64_t now = uv_now(loop_);
  std::vector<Conn*> expired;
  for (Conn* c : conns_) {
    if (!c->write_starts.empty() &&
        (c->state == ConnState::Connected || c->state == ConnState::ShuttingDown) &&
        std::max(c->write_starts.front(), c->last_write_done_ms) +
                static_cast<uint64_t>(send_timeout_ms_) <=
            now) {
      expired.push_back(c);
    }
  }
  for (Conn* c : expired)
    sendTimedOut(c);
  armSendTimer();
}

// The peer accepted the connection but stopped reading: the kernel buffers are full and
// the write cannot finish. Closing cancels the writes still in libuv; their callbacks
// (before the close callback) requeue them for the next connection, as for any failed
// write, and in delivery mode their shares stay open.
void TcpOutput::sendTimedOut(Conn* c) {
  send_timeouts_.inc();
  if (c == conn_) {
    disconnects_.inc();
    conn_ = nullptr;
  }
  const int64_t delay = backoff_.next();
  spdlog::warn(
      "[{}] a write to {} ({}) did not complete within send_timeout ({} ms): the peer is not "
      "reading; closing the connection, reconnecting in {} ms",
      name_, address_, c->peer, send_timeout_ms_, delay);
  closeConn(c, delay);
}

// reconnect_after: finish the writes, send FIN, then connect again at once.
void TcpOutput::rotate(Conn* c) {
  conn_ = nullptr;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
  c->state = ConnState::ShuttingDown;
  c->rotated = true;
  c->reconnect_delay_ms = 0;
  if (uv_shutdown(&c->shutdown_req, reinterpret_cast<uv_stream_t*>(&c->tcp),
                  &TcpOutput::onShutdown) != 0) {
    closeConn(c, 0);
  }
}

void TcpOutput::onShutdown(uv_shutdown_t* req, int) {
  Conn* c = static_cast<Conn*>(req->handle->data);
  auto* h = reinterpret_cast<uv_handle_t*>(&c->tcp);
  c->state = ConnState::Closing;
  if (!uv_is_closing(h)) uv_close(h, &TcpOutput::onClosed);
}

void TcpOutput::onClosed(uv_handle_t* h) {
  Conn* c = static_cast<Conn*>(h->data);
  TcpOutput* self = c->owner;
  const int64_t delay = c->reconnect_delay_ms;
  if (self) self->conns_.erase(c);
  delete c;
  if (self == nullptr || self->closed_ || delay < 0) return;
  self->scheduleReconnect(delay);
}

void TcpOutput::connectFailed(const std::string& why) {
  connect_failures_.inc();
  ++failed_attempts_;
  if (flushing_) {
    spdlog::error("[{}] cannot connect to {} while stopping: {}", name_, address_, why);
    dropAll("the peer is unreachable at shutdown");
    checkFlushed();
    return;
  }
  const int64_t delay = backoff_.next();
  spdlog::warn("[{}] cannot connect to {}: {}; retrying in {} ms", name_, address_, why, delay);
  scheduleReconnect(delay);
}

void TcpOutput::scheduleReconnect(int64_t ms) {
  if (closed_) return;
  if (ms <= 0) {
    connect();
    return;
  }
  uv_timer_start(
      timer_, [](uv_timer_t* t) { static_cast<TcpOutput*>(t->data)->connect(); },
      static_cast<uint64_t>(ms), 0);
}

// ---------------------------------------------------------------------------------------
// Queue and writes

// A Fluentd batch becomes a Heka batch once, on arrival (bridge.md), so the queue only
// holds message bodies and its byte bound is exact.
BatchPtr TcpOutput::bridgeBatch(const Batch& b) {
  auto out = std::make_shared<Batch>();
  auto bytes = std::make_shared<std::string>();
  out->format = EventFormat::HekaMessage;
  out->source = b.source;
  out->events.reserve(b.events.size());
  for (const Event& e : b.events) {
    fluentToHekaMessage(b, e, scratch_);
    // Event offsets are 32-bit; a batch this large cannot come from an input's limits.
    if (bytes->size() + scratch_.size() > UINT32_MAX) {
      dropped_events_.inc();
      continue;
    }
    Event he;
    he.time_ns = e.time_ns;
    he.record_off = static_cast<uint32_t>(bytes->size());
    he.record_len = static_cast<uint32_t>(scratch_.size());
    bytes->append(scratch_);
    out->events.push_back(he);
  }
  out->bytes = std::move(bytes);
  return out;
}

size_t TcpOutput::framedBytes(const Batch& b) const {
  size_t n = 0;
  for (const Event& e : b.events)
    n += framedRecordSize(e.record_len, signer_.get());
  return n;
}

void TcpOutput::submit(BatchPtr batch, AckShare ack) {
  if (closed_) {
    ack.fail();
    return;
  }
  if (batch->format == EventFormat::FluentRecord) batch = bridgeBatch(*batch);
  if (batch->events.empty()) {
    ack.accept();
    return;
  }
  const size_t bytes = framedBytes(*batch);
  makeRoom(bytes);
  pending_events_ += batch->events.size();
  queue_bytes_ += bytes;
  queue_.push_back(QueuedBatch{std::move(batch), 0, bytes, nullptr});
  if (on_delivery_) {
    // Held by the queued batch until its last record is framed (fillChunk).
    auto share = std::make_shared<PendingShare>();
    share->ack = std::move(ack);
    share->holders = 1;
    queue_.back().share = std::move(share);
  } else {
    // Accepted once queued in memory: Heka's protocol has no acknowledgement, so waiting
    // for the kernel to take the bytes would promise nothing more (heka.md §6.4).
    ack.accept();
  }
  schedulePump();
  updateGauges();
}

// One read of a forward connection can carry many one-event batches; writing each as
// it comes would make a chunk (and a syscall) per event and run into the cap on chunks in
// flight. The check handle runs right after the loop's I/O phase, so every batch of this
// turn goes out together.
void TcpOutput::schedulePump() {
  if (pump_scheduled_ || check_ == nullptr) return;
  pump_scheduled_ = true;
  uv_check_start(check_, [](uv_check_t* h) {
    auto* self = static_cast<TcpOutput*>(h->data);
    uv_check_stop(h);
    self->pump_scheduled_ = false;
    self->pump();
  });
}

// Drops the oldest waiting data until `incoming` fits. A batch larger than the whole
// bound is still taken once the queue is empty, so it is never starved; the bound is
// then exceeded by that one batch only.
void TcpOutput::makeRoom(size_t incoming) {
  while (pendingBytes() + incoming > max_bytes_ && (!retry_.empty() || !queue_.empty()))
    dropOldest();
}

void TcpOutput::dropOldest() {
  uint64_t n = 0;
  std::vector<PendingSharePtr> shares;
  if (!retry_.empty()) {  // resent chunks are older than anything in queue_
    WriteReq* w = retry_.front();
    retry_.pop_front();
    n = w->events;
    retry_bytes_ -= w->buf.size();
    shares = std::move(w->shares);
    recycle(w);
  } else {
    QueuedBatch& q = queue_.front();
    n = q.batch->events.size() - q.next;
    queue_bytes_ -= q.bytes;
    if (q.share) shares.push_back(std::move(q.share));
    queue_.pop_front();
  }
  pending_events_ -= n;
  dropped_events_.inc(n);
  drop_log_.warn(loop_, name_, n, drop_what_);
  settleAll(std::move(shares), false);
}

void TcpOutput::dropAll(std::string_view why) {
  uint64_t n = 0;
  std::vector<PendingSharePtr> shares;
  for (WriteReq* w : retry_) {
    n += w->events;
    for (auto& s : w->shares)
      shares.push_back(std::move(s));
    recycle(w);
  }
  retry_.clear();
  retry_bytes_ = 0;
  for (QueuedBatch& q : queue_) {
    n += q.batch->events.size() - q.next;
    if (q.share) shares.push_back(std::move(q.share));
  }
  queue_.clear();
  queue_bytes_ = 0;
  pending_events_ -= n;
  gave_up_ = true;
  if (n > 0) {
    dropped_events_.inc(n);
    spdlog::error("[{}] {}: dropped {} events not yet sent", name_, why, n);
  }
  updateGauges();
  settleAll(std::move(shares), false);
}

void TcpOutput::pump() {
  Conn* c = conn_;
  if (c == nullptr || c->state != ConnState::Connected) return;
  auto* stream = reinterpret_cast<uv_stream_t*>(&c->tcp);
  bool armed = false;  // a write started on an idle connection: its deadline is new
  // Bounded: each pass either hands one chunk to libuv, consumes at least one queued
  // event (an oversize one), or stops.
  while (inflight_ < kMaxWritesInFlight && uv_stream_get_write_queue_size(stream) < kChunkBytes) {
    WriteReq* w = nullptr;
    if (!retry_.empty()) {
      w = retry_.front();
      retry_.pop_front();
      retry_bytes_ -= w->buf.size();
    } else {
      const uint64_t room = reconnect_after_ == 0            ? UINT64_MAX
                            : c->messages < reconnect_after_ ? reconnect_after_ - c->messages
                                                             : 0;
      if (queue_.empty() || room == 0) break;
      w = takeReq();
      fillChunk(*w, room);
      if (w->buf.empty()) {  // only oversize messages: nothing to write
        recycle(w);
        continue;
      }
    }
    c->messages += w->events;
    w->conn = c;
    ++inflight_;
    inflight_bytes_ += w->buf.size();
    uv_buf_t b = uv_buf_init(w->buf.data(), static_cast<unsigned>(w->buf.size()));
    const int rc = uv_write(&w->req, stream, &b, 1, &TcpOutput::onWrite);
    if (rc == 0) {
      if (c->write_starts.empty()) armed = true;
      c->write_starts.push_back(uv_now(loop_));
    } else {
      --inflight_;
      inflight_bytes_ -= w->buf.size();
      requeue(w);
      lose(c, rc, "write failed");
      break;
    }
  }
  if (armed) armSendTimer();
  if (conn_ == c && reconnect_after_ > 0 && c->messages >= reconnect_after_) rotate(c);
  updateGauges();
}

void TcpOutput::fillChunk(WriteReq& w, uint64_t max_events) {
  w.buf.clear();
  w.events = 0;
  w.seq = next_seq_++;
  uint64_t oversize = 0;
  std::vector<PendingSharePtr> framed_whole;  // batches with no record left to frame
  while (!queue_.empty() && w.buf.size() < kChunkBytes && w.events < max_events) {
    QueuedBatch& q = queue_.front();
    const Batch& b = *q.batch;
    while (q.next < b.events.size() && w.buf.size() < kChunkBytes && w.events < max_events) {
      const std::string_view body = b.record(b.events[q.next++]);
      const size_t framed = framedRecordSize(body.size(), signer_.get());
      q.bytes -= framed;
      queue_bytes_ -= framed;
      // Heka's writers refuse what its readers would drop (heka.md §2.2 rule 1). Only
      // bridged events can be this large: Heka inputs drop them on arrival.
      if (body.size() > max_message_size_) {
        ++oversize;
        continue;
      }
      appendRecord(w.buf, body);
      ++w.events;
      if (q.share && (w.shares.empty() || w.shares.back() != q.share)) {
        ++q.share->holders;
        w.shares.push_back(q.share);
      }
    }
    if (q.next == b.events.size()) {
      if (q.share) framed_whole.push_back(std::move(q.share));
      queue_.pop_front();
    }
  }
  if (oversize > 0) {
    pending_events_ -= oversize;
    oversize_events_.inc(oversize);
    oversize_log_.warn(
        loop_, name_, oversize,
        fmt::format("dropped messages longer than max_message_size ({} bytes)", max_message_size_));
  }
  // The queued batch's hold ends; its writes hold the share now. A message dropped as
  // oversize does not fail it: it can never be written, so sending it again is no use.
  settleAll(std::move(framed_whole), true);
}

// The relay rule: the body goes out byte for byte, behind a fresh header (Heka's outputs
// re-frame with a plain header; ferry signs only when the output has a signer).
void TcpOutput::appendRecord(std::string& out, std::string_view body) {
  out += static_cast<char>(kRecordSeparator);
  if (signer_) {
    const std::string header =
        hekaSignedHeader(body, signer_->name, signer_->version, signer_->hash, signer_->key);
    out += static_cast<char>(header.size());
    out += header;
  } else {
    out += static_cast<char>(1 + varintSize(body.size()));
    out += '\x08';  // field 1 (message_length), varint
    appendVarint(out, body.size());
  }
  out += static_cast<char>(kUnitSeparator);
  out.append(body);
}

void TcpOutput::writeDone(WriteReq* w, int status) {
  Conn* c = w->conn;
  w->conn = nullptr;
  --inflight_;
  inflight_bytes_ -= w->buf.size();
  if (!c->write_starts.empty()) c->write_starts.pop_front();
  if (status == 0) c->last_write_done_ms = uv_now(loop_);
  std::vector<PendingSharePtr> written;
  if (status == 0) {
    // In the kernel's send buffer: as far as TCP without acks can tell, delivered.
    pending_events_ -= w->events;
    events_out_.inc(w->events);
    bytes_out_.inc(w->buf.size());
    written = std::move(w->shares);
    recycle(w);
  } else {
    requeue(w);
    if (status != UV_ECANCELED) lose(c, status, "write failed");
  }
  settleAll(std::move(written), true);
  pump();
  armSendTimer();
  updateGauges();
  checkFlushed();
}

// A chunk the connection failed to write goes back in creation order, ahead of the
// batches not framed yet. Resending it whole may repeat records the kernel had already
// taken from it (at-least-once for that chunk, as Heka retries a failed message).
void TcpOutput::requeue(WriteReq* w) {
  if (gave_up_ || closed_) {
    pending_events_ -= w->events;
    dropped_events_.inc(w->events);
    std::vector<PendingSharePtr> shares = std::move(w->shares);
    recycle(w);
    settleAll(std::move(shares), false);
    return;
  }
  auto it = std::upper_bound(retry_.begin(), retry_.end(), w->seq,
                             [](uint64_t seq, const WriteReq* r) { return seq < r->seq; });
  retry_.insert(it, w);
  retry_bytes_ += w->buf.size();
}

WriteReq* TcpOutput::takeReq() {
  if (free_reqs_.empty()) {
    auto* w = new WriteReq;
    w->req.data = w;
    w->buf.reserve(kChunkBytes + 1024);
    return w;
  }
  WriteReq* w = free_reqs_.back();
  free_reqs_.pop_back();
  return w;
}

void TcpOutput::recycle(WriteReq* w) {
  // Keep as many as can be in flight at once; a chunk grown past one huge message is
  // not kept, so one outlier does not pin its memory.
  if (free_reqs_.size() >= kMaxWritesInFlight || w->buf.capacity() > 4 * kChunkBytes) {
    delete w;
    return;
  }
  w->buf.clear();
  w->events = 0;
  w->shares.clear();
  free_reqs_.push_back(w);
}

void TcpOutput::updateGauges() {
  setGauge(queued_bytes_, pendingBytes());
  setGauge(queued_events_, pending_events_);
}

void TcpOutput::checkFlushed() {
  if (!flush_done_ || !queue_.empty() || !retry_.empty() || inflight_ > 0) return;
  auto done = std::move(flush_done_);
  flush_done_ = nullptr;
  done();
}

void TcpOutput::flush(std::function<void()> done) {
  flush_done_ = std::move(done);
  flushing_ = true;
  // Waiting out a long backoff would only run into shutdown_timeout: try once now, and
  // give up if that attempt fails (connectFailed).
  if (!conn_ && !resolving_ && timer_ && uv_is_active(reinterpret_cast<uv_handle_t*>(timer_)) &&
      (!queue_.empty() || !retry_.empty())) {
    uv_timer_stop(timer_);
    connect();
  }
  pump();
  checkFlushed();
}

void TcpOutput::close() {
  if (closed_) return;
  closed_ = true;
  if (pending_events_ > 0) {
    spdlog::warn("[{}] closing with {} events not written to {}", name_, pending_events_, address_);
  }
  if (on_delivery_) {
    // What waits here will not be written any more: its shares fail now, while whoever
    // holds them is still there (writes already in libuv still report as they end).
    std::vector<PendingSharePtr> shares;
    for (WriteReq* w : retry_) {
      for (auto& s : w->shares)
        shares.push_back(std::move(s));
      w->shares.clear();
    }
    for (QueuedBatch& q : queue_) {
      if (q.share) shares.push_back(std::move(q.share));
    }
    settleAll(std::move(shares), false);
  }
  if (resolving_) {
    resolving_->owner = nullptr;
    uv_cancel(reinterpret_cast<uv_req_t*>(&resolving_->req));
    resolving_ = nullptr;
  }
  for (uv_timer_t** t : {&timer_, &send_timer_}) {
    if (*t) {
      uv_close(reinterpret_cast<uv_handle_t*>(*t),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      *t = nullptr;
    }
  }
  if (check_) {
    uv_close(reinterpret_cast<uv_handle_t*>(check_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_check_t*>(h); });
    check_ = nullptr;
  }
  if (Conn* c = conn_) {
    conn_ = nullptr;
    if (c->state == ConnState::Connected) {
      // FIN after whatever libuv still holds, so the peer sees a clean end of stream.
      uv_read_stop(reinterpret_cast<uv_stream_t*>(&c->tcp));
      c->state = ConnState::ShuttingDown;
      if (uv_shutdown(&c->shutdown_req, reinterpret_cast<uv_stream_t*>(&c->tcp),
                      &TcpOutput::onShutdown) != 0) {
        closeConn(c, -1);
      }
    } else {
      closeConn(c, -1);
    }
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Addresses, signer, option table

bool splitOutputAddress(const std::string& text, bool allow_port_zero, std::string& host,
                        uint16_t& port, std::string& error) {
  HostPort hp;
  if (!splitHostPort(text, "127.0.0.1:5565\" or \"collector.example.com:5565", hp, error)) {
    return false;
  }
  host = hp.host;
  if (hp.bracketed) {
    sockaddr_in6 a{};
    if (uv_ip6_addr(host.c_str(), 0, &a) != 0) {
      error = "'" + host + "' in brackets is not an IPv6 address";
      return false;
    }
  } else if (host.empty()) {
    error = "the host is missing: TcpOutput connects to one peer, e.g. \"127.0.0.1:5565\"";
    return false;
  } else if (!parseHostChars(host)) {
    error = "'" + host + "' is not a host name or IP address";
    return false;
  }
  if (hp.port < (allow_port_zero ? 0 : 1)) {
    error = "the port must be a number from 1 to 65535";
    return false;
  }
  port = static_cast<uint16_t>(hp.port);
  return true;
}

bool parseOutputSigner(const std::map<std::string, std::string>& table, OutputSigner& out,
                       std::string& key, std::string& error) {
  out = OutputSigner{};
  for (const auto& [k, v] : table) {
    if (k != "name" && k != "hmac_hash" && k != "hmac_key" && k != "version") {
      key = k;
      error = "unknown key for a signer (known keys: name, hmac_hash, hmac_key, version)";
      return false;
    }
  }
  auto it = table.find("name");
  if (it == table.end() || it->second.empty()) {
    key = "name";
    error = "required: the signer name receivers look the key up by (\"<name>_<version>\")";
    return false;
  }
  if (it->second.size() > kMaxSignerName) {
    key = "name";
    error = fmt::format("longer than {} bytes: the signed header would not fit in 255 bytes",
                        kMaxSignerName);
    return false;
  }
  out.name = it->second;
  it = table.find("hmac_key");
  if (it == table.end() || it->second.empty()) {
    key = "hmac_key";
    error = "required: the shared HMAC key (a non-empty string)";
    return false;
  }
  out.key = it->second;
  it = table.find("hmac_hash");
  if (it != table.end()) {
    if (it->second == "sha1") {
      out.hash = HmacHash::SHA1;
    } else if (it->second != "md5") {
      key = "hmac_hash";
      error = "expected \"md5\" or \"sha1\", got \"" + it->second + "\"";
      return false;
    }
  }
  it = table.find("version");
  if (it != table.end()) {
    const std::string& v = it->second;
    const bool ok = !v.empty() && v.size() <= 10 &&
                    v.find_first_not_of("0123456789") == std::string::npos &&
                    std::stoull(v) <= UINT32_MAX;
    if (!ok) {
      key = "version";
      error = "expected an integer from 0 to 4294967295";
      return false;
    }
    out.version = static_cast<uint32_t>(std::stoull(v));
  }
  return true;
}

size_t framedRecordSize(size_t body_len, const OutputSigner* s) {
  size_t header = 1 + varintSize(body_len);  // message_length
  if (s) {
    if (s->hash == HmacHash::SHA1) header += 2;                 // hmac_hash_function
    header += 1 + varintSize(s->name.size()) + s->name.size();  // hmac_signer
    header += 1 + varintSize(s->version);                       // hmac_key_version
    header += 2 + (s->hash == HmacHash::SHA1 ? 20 : 16);        // hmac
  }
  return 3 + header + body_len;  // 0x1E, header length, header, 0x1F, body
}

PluginType tcpOutputType() {
  return PluginType{
      .name = "TcpOutput",
      .kind = PluginKind::Output,
      .summary =
          "Heka's TCP output: framed protobuf messages to one peer (hekad's TcpInput, or "
          "ferry's). Heka messages are relayed byte for byte; Fluentd events are converted "
          "(bridge.md). Bounded memory queue, reconnect with backoff, optional HMAC signing.",
      .options =
          {
              {.key = "address",
               .type = OptionType::String,
               .required = true,
               .description = "The peer, `host:port` or `[v6]:port`. A host name is resolved "
                              "at every connection attempt; every address it resolves to is "
                              "tried in order."},
              {.key = "local_address",
               .type = OptionType::String,
               .description = "Local `ip:port` to bind before connecting (port 0: any)."},
              {.key = "encoder",
               .type = OptionType::String,
               .default_value = "ProtobufEncoder",
               .description = "`ProtobufEncoder` or a table of that type; nothing else."},
              {.key = "use_framing",
               .type = OptionType::Bool,
               .default_value = "true",
               .description = "Only `true`: protobuf messages are not self-delimiting, so an "
                              "unframed stream could not be split by any reader."},
              {.key = "signer",
               .type = OptionType::Table,
               .description = "`[<output>.signer]` with `name`, `hmac_key`, `hmac_hash` "
                              "(`\"md5\"` default, or `\"sha1\"`) and `version` (default 0): "
                              "sign every header as Heka's clients do (heka.md §2.2). hekad's "
                              "own outputs never sign."},
              {.key = "keep_alive",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "TCP keep-alive on the connection."},
              {.key = "keep_alive_period",
               .type = OptionType::Int,
               .default_value = "0",
               .min = 0,
               .max = 86'400,
               .description = "Keep-alive idle time in seconds (hekad's unit); 0 = the OS "
                              "default."},
              {.key = "reconnect_after",
               .type = OptionType::Int,
               .default_value = "0",
               .min = 0,
               .max = 1'000'000'000,
               .description = "Close the connection after this many messages and open a new "
                              "one (spreads load behind a TCP load balancer); 0 = never."},
              {.key = "send_timeout",
               .type = OptionType::Duration,
               .default_value = "60s",
               .min = 0,
               .max = 3'600'000,
               .description = "A write handed to the socket that does not complete within "
                              "this (the peer accepted the connection but stopped reading) "
                              "closes the connection (`send_timeouts`); its data is resent "
                              "after the reconnect. 0 = off."},
              {.key = "queue_max_bytes",
               .type = OptionType::Size,
               .default_value = "64MiB",
               .min = 1024,
               .max = int64_t{1} << 40,
               .description = "Memory for messages not yet written (framed bytes, including "
                              "what libuv holds). When full, the oldest are dropped "
                              "(`dropped_events`)."},
              {.key = "retry_initial",
               .type = OptionType::Duration,
               .default_value = "250ms",
               .min = 1,
               .max = 3'600'000,
               .description = "First wait before reconnecting; doubles after each failure."},
              {.key = "retry_max",
               .type = OptionType::Duration,
               .default_value = "30s",
               .min = 1,
               .max = 86'400'000,
               .description = "Longest wait between attempts. Each wait is jittered to "
                              "[wait/2, wait]."},
              {.key = "use_tls",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "hekad's TLS client; only `false` is supported."},
              {.key = "use_buffering",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "Accepted for hekad configs (whose TcpOutput buffers on disk "
                              "by default); ferry queues in memory (`queue_max_bytes`) and "
                              "logs a warning when this is true."},
              {.key = "buffering",
               .type = OptionType::Table,
               .description = "hekad's disk buffer settings; accepted, not used yet (see "
                              "`use_buffering`)."},
          },
      .validate_with_config = [](const PluginConfig& cfg,
                                 const Config& config) { checkEncoder(cfg, &config); },
      .validate =
          [](const PluginConfig& cfg) {
            std::string host, error;
            uint16_t port = 0;
            if (!splitOutputAddress(cfg.str("address"), false, host, port, error))
              cfg.fail("address", fmt::format("\"{}\": {}", cfg.str("address"), error));
            if (cfg.has("local_address") && !cfg.str("local_address").empty()) {
              sockaddr_storage addr{};
              if (!splitOutputAddress(cfg.str("local_address"), true, host, port, error) ||
                  !localAddress(host, port, addr)) {
                cfg.fail("local_address",
                         fmt::format("\"{}\": expected an IP address and port, e.g. "
                                     "\"127.0.0.1:0\" (host names are not resolved)",
                                     cfg.str("local_address")));
              }
            }
            if (cfg.str("encoder").empty()) {
              cfg.fail("encoder", "expected \"ProtobufEncoder\" or a table of that type");
            }
            if (!cfg.boolean("use_framing")) {
              cfg.fail("use_framing",
                       "only true is supported: protobuf messages carry no length of their "
                       "own, so unframed messages written back to back cannot be told apart "
                       "by any reader");
            }
            if (cfg.boolean("use_tls")) {
              cfg.fail("use_tls",
                       "TLS is not supported by ferry's TcpOutput: use a TLS tunnel "
                       "(stunnel, haproxy) or set use_tls = false");
            }
            if (cfg.has("signer")) {
              const OptionValue& v = cfg.get("signer");
              if (!v.list.empty()) {  // an array of tables inside [out.signer]
                throw ConfigError(cfg.file, v.line, cfg.name + ".signer." + v.list[0],
                                  "unknown key for a signer (known keys: name, hmac_hash, "
                                  "hmac_key, version)");
              }
              OutputSigner s;
              std::string key;
              if (!parseOutputSigner(v.table, s, key, error)) {
                throw ConfigError(cfg.file, cfg.get("signer").line,
                                  cfg.name + ".signer" + (key.empty() ? "" : "." + key), error);
              }
            }
            if (cfg.durationMs("retry_max") < cfg.durationMs("retry_initial")) {
              cfg.fail("retry_max", fmt::format("must be at least retry_initial ({} ms)",
                                                cfg.durationMs("retry_initial")));
            }
          },
      .make_output = [](const PluginContext& ctx) -> std::unique_ptr<Output> {
        return std::make_unique<TcpOutput>(ctx);
      }};
}

}  // namespace ferry::heka
