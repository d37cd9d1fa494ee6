// Router: predicate evaluation, per-tag caching, fan-out with shared batches.
#include "src/router.h"

#include "src/event_view.h"

namespace ferry {

bool MessageMatcherPredicate::matchBatch(const Batch& batch) const {
  return matcher_->matches(TagOnlyView(batch.tag));
}

bool MessageMatcherPredicate::matchEvent(const Batch& batch, const Event& event) const {
  return matcher_->matches(FluentEventView(batch, event));
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

  // Batch-constant routes: one evaluation per tag, cached.
  const std::vector<uint8_t>* constant = nullptr;
  auto it = tag_cache_.find(batch->tag);
  if (it == tag_cache_.end()) {
    if (tag_cache_.size() >= kTagCacheMax) tag_cache_.clear();
    std::vector<uint8_t> flags(n, 0);
    for (size_t r = 0; r < n; ++r) {
      if (routes_[r].predicate->batchConstant())
        flags[r] = routes_[r].predicate->matchBatch(*batch);
    }
    it = tag_cache_.emplace(batch->tag, std::move(flags)).first;
  }
  constant = &it->second;

  bool any = false;
  for (size_t r = 0; r < n; ++r) {
    Route& route = routes_[r];
    if (route.predicate->batchConstant()) {
      if (!(*constant)[r]) continue;
      any = true;
      route.output->submit(batch, AckShare(delivery));
      continue;
    }
    // Per-event predicate: keep the whole batch when every event matches, else cut a
    // sub-batch over the same bytes.
    std::vector<Event> kept;
    for (const Event& e : batch->events) {
      if (route.predicate->matchEvent(*batch, e)) kept.push_back(e);
    }
    if (kept.empty()) continue;
    any = true;
    if (kept.size() == batch->events.size()) {
      route.output->submit(batch, AckShare(delivery));
    } else {
      auto sub = std::make_shared<Batch>();
      sub->bytes = batch->bytes;
      sub->tag = batch->tag;
      sub->source = batch->source;
      sub->events = std::move(kept);
      route.output->submit(std::move(sub), AckShare(delivery));
    }
  }
  if (!any) unmatched_->inc(batch->events.size());
}

}  // namespace ferry
