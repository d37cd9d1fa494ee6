// Server: owns the loop's plugins, the router and the signal handlers, and runs the
// graceful stop: stop accepting → drain inputs → flush outputs → write the last acks →
// exit, bounded by shutdown_timeout.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "src/config_loader.h"
#include "src/flow_control.h"
#include "src/plugin.h"
#include "src/router.h"
#include "src/stats.h"

namespace ferry {

// Compiles every output's matcher; throws ConfigError on a bad pattern or an output that
// would match nothing. Used by --check-config and by Server.
std::vector<EventPredicatePtr> compileMatchers(const Config& config);

class Server {
 public:
  Server(uv_loop_t* loop, Config config, const PluginRegistry& registry);
  ~Server();

  // Builds outputs and inputs and binds listeners. Throws ConfigError or
  // std::runtime_error; nothing is left listening on failure.
  void start();
  // Graceful stop (what SIGTERM does).
  void stop();
  // SIGUSR1: log the counters and reopen output files.
  void report();
  bool stopped() const { return stopped_; }
  // Runs before the process exits without unwinding (shutdown_timeout, second signal),
  // e.g. to remove the pid file.
  void setForcedExitHook(std::function<void()> hook) { forced_exit_hook_ = std::move(hook); }
  StatsRegistry& stats() { return stats_; }

 private:
  static void onSignal(uv_signal_t* h, int signum);
  std::function<Output*(const std::string&)> findOutput();
  void flushOutputs();
  void finish();
  void updateFlowGauges();

  uv_loop_t* loop_;
  Config config_;
  const PluginRegistry& registry_;
  StatsRegistry stats_;
  std::string hostname_;
  Router router_;
  // Before the plugins: they hold memberships and accounts in it.
  std::unique_ptr<FlowControl> flow_;
  std::vector<std::unique_ptr<Output>> outputs_;
  std::vector<std::unique_ptr<Input>> inputs_;
  std::vector<uv_signal_t*> signals_;
  uv_timer_t* shutdown_timer_ = nullptr;
  bool stopping_ = false;
  bool stopped_ = false;
  size_t pending_steps_ = 0;
  std::function<void()> forced_exit_hook_;
};

}  // namespace ferry
