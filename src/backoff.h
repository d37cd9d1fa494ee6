// Capped exponential backoff with jitter, for outputs that reconnect to a peer (TcpOutput,
// later ForwardOutput). Pure arithmetic: the caller owns the timer, so this is testable
// without a loop and reusable by any retrying component.
#pragma once

#include <cstdint>
#include <random>

namespace ferry {

class Backoff {
 public:
  // `initial_ms` is the first delay, doubled after every failure up to `max_ms`
  // (initial_ms is clamped into [1, max_ms]). `seed` fixes the jitter sequence (tests);
  // by default it comes from std::random_device, so peers restarted together do not
  // reconnect in lockstep.
  Backoff(int64_t initial_ms, int64_t max_ms);
  Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed);

  // The wait before the next attempt, in ms, then doubles the base delay (capped).
  // "Equal jitter": uniform in [base/2, base], so the waits of many clients spread out
  // but, unlike full jitter ([0, base]), never collapse to ~0 and hammer a peer that
  // just refused them. Never more than max_ms, never less than 1.
  int64_t next();
  // After a success: the next failure waits about initial_ms again.
  void reset();

  // The base delay the next call to next() jitters (before jitter).
  int64_t base() const { return base_ms_; }
  // Failures since the last reset (how many times next() was called).
  uint64_t attempts() const { return attempts_; }
  int64_t initial() const { return initial_ms_; }
  int64_t max() const { return max_ms_; }

 private:
  int64_t initial_ms_;
  int64_t max_ms_;
  int64_t base_ms_;
  uint64_t attempts_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace ferry
