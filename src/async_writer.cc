// AsyncFileWriter: one uv_fs_write in flight, the rest coalesced behind it.
#include "src/async_writer.h"

#include <cerrno>

namespace ferry {

AsyncFileWriter::AsyncFileWriter(uv_loop_t* loop) : loop_(loop), retry_timer_(new uv_timer_t) {
  uv_timer_init(loop_, retry_timer_);
}

AsyncFileWriter::~AsyncFileWriter() {
  // The timer handle is freed by its close callback, after this object is gone.
  uv_close(reinterpret_cast<uv_handle_t*>(retry_timer_),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
}

void AsyncFileWriter::write(std::string_view data, Done done) {
  pending_.append(data);
  if (done) pending_done_.push_back(std::move(done));
  if (!in_flight_) startNext();
}

void AsyncFileWriter::whenIdle(std::function<void()> cb) {
  if (idle()) {
    cb();
    return;
  }
  idle_waiters_.push_back(std::move(cb));
}

void AsyncFileWriter::startNext() {
  if (pending_.empty()) {
    auto waiters = std::move(idle_waiters_);
    idle_waiters_.clear();
    for (auto& w : waiters)
      w();
    return;
  }
  current_.swap(pending_);
  pending_.clear();
  current_done_.swap(pending_done_);
  pending_done_.clear();
  current_off_ = 0;
  in_flight_ = true;
  issue();
}

void AsyncFileWriter::issue() {
  uv_buf_t buf = uv_buf_init(current_.data() + current_off_,
                             static_cast<unsigned>(current_.size() - current_off_));
  req_.data = this;
  const int rc = uv_fs_write(loop_, &req_, fd_, &buf, 1, -1, &AsyncFileWriter::onFsCallback);
  if (rc < 0) {
    // Could not even queue the request: report it as a failed write from the loop.
    onWritten(rc);
  }
}

void AsyncFileWriter::onFsCallback(uv_fs_t* req) {
  auto* self = static_cast<AsyncFileWriter*>(req->data);
  const ssize_t result = req->result;
  uv_fs_req_cleanup(req);
  self->onWritten(result);
}

void AsyncFileWriter::onRetryTimer(uv_timer_t* t) {
  static_cast<AsyncFileWriter*>(t->data)->issue();
}

void AsyncFileWriter::onWritten(ssize_t result) {
  if (result == UV_EAGAIN || result == UV_EINTR) {
    // A non-blocking stdout (pipe) is full: try again shortly instead of spinning.
    retry_timer_->data = this;
    uv_timer_start(retry_timer_, &AsyncFileWriter::onRetryTimer, 5, 0);
    return;
  }
  bool ok = result >= 0;
  if (ok) {
    current_off_ += static_cast<size_t>(result);
    if (current_off_ < current_.size()) {
      issue();  // short write: the rest follows, still in order
      return;
    }
  } else {
    last_error_ = static_cast<int>(result);
  }
  in_flight_ = false;
  auto done = std::move(current_done_);
  current_done_.clear();
  current_.clear();
  for (auto& d : done)
    d(ok);
  if (!in_flight_) startNext();
}

}  // namespace ferry
