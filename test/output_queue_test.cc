// OutputQueue: watermark hysteresis (one edge per crossing), each full_action with exact
// counts and which end was dropped (batches carry sequence numbers), dropped AckShares
// resolving as failures, and the memory budget charged for queued bytes.
#include <catch2/catch.hpp>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "src/output_queue.h"

using ferry::AckShare;
using ferry::Batch;
using ferry::BatchPtr;
using ferry::Delivery;
using ferry::FullAction;
using ferry::MemoryBudget;
using ferry::OutputQueue;
using ferry::OutputQueueOptions;

namespace {

// Each batch's tag is its sequence number; `events` empty events each.
BatchPtr makeBatch(int seq, size_t events = 1) {
  auto b = std::make_shared<Batch>();
  b->bytes = std::make_shared<const std::string>();
  b->tag = std::to_string(seq);
  b->events.resize(events);
  return b;
}

int seqOf(const OutputQueue::Entry& e) {
  return std::stoi(e.batch->tag);
}

// One Delivery per pushed batch, recording how each resolved.
struct Acks {
  std::vector<int> ok;
  std::vector<int> failed;
  AckShare share(int seq) {
    auto d =
        std::make_shared<Delivery>([this, seq](bool good) { (good ? ok : failed).push_back(seq); });
    return AckShare(d);  // the queue holds the only share
  }
};

struct Edges {
  int above = 0;
  int below = 0;
  void attach(OutputQueue& q) {
    q.setWatermarkCallbacks([this] { ++above; }, [this] { ++below; });
  }
};

std::vector<int> drain(OutputQueue& q) {
  std::vector<int> seqs;
  while (!q.empty()) {
    auto e = q.pop();
    seqs.push_back(seqOf(e));
    e.ack.accept();
  }
  return seqs;
}

OutputQueueOptions opts(FullAction action, uint64_t limit = 1000) {
  OutputQueueOptions o;
  o.name = "test_out";
  o.memory_limit = limit;
  o.full_action = action;
  return o;
}

}  // namespace

TEST_CASE("flow: queue defaults high = memory_limit, low = high / 2, overflow = 2 x limit",
          "[flow]") {
  OutputQueue q(opts(FullAction::Block));
  CHECK(q.options().high_watermark == 1000);
  CHECK(q.options().low_watermark == 500);
  CHECK(q.options().overflow_limit == 2000);

  auto bad = opts(FullAction::Block);
  bad.high_watermark = 400;
  bad.low_watermark = 400;
  CHECK_THROWS_AS(OutputQueue(bad), std::invalid_argument);
  bad.low_watermark = 0;
  bad.high_watermark = 1001;
  CHECK_THROWS_AS(OutputQueue(bad), std::invalid_argument);
  CHECK_THROWS_AS(OutputQueue(opts(FullAction::Block, 0)), std::invalid_argument);
  bad = opts(FullAction::Block);
  bad.overflow_limit = 999;
  CHECK_THROWS_AS(OutputQueue(bad), std::invalid_argument);

  FullAction a;
  CHECK(ferry::parseFullAction("drop_oldest", a));
  CHECK(a == FullAction::DropOldest);
  CHECK_FALSE(ferry::parseFullAction("drop", a));
  CHECK(std::string(ferry::fullActionName(FullAction::DropNewest)) == "drop_newest");
}

