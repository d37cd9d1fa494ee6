// The connection plumbing the TCP inputs share (ForwardInput, Heka TcpInput): a session's
// socket and idle timer with their close sequence, its read buffer, the idle timeout and
// the shutdown drain; and the listener that accepts sessions through an AcceptGate, keeps
// them, and drains or closes them on shutdown. What a protocol does with the bytes stays
// in the subclass (onBytes and the hooks below).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <uv.h>

#include "src/session_flow.h"

namespace ferry {

class TcpListener;

// What a listener and all its sessions share; the input fills it in from its config.
struct TcpListenerSettings {
  std::string name;  // the input's, for log lines
  uv_loop_t* loop = nullptr;
  FlowControl* flow = nullptr;  // null: no process-wide fanouts (tests)
  int64_t max_connections = 0;
  int64_t idle_timeout_ms = 0;  // 0: an idle connection is never closed
  SessionFlowLimits limits;
  SessionFlowCounters flow_counters;
  Counter* accepted = nullptr;     // connections_accepted
  Counter* rejected = nullptr;     // connections_rejected: uv_accept failed
  Counter* idle_closed = nullptr;  // connections_idle_closed
  Counter* read_errors = nullptr;  // counted when a read fails; null: not counted
};

// One accepted connection. Owned by its listener, which deletes it once both libuv handles
// have closed.
class TcpSession {
 public:
  TcpSession(const TcpSession&) = delete;
  TcpSession& operator=(const TcpSession&) = delete;
  virtual ~TcpSession() = default;

  uv_tcp_t* handle() { return &tcp_; }
  // After uv_accept succeeded: protocol set-up, then startReading().
  virtual void start() = 0;
  // Closes now; onClose() drops what the protocol still holds. Safe to call more than once.
  void close();
  // Graceful: the peer is done sending (EOF) or ferry is stopping. Protocols that owe the
  // peer replies finish writing them first; without replies it is close().
  virtual void closeAfterWrites() { close(); }
  // Shutdown drain: read what the kernel already holds, then report drained.
  void beginDrain();
  bool drained() const { return drained_; }
  bool closing() const { return closing_; }

 protected:
  // `expire(why)` closes the session when a SessionFlow guard fires (already counted).
  TcpSession(TcpListener& listener, std::function<void(const char* why)> expire);

  // Joins the fanouts (starting paused when one is active: a connection accepted under
  // pressure) and reads unless paused; arms the idle timer.
  void startReading();
  void resetIdle();
  const std::string& inputName() const;

  // Each read's bytes (n > 0), valid until it returns. Count them, extend the idle timer
  // if the protocol wants, process, and report to flow_.afterRead unless closing.
  virtual void onBytes(const char* data, size_t n) = 0;
  // The idle timer fired while reading (not paused by flow control). True closes the
  // connection as idle; false when the session re-armed the timer or closed it itself.
  virtual bool idleExpired() { return true; }
  // Called once from close(), before the handles close.
  virtual void onClose() {}

  uv_tcp_t tcp_;
  // Pauses and the partial-frame deadline (and unread acks, if any); reads go through it.
  SessionFlow flow_;

 private:
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onIdle(uv_timer_t* t);
  static void onClosed(uv_handle_t* h);

  void checkDrained();

  TcpListener& listener_;
  uv_timer_t idle_;
  int open_handles_ = 0;
  bool closing_ = false;
  bool draining_ = false;
  bool drained_ = false;
  std::string read_buf_;
};

// An input's TCP listener: bind/listen, the accept loop behind the AcceptGate, the open
// sessions, and the shutdown steps on them.
class TcpListener {
 public:
  // `make()` creates a session for the next connection (before uv_accept).
  TcpListener(TcpListenerSettings settings, std::function<TcpSession*()> make);
  TcpListener(const TcpListener&) = delete;
  TcpListener& operator=(const TcpListener&) = delete;

  // Binds `addr` (written as `address` in errors) and listens. Throws runtime_error.
  void listen(const sockaddr* addr, unsigned flags, const std::string& address);
  void stopAccepting();
  // Every session reads what the kernel holds; `done` runs when all have.
  void drain(std::function<void()> done);
  // closeAfterWrites on every session.
  void closeAll();

  // For sessions.
  TcpListenerSettings& settings() { return settings_; }
  void onSessionClosed(TcpSession* s);
  void onSessionDrained();

 private:
  static void onConnection(uv_stream_t* server, int status);
  // Accepts the connection libuv holds and starts its session.
  void acceptOne();

  TcpListenerSettings settings_;
  std::function<TcpSession*()> make_;
  uv_tcp_t* tcp_ = nullptr;
  std::set<TcpSession*> sessions_;
  AcceptGate gate_;
  std::function<void()> drain_done_;
};

}  // namespace ferry
