// One client connection of a Heka TcpInput: reads bytes into its framing splitter and
// hands each read's complete records to the input's HekaIngest (one batch per read).
// No acks in Heka's protocol, so closing is immediate.
#pragma once

#include <string>

#include <uv.h>

#include "src/heka/heka_framing.h"
#include "src/session_flow.h"

namespace ferry::heka {

class TcpInput;

class HekaTcpSession {
 public:
  HekaTcpSession(TcpInput& input, uv_loop_t* loop);

  uv_tcp_t* handle() { return &tcp_; }
  // Starts reading and the idle timer (after uv_accept succeeded).
  void start();
  // Closes now; an incomplete record still buffered is dropped (and counted). Safe to
  // call more than once.
  void close();
  // Shutdown drain: read what the kernel already holds, then report drained.
  void beginDrain();
  bool drained() const { return drained_; }
  bool closing() const { return closing_; }

 private:
  static void onAlloc(uv_handle_t* h, size_t suggested, uv_buf_t* buf);
  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf);
  static void onIdle(uv_timer_t* t);
  static void onClosed(uv_handle_t* h);

  void checkDrained();
  void resetIdle();

  TcpInput& input_;
  uv_tcp_t tcp_;
  uv_timer_t idle_;
  int open_handles_ = 0;
  bool closing_ = false;
  bool draining_ = false;
  bool drained_ = false;
  HekaFramingSplitter splitter_;
  std::string read_buf_;
  // Pauses and the partial-record deadline; reads go through it.
  SessionFlow flow_;
};

}  // namespace ferry::heka
