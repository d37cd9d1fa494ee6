// Unit tests for BufferedOutput (src/output_buffer.h) in front of a scripted output that
// keeps every batch and resolves its share only when the test says so: memory mode's
// hand-off window, full_action and pause; the spool's write-ahead ack, in-order delivery
// from memory and from disk, retry of failed deliveries, replay after a restart, and
// `[<output>.buffer]` config errors.
#include <catch2/catch.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <unistd.h>
#include <uv.h>

#include "src/config_loader.h"
#include "src/flow_control.h"
#include "src/output_buffer.h"
#include "src/plugin.h"
#include "src/stats.h"
#include "test/test_loop.h"

namespace {

using ferry::AckShare;
using ferry::Batch;
using ferry::BatchPtr;
using ferry::BufferedOutput;
using ferry::BufferOptions;
using ferry::Delivery;
using ferry::Event;
using ferry::FullAction;

using Loop = ferry::test::TestLoop;

// Keeps what it is given; the test resolves the shares.
struct ScriptedOutput : ferry::Output {
  struct Got {
    BatchPtr batch;
    AckShare ack;
  };
  std::vector<Got> got;
  bool on_delivery = false;
  bool accept_at_once = false;  // resolve inside submit(), as ForwardOutput does with room
  size_t accepted_at_once = 0;
  uint64_t max_inflight = 0;
  void submit(BatchPtr batch, AckShare ack) override {
    if (accept_at_once) {
      ack.accept();
      ++accepted_at_once;
      return;
    }
    got.push_back(Got{std::move(batch), std::move(ack)});
  }
  void flush(std::function<void()> done) override { done(); }
  void resolveOnDelivery() override { on_delivery = true; }
  uint64_t maxInflightBytes() const override { return max_inflight; }
};

// One event whose record is {"s": seq} (msgpack; with pad, also "p": pad bytes), time a
// uint32. Built byte by byte (GCC 12 warns falsely on string literal appends here).
BatchPtr batchOf(uint32_t seq, size_t pad = 0) {
  auto b = std::make_shared<Batch>();
  std::string bytes;
  auto put = [&](std::initializer_list<unsigned> v) {
    for (unsigned c : v)
      bytes.push_back(static_cast<char>(c));
  };
  auto u32 = [&](uint32_t v) { put({0xce, v >> 24, (v >> 16) & 0xff, (v >> 8) & 0xff, v & 0xff}); };
  u32(1700000000u);
  const uint32_t rec_off = static_cast<uint32_t>(bytes.size());
  put({pad ? 0x82u : 0x81u, 0xa1, 's'});
  u32(seq);
  if (pad) {
    put({0xa1, 'p', 0xda, static_cast<unsigned>(pad >> 8), static_cast<unsigned>(pad & 0xff)});
    bytes.append(pad, 'x');
  }
  Event e;
  e.time_ns = 1700000000LL * 1000000000LL;
  e.time_off = 0;
  e.time_len = 5;
  e.record_off = rec_off;
  e.record_len = static_cast<uint32_t>(bytes.size() - rec_off);
  b->events.push_back(e);
  b->tag.assign(1, 't');
  b->bytes = std::make_shared<const std::string>(std::move(bytes));
  return b;
}

uint32_t seqOf(const BatchPtr& b) {
  const std::string_view r = b->record(b->events.at(0));
  const auto* p = reinterpret_cast<const unsigned char*>(r.data()) + 4;
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

// A client delivery: records whether and how it was resolved.
struct Client {
  int accepted = 0;
  int failed = 0;
  AckShare share() {
    return AckShare(std::make_shared<Delivery>([this](bool ok) { ok ? ++accepted : ++failed; }));
  }
};

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ferry-buffer-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
};

struct Harness {
  Loop loop;
  ferry::StatsRegistry stats;
  ferry::PluginConfig pc;
  ferry::FlowControl flow{0};
  ScriptedOutput* out = nullptr;
  std::unique_ptr<BufferedOutput> buf;

  std::unique_ptr<BufferedOutput> make(BufferOptions o, uint64_t max_inflight = 0) {
    pc.name = "out";
    ferry::PluginContext ctx;
    ctx.loop = &loop.loop;
    ctx.stats = &stats;
    ctx.config = &pc;
    ctx.flow = &flow;
    auto inner = std::make_unique<ScriptedOutput>();
    inner->max_inflight = max_inflight;
    out = inner.get();
    return std::make_unique<BufferedOutput>(ctx, std::move(inner), std::move(o));
  }
  uint64_t counter(const char* name) const { return stats.value("out", name); }
};

BufferOptions memoryOptions(uint64_t limit, FullAction action) {
  BufferOptions o;
  o.queue.name = "out";
  o.queue.memory_limit = limit;
  o.queue.full_action = action;
  return o;
}

BufferOptions spoolOptions(const std::string& dir, uint64_t memory_limit) {
  BufferOptions o = memoryOptions(memory_limit, FullAction::Block);
  o.spooled = true;
  o.path = dir;
  o.spool.name = "out";
  o.spool.segment_size = 4096;
  o.spool.total_limit_size = 1 << 20;
  o.spool.sync = ferry::SpoolSync::None;
  return o;
}

}  // namespace

