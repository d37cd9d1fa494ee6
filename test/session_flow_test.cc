// The inputs' read gate (src/session_flow.h) on a real libuv stream (a socketpair): pressure
// stops and restarts reads, a connection joining during pressure starts paused, a stopped
// reader never restarts, the unread-ack limit pauses one connection and its timeout closes
// it, the frame deadline does not run while paused, and the accept gate's two causes.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <string>

#include "src/flow_control.h"
#include "src/session_flow.h"
#include "src/stats.h"

using namespace ferry;

namespace {

struct Pipe {
  uv_loop_t loop;
  uv_pipe_t pipe;
  int peer = -1;
  std::string got;
  char buf[4096];
  StatsRegistry stats;
  SessionFlowCounters counters = registerFlowCounters(stats, "in", true);
  std::string expired;

  Pipe() {
    uv_loop_init(&loop);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    peer = fds[1];
    uv_pipe_init(&loop, &pipe, 0);
    REQUIRE(uv_pipe_open(&pipe, fds[0]) == 0);
    pipe.data = this;
  }
  ~Pipe() {
    uv_close(reinterpret_cast<uv_handle_t*>(&pipe), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    close(peer);
  }
  uv_stream_t* stream() { return reinterpret_cast<uv_stream_t*>(&pipe); }
  static void onAlloc(uv_handle_t* h, size_t, uv_buf_t* b) {
    auto* self = static_cast<Pipe*>(h->data);
    b->base = self->buf;
    b->len = sizeof(self->buf);
  }
  static void onRead(uv_stream_t* s, ssize_t n, const uv_buf_t* b) {
    if (n > 0) static_cast<Pipe*>(s->data)->got.append(b->base, static_cast<size_t>(n));
  }
  // Sends bytes from the peer and runs the loop once: what arrives was read.
  void send(const std::string& s) {
    REQUIRE(write(peer, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_run(&loop, UV_RUN_NOWAIT);
  }
  uint64_t count(const char* name) { return stats.value("in", name); }
};

}  // namespace

TEST_CASE("pressure stops and restarts reads; joining under pressure starts paused") {
  Pipe p;
  FlowControl flow(0);
  flow.output_full.raise("out");
  SessionFlow f(&p.loop, p.stream(), &Pipe::onAlloc, &Pipe::onRead, {}, p.counters,
                [](const char*) {});
  f.start(&flow);
  CHECK(f.paused());
  p.send("abc");
  CHECK(p.got.empty());
  flow.output_full.lower("out");
  p.send("");
  CHECK(p.got == "abc");
  flow.budget_pressure.raise("memory_budget");
  p.send("def");
  CHECK(p.got == "abc");
  flow.budget_pressure.lower("memory_budget");
  p.send("");
  CHECK(p.got == "abcdef");
  CHECK(p.count("read_pauses") == 2);
  CHECK(p.count("read_resumes") == 2);
  CHECK(p.count("paused_output_full") == 1);
  CHECK(p.count("paused_memory_budget") == 1);
}

TEST_CASE("a stopped reader is never restarted by pressure ending") {
  Pipe p;
  FlowControl flow(0);
  SessionFlow f(&p.loop, p.stream(), &Pipe::onAlloc, &Pipe::onRead, {}, p.counters,
                [](const char*) {});
  f.start(&flow);
  flow.reload.raise("reload");
  f.stop();
  CHECK(flow.reload.members() == 0);
  flow.reload.lower("reload");
  p.send("x");
  CHECK(p.got.empty());
}

TEST_CASE("unread acks pause one connection, resume at half, and time out") {
  Pipe p;
  SessionFlowLimits limits;
  limits.ack_queue_limit = 1000;
  limits.ack_queue_timeout_ms = 20;
  SessionFlow f(&p.loop, p.stream(), &Pipe::onAlloc, &Pipe::onRead, limits, p.counters,
                [&p](const char* why) { p.expired = why; });
  f.start(nullptr);
  f.ackQueue(1000);  // at the limit: fine
  CHECK_FALSE(f.paused());
  f.ackQueue(1001);
  CHECK(f.paused());
  f.ackQueue(501);  // between the marks: still paused
  CHECK(f.paused());
  f.ackQueue(500);
  CHECK_FALSE(f.paused());
  p.send("a");
  CHECK(p.got == "a");
  CHECK(p.count("paused_read_buffer") == 1);

  f.ackQueue(5000);
  CHECK(f.paused());
  uv_run(&p.loop, UV_RUN_DEFAULT);  // only the ack deadline keeps the loop alive
  CHECK(p.expired.find("ack_queue_timeout") != std::string::npos);
  CHECK(p.count("slow_ack_readers_closed") == 1);
  f.close();
}

TEST_CASE("the frame deadline fires for a partial frame, not while paused") {
  Pipe p;
  FlowControl flow(0);
  SessionFlowLimits limits;
  limits.frame_timeout_ms = 20;
  SessionFlow f(&p.loop, p.stream(), &Pipe::onAlloc, &Pipe::onRead, limits, p.counters,
                [&p](const char* why) { p.expired = why; });
  f.start(&flow);
  f.afterRead(10, false);
  flow.output_full.raise("out");
  uv_run(&p.loop, UV_RUN_DEFAULT);  // nothing active: paused stops the deadline
  CHECK(p.expired.empty());
  flow.output_full.lower("out");
  f.afterRead(0, true);  // the frame completed: no deadline
  uv_run(&p.loop, UV_RUN_NOWAIT);
  f.afterRead(3, true);
  uv_read_stop(p.stream());  // keep only the deadline alive
  uv_run(&p.loop, UV_RUN_DEFAULT);
  CHECK(p.expired.find("frame_timeout") != std::string::npos);
  CHECK(p.count("frame_timeouts") == 1);
  f.close();
}

TEST_CASE("the accept gate waits at max_connections and under memory pressure") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  StatsRegistry stats;
  SessionFlowCounters c = registerFlowCounters(stats, "in", false);
  FlowControl flow(0);
  size_t open = 0;
  int accepted = 0;
  AcceptGate gate(
      "in", 2, c.accept_paused, [&] { return open; },
      [&] {
        ++accepted;
        ++open;
      });
  gate.join(&flow);
  gate.onConnection(&loop);
  gate.onConnection(&loop);
  gate.onConnection(&loop);
  CHECK(accepted == 2);
  CHECK(gate.pending());
  gate.retry();  // still full
  CHECK(accepted == 2);
  --open;
  gate.retry();
  CHECK(accepted == 3);
  CHECK_FALSE(gate.pending());

  --open;
  flow.budget_pressure.raise("memory_budget");
  gate.onConnection(&loop);
  CHECK(accepted == 3);
  flow.budget_pressure.lower("memory_budget");  // relief accepts the held one
  CHECK(accepted == 4);
  CHECK(stats.value("in", "accept_paused") == 2);
  gate.stop();
  uv_loop_close(&loop);
}