TEST_CASE("flow: queue watermarks fire once per crossing and do not flap", "[flow]") {
  auto o = opts(FullAction::Block);
  o.high_watermark = 800;
  o.low_watermark = 300;
  OutputQueue q(o);
  Edges edges;
  edges.attach(q);
  Acks acks;

  for (int i = 0; i < 8; ++i)
    q.push(makeBatch(i), acks.share(i), 100);  // 800: at high
  CHECK(q.queuedBytes() == 800);
  CHECK(edges.above == 0);
  CHECK_FALSE(q.aboveHigh());
  q.push(makeBatch(8), acks.share(8), 100);  // 900: above
  CHECK(edges.above == 1);
  CHECK(q.aboveHigh());

  // Oscillate around high: pop to 800, push to 900, ten times; then down to 400, up again.
  int seq = 9;
  for (int i = 0; i < 10; ++i) {
    q.pop().ack.accept();
    q.push(makeBatch(seq), acks.share(seq), 100);
    ++seq;
  }
  for (int i = 0; i < 5; ++i)
    q.pop().ack.accept();  // 400: between the marks
  for (int i = 0; i < 5; ++i) {
    q.push(makeBatch(seq), acks.share(seq), 100);
    ++seq;
  }
  CHECK(edges.above == 1);
  CHECK(edges.below == 0);

  while (q.queuedBytes() > 400)
    q.pop().ack.accept();
  CHECK(edges.below == 0);
  q.pop().ack.accept();  // 300: at low
  CHECK(q.queuedBytes() == 300);
  CHECK(edges.below == 1);
  CHECK_FALSE(q.aboveHigh());

  // Oscillate around low: no more edges either way.
  for (int i = 0; i < 10; ++i) {
    q.push(makeBatch(seq), acks.share(seq), 100);
    ++seq;
    q.pop().ack.accept();
  }
  CHECK(edges.above == 1);
  CHECK(edges.below == 1);

  // A second full crossing gives a second pair.
  for (int i = 0; i < 6; ++i) {
    q.push(makeBatch(seq), acks.share(seq), 100);
    ++seq;
  }
  CHECK(q.queuedBytes() == 900);
  CHECK(edges.above == 2);
  drain(q);
  CHECK(edges.below == 2);
  CHECK(q.aboveHighTransitions() == 2);
  CHECK(q.belowLowTransitions() == 2);
  CHECK(q.queuedBytes() == 0);
  CHECK(q.queuedEvents() == 0);
  CHECK(acks.failed.empty());
  CHECK(acks.ok.size() == static_cast<size_t>(seq));
}

TEST_CASE("flow: block takes the batch that crosses the limit and pauses via high", "[flow]") {
  OutputQueue q(opts(FullAction::Block));  // high 1000, low 500, overflow 2000
  Edges edges;
  edges.attach(q);
  Acks acks;
  for (int i = 0; i < 10; ++i) {
    REQUIRE(q.push(makeBatch(i, 2), acks.share(i), 100) == OutputQueue::PushResult::Queued);
  }
  CHECK(edges.above == 0);
  // Over the limit: still taken (the readers are being paused), counted.
  CHECK(q.push(makeBatch(10, 2), acks.share(10), 100) == OutputQueue::PushResult::Queued);
  CHECK(edges.above == 1);
  CHECK(q.overLimitAccepts() == 1);
  // In-flight batches keep being taken up to the overflow limit: 1100 + 9 × 100 = 2000.
  for (int i = 11; i < 20; ++i) {
    REQUIRE(q.push(makeBatch(i, 2), acks.share(i), 100) == OutputQueue::PushResult::Queued);
  }
  CHECK(q.queuedBytes() == 2000);
  CHECK(q.overLimitAccepts() == 10);
  // Past overflow: refused, its ack failed, nothing queued is touched.
  CHECK(q.push(makeBatch(20, 2), acks.share(20), 1) == OutputQueue::PushResult::Refused);
  CHECK(acks.failed == std::vector<int>{20});
  CHECK(q.refusedOverflowEvents() == 2);
  CHECK(q.droppedEvents() == 2);
  CHECK(q.droppedOldestEvents() == 0);
  CHECK(q.droppedNewestEvents() == 0);
  CHECK(q.queuedEvents() == 40);
  CHECK(edges.above == 1);

  std::vector<int> expected;
  for (int i = 0; i < 20; ++i)
    expected.push_back(i);
  CHECK(drain(q) == expected);
  CHECK(edges.below == 1);
  CHECK(acks.ok == expected);
}

