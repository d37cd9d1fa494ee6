// Capped exponential backoff with "equal jitter" (see backoff.h for why not full jitter).
#include "src/backoff.h"

#include <algorithm>

namespace ferry {

namespace {
uint64_t randomSeed() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}
}  // namespace

Backoff::Backoff(int64_t initial_ms, int64_t max_ms) : Backoff(initial_ms, max_ms, randomSeed()) {}

Backoff::Backoff(int64_t initial_ms, int64_t max_ms, uint64_t seed)
    : max_ms_(std::max<int64_t>(max_ms, 1)), rng_(seed) {
  initial_ms_ = std::clamp<int64_t>(initial_ms, 1, max_ms_);
  base_ms_ = initial_ms_;
}

int64_t Backoff::next() {
  const int64_t base = base_ms_;
  // [base - base/2, base]: the lower half is fixed, the upper half random.
  const int64_t half = base / 2;
  std::uniform_int_distribution<int64_t> jitter(0, half);
  const int64_t wait = std::max<int64_t>(base - half + jitter(rng_), 1);
  // Compared before doubling, so even a huge max_ms cannot overflow.
  base_ms_ = base > max_ms_ / 2 ? max_ms_ : base * 2;
  ++attempts_;
  return wait;
}

void Backoff::reset() {
  base_ms_ = initial_ms_;
  attempts_ = 0;
}

}  // namespace ferry
