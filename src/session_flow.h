// Flow control and slow-peer guards shared by the TCP inputs (ForwardInput, Heka TcpInput):
// a connection's read gate (PauseSet → uv_read_stop/start), the partial-frame deadline, the
// unread-ack limit, and the listener's accept gate (max_connections, memory pressure).
// docs/flow_control.md §2 and §5; header-only so the forward and Heka libraries share it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>
#include <uv.h>

#include "src/flow_control.h"
#include "src/stats.h"

namespace ferry {

// A one-shot libuv timer the owner can destroy at any time: the handle is heap-allocated
// and freed by its own close callback, so it does not tie the owner's lifetime to libuv.
class Deadline {
 public:
  Deadline() = default;
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
  ~Deadline() {
    if (!timer_) return;
    timer_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }

  void start(uv_loop_t* loop, uint64_t ms, std::function<void()> fire) {
    if (!timer_) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop, timer_);
    }
    fire_ = std::move(fire);
    timer_->data = this;
    uv_timer_start(
        timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<Deadline*>(t->data);
          if (self == nullptr) return;
          // Moved out first: the callback may destroy this Deadline with its session.
          auto fire = std::move(self->fire_);
          self->fire_ = nullptr;
          if (fire) fire();
        },
        ms, 0);
  }
  void stop() {
    if (timer_) uv_timer_stop(timer_);
    fire_ = nullptr;
  }

 private:
  uv_timer_t* timer_ = nullptr;
  std::function<void()> fire_;
};

// Counters one input keeps for all its connections (registered by registerFlowCounters).
struct SessionFlowCounters {
  Counter* read_pauses = nullptr;              // a connection stopped reading (first reason)
  Counter* read_resumes = nullptr;             // ... and started again (last reason cleared)
  Counter* paused[kPauseReasonCount] = {};     // paused_<reason>: times a reason was added
  Counter* frame_timeouts = nullptr;           // closed: a partial frame outlived frame_timeout
  Counter* slow_ack_readers_closed = nullptr;  // closed: unread acks for ack_queue_timeout
  Counter* accept_paused = nullptr;            // a connection was left waiting in the backlog
};

inline SessionFlowCounters registerFlowCounters(StatsRegistry& st, const std::string& input,
                                                bool acks) {
  SessionFlowCounters c;
  c.read_pauses = &st.counter(input, "read_pauses");
  c.read_resumes = &st.counter(input, "read_resumes");
  for (size_t r = 0; r < kPauseReasonCount; ++r) {
    c.paused[r] =
        &st.counter(input, std::string("paused_") + pauseReasonName(static_cast<PauseReason>(r)));
  }
  c.frame_timeouts = &st.counter(input, "frame_timeouts");
  if (acks) c.slow_ack_readers_closed = &st.counter(input, "slow_ack_readers_closed");
  c.accept_paused = &st.counter(input, "accept_paused");
  return c;
}

struct SessionFlowLimits {
  uint64_t frame_timeout_ms = 0;      // 0: no partial-frame deadline
  uint64_t ack_queue_limit = 0;       // bytes; 0: not watched (no acks in the protocol)
  uint64_t ack_queue_timeout_ms = 0;  // 0: pause only, never close
};

// One connection's reading state. The session reads only through this class: pressure
// (any PauseReason) stops and restarts the reads, `stop()` ends them for good (closing,
// half-closed, drained), after which no pressure change starts them again.
class SessionFlow {
 public:
  // `expire(counter, why)` closes the session when a guard fires (counted by the caller's
  // counter, already incremented).
  SessionFlow(uv_loop_t* loop, uv_stream_t* stream, uv_alloc_cb alloc, uv_read_cb read,
              SessionFlowLimits limits, SessionFlowCounters& counters,
              std::function<void(const char* why)> expire)
      : loop_(loop),
        stream_(stream),
        alloc_(alloc),
        read_(read),
        limits_(limits),
        counters_(counters),
        expire_(std::move(expire)) {
    pause_.setCallbacks([this] { onPause(); }, [this] { onResume(); });
  }
  SessionFlow(const SessionFlow&) = delete;
  SessionFlow& operator=(const SessionFlow&) = delete;
  ~SessionFlow() { syncReasonCounters(); }

  // Joins the process-wide fanouts (a fanout already active pauses at once: a connection
  // accepted under pressure starts paused), then reads unless paused.
  void start(FlowControl* flow) {
    if (flow) members_ = flow->joinAll(pause_);
    started_ = true;
    if (!pause_.paused()) uv_read_start(stream_, alloc_, read_);
  }

