// PauseSet composition (pause once, resume only when the last reason clears), PauseFanout
// over many readers and sources, and the memory budget's pressure edges with hysteresis,
// all with exact counts.
#include <catch2/catch.hpp>

#include <memory>
#include <optional>
#include <stdexcept>

#include "src/flow_control.h"

using ferry::MemoryBudget;
using ferry::PauseFanout;
using ferry::PauseReason;
using ferry::PauseSet;

namespace {

// A reader stand-in: counts the uv_read_stop / uv_read_start calls it would make.
struct FakeReader {
  int stops = 0;
  int starts = 0;
  bool reading = true;
  PauseSet pause{[this] {
                   ++stops;
                   reading = false;
                 },
                 [this] {
                   ++starts;
                   reading = true;
                 }};
};

}  // namespace

TEST_CASE("flow: PauseSet pauses on the first reason and resumes after the last", "[flow]") {
  FakeReader r;
  CHECK_FALSE(r.pause.paused());

  CHECK(r.pause.add(PauseReason::OutputFull));
  CHECK(r.stops == 1);
  CHECK_FALSE(r.reading);
  CHECK(r.pause.add(PauseReason::MemoryBudget));
  CHECK(r.stops == 1);  // already stopped: no second uv_read_stop

  CHECK(r.pause.clear(PauseReason::OutputFull));
  CHECK(r.starts == 0);  // the budget still holds it
  CHECK(r.pause.paused());
  CHECK(r.pause.active() == std::vector<PauseReason>{PauseReason::MemoryBudget});

  CHECK(r.pause.clear(PauseReason::MemoryBudget));
  CHECK(r.starts == 1);
  CHECK(r.reading);
  CHECK_FALSE(r.pause.paused());
  CHECK(r.pause.active().empty());

  CHECK(r.pause.readerPauses() == 1);
  CHECK(r.pause.readerResumes() == 1);
  CHECK(r.pause.pauses(PauseReason::OutputFull) == 1);
  CHECK(r.pause.resumes(PauseReason::OutputFull) == 1);
  CHECK(r.pause.pauses(PauseReason::MemoryBudget) == 1);
  CHECK(r.pause.resumes(PauseReason::MemoryBudget) == 1);
  CHECK(r.pause.pauses(PauseReason::SpoolFull) == 0);
}

TEST_CASE("flow: PauseSet add and clear are idempotent", "[flow]") {
  FakeReader r;
  CHECK(r.pause.add(PauseReason::ReadBuffer));
  CHECK_FALSE(r.pause.add(PauseReason::ReadBuffer));
  CHECK_FALSE(r.pause.add(PauseReason::ReadBuffer));
  CHECK(r.pause.pauses(PauseReason::ReadBuffer) == 1);
  CHECK(r.stops == 1);

  CHECK(r.pause.clear(PauseReason::ReadBuffer));
  CHECK_FALSE(r.pause.clear(PauseReason::ReadBuffer));
  CHECK_FALSE(r.pause.clear(PauseReason::SpoolFull));  // never added
  CHECK(r.pause.resumes(PauseReason::ReadBuffer) == 1);
  CHECK(r.starts == 1);

  // Three full cycles: one stop and one start each.
  for (int i = 0; i < 3; ++i) {
    r.pause.add(PauseReason::ReloadDrain);
    r.pause.clear(PauseReason::ReloadDrain);
  }
  CHECK(r.stops == 4);
  CHECK(r.starts == 4);
  CHECK(r.pause.pauses(PauseReason::ReloadDrain) == 3);
}

TEST_CASE("flow: PauseSet reset forgets reasons without restarting the reader", "[flow]") {
  FakeReader r;
  r.pause.add(PauseReason::OutputFull);
  r.pause.add(PauseReason::SpoolFull);
  r.pause.reset();
  CHECK_FALSE(r.pause.paused());
  CHECK(r.starts == 0);  // a closing reader must not read again
  CHECK(ferry::pauseReasonName(PauseReason::SpoolFull) == std::string("spool_full"));
}