TEST_CASE("memory buffer: one batch with the output at a time, drop_newest past the limit",
          "[buffer]") {
  Harness h;
  h.buf = h.make(memoryOptions(1024, FullAction::DropNewest), /*max_inflight=*/1);
  CHECK_FALSE(h.out->on_delivery);
  std::vector<Client> clients(40);
  for (uint32_t i = 0; i < clients.size(); ++i)
    h.buf->submit(batchOf(i, 60), clients[i].share());
  // The window is one byte: the first batch went to the output, the rest queued or dropped.
  REQUIRE(h.out->got.size() == 1);
  const uint64_t dropped = h.counter("buffer_dropped_newest_events");
  CHECK(dropped > 0);
  CHECK(h.counter("buffer_queued_bytes") <= 1024);
  int failed = 0;
  for (auto& c : clients)
    failed += c.failed;
  CHECK(static_cast<uint64_t>(failed) == dropped);
  // Resolving hands over the next one, in order, and the client share follows the output's.
  std::vector<uint32_t> order;
  for (size_t k = 0; k < h.out->got.size(); ++k) {
    order.push_back(seqOf(h.out->got[k].batch));
    h.out->got[k].ack.accept();
  }
  CHECK(order.size() == clients.size() - dropped);
  for (uint32_t i = 0; i < order.size(); ++i)
    CHECK(order[i] == i);  // drop_newest kept the oldest
  for (uint32_t i = 0; i < order.size(); ++i)
    CHECK(clients[i].accepted == 1);
}

TEST_CASE("memory buffer: an output that accepts inside submit() drains without recursion",
          "[buffer]") {
  Harness h;
  h.buf = h.make(memoryOptions(64u << 20, FullAction::Block), 1);
  Client client;
  const size_t n = 200000;  // one nested call per batch would overflow the stack
  for (uint32_t i = 0; i < n; ++i)
    h.buf->submit(batchOf(i), client.share());
  REQUIRE(h.out->got.size() == 1);
  h.out->accept_at_once = true;
  h.out->got[0].ack.accept();
  CHECK(h.out->accepted_at_once == n - 1);
  CHECK(client.accepted == static_cast<int>(n));
  CHECK(h.counter("buffer_queued_bytes") == 0);
}

TEST_CASE("memory buffer: block pauses the readers at the high mark, resumes at the low",
          "[buffer]") {
  Harness h;
  ferry::PauseSet reader;
  int pauses = 0, resumes = 0;
  reader.setCallbacks([&] { ++pauses; }, [&] { ++resumes; });
  auto members = h.flow.joinAll(reader);
  h.buf = h.make(memoryOptions(1024, FullAction::Block), 1);
  std::vector<Client> clients(30);
  for (uint32_t i = 0; i < clients.size(); ++i)
    h.buf->submit(batchOf(i, 60), clients[i].share());
  CHECK(pauses == 1);
  CHECK(reader.has(ferry::PauseReason::OutputFull));
  CHECK(h.counter("buffer_dropped_newest_events") == 0);
  // Drain: accepting each hands the next over; the reader resumes once at the low mark.
  for (size_t k = 0; k < h.out->got.size(); ++k)
    h.out->got[k].ack.accept();
  CHECK(h.out->got.size() + h.counter("buffer_refused_overflow_events") == clients.size());
  CHECK(resumes == 1);
  CHECK_FALSE(reader.paused());
}

TEST_CASE("spool: ack after the append, in-order delivery from memory and disk, acked spool",
          "[buffer][spool]") {
  TempDir dir;
  Harness h;
  // A memory limit of 2 KiB: most batches are read back from the spool.
  h.buf = h.make(spoolOptions(dir.path, 2048), 1024);
  CHECK(h.out->on_delivery);
  const uint32_t n = 200;
  std::vector<Client> clients(n);
  for (uint32_t i = 0; i < n; ++i)
    h.buf->submit(batchOf(i, 40), clients[i].share());
  // Not before the spool's writer thread reported the append (with sync = "always" that
  // report comes after the fdatasync: the spool's own tests check that).
  for (auto& c : clients)
    REQUIRE(c.accepted == 0);
  // Every client is acked once its batch is in the spool, before any delivery.
  REQUIRE(h.loop.runUntil([&] {
    for (auto& c : clients)
      if (c.accepted != 1) return false;
    return true;
  }));
  // Deliver everything: the output sees each seq once, in order.
  std::vector<uint32_t> seen;
  size_t next = 0;
  REQUIRE(h.loop.runUntil([&] {
    while (next < h.out->got.size()) {
      seen.push_back(seqOf(h.out->got[next].batch));
      h.out->got[next].ack.accept();
      ++next;
    }
    return seen.size() == n;
  }));
  for (uint32_t i = 0; i < n; ++i)
    REQUIRE(seen[i] == i);
  CHECK(h.counter("replayed_batches") > 0);  // some came from disk
  REQUIRE(h.loop.runUntil([&] { return h.counter("spool_acked_seq") == n; }));
}

