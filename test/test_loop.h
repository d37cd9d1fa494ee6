// A private libuv loop for unit tests that drive real handles: runs until a condition holds
// or a deadline passes (never sleep-and-hope), and closes whatever is left when destroyed.
#pragma once

#include <cstdint>
#include <functional>

#include <uv.h>

namespace ferry::test {

struct TestLoop {
  uv_loop_t loop{};
  uv_timer_t tick{};
  TestLoop() {
    uv_loop_init(&loop);
    uv_timer_init(&loop, &tick);
  }
  ~TestLoop() {
    uv_walk(
        &loop,
        [](uv_handle_t* h, void*) {
          if (!uv_is_closing(h)) uv_close(h, nullptr);
        },
        nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
  }
  TestLoop(const TestLoop&) = delete;
  TestLoop& operator=(const TestLoop&) = delete;

  // Runs the loop until `done` or `ms` pass; returns `done()`. A 2 ms tick keeps the loop
  // turning even when nothing else is due.
  bool runUntil(const std::function<bool()>& done, int64_t ms = 5000) {
    uv_update_time(&loop);
    const uint64_t end = uv_now(&loop) + static_cast<uint64_t>(ms);
    uv_timer_start(
        &tick, [](uv_timer_t*) {}, 2, 2);
    while (!done() && uv_now(&loop) < end)
      uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&tick);
    return done();
  }
  void runFor(int64_t ms) {
    runUntil([] { return false; }, ms);
  }
};

}  // namespace ferry::test
