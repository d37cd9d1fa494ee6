// ForwardOutput: ships events to Fluentd, Fluent Bit or ferry aggregators over the forward
// protocol with at-least-once delivery: chunks per tag, acks, retries with backoff,
// weighted load balancing with standby servers, heartbeats, and a secondary output.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <uv.h>

#include "src/backoff.h"
#include "src/bridge.h"
#include "src/forward/forward_chunk.h"
#include "src/forward/forward_upstream.h"
#include "src/plugin.h"

namespace ferry::forward {

PluginType forwardOutputType();

class ForwardOutput : public Output, private UpstreamEvents {
 public:
  explicit ForwardOutput(const PluginContext& ctx);
  ~ForwardOutput() override;

  // Appends the events to the open chunk of their tag and accepts `ack` at once, or, when
  // the buffer is over total_limit_size, once it drains below it (so senders waiting for
  // acks slow down); refuses the batch when the batches waiting for that are themselves
  // total_limit_size.
  // After resolveOnDelivery(): `ack` goes with the chunk(s) that take the events instead,
  // and is accepted once every one of them is delivered (acked; written, without
  // require_ack_response) or taken by the secondary, failed once all are done and any was
  // dropped (retries ran out, the stop deadline, close). total_limit_size then neither
  // holds nor refuses: the buffer in front bounds what is in flight here.
  void submit(BatchPtr batch, AckShare ack) override;
  void resolveOnDelivery() override { on_delivery_ = true; }
  // Seals every open chunk and calls `done` once every chunk is delivered (acked), or
  // handed to the secondary / dropped after its retries or the stop deadline (3/4 of
  // [ferry] shutdown_timeout).
  void flush(std::function<void()> done) override;
  void close() override;

 private:
  struct WaitOrder {
    bool operator()(const ChunkPtr& a, const ChunkPtr& b) const {
      if (a->next_attempt_ms != b->next_attempt_ms) return a->next_attempt_ms < b->next_attempt_ms;
      return a->seq < b->seq;
    }
  };
  struct Counters {
    Counter* events_in;
    Counter* batches_in;
    Counter* events_refused;
    Counter* acks_held;
    Counter* chunks_sealed;
    Counter* chunks_sent;
    Counter* chunks_delivered;
    Counter* events_delivered;
    Counter* chunks_resent;
    Counter* events_resent;
    Counter* retries;
    Counter* backoff_waits;
    Counter* backoff_ms;
    Counter* connect_failures;
    Counter* handshake_failures;
    Counter* connections_lost;
    Counter* send_timeouts;
    Counter* ack_timeouts;
    Counter* ack_mismatches;
    Counter* negative_acks;
    Counter* server_down_failovers;
    Counter* no_server_available;
    Counter* chunks_given_up;
    Counter* events_to_secondary;
    Counter* events_dropped;
  };

  // UpstreamEvents
  void onDelivered(Node& node, const ChunkPtr& chunk) override;
  void onFailed(Node& node, std::vector<ChunkPtr> chunks, Failure why) override;
  void onAvailabilityChanged(Node& node) override;
  void onCapacity(Node& node) override;

  ChunkPtr newChunk(const std::string& tag);
  size_t addEntry(ChunkPtr& slot, const std::string& tag, std::string_view time_bytes,
                  int64_t time_ns, std::string_view record);
  void seal(ChunkPtr chunk);
  void sealAll();
  void afterGzip(const ChunkPtr& chunk);
  void enqueue(const ChunkPtr& chunk);
  void pump();
  void armRetryTimer();
  void retry(std::vector<ChunkPtr> chunks, Failure why, const Node* node);
  bool exhausted(const Chunk& chunk, int64_t now) const;
  void giveUp(const ChunkPtr& chunk, const std::string& why);
  // The chunk is done: `delivered`, or dropped / handed to the secondary.
  void finish(const ChunkPtr& chunk, bool delivered);
  // Delivery mode: settles the chunk's shares (`ok` = its events were delivered).
  static void settleShares(std::vector<ChunkSharePtr> shares, bool ok);
  void releaseHeld();
  void checkFlushed();
  void rebuildBalancer();
  void heartbeatTick();
  void stopDeadline();
  Output* secondary();
  int64_t now() const { return static_cast<int64_t>(uv_now(loop_)); }

  static void onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                        unsigned flags);

  std::string name_;
  uv_loop_t* loop_;
  std::function<Output*(const std::string&)> find_output_;
  HekaTagOptions tags_;
  UpstreamSettings up_;
  TimeFormat time_format_;
  bool gzip_;
  uint64_t chunk_limit_;
  uint64_t total_limit_;
  int64_t flush_interval_ms_;
  int64_t heartbeat_interval_ms_;
  int64_t retry_max_times_;  // -1: unlimited
  int64_t retry_timeout_ms_;
  int64_t stop_deadline_ms_;
  std::string secondary_name_;

  std::vector<std::unique_ptr<Node>> nodes_;
  LoadBalancer lb_;
  Backoff backoff_;
  ChunkIdGenerator ids_;
  Counters c_;

  // Open chunks by tag. A slot may hold null after its chunk filled up and was sealed.
  std::unordered_map<std::string, ChunkPtr> open_;
  std::set<ChunkPtr, WaitOrder> waiting_;
  size_t live_chunks_ = 0;  // not Done: open, compressing, waiting or in flight
  uint64_t next_seq_ = 0;
  uint64_t buffered_ = 0;     // bytes of live chunks (gzip size once compressed)
  bool on_delivery_ = false;  // resolveOnDelivery() was called
  ChunkSharePtr submitting_;  // delivery mode: the share of the batch being chunked
  std::deque<std::pair<uint64_t, AckShare>> held_;
  uint64_t held_bytes_ = 0;
  int64_t last_refusal_log_ms_ = -1;

  uv_timer_t* flush_timer_;
  uv_timer_t* retry_timer_;
  uv_timer_t* heartbeat_timer_;
  uv_timer_t* stop_timer_;
  uv_udp_t* udp4_ = nullptr;
  uv_udp_t* udp6_ = nullptr;

  bool pumping_ = false;
  bool pump_again_ = false;
  bool stopping_ = false;
  bool deadline_passed_ = false;
  bool closed_ = false;
  bool handles_closed_ = false;
  bool started_ = false;
  std::vector<std::function<void()>> flush_waiters_;
  Output* secondary_ = nullptr;
  bool secondary_looked_up_ = false;
};

}  // namespace ferry::forward
