// BufferedOutput: the queue in front of every output (architecture §4). It owns the
// ladder memory → disk spool → full_action, so a slow or dead output fills only its own
// queue, and it decides when the client's ack may go:
//
//  - Memory only (`[<output>.buffer] type = "memory"`, the default): batches wait in an
//    OutputQueue (high/low watermarks, full_action at memory_limit) and are handed to the
//    output while less than `inflight` bytes are with it. The client's AckShare travels
//    with the batch, so it is accepted when the output accepts (written for FileOutput,
//    chunked for ForwardOutput, as before).
//  - Spooled (`type = "file"`): every batch is appended to the spool first (write-ahead);
//    the client's AckShare is accepted when the append is done, which with sync = "always"
//    means fdatasync'ed. Batches are delivered from memory while the cached ones stay
//    under the high watermark, otherwise read back from the spool in order. The output
//    runs in resolveOnDelivery() mode and the spool is acked (cumulatively) only up to the
//    oldest batch not yet delivered, so a crash replays exactly what was not delivered
//    (plus, at worst, batches delivered but not yet acked in the ledger: duplicates, never
//    loss). A failed delivery is retried with backoff; nothing is dropped after it is in
//    the spool except by drop_oldest at total_limit_size.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include <uv.h>

#include "src/backoff.h"
#include "src/flow_control.h"
#include "src/output_queue.h"
#include "src/plugin.h"
#include "src/spool.h"
#include "src/stats.h"

namespace ferry {

struct BufferOptions {
  bool spooled = false;  // type = "file"
  OutputQueueOptions queue;
  SpoolOptions spool;
  std::string path;          // spool directory
  bool on_delivery = false;  // PluginType::buffer_on_delivery
};

// The `buffer` table option every buffered output type gets (PluginRegistry::add).
OptionSpec bufferOptionSpec();
// Reads `[<output>.buffer]` with the type's defaults; throws ConfigError naming the file,
// the table's line and `<output>.buffer.<key>`.
BufferOptions parseBufferOptions(const PluginConfig& cfg, const PluginType& type,
                                 const Config& full_config);
// Puts a BufferedOutput in front of `output` when its type is buffered; else returns it.
std::unique_ptr<Output> wrapOutput(const PluginContext& ctx, const PluginType& type,
                                   std::unique_ptr<Output> output);

class BufferedOutput : public Output {
 public:
  // Opens (and recovers) the spool synchronously; throws std::runtime_error naming the
  // directory when it cannot.
  BufferedOutput(const PluginContext& ctx, std::unique_ptr<Output> inner, BufferOptions options);
  ~BufferedOutput() override;

  void submit(BatchPtr batch, AckShare ack) override;
  // Memory: hands everything queued to the output, then flushes it. Spooled: waits for
  // the appends (everything is then on disk), lets the output finish what it holds, acks
  // what was delivered and closes the spool; the rest is replayed at the next start.
  void flush(std::function<void()> done) override;
  void reopen() override { inner_->reopen(); }
  void close() override;

  Output* inner() const { return inner_.get(); }
  uint64_t inflightBytes() const { return inflight_bytes_; }

 private:
  struct Pending {  // handed to the spool, append not done yet
    uint64_t seq;
    BatchPtr batch;
    AckShare ack;
    uint64_t bytes;
  };
  struct Cached {  // in the spool and in memory, not handed to the output yet
    uint64_t seq;
    BatchPtr batch;
    uint64_t bytes;
  };
  struct Blocked {  // waiting for spool space (full_action = block)
    BatchPtr batch;
    AckShare ack;
    uint64_t bytes;
  };
  struct Inflight {
    BatchPtr batch;
    uint64_t bytes;
    bool retry_due = false;
  };

  void memoryPump();
  void spoolSubmit(BatchPtr batch, AckShare ack);
  // Hands the batch to the spool; on Ok it moves into pending_, otherwise it is untouched.
  SpoolStatus appendToSpool(BatchPtr& batch, AckShare& ack, uint64_t bytes);
  // Appends, or applies full_action when the spool is full.
  void tryAppend(BatchPtr& batch, AckShare& ack, uint64_t bytes);
  // A batch the spool would not take for a reason other than room: delivered from memory
  // when it is merely too large for a segment, refused otherwise.
  void settleUnspooled(BatchPtr batch, AckShare ack, uint64_t bytes, SpoolStatus why);
  void onAppended(uint64_t seq, SpoolStatus status);
  void onSpoolFull(BatchPtr batch, AckShare ack, uint64_t bytes, SpoolStatus why);
  void retryBlocked();
  void startDropOldest();
  void spoolPump();
  void readMore();
  void hand(uint64_t seq, BatchPtr batch, uint64_t bytes);
  void onDelivered(uint64_t seq, bool ok);
  void retryFailed();
  void ackDelivered();
  void setMemory(uint64_t bytes);
  void updateMemoryWatermarks();
  void endFullEpisode();
  void updateGauges();
  void maybeFinishFlush();

  std::string name_;
  uv_loop_t* loop_;
  FlowControl* flow_;
  std::unique_ptr<Output> inner_;
  BufferOptions opt_;
  uint64_t inflight_limit_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  // Memory mode.
  std::unique_ptr<OutputQueue> queue_;

  // Spooled mode.
  std::unique_ptr<Spool> spool_;
  MemoryBudget::Account account_;
  std::deque<Pending> pending_;
  std::deque<Cached> cache_;
  std::deque<Blocked> blocked_;
  std::map<uint64_t, Inflight> inflight_;
  uint64_t pending_bytes_ = 0;
  uint64_t cache_bytes_ = 0;
  uint64_t blocked_bytes_ = 0;
  uint64_t handed_max_ = 0;  // highest seq handed to the output (or skipped)
  uint64_t acked_sent_ = 0;  // highest seq acked to the spool
  bool disk_mode_ = false;   // batches past the cache are on disk only: read them back
  bool reading_ = false;
  bool dropping_ = false;      // a drop_oldest is under way on the writer thread
  bool drop_stalled_ = false;  // the last drop freed nothing: wait for an ack or the timer
  bool mem_above_high_ = false;
  bool spool_full_raised_ = false;
  bool full_episode_ = false;
  uint64_t episode_dropped_ = 0;
  Backoff retry_backoff_{100, 30'000};
  uv_timer_t* retry_timer_ = nullptr;
  uv_timer_t* blocked_timer_ = nullptr;

  uint64_t inflight_bytes_ = 0;
  bool pumping_ = false;  // a pump is on the stack: a nested one returns at once
  bool flushing_ = false;
  bool inner_flushing_ = false;
  bool closed_ = false;
  std::function<void()> flush_done_;

  struct Counters {
    Counter* queued_bytes;
    Counter* queued_events;
    Counter* inflight_bytes;
    Counter* peak_bytes;
    Counter* dropped_oldest_events;
    Counter* dropped_newest_events;
    Counter* refused_overflow_events;
    Counter* above_high;
    Counter* delivery_failures;
    Counter* spool_bytes;
    Counter* spool_appended;
    Counter* spool_acked_seq;
    Counter* spool_recovered_records;
    Counter* spool_corrupt_records;
    Counter* spool_torn_tails;
    Counter* spool_read_skipped;
    Counter* spool_undecodable;
    Counter* spool_full;
    Counter* spool_write_errors;
    Counter* spool_dropped_records;
    Counter* spool_too_large;
    Counter* replayed_batches;
  } c_;
  uint64_t peak_ = 0;
};

}  // namespace ferry