TEST_CASE("flow: a PauseSet callback may add another reason re-entrantly", "[flow]") {
  PauseSet* self = nullptr;
  int pauses = 0;
  int resumes = 0;
  PauseSet set(
      [&] {
        ++pauses;
        self->add(PauseReason::ReadBuffer);  // already paused: no second onPause
      },
      [&] { ++resumes; });
  self = &set;
  set.add(PauseReason::OutputFull);
  CHECK(pauses == 1);
  CHECK(set.has(PauseReason::ReadBuffer));
  set.clear(PauseReason::OutputFull);
  CHECK(resumes == 0);
  set.clear(PauseReason::ReadBuffer);
  CHECK(resumes == 1);
}

TEST_CASE("flow: PauseFanout pauses every member while any source is raised", "[flow]") {
  PauseFanout fan(PauseReason::OutputFull);
  FakeReader a, b, c;
  auto ma = fan.join(a.pause);
  auto mb = fan.join(b.pause);
  auto mc = fan.join(c.pause);
  CHECK(fan.members() == 3);

  fan.raise("forward_out");
  CHECK(a.stops == 1);
  CHECK(b.stops == 1);
  CHECK(c.stops == 1);
  fan.raise("forward_out");  // idempotent per source
  fan.raise("file_out");     // second full output
  CHECK(fan.sources() == std::vector<std::string>{"file_out", "forward_out"});
  CHECK(fan.activations() == 1);

  fan.lower("forward_out");
  CHECK(a.starts == 0);  // file_out is still full
  CHECK(fan.active());
  fan.lower("nobody");  // unknown source: nothing
  fan.lower("file_out");
  CHECK(a.starts == 1);
  CHECK(b.starts == 1);
  CHECK(c.starts == 1);
  CHECK(fan.deactivations() == 1);
  CHECK(a.pause.pauses(PauseReason::OutputFull) == 1);
}

TEST_CASE("flow: PauseFanout composes with a reader's own reasons", "[flow]") {
  PauseFanout fan(PauseReason::OutputFull);
  FakeReader r;
  auto m = fan.join(r.pause);
  r.pause.add(PauseReason::ReadBuffer);
  fan.raise("out");
  fan.lower("out");
  CHECK(r.stops == 1);
  CHECK(r.starts == 0);  // its read buffer is still above high
  r.pause.clear(PauseReason::ReadBuffer);
  CHECK(r.starts == 1);
}

TEST_CASE("flow: joining an active PauseFanout pauses at once; leaving stops updates", "[flow]") {
  PauseFanout fan(PauseReason::MemoryBudget);
  fan.raise("budget");
  FakeReader late;
  auto m = fan.join(late.pause);
  CHECK(late.stops == 1);
  CHECK(late.pause.has(PauseReason::MemoryBudget));

  FakeReader gone;
  {
    auto mg = fan.join(gone.pause);
    CHECK(fan.members() == 2);
  }
  CHECK(fan.members() == 1);
  fan.lower("budget");
  CHECK(late.starts == 1);
  CHECK(gone.starts == 0);  // it left while paused and is not touched again
  CHECK(gone.pause.paused());
}

TEST_CASE("flow: a member closed by another member's callback is skipped", "[flow]") {
  PauseFanout fan(PauseReason::OutputFull);
  auto victim = std::make_unique<FakeReader>();
  std::optional<PauseFanout::Membership> victim_m(fan.join(victim->pause));
  int killer_stops = 0;
  PauseSet killer(
      [&] {
        ++killer_stops;
        victim_m.reset();  // leaves the fanout...
        victim.reset();    // ...and frees its PauseSet
      },
      [] {});
  auto km = fan.join(killer);
  fan.raise("out");  // whichever order the set is walked in, nothing freed is touched
  CHECK(killer_stops == 1);
  CHECK(fan.members() == 1);
}

TEST_CASE("flow: a destroyed PauseFanout releases its members", "[flow]") {
  FakeReader r;
  PauseFanout::Membership m;
  {
    PauseFanout fan(PauseReason::SpoolFull);
    m = fan.join(r.pause);
    fan.raise("spool");
    CHECK(r.stops == 1);
  }
  CHECK(r.starts == 1);
  m.leave();  // the fanout is gone: a no-op, not a crash
  CHECK_FALSE(m.joined());
}