  // Reading is over for good. Leaves the fanouts, forgets the reasons (no resume), and
  // stops the frame deadline; the ack deadline keeps running, since a peer that stopped
  // sending may still refuse to read what it is owed.
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    members_.clear();
    syncReasonCounters();
    pause_.reset();
    frame_deadline_.stop();
    uv_read_stop(stream_);
  }
  // The connection is closing: nothing may fire any more.
  void close() {
    stop();
    closed_ = true;
    ack_deadline_.stop();
  }

  bool paused() const { return pause_.paused(); }
  PauseSet& pauseSet() { return pause_; }

  // After a read was processed: `buffered` bytes of an incomplete frame remain, and
  // `progressed` says whether bytes left the buffer (a frame completed, garbage skipped).
  // A new partial frame (re)starts the deadline; time paused by ferry never counts.
  void afterRead(size_t buffered, bool progressed) {
    if (buffered == 0) {
      partial_ = false;
      frame_deadline_.stop();
      return;
    }
    if (partial_ && !progressed) return;
    partial_ = true;
    armFrameDeadline();
  }

  // What the peer has not read yet: acks waiting to be written plus libuv's write queue.
  // Above the limit, this connection alone stops reading (ReadBuffer) until it is back at
  // half; staying paused for ack_queue_timeout closes it.
  void ackQueue(uint64_t bytes) {
    if (limits_.ack_queue_limit == 0 || closed_) return;
    if (!ack_over_ && bytes > limits_.ack_queue_limit) {
      ack_over_ = true;
      if (!stopped_) pause_.add(PauseReason::ReadBuffer);
      if (limits_.ack_queue_timeout_ms > 0) {
        ack_deadline_.start(loop_, limits_.ack_queue_timeout_ms, [this] {
          if (counters_.slow_ack_readers_closed) counters_.slow_ack_readers_closed->inc();
          expire_("it did not read its acks within ack_queue_timeout");
        });
      }
    } else if (ack_over_ && bytes <= limits_.ack_queue_limit / 2) {
      ack_over_ = false;
      ack_deadline_.stop();
      if (!stopped_) pause_.clear(PauseReason::ReadBuffer);
    }
  }

 private:
  void onPause() {
    counters_.read_pauses->inc();
    syncReasonCounters();
    frame_deadline_.stop();
    if (started_ && !stopped_) uv_read_stop(stream_);
  }
  void onResume() {
    counters_.read_resumes->inc();
    syncReasonCounters();
    if (!started_ || stopped_) return;
    uv_read_start(stream_, alloc_, read_);
    if (partial_) armFrameDeadline();
  }
  void armFrameDeadline() {
    if (limits_.frame_timeout_ms == 0 || stopped_ || pause_.paused()) return;
    frame_deadline_.start(loop_, limits_.frame_timeout_ms, [this] {
      counters_.frame_timeouts->inc();
      expire_("a partial request took longer than frame_timeout");
    });
  }
  // paused_<reason> counts every time a reason was added to any connection; a PauseSet
  // keeps its own totals, so the input's counters get the difference.
  void syncReasonCounters() {
    for (size_t r = 0; r < kPauseReasonCount; ++r) {
      const uint64_t now = pause_.pauses(static_cast<PauseReason>(r));
      if (now > synced_[r]) counters_.paused[r]->inc(now - synced_[r]);
      synced_[r] = now;
    }
  }

  uv_loop_t* loop_;
  uv_stream_t* stream_;
  uv_alloc_cb alloc_;
  uv_read_cb read_;
  SessionFlowLimits limits_;
  SessionFlowCounters& counters_;
  std::function<void(const char*)> expire_;
  bool started_ = false;
  bool stopped_ = false;
  bool closed_ = false;
  bool partial_ = false;
  bool ack_over_ = false;
  uint64_t synced_[kPauseReasonCount] = {};
  Deadline frame_deadline_;
  Deadline ack_deadline_;
  PauseSet pause_;
  // After pause_: memberships leave their fanouts before the set they refer to goes.
  std::vector<PauseFanout::Membership> members_;
};

// A listener's accept policy. Below max_connections and without memory pressure the
// connection callback accepts at once. Otherwise it leaves the connection to libuv, which
// holds it and stops polling the listening socket until uv_accept is called (no busy loop;
// the rest wait in the kernel backlog); a freed slot or the end of pressure accepts it.
// Pressure stops accepting before it stops reading (a new connection only adds buffers).
class AcceptGate {
 public:
  // `open()` counts the connections held now; `accept()` calls uv_accept and starts one.
  AcceptGate(std::string input, int64_t max_connections, Counter* accept_paused,
             std::function<size_t()> open, std::function<void()> accept)
      : input_(std::move(input)),
        max_connections_(max_connections),
        accept_paused_(accept_paused),
        open_(std::move(open)),
        accept_(std::move(accept)) {
    pause_.setCallbacks([] {}, [this] { retry(); });
  }
  AcceptGate(const AcceptGate&) = delete;
  AcceptGate& operator=(const AcceptGate&) = delete;

  void join(FlowControl* flow) {
    if (flow) budget_ = flow->budget_pressure.join(pause_);
  }
  // From the listener's connection callback (status OK).
  void onConnection(uv_loop_t* loop) {
    if (canAccept()) {
      accept_();
      return;
    }
    pending_ = true;
    accept_paused_->inc();
    const uint64_t now = uv_now(loop);
    if (!warned_ || now - warned_ms_ >= 60'000) {
      warned_ = true;
      warned_ms_ = now;
      if (pause_.paused()) {
        spdlog::warn("[{}] memory budget under pressure: new connections wait until it eases",
                     input_);
      } else {
        spdlog::warn("[{}] max_connections ({}) reached: new connections wait in the backlog",
                     input_, max_connections_);
      }
    }
  }
  // A connection closed, or pressure ended: take the one libuv holds, if any.
  void retry() {
    if (!pending_ || !canAccept()) return;
    pending_ = false;
    accept_();
  }
  // The listener is closing (libuv closes the held connection with it).
  void stop() {
    pending_ = false;
    budget_.leave();
    pause_.reset();
  }
  bool pending() const { return pending_; }

 private:
  bool canAccept() const {
    return !pause_.paused() && static_cast<int64_t>(open_()) < max_connections_;
  }

  std::string input_;
  int64_t max_connections_;
  Counter* accept_paused_;
  std::function<size_t()> open_;
  std::function<void()> accept_;
  bool pending_ = false;
  bool warned_ = false;
  uint64_t warned_ms_ = 0;
  PauseSet pause_;
  PauseFanout::Membership budget_;  // after pause_
};

}  // namespace ferry
