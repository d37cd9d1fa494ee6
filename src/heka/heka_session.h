// One client connection of a Heka TcpInput: reads bytes into its framing splitter and
// hands each read's complete records to the input's HekaIngest (one batch per read).
// No acks in Heka's protocol, so closing is immediate.
#pragma once

#include "src/heka/heka_framing.h"
#include "src/tcp_session.h"

namespace ferry::heka {

class TcpInput;

class HekaTcpSession : public TcpSession {
 public:
  explicit HekaTcpSession(TcpInput& input);

  void start() override;

 private:
  void onBytes(const char* data, size_t n) override;
  // An incomplete record still buffered is dropped (and counted).
  void onClose() override;

  TcpInput& input_;
  HekaFramingSplitter splitter_;
};

}  // namespace ferry::heka