TEST_CASE("flow: memory budget pressure rises once above the limit and clears at the low mark",
          "[flow]") {
  MemoryBudget budget(1000);  // low mark defaults to 500
  CHECK(budget.lowMark() == 500);
  int pressure = 0;
  int relief = 0;
  budget.setCallbacks([&] { ++pressure; }, [&] { ++relief; });
  auto a = budget.account("out_a");
  auto b = budget.account("out_b");

  a.charge(600);
  b.charge(400);  // exactly at the limit: not over it
  CHECK(budget.used() == 1000);
  CHECK_FALSE(budget.underPressure());
  CHECK(pressure == 0);

  b.charge(1);
  CHECK(budget.underPressure());
  CHECK(pressure == 1);
  b.charge(100);  // 1101, still over: no second edge
  CHECK(pressure == 1);

  // Oscillating between the marks changes nothing.
  for (int i = 0; i < 5; ++i) {
    b.release(400);  // 701
    b.charge(400);   // 1101
  }
  CHECK(pressure == 1);
  CHECK(relief == 0);

  b.release(500);  // 601: below the limit, above the low mark
  CHECK(budget.underPressure());
  CHECK(relief == 0);
  a.release(101);  // 500: at the low mark
  CHECK(budget.used() == 500);
  CHECK_FALSE(budget.underPressure());
  CHECK(relief == 1);

  a.charge(500);  // 1000: at the limit again, not over
  CHECK(pressure == 1);
  a.charge(1);
  CHECK(pressure == 2);
  CHECK(budget.pressureEvents() == 2);
  CHECK(budget.reliefEvents() == 1);
  CHECK(budget.peak() == 1101);
}

TEST_CASE("flow: memory budget accounts release on destruction and never go negative", "[flow]") {
  MemoryBudget budget(100, 10);
  int relief = 0;
  budget.setCallbacks([] {}, [&] { ++relief; });
  {
    auto big = budget.account("big");
    auto small = budget.account("small");
    big.charge(150);
    small.charge(5);
    CHECK(budget.underPressure());
    const auto list = budget.accounts();
    REQUIRE(list.size() == 2);
    CHECK(list[0] == std::make_pair(std::string("big"), uint64_t{150}));
    CHECK(list[1] == std::make_pair(std::string("small"), uint64_t{5}));
    small.release(1000);  // clamped to its 5
    CHECK(small.used() == 0);
    CHECK(budget.used() == 150);
  }
  CHECK(budget.used() == 0);
  CHECK(relief == 1);
  CHECK(budget.accounts().empty());

  MemoryBudget::Account none;  // no budget: charges go nowhere
  none.charge(1 << 30);
  CHECK(none.used() == 0);
}

TEST_CASE("flow: memory budget rejects a low mark at or above the limit; 0 is unlimited",
          "[flow]") {
  CHECK_THROWS_AS(MemoryBudget(100, 100), std::invalid_argument);
  CHECK_THROWS_AS(MemoryBudget(100, 200), std::invalid_argument);
  MemoryBudget unlimited(0);
  auto a = unlimited.account("x");
  a.charge(uint64_t{1} << 40);
  CHECK_FALSE(unlimited.underPressure());
  CHECK(unlimited.pressureEvents() == 0);
}

TEST_CASE("flow: memory budget pressure drives a fanout that pauses readers", "[flow]") {
  MemoryBudget budget(1000, 600);
  PauseFanout fan(PauseReason::MemoryBudget);
  budget.setCallbacks([&] { fan.raise("budget"); }, [&] { fan.lower("budget"); });
  FakeReader r1, r2;
  auto m1 = fan.join(r1.pause);
  auto m2 = fan.join(r2.pause);
  auto acc = budget.account("queue");
  acc.charge(1001);
  CHECK(r1.stops == 1);
  CHECK(r2.stops == 1);
  acc.release(300);  // 701: above the low mark
  CHECK(r1.starts == 0);
  acc.release(101);  // 600
  CHECK(r1.starts == 1);
  CHECK(r2.starts == 1);
}

TEST_CASE("flow: a fanout lowered from inside its own raise leaves no member paused", "[flow]") {
  PauseFanout fan(PauseReason::OutputFull);
  FakeReader a, b;
  PauseSet lowering([&] { fan.lower("out"); }, [] {});
  auto ma = fan.join(a.pause);
  auto ml = fan.join(lowering);
  auto mb = fan.join(b.pause);
  fan.raise("out");
  CHECK_FALSE(fan.active());
  CHECK_FALSE(a.pause.paused());
  CHECK_FALSE(b.pause.paused());
  CHECK_FALSE(lowering.paused());
  CHECK(a.stops == a.starts);
  CHECK(b.stops == b.starts);
}
