// PauseSet, PauseFanout and MemoryBudget (flow_control.h). State changes happen before any
// callback runs, so a callback that re-enters (closes a session, pauses another reason)
// always sees a consistent picture.
#include "src/flow_control.h"

#include <algorithm>
#include <list>
#include <set>
#include <stdexcept>
#include <unordered_set>

#include <spdlog/spdlog.h>

namespace ferry {

const char* pauseReasonName(PauseReason reason) {
  switch (reason) {
    case PauseReason::OutputFull:
      return "output_full";
    case PauseReason::MemoryBudget:
      return "memory_budget";
    case PauseReason::SpoolFull:
      return "spool_full";
    case PauseReason::ReloadDrain:
      return "reload_drain";
    case PauseReason::ReadBuffer:
      return "read_buffer";
  }
  return "unknown";
}

// ---- PauseSet ----

PauseSet::PauseSet(Callback on_pause, Callback on_resume)
    : on_pause_(std::move(on_pause)), on_resume_(std::move(on_resume)) {}

void PauseSet::setCallbacks(Callback on_pause, Callback on_resume) {
  on_pause_ = std::move(on_pause);
  on_resume_ = std::move(on_resume);
}

bool PauseSet::add(PauseReason reason) {
  if (has(reason)) return false;
  const bool was_paused = paused();
  active_ |= bit(reason);
  ++pauses_[index(reason)];
  if (!was_paused) {
    ++reader_pauses_;
    if (on_pause_) on_pause_();
  }
  return true;
}

bool PauseSet::clear(PauseReason reason) {
  if (!has(reason)) return false;
  active_ &= ~bit(reason);
  ++resumes_[index(reason)];
  if (!paused()) {
    ++reader_resumes_;
    if (on_resume_) on_resume_();
  }
  return true;
}

std::vector<PauseReason> PauseSet::active() const {
  std::vector<PauseReason> out;
  for (size_t i = 0; i < kPauseReasonCount; ++i) {
    if (active_ & (1u << i)) out.push_back(static_cast<PauseReason>(i));
  }
  return out;
}

// ---- PauseFanout ----

struct PauseFanout::State {
  PauseReason reason;
  std::string name;
  std::unordered_set<PauseSet*> members;
  std::set<std::string, std::less<>> sources;
  uint64_t activations = 0;
  uint64_t deactivations = 0;
};

PauseFanout::Membership::Membership(Membership&& o) noexcept
    : state_(std::move(o.state_)), set_(o.set_) {
  o.set_ = nullptr;
}

PauseFanout::Membership& PauseFanout::Membership::operator=(Membership&& o) noexcept {
  if (this != &o) {
    leave();
    state_ = std::move(o.state_);
    set_ = o.set_;
    o.set_ = nullptr;
  }
  return *this;
}

void PauseFanout::Membership::leave() {
  if (set_ == nullptr) return;
  if (auto s = state_.lock()) s->members.erase(set_);
  set_ = nullptr;
  state_.reset();
}

PauseFanout::PauseFanout(PauseReason reason, std::string name) : state_(std::make_shared<State>()) {
  state_->reason = reason;
  state_->name = name.empty() ? pauseReasonName(reason) : std::move(name);
}

PauseFanout::~PauseFanout() {
  if (!state_->sources.empty()) {
    state_->sources.clear();
    apply(false);
  }
}

PauseFanout::Membership PauseFanout::join(PauseSet& set) {
  state_->members.insert(&set);
  Membership m(state_, &set);
  if (!state_->sources.empty()) set.add(state_->reason);
  return m;
}

void PauseFanout::raise(std::string_view source) {
  if (state_->sources.find(source) != state_->sources.end()) return;
  const bool was_active = !state_->sources.empty();
  state_->sources.emplace(source);
  if (was_active) return;
  ++state_->activations;
  spdlog::warn("flow control: {} pausing {} reader(s) (first source: {})", state_->name,
               state_->members.size(), source);
  apply(true);
}

void PauseFanout::lower(std::string_view source) {
  auto it = state_->sources.find(source);
  if (it == state_->sources.end()) return;
  state_->sources.erase(it);
  if (!state_->sources.empty()) return;
  ++state_->deactivations;
  spdlog::info("flow control: {} resuming {} reader(s) (last source: {})", state_->name,
               state_->members.size(), source);
  apply(false);
}

void PauseFanout::apply(bool pause) {
  // A callback may close a reader, which leaves the fanout: walk a snapshot and skip sets
  // that left meanwhile, so no freed PauseSet is touched.
  const std::vector<PauseSet*> snapshot(state_->members.begin(), state_->members.end());
  for (PauseSet* set : snapshot) {
    // A callback that raised or lowered this fanout re-entrantly has already applied the
    // newer state to everyone; finishing the old walk would undo it.
    if (state_->sources.empty() == pause) return;
    if (state_->members.count(set) == 0) continue;
    if (pause) {
      set->add(state_->reason);
    } else {
      set->clear(state_->reason);
    }
  }
}

bool PauseFanout::active() const {
  return !state_->sources.empty();
}
PauseReason PauseFanout::reason() const {
  return state_->reason;
}
size_t PauseFanout::members() const {
  return state_->members.size();
}
std::vector<std::string> PauseFanout::sources() const {
  return {state_->sources.begin(), state_->sources.end()};
}
uint64_t PauseFanout::activations() const {
  return state_->activations;
}
uint64_t PauseFanout::deactivations() const {
  return state_->deactivations;
}

// ---- MemoryBudget ----

struct MemoryBudget::AccountEntry {
  std::string name;
  uint64_t used = 0;
};

struct MemoryBudget::State {
  uint64_t limit = 0;
  uint64_t low_mark = 0;
  uint64_t used = 0;
  uint64_t peak = 0;
  bool pressure = false;
  uint64_t pressure_events = 0;
  uint64_t relief_events = 0;
  Callback on_pressure;
  Callback on_relief;
  std::list<std::weak_ptr<AccountEntry>> accounts;

