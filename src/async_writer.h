// Ordered, non-blocking appends to a file descriptor: writes run in libuv's thread pool
// one at a time (so bytes stay in order), and each caller learns when its bytes are
// written. Used by the stdout and file outputs so a slow disk or pipe never blocks the
// loop, and so an ack means "written", not "queued".
#pragma once

#include <functional>
#include <string>
#include <vector>

#include <uv.h>

namespace ferry {

class AsyncFileWriter {
 public:
  using Done = std::function<void(bool ok)>;

  explicit AsyncFileWriter(uv_loop_t* loop);
  ~AsyncFileWriter();
  AsyncFileWriter(const AsyncFileWriter&) = delete;
  AsyncFileWriter& operator=(const AsyncFileWriter&) = delete;

  // The descriptor to write to; may change between writes (file reopen).
  void setFd(int fd) { fd_ = fd; }
  // Queues `data`; `done` runs from the loop once all of it is written, or failed.
  void write(std::string_view data, Done done);
  // Runs `cb` once nothing is queued or in flight.
  void whenIdle(std::function<void()> cb);
  bool idle() const { return !in_flight_ && pending_.empty(); }
  size_t queuedBytes() const { return pending_.size() + (in_flight_ ? current_.size() : 0); }
  int lastError() const { return last_error_; }

 private:
  void startNext();
  void issue();
  void onWritten(ssize_t result);
  static void onFsCallback(uv_fs_t* req);
  static void onRetryTimer(uv_timer_t* t);

  uv_loop_t* loop_;
  int fd_ = -1;
  uv_fs_t req_;
  uv_timer_t* retry_timer_;
  bool in_flight_ = false;
  std::string pending_;
  std::vector<Done> pending_done_;
  std::string current_;
  size_t current_off_ = 0;
  std::vector<Done> current_done_;
  std::vector<std::function<void()>> idle_waiters_;
  int last_error_ = 0;
};

}  // namespace ferry
