// The unit that moves through ferry: a batch of events sharing one immutable,
// reference-counted byte buffer (a forward chunk is one batch with one tag), and the
// delivery record that turns "every matched output accepted it" into one client ack.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

// One event: offsets into its batch's bytes. For a Fluentd batch the record is a msgpack
// map and the time its msgpack time value, both kept as they arrived; for a Heka batch
// the "record" is the protobuf Message body exactly as received (time_off/time_len
// unused). time_ns is decoded once, at the input.
struct Event {
  int64_t time_ns = 0;
  uint32_t time_off = 0;
  uint32_t time_len = 0;
  uint32_t record_off = 0;
  uint32_t record_len = 0;
  uint16_t signer = 0;  // Heka: 0 unsigned, k = verified by Batch::signers[k - 1]
};

class Delivery;

// Where a batch came from: what the event view needs beyond the bytes (bridge.md:
// Logger defaults to the input's name, Hostname to this host's, Payload may come from
// a configured record key).
struct SourceInfo {
  std::string name;
  std::string hostname;
  std::string payload_key;
};

// What the events of a batch are, which decides how outputs and views read them.
enum class EventFormat : uint8_t {
  FluentRecord,  // msgpack [time, record] entries; one tag for the whole batch
  HekaMessage,   // Heka protobuf Message bodies; each has its own Type
};

struct Batch {
  std::shared_ptr<const std::string> bytes;  // shared by every batch cut from one frame
  EventFormat format = EventFormat::FluentRecord;
  std::string tag;  // FluentRecord only (a Heka message's tag is its Type)
  std::vector<Event> events;
  std::shared_ptr<const SourceInfo> source;  // shared by every batch of one input
  std::vector<std::string> signers;          // Heka signer names events refer to

  std::string_view record(const Event& e) const {
    return std::string_view(*bytes).substr(e.record_off, e.record_len);
  }
  std::string_view time(const Event& e) const {
    return std::string_view(*bytes).substr(e.time_off, e.time_len);
  }
};
using BatchPtr = std::shared_ptr<const Batch>;

// Counts the outputs that still have to accept a batch. The router holds one share
// while it dispatches, each matched output gets one; when the last share is released
// the callback runs once with ok = no share failed.
class Delivery {
 public:
  using Callback = std::function<void(bool ok)>;
  explicit Delivery(Callback cb) : cb_(std::move(cb)) {}

  void addShare() { ++pending_; }
  void release(bool ok) {
    if (!ok) failed_ = true;
    if (--pending_ == 0 && cb_) {
      auto cb = std::move(cb_);
      cb_ = nullptr;
      cb(!failed_);
    }
  }

 private:
  Callback cb_;
  int pending_ = 0;
  bool failed_ = false;
};

// One output's share of a Delivery: accept() or fail() exactly once (destroying an
// unresolved share counts as a failure, so a dropped batch can never be acked).
class AckShare {
 public:
  AckShare() = default;
  explicit AckShare(std::shared_ptr<Delivery> d) : d_(std::move(d)) {
    if (d_) d_->addShare();
  }
  AckShare(AckShare&& o) noexcept : d_(std::move(o.d_)) {}
  AckShare& operator=(AckShare&& o) noexcept {
    if (this != &o) {
      resolve(false);
      d_ = std::move(o.d_);
    }
    return *this;
  }
  AckShare(const AckShare&) = delete;
  AckShare& operator=(const AckShare&) = delete;
  ~AckShare() { resolve(false); }

  void accept() { resolve(true); }
  void fail() { resolve(false); }

 private:
  void resolve(bool ok) {
    if (d_) {
      auto d = std::move(d_);
      d_.reset();
      d->release(ok);
    }
  }
  std::shared_ptr<Delivery> d_;
};

}  // namespace ferry
