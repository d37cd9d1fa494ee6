// The one router: every batch from every input goes through it, and each output's
// predicate decides what it receives. Matching is a plain function call (no queue per
// matcher). Predicates that only read batch-constant values (the tag) are evaluated
// once per batch and cached per tag; the others once per event, and the router then
// cuts sub-batches that share the original bytes (nothing is re-encoded).
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "src/batch.h"
#include "src/matcher.h"
#include "src/plugin.h"
#include "src/stats.h"
#include "src/tag_pattern.h"

namespace ferry {

// What an output's `match` (and, later, `message_matcher`) compiles to.
class EventPredicate {
 public:
  virtual ~EventPredicate() = default;
  // True when the answer is the same for every event of a batch (depends on the tag only).
  virtual bool batchConstant() const = 0;
  // Valid only when batchConstant() and the batch is a Fluentd one (one tag).
  virtual bool matchBatch(const Batch& batch) const = 0;
  // `view` reads `event` (FluentEventView or HekaWireView, built once per event by the
  // router and shared by every predicate).
  virtual bool matchEvent(const Batch& batch, const Event& event,
                          const MessageView& view) const = 0;
};
using EventPredicatePtr = std::unique_ptr<EventPredicate>;

class TagPredicate : public EventPredicate {
 public:
  explicit TagPredicate(TagPattern pattern) : pattern_(std::move(pattern)) {}
  bool batchConstant() const override { return true; }
  bool matchBatch(const Batch& batch) const override { return pattern_.matches(batch.tag); }
  // A Heka message's tag is its Type.
  bool matchEvent(const Batch&, const Event&, const MessageView& view) const override {
    return pattern_.matches(view.stringVar(StringVar::Type));
  }

 private:
  TagPattern pattern_;
};

// Heka's `message_matcher`. Reads the event through FluentEventView; a matcher that reads
// only Type is batch-constant (a forward chunk has one tag) and runs once per batch.
class MessageMatcherPredicate : public EventPredicate {
 public:
  explicit MessageMatcherPredicate(std::unique_ptr<Matcher> m) : matcher_(std::move(m)) {}
  bool batchConstant() const override { return matcher_->readsOnlyType(); }
  bool matchBatch(const Batch& batch) const override;
  bool matchEvent(const Batch&, const Event&, const MessageView& view) const override {
    return matcher_->matches(view);
  }

 private:
  std::unique_ptr<Matcher> matcher_;
};

// Heka's `message_signer`: only events whose framing header was verified for this signer
// (unsigned events and Fluentd events never match).
class SignerPredicate : public EventPredicate {
 public:
  explicit SignerPredicate(std::string signer) : signer_(std::move(signer)) {}
  bool batchConstant() const override { return false; }
  bool matchBatch(const Batch&) const override { return false; }
  bool matchEvent(const Batch& batch, const Event& event, const MessageView&) const override {
    return event.signer != 0 && event.signer <= batch.signers.size() &&
           batch.signers[event.signer - 1] == signer_;
  }

 private:
  std::string signer_;
};

// Both must hold (`match` and `message_matcher` given together).
class AndPredicate : public EventPredicate {
 public:
  AndPredicate(EventPredicatePtr a, EventPredicatePtr b) : a_(std::move(a)), b_(std::move(b)) {}
  bool batchConstant() const override { return a_->batchConstant() && b_->batchConstant(); }
  bool matchBatch(const Batch& batch) const override {
    return a_->matchBatch(batch) && b_->matchBatch(batch);
  }
  bool matchEvent(const Batch& batch, const Event& e, const MessageView& v) const override {
    return a_->matchEvent(batch, e, v) && b_->matchEvent(batch, e, v);
  }

 private:
  EventPredicatePtr a_, b_;
};

class Router {
 public:
  explicit Router(StatsRegistry& stats);

  // Adds an output with its predicate; `name` labels its counters.
  void addRoute(std::string name, EventPredicatePtr predicate, Output* output);

  // Sends `batch` to every matching output. With a `delivery`, each output that gets
  // events holds one share of it; a batch that matches no output is counted and its
  // delivery completes at once (there is nothing to wait for, as in Fluentd).
  void route(const BatchPtr& batch, const std::shared_ptr<Delivery>& delivery);

  uint64_t unmatchedEvents() const { return unmatched_->value(); }

 private:
  struct Route {
    std::string name;
    EventPredicatePtr predicate;
    Output* output;
  };
  std::vector<Route> routes_;
  bool all_constant_ = true;
  // tag → one flag per route; bounded, cleared when full.
  std::unordered_map<std::string, std::vector<uint8_t>> tag_cache_;
  static constexpr size_t kTagCacheMax = 4096;
  // Scratch reused across route() calls: routes evaluated per event, and their events.
  std::vector<size_t> per_event_;
  std::vector<std::vector<Event>> kept_;
  Counter* unmatched_;
  Counter* batches_;
  Counter* events_;
};

}  // namespace ferry
