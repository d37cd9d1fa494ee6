// Router: predicate evaluation, per-tag caching, fan-out with shared batches.
#include "src/router.h"

#include "src/event_view.h"
#include "src/heka_view.h"

namespace ferry {

bool MessageMatcherPredicate::matchBatch(const Batch& batch) const {
  return matcher_->matches(TagOnlyView(batch.tag));
}

Router::Router(StatsRegistry& stats)
    : unmatched_(&stats.counter("router", "unmatched_events")),
      batches_(&stats.counter("router", "batches")),
      events_(&stats.counter("router", "events")) {}

void Router::addRoute(std::string name, EventPredicatePtr predicate, Output* output) {
  all_constant_ = all_constant_ && predicate->batchConstant();
  tag_cache_.clear();
  routes_.push_back(Route{std::move(name), std::move(predicate), output});
}

void Router::route(const BatchPtr& batch, const std::shared_ptr<Delivery>& delivery) {
  batches_->inc();
  events_->inc(batch->events.size());
  const size_t n = routes_.size();
  const bool fluent = batch->format == EventFormat::FluentRecord;

  // Fluentd batches have one tag: batch-constant routes are evaluated once per tag,
  // cached. Heka messages each have their own Type, so every route is per event.
  const std::vector<uint8_t>* constant = nullptr;
  if (fluent) {
    auto it = tag_cache_.find(batch->tag);
    if (it == tag_cache_.end()) {
      if (tag_cache_.size() >= kTagCacheMax) tag_cache_.clear();
      std::vector<uint8_t> flags(n, 0);
      for (size_t r = 0; r < n; ++r) {
        if (routes_[r].predicate->batchConstant()) {
          flags[r] = routes_[r].predicate->matchBatch(*batch);
        }
      }
      it = tag_cache_.emplace(batch->tag, std::move(flags)).first;
    }
    constant = &it->second;
  }

  bool any = false;
  per_event_.clear();
  for (size_t r = 0; r < n; ++r) {
    Route& route = routes_[r];
    if (fluent && route.predicate->batchConstant()) {
      if (!(*constant)[r]) continue;
      any = true;
      route.output->submit(batch, AckShare(delivery));
      continue;
    }
    per_event_.push_back(r);
  }
  if (!per_event_.empty()) {
    // One view per event, shared by every per-event predicate.
    kept_.resize(per_event_.size());
    for (auto& k : kept_)
      k.clear();
    for (const Event& e : batch->events) {
      auto decide = [&](const MessageView& view) {
        for (size_t k = 0; k < per_event_.size(); ++k) {
          if (routes_[per_event_[k]].predicate->matchEvent(*batch, e, view)) {
            kept_[k].push_back(e);
          }
        }
      };
      if (fluent) {
        decide(FluentEventView(*batch, e));
      } else {
        decide(HekaWireView(batch->record(e)));
      }
    }
    for (size_t k = 0; k < per_event_.size(); ++k) {
      std::vector<Event>& kept = kept_[k];
      if (kept.empty()) continue;
      any = true;
      Output* out = routes_[per_event_[k]].output;
      if (kept.size() == batch->events.size()) {
        // Every event matched: the batch itself goes, shared.
        out->submit(batch, AckShare(delivery));
        continue;
      }
      // A sub-batch over the same bytes: nothing is re-encoded.
      auto sub = std::make_shared<Batch>();
      sub->bytes = batch->bytes;
      sub->format = batch->format;
      sub->tag = batch->tag;
      sub->source = batch->source;
      sub->signers = batch->signers;
      sub->events = std::move(kept);
      kept.clear();
      out->submit(std::move(sub), AckShare(delivery));
    }
  }
  if (!any) unmatched_->inc(batch->events.size());
}

}  // namespace ferry
