// Backoff: every wait within [base/2, base], the base doubling to the cap and staying
// there, the jitter really spreading over its range, reset, and degenerate settings.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "src/backoff.h"

using ferry::Backoff;

TEST_CASE("backoff: waits grow by doubling within [base/2, base] up to the cap") {
  Backoff b(250, 30'000, 1);
  int64_t base = 250;
  for (int k = 0; k < 20; ++k) {
    REQUIRE(b.base() == base);
    const int64_t wait = b.next();
    CHECK(wait >= base - base / 2);
    CHECK(wait <= base);
    CHECK(wait <= 30'000);
    base = std::min<int64_t>(base * 2, 30'000);
  }
  // 250 · 2^7 = 32000 > 30000: capped from the 8th failure on.
  CHECK(b.base() == 30'000);
  CHECK(b.attempts() == 20);
}

TEST_CASE("backoff: the cap holds for a long run and for a cap that is not a power of two") {
  Backoff b(1, 1000, 7);
  int64_t last_base = 0;
  for (int k = 0; k < 200; ++k) {
    const int64_t wait = b.next();
    CHECK(wait >= 1);
    CHECK(wait <= 1000);
    CHECK(b.base() >= last_base);  // never shrinks without a reset
    last_base = b.base();
  }
  CHECK(b.base() == 1000);
}

TEST_CASE("backoff: jitter covers its range and differs between seeds") {
  std::set<int64_t> seen;
  int64_t lo = INT64_MAX, hi = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    Backoff b(1000, 1000, seed);
    const int64_t w = b.next();
    REQUIRE(w >= 500);
    REQUIRE(w <= 1000);
    seen.insert(w);
    lo = std::min(lo, w);
    hi = std::max(hi, w);
  }
  // 2000 draws from 501 values: both ends are reached (or nearly) and most values appear.
  CHECK(lo <= 505);
  CHECK(hi >= 995);
  CHECK(seen.size() > 300);
}

TEST_CASE("backoff: the same seed gives the same sequence") {
  Backoff a(100, 10'000, 42), b(100, 10'000, 42);
  for (int k = 0; k < 30; ++k)
    CHECK(a.next() == b.next());
}

TEST_CASE("backoff: reset returns to the initial delay") {
  Backoff b(250, 30'000, 3);
  for (int k = 0; k < 10; ++k)
    b.next();
  REQUIRE(b.base() == 30'000);
  b.reset();
  CHECK(b.base() == 250);
  CHECK(b.attempts() == 0);
  const int64_t w = b.next();
  CHECK(w >= 125);
  CHECK(w <= 250);
  CHECK(b.base() == 500);
}

TEST_CASE("backoff: degenerate settings are clamped, never a zero wait") {
  SECTION("initial above max is clamped to max") {
    Backoff b(5000, 1000, 1);
    CHECK(b.initial() == 1000);
    CHECK(b.next() <= 1000);
  }
  SECTION("zero and negative delays become 1 ms") {
    Backoff b(0, 0, 1);
    for (int k = 0; k < 5; ++k)
      CHECK(b.next() == 1);
  }
  SECTION("a huge cap does not overflow") {
    Backoff b(1, INT64_MAX, 1);
    int64_t prev = 0;
    for (int k = 0; k < 100; ++k) {
      const int64_t w = b.next();
      CHECK(w >= 1);
      CHECK(b.base() >= prev);
      prev = b.base();
    }
    CHECK(b.base() == INT64_MAX);
  }
}
