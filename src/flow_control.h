// Flow control building blocks that stop readers instead of dropping data: a per-reader set
// of pause reasons, a fan-out that pauses many readers for one cause, and the process-wide
// memory budget. Loop-thread only, no libuv: the owner wires callbacks to uv_read_stop/start.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry {

// Why a reader is paused. Each has its own counters so an operator can tell a slow output
// from a full spool or the global budget (docs/flow_control.md).
enum class PauseReason : uint8_t {
  OutputFull,    // an output with full_action = block is above its high watermark
  MemoryBudget,  // the process-wide budget is above its limit
  SpoolFull,     // a disk spool reached its size cap
  ReloadDrain,   // a reload is draining this input
  ReadBuffer,    // the reader's own read buffer is above its high watermark
};
inline constexpr size_t kPauseReasonCount = 5;
const char* pauseReasonName(PauseReason reason);

// The active pause reasons of one reader. Reasons compose: the first added fires onPause,
// the last cleared fires onResume, so two independent causes never resume each other's
// pause. Adding an active reason (or clearing an inactive one) changes nothing.
class PauseSet {
 public:
  using Callback = std::function<void()>;
  PauseSet() = default;
  PauseSet(Callback on_pause, Callback on_resume);
  PauseSet(const PauseSet&) = delete;
  PauseSet& operator=(const PauseSet&) = delete;

  void setCallbacks(Callback on_pause, Callback on_resume);
  // True when the reason was not active before.
  bool add(PauseReason reason);
  // True when the reason was active before.
  bool clear(PauseReason reason);
  // Forgets every reason without calling onResume: for a reader that is closing, where
  // starting to read again would be wrong.
  void reset() { active_ = 0; }

  bool paused() const { return active_ != 0; }
  bool has(PauseReason reason) const { return (active_ & bit(reason)) != 0; }
  std::vector<PauseReason> active() const;
  // Times `reason` became active / was cleared.
  uint64_t pauses(PauseReason reason) const { return pauses_[index(reason)]; }
  uint64_t resumes(PauseReason reason) const { return resumes_[index(reason)]; }
  // Times the reader as a whole was stopped / restarted (onPause / onResume calls).
  uint64_t readerPauses() const { return reader_pauses_; }
  uint64_t readerResumes() const { return reader_resumes_; }

 private:
  static size_t index(PauseReason r) { return static_cast<size_t>(r); }
  static uint32_t bit(PauseReason r) { return 1u << index(r); }

  Callback on_pause_;
  Callback on_resume_;
  uint32_t active_ = 0;
  uint64_t pauses_[kPauseReasonCount] = {};
  uint64_t resumes_[kPauseReasonCount] = {};
  uint64_t reader_pauses_ = 0;
  uint64_t reader_resumes_ = 0;
};

// One cause of pausing shared by many readers: every joined PauseSet carries `reason` while
// at least one named source (an output, the budget) is raised. Sources are counted here, not
// in PauseSet, so two full outputs need both to drain before readers resume.
class PauseFanout {
  struct State;

 public:
  // Removes its PauseSet from the fanout when destroyed (declare it after the PauseSet, so
  // it goes first). Leaves the PauseSet's reasons alone: a closing reader calls reset().
  class Membership {
   public:
    Membership() = default;
    Membership(Membership&& o) noexcept;
    Membership& operator=(Membership&& o) noexcept;
    Membership(const Membership&) = delete;
    Membership& operator=(const Membership&) = delete;
    ~Membership() { leave(); }
    void leave();
    bool joined() const { return set_ != nullptr; }

   private:
    friend class PauseFanout;
    Membership(std::weak_ptr<State> state, PauseSet* set) : state_(std::move(state)), set_(set) {}
    std::weak_ptr<State> state_;
    PauseSet* set_ = nullptr;
  };

  explicit PauseFanout(PauseReason reason, std::string name = {});
  // Clears the reason from every member still joined, so no reader stays paused by a
  // fanout that no longer exists (an output removed by a reload).
  ~PauseFanout();
  PauseFanout(const PauseFanout&) = delete;
  PauseFanout& operator=(const PauseFanout&) = delete;

