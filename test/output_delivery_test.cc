// Unit tests for Output::resolveOnDelivery() in the network outputs: ForwardOutput against
// an in-process aggregator on 127.0.0.1 that acks only when the test says so, TcpOutput
// against a listener that reads everything, both on a private libuv loop. In delivery
// mode a share is accepted only once its events are delivered (acked / written) and
// failed when they are dropped; without it the old accept-on-queue behaviour holds.
#include <catch2/catch.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "src/config_loader.h"
#include "src/forward/forward_output.h"
#include "src/heka/heka_output.h"
#include "src/msgpack_writer.h"
#include "src/plugin.h"
#include "src/stats.h"
#include "test/test_loop.h"

namespace {

using ferry::AckShare;
using ferry::Batch;
using ferry::BatchPtr;
using ferry::Delivery;
using ferry::Event;
using ferry::EventFormat;

// ---- Loop ----

using Loop = ferry::test::TestLoop;

// ---- A peer: listens on 127.0.0.1, keeps what each connection sends ----

struct Peer;

struct PeerConn {
  uv_tcp_t tcp{};
  Peer* peer = nullptr;
  std::string in;
  size_t scanned = 0;  // forward: where the chunk-id search goes on
  bool closed = false;
};

struct WriteBuf {
  uv_write_t req{};
  std::string bytes;
};

struct Peer {
  uv_loop_t* loop;
  uv_tcp_t server{};
  int port = 0;
  std::vector<std::unique_ptr<PeerConn>> conns;
  // Forward: chunk ids seen, with the connection they came on, in arrival order.
  std::vector<std::pair<std::string, PeerConn*>> chunks;

  explicit Peer(uv_loop_t* l) : loop(l) {
    uv_tcp_init(loop, &server);
    server.data = this;
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", 0, &a);
    REQUIRE(uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&a), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&server), 16, &Peer::onConnection) == 0);
    sockaddr_storage ss{};
    int len = sizeof(ss);
    uv_tcp_getsockname(&server, reinterpret_cast<sockaddr*>(&ss), &len);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  }
  ~Peer() {
    // Closed here, freed once their close callbacks ran (the same loop turn).
    uv_close(reinterpret_cast<uv_handle_t*>(&server), nullptr);
    for (auto& c : conns)
      uv_close(reinterpret_cast<uv_handle_t*>(&c->tcp), nullptr);
    uv_run(loop, UV_RUN_NOWAIT);
  }

  static void onConnection(uv_stream_t* s, int status) {
    auto* self = static_cast<Peer*>(s->data);
    if (status != 0) return;
    self->conns.push_back(std::make_unique<PeerConn>());
    PeerConn* c = self->conns.back().get();
    c->peer = self;
    uv_tcp_init(self->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(s, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) return;
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char space[65536];
          *buf = uv_buf_init(space, sizeof(space));
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* buf) {
          auto* pc = static_cast<PeerConn*>(st->data);
          if (n < 0) {
            pc->closed = true;
            uv_read_stop(st);
            return;
          }
          pc->in.append(buf->base, static_cast<size_t>(n));
          pc->peer->scan(*pc);
        });
  }

  // The `chunk` option of each forward request: "\xa5chunk" then a 24-byte fixstr.
  void scan(PeerConn& c) {
    static const std::string kKey = std::string("\xa5") + "chunk" + "\xb8";
    for (;;) {
      const size_t at = c.in.find(kKey, c.scanned);
      if (at == std::string::npos || at + kKey.size() + 24 > c.in.size()) return;
      chunks.emplace_back(c.in.substr(at + kKey.size(), 24), &c);
      c.scanned = at + kKey.size() + 24;
    }
  }

  size_t bytesReceived() const {
    size_t n = 0;
    for (const auto& c : conns)
      n += c->in.size();
    return n;
  }

  // Sends {"ack": id} for chunk `i` (arrival order).
  void ack(size_t i) {
    const auto& [id, conn] = chunks.at(i);
    auto* w = new WriteBuf;
    w->bytes = std::string("\x81\xa3") + "ack" + "\xb8" + id;
    uv_buf_t b = uv_buf_init(w->bytes.data(), static_cast<unsigned>(w->bytes.size()));
    w->req.data = w;
    REQUIRE(uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&conn->tcp), &b, 1,
                     [](uv_write_t* r, int) { delete static_cast<WriteBuf*>(r->data); }) == 0);
  }
};

