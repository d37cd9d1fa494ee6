// Unit tests for the router: tag routing, shared fan-out, per-event splitting without
// copying bytes, and delivery (ack) completion only after every matched output accepts.
#include <catch2/catch.hpp>

#include <memory>
#include <vector>

#include "src/router.h"
#include "src/stats.h"

namespace {

// Records what it is given; accepts or holds shares as the test says.
class RecordingOutput : public ferry::Output {
 public:
  void submit(ferry::BatchPtr batch, ferry::AckShare ack) override {
    batches.push_back(batch);
    if (hold) {
      held.push_back(std::move(ack));
    } else {
      ack.accept();
    }
  }
  void flush(std::function<void()> done) override { done(); }
  std::vector<ferry::BatchPtr> batches;
  std::vector<ferry::AckShare> held;
  bool hold = false;
};

ferry::EventPredicatePtr tagPattern(const std::string& p) {
  std::string err;
  auto tp = ferry::TagPattern::compile(p, err);
  REQUIRE(tp);
  return std::make_unique<ferry::TagPredicate>(std::move(*tp));
}

// Matches events whose time is even: stands in for a per-event message_matcher.
class EvenTimePredicate : public ferry::EventPredicate {
 public:
  bool batchConstant() const override { return false; }
  bool matchBatch(const ferry::Batch&) const override { return false; }
  bool matchEvent(const ferry::Batch&, const ferry::Event& e,
                  const ferry::MessageView&) const override {
    return e.time_ns % 2 == 0;
  }
};

ferry::BatchPtr makeBatch(const std::string& tag, int n) {
  auto b = std::make_shared<ferry::Batch>();
  b->bytes = std::make_shared<const std::string>("payload");
  b->tag = tag;
  for (int k = 0; k < n; ++k)
    b->events.push_back(ferry::Event{.time_ns = k});
  return b;
}

}  // namespace

TEST_CASE("router sends a batch to every matching output, shared not copied", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput all, app, other;
  router.addRoute("all", tagPattern("**"), &all);
  router.addRoute("app", tagPattern("app.**"), &app);
  router.addRoute("other", tagPattern("other"), &other);

  auto batch = makeBatch("app.web", 3);
  router.route(batch, nullptr);
  REQUIRE(all.batches.size() == 1);
  REQUIRE(app.batches.size() == 1);
  CHECK(other.batches.empty());
  CHECK(all.batches[0] == batch);  // the same object: fan-out shares it
  CHECK(app.batches[0] == batch);

  router.route(makeBatch("zzz", 2), nullptr);
  router.route(makeBatch("app", 1), nullptr);  // a.** matches a
  CHECK(all.batches.size() == 3);
  CHECK(app.batches.size() == 2);
  CHECK(router.unmatchedEvents() == 0);
  CHECK(stats.value("router", "events") == 6);
}

TEST_CASE("unmatched events are counted", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput only;
  router.addRoute("only", tagPattern("x"), &only);
  router.route(makeBatch("y", 4), nullptr);
  CHECK(router.unmatchedEvents() == 4);
  CHECK(only.batches.empty());
}

TEST_CASE("delivery completes after the last matched output accepts", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput a, b;
  a.hold = b.hold = true;
  router.addRoute("a", tagPattern("**"), &a);
  router.addRoute("b", tagPattern("t"), &b);
  int calls = 0;
  bool result = false;
  auto delivery = std::make_shared<ferry::Delivery>([&](bool ok) {
    ++calls;
    result = ok;
  });
  {
    ferry::AckShare hold(delivery);
    router.route(makeBatch("t", 1), delivery);
    hold.accept();
  }
  CHECK(calls == 0);
  a.held[0].accept();
  CHECK(calls == 0);
  b.held[0].accept();
  CHECK(calls == 1);
  CHECK(result);
}

TEST_CASE("a failed or dropped share fails the delivery", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput a, b;
  a.hold = b.hold = true;
  router.addRoute("a", tagPattern("**"), &a);
  router.addRoute("b", tagPattern("**"), &b);
  int calls = 0;
  bool result = true;
  auto delivery = std::make_shared<ferry::Delivery>([&](bool ok) {
    ++calls;
    result = ok;
  });
  {
    ferry::AckShare hold(delivery);
    router.route(makeBatch("t", 1), delivery);
  }  // the router's own hold is released here
  a.held[0].accept();
  b.held.clear();  // dropped without resolving: counts as a failure
  CHECK(calls == 1);
  CHECK_FALSE(result);
}

TEST_CASE("no matching output: the delivery completes at once", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput a;
  router.addRoute("a", tagPattern("x"), &a);
  int calls = 0;
  auto delivery = std::make_shared<ferry::Delivery>([&](bool ok) { calls += ok ? 1 : 100; });
  {
    ferry::AckShare hold(delivery);
    router.route(makeBatch("y", 1), delivery);
    hold.accept();
  }
  CHECK(calls == 1);
}

TEST_CASE("per-event predicates cut sub-batches over the same bytes", "[router]") {
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  RecordingOutput even, all;
  router.addRoute("even", std::make_unique<EvenTimePredicate>(), &even);
  router.addRoute("all", tagPattern("**"), &all);
  auto batch = makeBatch("t", 5);
  router.route(batch, nullptr);
  REQUIRE(even.batches.size() == 1);
  const auto& sub = *even.batches[0];
  CHECK(sub.events.size() == 3);
  CHECK(sub.events[0].time_ns == 0);
  CHECK(sub.events[2].time_ns == 4);
  CHECK(sub.bytes == batch->bytes);  // no copy of the bytes
  CHECK(all.batches[0] == batch);
  // And-combination: tag and per-event both must hold.
  ferry::StatsRegistry stats2;
  ferry::Router r2(stats2);
  RecordingOutput both;
  r2.addRoute(
      "both",
      std::make_unique<ferry::AndPredicate>(tagPattern("t"), std::make_unique<EvenTimePredicate>()),
      &both);
  r2.route(makeBatch("t", 4), nullptr);
  r2.route(makeBatch("u", 4), nullptr);
  REQUIRE(both.batches.size() == 1);
  CHECK(both.batches[0]->events.size() == 2);
}