  // A set joining while the fanout is active is paused at once, so a connection accepted
  // during pressure does not start reading.
  [[nodiscard]] Membership join(PauseSet& set);
  // Idempotent per source name.
  void raise(std::string_view source);
  void lower(std::string_view source);

  bool active() const;
  PauseReason reason() const;
  size_t members() const;
  std::vector<std::string> sources() const;
  uint64_t activations() const;    // inactive → active edges
  uint64_t deactivations() const;  // active → inactive edges

 private:
  void apply(bool pause);
  std::shared_ptr<State> state_;
};

// The process-wide memory budget above the per-output limits. Every buffer owner charges
// an Account; the sum crossing `limit` raises pressure (once), falling to `low_mark`
// relieves it (once). The gap between the two is the hysteresis that keeps inputs from
// flapping around one threshold.
class MemoryBudget {
  struct State;
  struct AccountEntry;

 public:
  // Releases what it still holds when destroyed. A default Account charges nothing
  // anywhere, so owners without a budget can hold one unconditionally.
  class Account {
   public:
    Account() = default;
    Account(Account&& o) noexcept;
    Account& operator=(Account&& o) noexcept;
    Account(const Account&) = delete;
    Account& operator=(const Account&) = delete;
    ~Account() { close(); }

    void charge(uint64_t bytes);
    // Never releases more than it holds.
    void release(uint64_t bytes);
    uint64_t used() const;
    void close();

   private:
    friend class MemoryBudget;
    Account(std::shared_ptr<State> state, std::shared_ptr<AccountEntry> entry)
        : state_(std::move(state)), entry_(std::move(entry)) {}
    std::shared_ptr<State> state_;
    std::shared_ptr<AccountEntry> entry_;
  };

  using Callback = std::function<void()>;
  // `low_mark` 0 means limit / 2; it must be below `limit`. `limit` 0 means no budget
  // (never under pressure). Throws std::invalid_argument on low_mark >= limit.
  explicit MemoryBudget(uint64_t limit, uint64_t low_mark = 0);
  // Drops the callbacks: accounts that outlive the budget keep counting but call no one.
  ~MemoryBudget();
  MemoryBudget(const MemoryBudget&) = delete;
  MemoryBudget& operator=(const MemoryBudget&) = delete;

  Account account(std::string name);
  void setCallbacks(Callback on_pressure, Callback on_relief);

  bool underPressure() const;
  uint64_t used() const;
  uint64_t peak() const;
  uint64_t limit() const;
  uint64_t lowMark() const;
  uint64_t pressureEvents() const;
  uint64_t reliefEvents() const;
  // Open accounts and what each holds, largest first: who to shed under lasting pressure.
  std::vector<std::pair<std::string, uint64_t>> accounts() const;

 private:
  std::shared_ptr<State> state_;
};

// The process-wide flow state, owned by the server and shared with every plugin through
// PluginContext::flow: the memory budget and one fanout per pause cause. Inputs join each
// reader's PauseSet to all of them (joinAll); outputs raise and lower sources.
struct FlowControl {
  // `memory_limit` 0: no process budget.
  explicit FlowControl(uint64_t memory_limit);
  FlowControl(const FlowControl&) = delete;
  FlowControl& operator=(const FlowControl&) = delete;

  // Joins `set` to every fanout below; a fanout already active pauses it at once. The
  // memberships leave when destroyed (keep them after the PauseSet they refer to).
  [[nodiscard]] std::vector<PauseFanout::Membership> joinAll(PauseSet& set);

  MemoryBudget budget;
  PauseFanout output_full{PauseReason::OutputFull, "output_full"};
  PauseFanout spool_full{PauseReason::SpoolFull, "spool_full"};
  PauseFanout budget_pressure{PauseReason::MemoryBudget, "memory_budget"};
  PauseFanout reload{PauseReason::ReloadDrain, "reload"};
};

}  // namespace ferry