// A port nothing listens on: bound, read, closed.
int closedPort(uv_loop_t* loop) {
  uv_tcp_t t{};
  uv_tcp_init(loop, &t);
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&t, reinterpret_cast<const sockaddr*>(&a), 0);
  sockaddr_storage ss{};
  int len = sizeof(ss);
  uv_tcp_getsockname(&t, reinterpret_cast<sockaddr*>(&ss), &len);
  const int port = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);
  return port;
}

// ---- Batches and shares ----

// One batch's share: -1 unresolved, 1 accepted, 0 failed.
struct Outcome {
  int result = -1;
  std::shared_ptr<Delivery> delivery =
      std::make_shared<Delivery>([this](bool ok) { result = ok ? 1 : 0; });
  AckShare share() { return AckShare(delivery); }
};

BatchPtr fluentBatch(const std::string& tag, int events, size_t record_bytes) {
  auto b = std::make_shared<Batch>();
  b->format = EventFormat::FluentRecord;
  b->tag = tag;
  std::string bytes;
  for (int i = 0; i < events; ++i) {
    Event e;
    e.time_ns = int64_t{1'700'000'000} * 1'000'000'000 + i;
    e.time_off = static_cast<uint32_t>(bytes.size());
    ferry::mp::Writer w(bytes);
    w.eventTime(1'700'000'000, static_cast<uint32_t>(i));
    e.time_len = static_cast<uint32_t>(bytes.size() - e.time_off);
    e.record_off = static_cast<uint32_t>(bytes.size());
    w.mapHeader(1);
    w.str("message");
    w.str(std::string(record_bytes, static_cast<char>('a' + i % 26)));
    e.record_len = static_cast<uint32_t>(bytes.size() - e.record_off);
    b->events.push_back(e);
  }
  b->bytes = std::make_shared<const std::string>(std::move(bytes));
  return b;
}

BatchPtr hekaBatch(int events, size_t body_bytes) {
  auto b = std::make_shared<Batch>();
  b->format = EventFormat::HekaMessage;
  std::string bytes;
  for (int i = 0; i < events; ++i) {
    Event e;
    e.record_off = static_cast<uint32_t>(bytes.size());
    bytes.append(body_bytes, 'h');
    e.record_len = static_cast<uint32_t>(body_bytes);
    b->events.push_back(e);
  }
  b->bytes = std::make_shared<const std::string>(std::move(bytes));
  return b;
}

// Holds or resolves shares as the test says: stands in for a secondary.
class HoldingOutput : public ferry::Output {
 public:
  void submit(BatchPtr batch, AckShare ack) override {
    events += batch->events.size();
    held.push_back(std::move(ack));
  }
  void flush(std::function<void()> done) override { done(); }
  size_t events = 0;
  std::vector<AckShare> held;
};

// ---- An output under test, with its config, stats and loop ----

struct Harness {
  Loop l;
  ferry::StatsRegistry stats;
  ferry::Config config;
  std::unique_ptr<ferry::Output> out;
  HoldingOutput secondary;  // destroyed first: shares it still holds fail into `out`

  void make(const std::string& type, const std::string& options, const std::string& global = "") {
    ferry::PluginRegistry reg;
    ferry::registerBuiltinPlugins(reg);
    config =
        ferry::loadConfigString((global.empty() ? "" : "[ferry]\n" + global + "\n") +
                                    "[out]\ntype = \"" + type + "\"\nmatch = \"**\"\n" + options,
                                "t.toml", reg);
    ferry::PluginContext ctx;
    ctx.loop = &l.loop;
    ctx.stats = &stats;
    ctx.config = &config.outputs.at(0);
    ctx.hostname = "test-host";
    ctx.full_config = &config;
    ctx.find_output = [this](const std::string& name) -> ferry::Output* {
      return name == "sec" ? &secondary : nullptr;
    };
    out = reg.find(type)->make_output(ctx);
  }
  uint64_t counter(const char* name) const { return stats.value("out", name); }
  ~Harness() {
    if (out) out->close();
    l.runFor(20);
  }
};

std::string forwardOptions(int port, const std::string& extra = "") {
  return "servers = [{host = \"127.0.0.1\", port = " + std::to_string(port) +
         "}]\n"
         "heartbeat_type = \"none\"\nflush_interval = \"5ms\"\nretry_wait = \"10ms\"\n"
         "max_inflight_chunks = 16\n" +
         extra;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// ForwardOutput

TEST_CASE("forward: default mode accepts at chunking, delivery mode at the ack",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  const bool on_delivery = GENERATE(false, true);
  CAPTURE(on_delivery);
  h.make("ForwardOutput", forwardOptions(peer.port));
  if (on_delivery) h.out->resolveOnDelivery();

  Outcome o;
  h.out->submit(fluentBatch("app", 3, 20), o.share());
  if (!on_delivery) {
    CHECK(o.result == 1);  // as before: accepted once in a chunk
    return;
  }
  CHECK(o.result == -1);
  REQUIRE(h.l.runUntil([&] { return peer.chunks.size() == 1; }));
  h.l.runFor(30);
  CHECK(o.result == -1);  // sent, not acked: not delivered
  peer.ack(0);
  REQUIRE(h.l.runUntil([&] { return o.result != -1; }));
  CHECK(o.result == 1);
  CHECK(h.counter("chunks_delivered") == 1);
}

TEST_CASE("forward: delivery mode without acks accepts once written",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  h.make("ForwardOutput", forwardOptions(peer.port, "require_ack_response = false\n"));
  h.out->resolveOnDelivery();
  Outcome o;
  h.out->submit(fluentBatch("app", 2, 20), o.share());
  CHECK(o.result == -1);
  REQUIRE(h.l.runUntil([&] { return o.result != -1; }));
  CHECK(o.result == 1);
  CHECK(h.counter("chunks_delivered") == 1);
  CHECK(h.l.runUntil([&] { return peer.bytesReceived() > 0; }));
}

TEST_CASE("forward: delivery mode fails a share whose chunk runs out of retries",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  h.make("ForwardOutput",
         forwardOptions(peer.port, "retry_max_times = 0\nack_response_timeout = \"100ms\"\n"));
  h.out->resolveOnDelivery();
  Outcome o;
  h.out->submit(fluentBatch("app", 2, 20), o.share());
  REQUIRE(h.l.runUntil([&] { return peer.chunks.size() == 1; }));
  // The ack never comes: ack timeout, no retry left, no secondary: dropped.
  REQUIRE(h.l.runUntil([&] { return o.result != -1; }));
  CHECK(o.result == 0);
  CHECK(h.counter("chunks_given_up") == 1);
  CHECK(h.counter("events_dropped") == 2);
}

TEST_CASE("forward: a batch spanning chunks waits for all; batches sharing a chunk",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  // ~130-byte entries, 256-byte chunks: two entries per chunk.
  h.make("ForwardOutput", forwardOptions(peer.port, "chunk_limit_size = 256\n"));
  h.out->resolveOnDelivery();
  Outcome big, small;
  h.out->submit(fluentBatch("app", 5, 100), big.share());    // chunks 0, 1, 2 (half)
  h.out->submit(fluentBatch("app", 1, 100), small.share());  // the rest of chunk 2
  REQUIRE(h.l.runUntil([&] { return peer.chunks.size() == 3; }));
  CHECK(h.counter("chunks_sealed") == 3);
  // Ack the last chunk: `small` is all in it; `big` still waits for chunks 0 and 1.
  peer.ack(2);
  REQUIRE(h.l.runUntil([&] { return small.result != -1; }));
  CHECK(small.result == 1);
  CHECK(big.result == -1);
  peer.ack(1);
  h.l.runUntil([&] { return h.counter("chunks_delivered") == 2; });
  CHECK(big.result == -1);
  peer.ack(0);
  REQUIRE(h.l.runUntil([&] { return big.result != -1; }));
  CHECK(big.result == 1);
}

TEST_CASE("forward: one failed chunk fails the batch even when its others are delivered",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  h.make("ForwardOutput", forwardOptions(peer.port,
                                         "chunk_limit_size = 256\nretry_max_times = 0\n"
                                         "ack_response_timeout = \"150ms\"\n"));
  h.out->resolveOnDelivery();
  Outcome big;
  h.out->submit(fluentBatch("app", 4, 100), big.share());  // chunks 0 and 1
  REQUIRE(h.l.runUntil([&] { return peer.chunks.size() == 2; }));
  peer.ack(0);
  h.l.runUntil([&] { return h.counter("chunks_delivered") == 1; });
  CHECK(big.result == -1);
  // Chunk 1 is never acked: ack timeout, given up.
  REQUIRE(h.l.runUntil([&] { return big.result != -1; }));
  CHECK(big.result == 0);
}

TEST_CASE("forward: delivery mode settles by what the secondary does",
          "[delivery][forward_output]") {
  Harness h;
  const int port = closedPort(&h.l.loop);
  const bool secondary_ok = GENERATE(true, false);
  CAPTURE(secondary_ok);
  h.make("ForwardOutput", forwardOptions(port, "retry_max_times = 0\nsecondary = \"sec\"\n"));
  h.out->resolveOnDelivery();
  Outcome o;
  h.out->submit(fluentBatch("app", 3, 20), o.share());
  // Connection refused, no retry left: handed to the secondary, which holds it.
  REQUIRE(h.l.runUntil([&] { return h.secondary.held.size() == 1; }));
  CHECK(h.secondary.events == 3);
  CHECK(o.result == -1);
  if (secondary_ok) {
    h.secondary.held[0].accept();
    CHECK(o.result == 1);
  } else {
    h.secondary.held[0].fail();
    CHECK(o.result == 0);
  }
}

TEST_CASE("forward: the stop deadline fails what is not delivered", "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  const bool on_delivery = GENERATE(false, true);
  CAPTURE(on_delivery);
  // shutdown_timeout 400ms: the output gives up at 3/4 of it.
  h.make("ForwardOutput", forwardOptions(peer.port), "shutdown_timeout = \"400ms\"");
  if (on_delivery) h.out->resolveOnDelivery();
  Outcome o;
  h.out->submit(fluentBatch("app", 2, 20), o.share());
  REQUIRE(h.l.runUntil([&] { return peer.chunks.size() == 1; }));
  bool flushed = false;
  h.out->flush([&] { flushed = true; });
  REQUIRE(h.l.runUntil([&] { return flushed; }));
  CHECK(h.counter("events_dropped") == 2);
  CHECK(o.result == (on_delivery ? 0 : 1));
}

TEST_CASE("forward: delivery mode neither holds nor refuses at total_limit_size",
          "[delivery][forward_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  const bool on_delivery = GENERATE(false, true);
  CAPTURE(on_delivery);
  h.make("ForwardOutput", forwardOptions(peer.port,
                                         "total_limit_size = 1024\n"
                                         "chunk_limit_size = 1024\n"));
  if (on_delivery) h.out->resolveOnDelivery();
  Outcome a, b, c;
  h.out->submit(fluentBatch("app", 12, 100), a.share());  // ~1.5 KiB: over the limit
  h.out->submit(fluentBatch("app", 12, 100), b.share());
  h.out->submit(fluentBatch("app", 1, 100), c.share());
  if (!on_delivery) {
    // As before: the first is held (acks_held), then batches are refused.
    CHECK(a.result == -1);
    CHECK(h.counter("acks_held") == 1);
    CHECK(b.result == 0);
    CHECK(c.result == 0);
    CHECK(h.counter("events_refused") == 13);
    return;
  }
  CHECK(h.counter("acks_held") == 0);
  CHECK(h.counter("events_refused") == 0);
  CHECK(a.result == -1);
  CHECK(b.result == -1);
  CHECK(c.result == -1);
  size_t acked = 0;
  REQUIRE(h.l.runUntil([&] {
    while (acked < peer.chunks.size())
      peer.ack(acked++);
    return a.result != -1 && b.result != -1 && c.result != -1;
  }));
  CHECK(acked >= 3);
  CHECK(a.result == 1);
  CHECK(b.result == 1);
  CHECK(c.result == 1);
}

// ---------------------------------------------------------------------------------------
// TcpOutput

TEST_CASE("heka: default mode accepts when queued, delivery mode once written",
          "[delivery][heka_output]") {
  Harness h;
  Peer peer(&h.l.loop);
  const bool on_delivery = GENERATE(false, true);
  CAPTURE(on_delivery);
  h.make("TcpOutput", "address = \"127.0.0.1:" + std::to_string(peer.port) + "\"\n");
  if (on_delivery) h.out->resolveOnDelivery();
  Outcome o;
  h.out->submit(hekaBatch(3, 100), o.share());
  CHECK(o.result == (on_delivery ? -1 : 1));
  REQUIRE(h.l.runUntil([&] { return o.result != -1 && h.counter("events_out") == 3; }));
  CHECK(o.result == 1);
  // 0x1E, header length, header {message_length}, 0x1F, body.
  REQUIRE(h.l.runUntil([&] { return peer.bytesReceived() == 3 * (1 + 1 + 2 + 1 + 100); }));
}

TEST_CASE("heka: delivery mode fails what drop-oldest and a failed stop drop",
          "[delivery][heka_output]") {
  Harness h;
  const int port = closedPort(&h.l.loop);
  const bool on_delivery = GENERATE(false, true);
  CAPTURE(on_delivery);
  h.make("TcpOutput", "address = \"127.0.0.1:" + std::to_string(port) +
                          "\"\nqueue_max_bytes = 1024\nretry_initial = \"10s\"\n"
                          "retry_max = \"10s\"\n");
  if (on_delivery) h.out->resolveOnDelivery();
  h.l.runFor(20);  // the first connect is refused: a 10 s backoff starts
  Outcome a, b;
  h.out->submit(hekaBatch(1, 600), a.share());
  h.out->submit(hekaBatch(1, 600), b.share());  // no room for both: `a` is dropped
  CHECK(h.counter("dropped_events") == 1);
  CHECK(a.result == (on_delivery ? 0 : 1));
  CHECK(b.result == (on_delivery ? -1 : 1));
  // Stopping: one more connect, refused: what is queued is dropped.
  bool flushed = false;
  h.out->flush([&] { flushed = true; });
  REQUIRE(h.l.runUntil([&] { return flushed; }));
  CHECK(h.counter("dropped_events") == 2);
  CHECK(b.result == (on_delivery ? 0 : 1));
}

TEST_CASE("heka: delivery mode fails what is still queued at close", "[delivery][heka_output]") {
  Harness h;
  const int port = closedPort(&h.l.loop);
  h.make("TcpOutput", "address = \"127.0.0.1:" + std::to_string(port) +
                          "\"\nretry_initial = \"10s\"\nretry_max = \"10s\"\n");
  h.out->resolveOnDelivery();
  h.l.runFor(20);
  Outcome o;
  h.out->submit(hekaBatch(2, 50), o.share());
  h.l.runFor(20);
  CHECK(o.result == -1);
  h.out->close();
  CHECK(o.result == 0);
}