TEST_CASE("spool: a failed delivery is retried, not lost; a restart replays the rest",
          "[buffer][spool]") {
  TempDir dir;
  {
    Harness h;
    h.buf = h.make(spoolOptions(dir.path, 1 << 20));
    std::vector<Client> clients(10);
    for (uint32_t i = 0; i < 10; ++i)
      h.buf->submit(batchOf(i), clients[i].share());
    REQUIRE(h.loop.runUntil([&] { return h.out->got.size() == 10; }));
    for (auto& c : clients)
      CHECK(c.accepted == 1);
    h.out->got[0].ack.accept();
    h.out->got[1].ack.fail();  // not delivered: comes again after a backoff
    REQUIRE(h.loop.runUntil([&] { return h.out->got.size() == 11; }));
    CHECK(seqOf(h.out->got[10].batch) == 1);
    CHECK(h.counter("delivery_failures") == 1);
    h.out->got[10].ack.accept();
    REQUIRE(h.loop.runUntil([&] { return h.counter("spool_acked_seq") == 2; }));
    // Stop with 2..9 undelivered (their shares fail at the output's flush).
    bool flushed = false;
    h.buf->flush([&] { flushed = true; });
    h.out->got.clear();
    REQUIRE(h.loop.runUntil([&] { return flushed; }));
    h.buf->close();
    h.buf.reset();
  }
  Harness h;
  h.buf = h.make(spoolOptions(dir.path, 1 << 20));
  CHECK(h.counter("spool_recovered_records") == 8);
  REQUIRE(h.loop.runUntil([&] { return h.out->got.size() == 8; }));
  for (uint32_t k = 0; k < 8; ++k)
    CHECK(seqOf(h.out->got[k].batch) == k + 2);
}

TEST_CASE("spool: drop_oldest at total_limit_size deletes the oldest segment and goes on",
          "[buffer][spool]") {
  TempDir dir;
  Harness h;
  BufferOptions o = spoolOptions(dir.path, 1 << 20);
  o.spool.total_limit_size = 64 * 1024;
  o.queue.full_action = FullAction::DropOldest;
  h.buf = h.make(std::move(o), 1);  // the output holds one batch and never finishes it
  const uint32_t n = 400;
  std::vector<Client> clients(n);
  for (uint32_t i = 0; i < n; ++i)
    h.buf->submit(batchOf(i, 300), clients[i].share());
  REQUIRE(h.loop.runUntil([&] {
    int resolved = 0;
    for (auto& c : clients)
      resolved += c.accepted + c.failed;
    return resolved == static_cast<int>(n);
  }));
  for (auto& c : clients)
    CHECK(c.accepted == 1);  // every batch found room, the oldest made way
  CHECK(h.counter("spool_dropped_records") > 0);
  CHECK(h.counter("spool_full") >= 1);
  CHECK(h.counter("spool_bytes") <= 64 * 1024);
}

TEST_CASE("[<output>.buffer] errors name the file, line and key", "[buffer][config]") {
  ferry::PluginRegistry registry;
  ferry::registerBuiltinPlugins(registry);
  auto load = [&](const std::string& buffer) {
    return ferry::loadConfigString(
        "[in]\ntype = \"ForwardInput\"\naddress = \"127.0.0.1:1\"\n\n[out]\ntype = "
        "\"FileOutput\"\nmatch = \"**\"\npath = \"/tmp/x\"\n\n[out.buffer]\n" +
            buffer,
        "test.toml", registry);
  };
  auto error = [&](const std::string& buffer) {
    try {
      load(buffer);
    } catch (const ferry::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK_NOTHROW(load("type = \"file\"\nsync = \"always\"\ntotal_limit_size = \"2MiB\"\n"));
  CHECK(error("type = \"disk\"\n").find("test.toml:10: key 'out.buffer.type'") !=
        std::string::npos);
  CHECK(error("full_action = \"explode\"\n").find("out.buffer.full_action") != std::string::npos);
  CHECK(error("sync = \"always\"\n").find("need type = \"file\"") != std::string::npos);
  CHECK(error("memory_limit = \"lots\"\n").find("out.buffer.memory_limit") != std::string::npos);
  CHECK(error("colour = \"blue\"\n").find("unknown key") != std::string::npos);
  CHECK(error("type = \"file\"\nsegment_size = \"4MiB\"\ntotal_limit_size = \"1MiB\"\n")
            .find("larger than total_limit_size") != std::string::npos);
}