  void charged(uint64_t bytes) {
    used += bytes;
    peak = std::max(peak, used);
    if (limit == 0 || pressure || used <= limit) return;
    pressure = true;
    ++pressure_events;
    spdlog::warn("memory budget: {} bytes in use, over the limit of {}", used, limit);
    if (on_pressure) on_pressure();
  }
  void released(uint64_t bytes) {
    used -= bytes;
    if (!pressure || used > low_mark) return;
    pressure = false;
    ++relief_events;
    spdlog::info("memory budget: {} bytes in use, at or below the low mark of {}", used, low_mark);
    if (on_relief) on_relief();
  }
};

MemoryBudget::Account::Account(Account&& o) noexcept
    : state_(std::move(o.state_)), entry_(std::move(o.entry_)) {}

MemoryBudget::Account& MemoryBudget::Account::operator=(Account&& o) noexcept {
  if (this != &o) {
    close();
    state_ = std::move(o.state_);
    entry_ = std::move(o.entry_);
  }
  return *this;
}

void MemoryBudget::Account::charge(uint64_t bytes) {
  if (!entry_ || bytes == 0) return;
  entry_->used += bytes;
  state_->charged(bytes);
}

void MemoryBudget::Account::release(uint64_t bytes) {
  if (!entry_) return;
  bytes = std::min(bytes, entry_->used);
  if (bytes == 0) return;
  entry_->used -= bytes;
  state_->released(bytes);
}

uint64_t MemoryBudget::Account::used() const {
  return entry_ ? entry_->used : 0;
}

void MemoryBudget::Account::close() {
  if (!entry_) return;
  release(entry_->used);
  // The budget's list holds weak references; expired ones are pruned by accounts().
  entry_.reset();
  state_.reset();
}

MemoryBudget::MemoryBudget(uint64_t limit, uint64_t low_mark) : state_(std::make_shared<State>()) {
  if (limit != 0 && low_mark == 0) low_mark = limit / 2;
  if (limit != 0 && low_mark >= limit) {
    throw std::invalid_argument("memory budget: the low mark must be below the limit");
  }
  state_->limit = limit;
  state_->low_mark = low_mark;
}

MemoryBudget::~MemoryBudget() {
  state_->on_pressure = nullptr;
  state_->on_relief = nullptr;
}

MemoryBudget::Account MemoryBudget::account(std::string name) {
  auto entry = std::make_shared<AccountEntry>();
  entry->name = std::move(name);
  state_->accounts.remove_if([](const std::weak_ptr<AccountEntry>& w) { return w.expired(); });
  state_->accounts.push_back(entry);
  return Account(state_, std::move(entry));
}

void MemoryBudget::setCallbacks(Callback on_pressure, Callback on_relief) {
  state_->on_pressure = std::move(on_pressure);
  state_->on_relief = std::move(on_relief);
}

bool MemoryBudget::underPressure() const {
  return state_->pressure;
}
uint64_t MemoryBudget::used() const {
  return state_->used;
}
uint64_t MemoryBudget::peak() const {
  return state_->peak;
}
uint64_t MemoryBudget::limit() const {
  return state_->limit;
}
uint64_t MemoryBudget::lowMark() const {
  return state_->low_mark;
}
uint64_t MemoryBudget::pressureEvents() const {
  return state_->pressure_events;
}
uint64_t MemoryBudget::reliefEvents() const {
  return state_->relief_events;
}

std::vector<std::pair<std::string, uint64_t>> MemoryBudget::accounts() const {
  std::vector<std::pair<std::string, uint64_t>> out;
  state_->accounts.remove_if([](const std::weak_ptr<AccountEntry>& w) { return w.expired(); });
  for (const auto& w : state_->accounts) {
    if (auto e = w.lock()) out.emplace_back(e->name, e->used);
  }
  std::stable_sort(out.begin(), out.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  return out;
}

FlowControl::FlowControl(uint64_t memory_limit) : budget(memory_limit) {
  budget.setCallbacks([this] { budget_pressure.raise("memory_budget"); },
                      [this] { budget_pressure.lower("memory_budget"); });
}

std::vector<PauseFanout::Membership> FlowControl::joinAll(PauseSet& set) {
  std::vector<PauseFanout::Membership> out;
  out.reserve(4);
  out.push_back(output_full.join(set));
  out.push_back(spool_full.join(set));
  out.push_back(budget_pressure.join(set));
  out.push_back(reload.join(set));
  return out;
}

}  // namespace ferry
