// One client connection of a ForwardInput: reads bytes, splits and decodes requests,
// routes the batches, and writes `{"ack": chunk}` replies in request order once every
// output that matched a chunk has accepted it. With `[<input>.security]`, the connection
// starts with the HELO/PING/PONG handshake and carries no data until it succeeds.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include <uv.h>

#include "src/forward/forward_decoder.h"
#include "src/forward/forward_handshake.h"
#include "src/tcp_session.h"

namespace ferry {
class Router;
class Counter;
}  // namespace ferry

namespace ferry::forward {

class ForwardInput;

// Counters a ForwardInput keeps; sessions increment them.
struct InputCounters {
  Counter* connections_accepted;
  Counter* connections_rejected;
  Counter* connections_closed_on_error;
  Counter* connections_idle_closed;
  Counter* frames;
  Counter* batches;
  Counter* events;
  Counter* bytes;
  Counter* heartbeats_tcp;
  Counter* heartbeats_udp;
  Counter* ignored_roots;
  Counter* invalid_entries;
  Counter* frames_too_large;
  Counter* frames_skipped;
  Counter* frames_tag_too_long;
  Counter* frames_too_many_entries;
  Counter* frames_decompressed_too_large;
  Counter* frames_bad_compression;
  Counter* parse_errors;
  Counter* acks_sent;
  Counter* acks_withheld;
  Counter* json_connections;
  Counter* handshakes;          // PINGs accepted
  Counter* auth_failures;       // wrong shared key or user/password: failure PONG, closed
  Counter* handshake_errors;    // no PING first (data, JSON, oversized): closed
  Counter* handshake_timeouts;  // no valid PING within idle_timeout: closed
};

// The acks a session owes, in request order. Shared with the deliveries in flight, so
// a delivery that completes after its session closed finds `session == nullptr`.
struct AckQueue {
  struct Slot {
    uint64_t seq;
    std::string chunk;
    enum class State { Pending, Ok, Failed } state = State::Pending;
  };
  class ForwardSession* session = nullptr;
  std::deque<Slot> slots;
  uint64_t next_seq = 0;
};

class ForwardSession : public TcpSession {
 public:
  explicit ForwardSession(ForwardInput& input);
  ~ForwardSession() override;

  // With security, sends the HELO first; then reads.
  void start() override;
  // Graceful: stop reading, let queued ack writes finish, then close.
  void closeAfterWrites() override;

  // Called by the AckQueue when slots resolve.
  void flushAcks();

 private:
  void onBytes(const char* data, size_t n) override;
  // A client waiting for acks, or still in the handshake, is not idle.
  bool idleExpired() override;
  // Deliveries completing from now on find no session to ack on.
  void onClose() override;

  void processFrames();
  void sendAcks();
  void handleFrame(std::string&& frame);
  // Handshake phase: the frame must be a valid PING. False when the connection closes.
  bool handleHandshakeFrame(const std::string& frame);
  void failHandshake(Counter* counter, const std::string& why, const std::string& pong);
  std::string peerAddress();
  // Queues bytes that are not acks (HELO, PONG) on the connection, in order with acks.
  void writeBytes(std::string data, size_t acks);
  void writeAck(const std::string& chunk);
  // Bytes the peer has not read yet: buffered acks plus libuv's write queue.
  uint64_t unreadBytes();

  ForwardInput& input_;
  bool close_after_writes_ = false;
  size_t writes_in_flight_ = 0;
  FrameSplitter splitter_;
  std::shared_ptr<AckQueue> acks_;
  std::string frame_;
  bool json_counted_ = false;
  bool in_read_ = false;
  std::string ack_out_;  // acks waiting for the end of the current read
  size_t acks_buffered_ = 0;
  // Set while the handshake is pending (security on, no valid PING yet).
  std::optional<handshake::ServerHandshake> handshake_;
};

}  // namespace ferry::forward
