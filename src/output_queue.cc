// OutputQueue (output_queue.h). Every mutation settles the queue's own state first and
// only then fails dropped AckShares and runs watermark callbacks, because both reach into
// other objects (sessions writing acks, fanouts pausing readers) that may call back here.
#include "src/output_queue.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace ferry {

const char* fullActionName(FullAction action) {
  switch (action) {
    case FullAction::Block:
      return "block";
    case FullAction::DropOldest:
      return "drop_oldest";
    case FullAction::DropNewest:
      return "drop_newest";
  }
  return "unknown";
}

bool parseFullAction(std::string_view text, FullAction& out) {
  if (text == "block") {
    out = FullAction::Block;
  } else if (text == "drop_oldest") {
    out = FullAction::DropOldest;
  } else if (text == "drop_newest") {
    out = FullAction::DropNewest;
  } else {
    return false;
  }
  return true;
}

uint64_t batchQueueBytes(const Batch& batch) {
  uint64_t n = sizeof(Batch) + batch.tag.size();
  for (const Event& e : batch.events)
    n += sizeof(Event) + e.time_len + e.record_len;
  return n;
}

OutputQueue::OutputQueue(OutputQueueOptions options, MemoryBudget::Account account)
    : opt_(std::move(options)), account_(std::move(account)) {
  if (opt_.memory_limit == 0) {
    throw std::invalid_argument("output queue: memory_limit must be above 0");
  }
  if (opt_.high_watermark == 0) opt_.high_watermark = opt_.memory_limit;
  if (opt_.low_watermark == 0) opt_.low_watermark = opt_.high_watermark / 2;
  if (opt_.overflow_limit == 0) opt_.overflow_limit = 2 * opt_.memory_limit;
  if (opt_.high_watermark > opt_.memory_limit) {
    throw std::invalid_argument("output queue: the high watermark must not exceed memory_limit");
  }
  if (opt_.low_watermark >= opt_.high_watermark) {
    throw std::invalid_argument("output queue: the low watermark must be below the high one");
  }
  if (opt_.overflow_limit < opt_.memory_limit) {
    throw std::invalid_argument("output queue: overflow_limit must not be below memory_limit");
  }
}

OutputQueue::~OutputQueue() {
  // Entries' AckShares fail as they are destroyed; no callbacks run from a destructor.
  on_above_high_ = nullptr;
  on_below_low_ = nullptr;
}

void OutputQueue::setWatermarkCallbacks(Callback on_above_high, Callback on_below_low) {
  on_above_high_ = std::move(on_above_high);
  on_below_low_ = std::move(on_below_low);
}

OutputQueue::PushResult OutputQueue::push(BatchPtr batch, AckShare ack) {
  const uint64_t bytes = batch ? batchQueueBytes(*batch) : 0;
  return push(std::move(batch), std::move(ack), bytes);
}

OutputQueue::PushResult OutputQueue::push(BatchPtr batch, AckShare ack, uint64_t bytes) {
  const uint64_t events = batch ? batch->events.size() : 0;
  const uint64_t before = bytes_;
  const bool fits = entries_.empty() || bytes_ + bytes <= opt_.memory_limit;
  std::vector<Entry> evicted;
  bool refused = false;

  if (!fits) {
    switch (opt_.full_action) {
      case FullAction::Block:
        // The readers are (or are about to be) paused by the high watermark; what they
        // already read is still taken, up to the overflow limit.
        if (bytes_ + bytes > opt_.overflow_limit) {
          refused = true;
          refused_overflow_events_ += events;
          noteDrop(events, before, bytes, "refusing batches past overflow_limit");
        } else {
          ++over_limit_accepts_;
        }
        break;
      case FullAction::DropOldest: {
        uint64_t n = 0;
        while (!entries_.empty() && bytes_ + bytes > opt_.memory_limit) {
          evicted.push_back(remove());
          n += evicted.back().batch ? evicted.back().batch->events.size() : 0;
        }
        dropped_oldest_events_ += n;
        dropped_oldest_batches_ += evicted.size();
        noteDrop(n, before, bytes, "dropping the oldest batches");
        break;
      }
      case FullAction::DropNewest:
        refused = true;
        dropped_newest_events_ += events;
        ++dropped_newest_batches_;
        noteDrop(events, before, bytes, "dropping the newest batches");
        break;
    }
  }

  if (!refused) {
    pushed_events_ += events;
    take(Entry{std::move(batch), std::move(ack), bytes});
  }
  // Failing acks may complete deliveries whose callbacks write to sessions; the queue is
  // already consistent, so whatever they do here is safe.
  for (Entry& e : evicted)
    e.ack.fail();
  if (refused) ack.fail();
  checkWatermarks();
  return refused ? PushResult::Refused : PushResult::Queued;
}

OutputQueue::Entry OutputQueue::pop() {
  Entry e = remove();
  popped_events_ += e.batch ? e.batch->events.size() : 0;
  checkWatermarks();
  return e;
}

void OutputQueue::failAll() {
  std::deque<Entry> gone;
  gone.swap(entries_);
  account_.release(bytes_);
  bytes_ = 0;
  events_ = 0;
  for (Entry& e : gone)
    e.ack.fail();
  checkWatermarks();
}

void OutputQueue::take(Entry&& e) {
  bytes_ += e.bytes;
  events_ += e.batch ? e.batch->events.size() : 0;
  if (bytes_ > peak_bytes_) peak_bytes_ = bytes_;
  account_.charge(e.bytes);
  entries_.push_back(std::move(e));
}

OutputQueue::Entry OutputQueue::remove() {
  Entry e = std::move(entries_.front());
  entries_.pop_front();
  bytes_ -= e.bytes;
  events_ -= e.batch ? e.batch->events.size() : 0;
  account_.release(e.bytes);
  return e;
}

void OutputQueue::noteDrop(uint64_t events, uint64_t queued, uint64_t incoming, const char* what) {
  episode_dropped_ += events;
  if (dropping_) return;
  // Once per episode: a queue that stays full would otherwise log every batch.
  dropping_ = true;
  spdlog::warn(
      "[{}] output queue full ({} bytes queued + {} incoming, memory_limit {}, full_action {}): "
      "{}; next report once it drains to {} bytes",
      opt_.name, queued, incoming, opt_.memory_limit, fullActionName(opt_.full_action), what,
      opt_.low_watermark);
}

void OutputQueue::checkWatermarks() {
  if (dropping_ && bytes_ <= opt_.low_watermark) {
    dropping_ = false;
    spdlog::info("[{}] output queue back to {} bytes; {} events dropped or refused while full",
                 opt_.name, bytes_, episode_dropped_);
    episode_dropped_ = 0;
  }
  if (!above_high_ && bytes_ > opt_.high_watermark) {
    above_high_ = true;
    ++above_high_count_;
    if (on_above_high_) on_above_high_();
  } else if (above_high_ && bytes_ <= opt_.low_watermark) {
    above_high_ = false;
    ++below_low_count_;
    if (on_below_low_) on_below_low_();
  }
}

}  // namespace ferry