TEST_CASE("flow: drop_oldest evicts from the front and fails their acks", "[flow]") {
  OutputQueue q(opts(FullAction::DropOldest));
  Edges edges;
  edges.attach(q);
  Acks acks;
  for (int i = 0; i < 10; ++i)
    q.push(makeBatch(i, 3), acks.share(i), 100);  // 1000: full
  CHECK(acks.failed.empty());

  CHECK(q.push(makeBatch(10, 3), acks.share(10), 100) == OutputQueue::PushResult::Queued);
  CHECK(acks.failed == std::vector<int>{0});
  // A 250-byte batch needs three 100-byte entries gone: 1000 - 300 + 250 = 950.
  CHECK(q.push(makeBatch(11, 3), acks.share(11), 250) == OutputQueue::PushResult::Queued);
  CHECK(acks.failed == std::vector<int>{0, 1, 2, 3});
  CHECK(q.queuedBytes() == 950);
  CHECK(q.droppedOldestBatches() == 4);
  CHECK(q.droppedOldestEvents() == 12);
  CHECK(q.droppedNewestEvents() == 0);
  CHECK(q.droppedEvents() == 12);
  CHECK(edges.above == 0);  // never above memory_limit = high
  CHECK(acks.ok.empty());   // nothing acked for what was dropped

  CHECK(drain(q) == std::vector<int>{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(acks.ok == std::vector<int>{4, 5, 6, 7, 8, 9, 10, 11});
  CHECK(acks.failed.size() == 4);
}

TEST_CASE("flow: drop_newest refuses the incoming batch and keeps the queue", "[flow]") {
  OutputQueue q(opts(FullAction::DropNewest));
  Acks acks;
  for (int i = 0; i < 9; ++i)
    q.push(makeBatch(i, 5), acks.share(i), 100);  // 900
  // 50 fits (950); 100 does not.
  CHECK(q.push(makeBatch(9, 5), acks.share(9), 50) == OutputQueue::PushResult::Queued);
  CHECK(q.push(makeBatch(10, 5), acks.share(10), 100) == OutputQueue::PushResult::Refused);
  CHECK(q.push(makeBatch(11, 5), acks.share(11), 100) == OutputQueue::PushResult::Refused);
  CHECK(q.push(makeBatch(12, 5), acks.share(12), 50) == OutputQueue::PushResult::Queued);  // 1000
  CHECK(acks.failed == std::vector<int>{10, 11});
  CHECK(q.droppedNewestBatches() == 2);
  CHECK(q.droppedNewestEvents() == 10);
  CHECK(q.droppedOldestEvents() == 0);
  CHECK(q.queuedBytes() == 1000);
  CHECK(q.queuedEvents() == 55);
  CHECK(q.pushedEvents() == 55);
  CHECK(drain(q) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 12});
  CHECK(q.poppedEvents() == 55);
}

TEST_CASE("flow: an empty queue takes a batch bigger than memory_limit in every mode", "[flow]") {
  for (FullAction action : {FullAction::Block, FullAction::DropOldest, FullAction::DropNewest}) {
    OutputQueue q(opts(action));
    Edges edges;
    edges.attach(q);
    Acks acks;
    CHECK(q.push(makeBatch(0), acks.share(0), 5000) == OutputQueue::PushResult::Queued);
    CHECK(edges.above == 1);
    CHECK(q.droppedEvents() == 0);
    CHECK(drain(q) == std::vector<int>{0});
    CHECK(edges.below == 1);
  }
  // drop_oldest with an oversized newcomer empties the queue, then takes it.
  OutputQueue q(opts(FullAction::DropOldest));
  Acks acks;
  q.push(makeBatch(0), acks.share(0), 400);
  q.push(makeBatch(1), acks.share(1), 400);
  q.push(makeBatch(2), acks.share(2), 1500);
  CHECK(acks.failed == std::vector<int>{0, 1});
  CHECK(drain(q) == std::vector<int>{2});
}

TEST_CASE("flow: failAll and destruction fail what is still queued", "[flow]") {
  Acks acks;
  {
    OutputQueue q(opts(FullAction::Block));
    Edges edges;
    edges.attach(q);
    for (int i = 0; i < 12; ++i)
      q.push(makeBatch(i), acks.share(i), 100);
    CHECK(edges.above == 1);
    q.failAll();
    CHECK(edges.below == 1);
    CHECK(q.empty());
    CHECK(acks.failed.size() == 12);
    q.push(makeBatch(100), acks.share(100), 100);
    q.push(makeBatch(101), acks.share(101), 100);
  }
  REQUIRE(acks.failed.size() == 14);
  CHECK(std::count(acks.failed.begin(), acks.failed.end(), 100) == 1);
  CHECK(std::count(acks.failed.begin(), acks.failed.end(), 101) == 1);
  CHECK(acks.ok.empty());
}

TEST_CASE("flow: a popped share shared with another output decides the delivery", "[flow]") {
  // The router holds one share per matched output: a drop here fails the whole delivery
  // even though the other output accepted, so the client is never acked for lost events.
  int ok = 0;
  int failed = 0;
  auto d = std::make_shared<Delivery>([&](bool good) { ++(good ? ok : failed); });
  AckShare other(d);
  OutputQueue q(opts(FullAction::DropNewest, 100));
  q.push(makeBatch(0), AckShare(d), 100);
  q.push(makeBatch(1), AckShare(d), 1);  // refused
  other.accept();
  CHECK(ok + failed == 0);  // batch 0 still queued
  q.pop().ack.accept();
  CHECK(failed == 1);
  CHECK(ok == 0);
}

TEST_CASE("flow: the queue charges the memory budget for what it holds", "[flow]") {
  MemoryBudget budget(1500, 1000);
  int pressure = 0;
  int relief = 0;
  budget.setCallbacks([&] { ++pressure; }, [&] { ++relief; });
  Acks acks;
  {
    OutputQueue a(opts(FullAction::Block), budget.account("a"));
    OutputQueue b(opts(FullAction::DropOldest), budget.account("b"));
    for (int i = 0; i < 8; ++i)
      a.push(makeBatch(i), acks.share(i), 100);
    for (int i = 0; i < 8; ++i)
      b.push(makeBatch(i), acks.share(i), 100);
    CHECK(budget.used() == 1600);
    CHECK(pressure == 1);
    b.push(makeBatch(8), acks.share(8), 300);  // evicts 1: b = 700 + 300, total 1800
    CHECK(budget.used() == 1800);
    CHECK(budget.accounts().front() == std::make_pair(std::string("b"), uint64_t{1000}));
    for (int i = 0; i < 8; ++i)
      a.pop().ack.accept();  // 1000: the low mark
    CHECK(relief == 1);
  }
  CHECK(budget.used() == 0);
  CHECK(pressure == 1);
}

TEST_CASE("flow: batchQueueBytes counts events, not the shared frame", "[flow]") {
  auto b = std::make_shared<Batch>();
  b->bytes = std::make_shared<const std::string>(10000, 'x');
  b->tag = "app";
  b->events.resize(2);
  b->events[0].record_len = 40;
  b->events[0].time_len = 5;
  b->events[1].record_len = 60;
  b->events[1].time_len = 5;
  CHECK(ferry::batchQueueBytes(*b) ==
        sizeof(Batch) + 3 + 2 * sizeof(ferry::Event) + 40 + 5 + 60 + 5);
  OutputQueue q(opts(FullAction::Block, 1 << 20));
  q.push(b, AckShare());
  CHECK(q.queuedBytes() == ferry::batchQueueBytes(*b));
}
