// An output's in-memory queue of batches with byte accounting, edge-triggered high/low
// watermarks and a full_action (block, drop_oldest, drop_newest) applied at memory_limit.
// Loop-thread only; the output's writer pops, the router's submit() pushes.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <string_view>

#include "src/batch.h"
#include "src/flow_control.h"

namespace ferry {

// Heka's and Vector's words, so users recognise them (anchors.md lesson 4).
enum class FullAction : uint8_t { Block, DropOldest, DropNewest };
const char* fullActionName(FullAction action);
// "block", "drop_oldest", "drop_newest"; false for anything else.
bool parseFullAction(std::string_view text, FullAction& out);

// What a batch costs in an output's queue: its events' time and record bytes plus the
// per-event bookkeeping. Not bytes->size(): the router cuts several batches from one
// shared frame, and charging the whole frame to each would count it many times.
uint64_t batchQueueBytes(const Batch& batch);

struct OutputQueueOptions {
  std::string name;  // for logs: the output's name
  uint64_t memory_limit = 64ull << 20;
  uint64_t high_watermark = 0;  // 0: memory_limit
  uint64_t low_watermark = 0;   // 0: high_watermark / 2
  // Block only: a push that would take the queue over this is refused even in block mode,
  // bounding memory when readers keep delivering after the pause (bytes already read,
  // several sessions in one loop turn). 0: 2 × memory_limit.
  uint64_t overflow_limit = 0;
  FullAction full_action = FullAction::Block;
};

class OutputQueue {
 public:
  struct Entry {
    BatchPtr batch;
    AckShare ack;
    uint64_t bytes = 0;
  };
  enum class PushResult {
    Queued,   // taken (possibly after evicting older entries under drop_oldest)
    Refused,  // not taken; its AckShare has been failed
  };
  using Callback = std::function<void()>;

  // Throws std::invalid_argument when the limits are inconsistent (low >= high, high or
  // overflow below their bounds, memory_limit 0). `account` is charged for queued bytes.
  explicit OutputQueue(OutputQueueOptions options, MemoryBudget::Account account = {});
  OutputQueue(const OutputQueue&) = delete;
  OutputQueue& operator=(const OutputQueue&) = delete;
  // Remaining entries' AckShares fail (no ack for what was never written).
  ~OutputQueue();

  // onAboveHigh runs once when queued bytes go above the high watermark; onBelowLow once
  // when they next fall to the low watermark or under. In between neither repeats.
  void setWatermarkCallbacks(Callback on_above_high, Callback on_below_low);

  // Applies full_action when `bytes` more would exceed memory_limit. An empty queue always
  // takes the batch, so one batch bigger than the limit cannot wedge the output.
  PushResult push(BatchPtr batch, AckShare ack, uint64_t bytes);
  // Convenience: bytes = batchQueueBytes(*batch).
  PushResult push(BatchPtr batch, AckShare ack);

  bool empty() const { return entries_.empty(); }
  size_t size() const { return entries_.size(); }
  // The oldest entry; the queue must not be empty.
  Entry& front() { return entries_.front(); }
  // Removes and returns the oldest entry; its AckShare is the caller's to resolve.
  Entry pop();
  // Fails every entry (shutdown past its deadline, output removed).
  void failAll();

  const OutputQueueOptions& options() const { return opt_; }
  bool aboveHigh() const { return above_high_; }
  uint64_t queuedBytes() const { return bytes_; }
  uint64_t queuedEvents() const { return events_; }
  uint64_t peakBytes() const { return peak_bytes_; }
  uint64_t pushedEvents() const { return pushed_events_; }
  uint64_t poppedEvents() const { return popped_events_; }
  uint64_t droppedOldestEvents() const { return dropped_oldest_events_; }
  uint64_t droppedOldestBatches() const { return dropped_oldest_batches_; }
  uint64_t droppedNewestEvents() const { return dropped_newest_events_; }
  uint64_t droppedNewestBatches() const { return dropped_newest_batches_; }
  uint64_t refusedOverflowEvents() const { return refused_overflow_events_; }
  uint64_t droppedEvents() const {
    return dropped_oldest_events_ + dropped_newest_events_ + refused_overflow_events_;
  }
  // Block mode: pushes taken although they went past memory_limit (expected while the
  // paused readers finish the bytes they already hold).
  uint64_t overLimitAccepts() const { return over_limit_accepts_; }
  uint64_t aboveHighTransitions() const { return above_high_count_; }
  uint64_t belowLowTransitions() const { return below_low_count_; }

 private:
  void take(Entry&& e);
  Entry remove();
  void noteDrop(uint64_t events, uint64_t queued, uint64_t incoming, const char* what);
  void checkWatermarks();

  OutputQueueOptions opt_;
  MemoryBudget::Account account_;
  Callback on_above_high_;
  Callback on_below_low_;
  std::deque<Entry> entries_;
  uint64_t bytes_ = 0;
  uint64_t events_ = 0;
  uint64_t peak_bytes_ = 0;
  bool above_high_ = false;
  // Set by the first drop of an episode (logged once), cleared at the low watermark.
  bool dropping_ = false;
  uint64_t episode_dropped_ = 0;
  uint64_t pushed_events_ = 0;
  uint64_t popped_events_ = 0;
  uint64_t dropped_oldest_events_ = 0;
  uint64_t dropped_oldest_batches_ = 0;
  uint64_t dropped_newest_events_ = 0;
  uint64_t dropped_newest_batches_ = 0;
  uint64_t refused_overflow_events_ = 0;
  uint64_t over_limit_accepts_ = 0;
  uint64_t above_high_count_ = 0;
  uint64_t below_low_count_ = 0;
};

}  // namespace ferry
