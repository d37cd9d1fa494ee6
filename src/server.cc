// Server: plugin construction, signals, and the graceful stop sequence.
#include "src/server.h"

#include <csignal>
#include <cstdlib>

#include <spdlog/spdlog.h>

#include "src/output_buffer.h"

namespace ferry {

std::vector<EventPredicatePtr> compileMatchers(const Config& config) {
  std::vector<EventPredicatePtr> out;
  for (const PluginConfig& pc : config.outputs) {
    const bool has_match = pc.has("match") && !pc.str("match").empty();
    const bool has_matcher = pc.has("message_matcher") && !pc.str("message_matcher").empty();
    if (!has_match && !has_matcher) {
      throw ConfigError(pc.file, pc.line, pc.name + ".match",
                        "this output matches nothing: set `match` (a tag pattern such as "
                        "\"**\") or `message_matcher` (such as \"TRUE\")");
    }
    EventPredicatePtr tag, expr;
    std::string error;
    if (has_match) {
      auto pattern = TagPattern::compile(pc.str("match"), error);
      if (!pattern) pc.fail("match", "invalid tag pattern: " + error);
      tag = std::make_unique<TagPredicate>(std::move(*pattern));
    }
    if (has_matcher) {
      auto m = Matcher::compile(pc.str("message_matcher"), error);
      if (!m) pc.fail("message_matcher", "invalid matcher: " + error);
      expr = std::make_unique<MessageMatcherPredicate>(std::move(m));
    }
    EventPredicatePtr p;
    if (tag && expr) {
      p = std::make_unique<AndPredicate>(std::move(tag), std::move(expr));
    } else {
      p = tag ? std::move(tag) : std::move(expr);
    }
    if (pc.has("message_signer") && !pc.str("message_signer").empty()) {
      p = std::make_unique<AndPredicate>(
          std::make_unique<SignerPredicate>(pc.str("message_signer")), std::move(p));
    }
    out.push_back(std::move(p));
  }
  return out;
}

Server::Server(uv_loop_t* loop, Config config, const PluginRegistry& registry)
    : loop_(loop), config_(std::move(config)), registry_(registry), router_(stats_) {}

std::function<Output*(const std::string&)> Server::findOutput() {
  return [this](const std::string& name) -> Output* {
    for (size_t k = 0; k < config_.outputs.size() && k < outputs_.size(); ++k) {
      if (config_.outputs[k].name == name) return outputs_[k].get();
    }
    return nullptr;
  };
}

Server::~Server() {
  for (uv_signal_t* s : signals_) {
    uv_close(reinterpret_cast<uv_handle_t*>(s),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_signal_t*>(h); });
  }
  if (shutdown_timer_) {
    uv_close(reinterpret_cast<uv_handle_t*>(shutdown_timer_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
}

void Server::start() {
  hostname_ = config_.global.has("hostname") ? config_.global.str("hostname") : "";
  if (hostname_.empty()) {
    char buf[256] = {};
    size_t len = sizeof(buf);
    if (uv_os_gethostname(buf, &len) == 0) hostname_ = buf;
  }
  flow_ = std::make_unique<FlowControl>(config_.global.size("memory_limit"));
  auto matchers = compileMatchers(config_);
  for (size_t k = 0; k < config_.outputs.size(); ++k) {
    const PluginConfig& pc = config_.outputs[k];
    PluginContext ctx{loop_,     &router_, &stats_,      &pc,
                      hostname_, &config_, findOutput(), flow_.get()};
    const PluginType& type = *registry_.find(pc.type);
    outputs_.push_back(wrapOutput(ctx, type, type.make_output(ctx)));
    router_.addRoute(pc.name, std::move(matchers[k]), outputs_.back().get());
  }
  for (const PluginConfig& pc : config_.inputs) {
    PluginContext ctx{loop_,     &router_, &stats_,      &pc,
                      hostname_, &config_, findOutput(), flow_.get()};
    inputs_.push_back(registry_.find(pc.type)->make_input(ctx));
  }
  for (auto& in : inputs_)
    in->start();
  if (inputs_.empty()) spdlog::warn("no inputs configured: nothing will arrive");

  for (int signum : {SIGINT, SIGTERM, SIGUSR1, SIGHUP}) {
    auto* h = new uv_signal_t;
    uv_signal_init(loop_, h);
    h->data = this;
    uv_signal_start(h, &Server::onSignal, signum);
    signals_.push_back(h);
  }
  spdlog::info("ferryd started: {} input(s), {} output(s)", inputs_.size(), outputs_.size());
}

void Server::onSignal(uv_signal_t* h, int signum) {
  auto* self = static_cast<Server*>(h->data);
  switch (signum) {
    case SIGINT:
    case SIGTERM:
      if (self->stopping_) {
        spdlog::warn("second stop signal: exiting now");
        if (self->forced_exit_hook_) self->forced_exit_hook_();
        std::_Exit(1);
      }
      spdlog::info("received {}: stopping gracefully", signum == SIGINT ? "SIGINT" : "SIGTERM");
      self->stop();
      break;
    case SIGUSR1:
      self->report();
      break;
    case SIGHUP:
      spdlog::warn("SIGHUP: config reload is not implemented yet; keeping the running config");
      break;
    default:
      break;
  }
}

void Server::updateFlowGauges() {
  if (!flow_) return;
  stats_.counter("flow", "budget_used").set(flow_->budget.used());
  stats_.counter("flow", "budget_peak").set(flow_->budget.peak());
  stats_.counter("flow", "budget_pressure").set(flow_->budget.pressureEvents());
  stats_.counter("flow", "output_full_activations").set(flow_->output_full.activations());
  stats_.counter("flow", "spool_full_activations").set(flow_->spool_full.activations());
}

void Server::report() {
  updateFlowGauges();
  spdlog::info("stats {}", stats_.toJson());
  for (auto& out : outputs_)
    out->reopen();
}

void Server::stop() {
  if (stopping_) return;
  stopping_ = true;
  // Signals and the deadline must not keep the loop alive once the work is done.
  for (uv_signal_t* s : signals_)
    uv_unref(reinterpret_cast<uv_handle_t*>(s));
  shutdown_timer_ = new uv_timer_t;
  uv_timer_init(loop_, shutdown_timer_);
  shutdown_timer_->data = this;
  const int64_t timeout = config_.global.durationMs("shutdown_timeout");
  uv_timer_start(
      shutdown_timer_,
      [](uv_timer_t* t) {
        auto* self = static_cast<Server*>(t->data);
        self->updateFlowGauges();
        spdlog::error("shutdown_timeout reached before outputs were flushed; exiting. {}",
                      self->stats_.toJson());
        if (self->forced_exit_hook_) self->forced_exit_hook_();
        std::_Exit(0);
      },
      static_cast<uint64_t>(timeout), 0);
  uv_unref(reinterpret_cast<uv_handle_t*>(shutdown_timer_));

  for (auto& in : inputs_)
    in->stopAccepting();
  pending_steps_ = inputs_.size();
  if (pending_steps_ == 0) {
    flushOutputs();
    return;
  }
  for (auto& in : inputs_) {
    in->drain([this] {
      if (--pending_steps_ == 0) flushOutputs();
    });
  }
}

void Server::flushOutputs() {
  pending_steps_ = outputs_.size();
  if (pending_steps_ == 0) {
    finish();
    return;
  }
  for (auto& out : outputs_) {
    out->flush([this] {
      if (--pending_steps_ == 0) finish();
    });
  }
}

void Server::finish() {
  // Outputs are flushed, so every ack owed has been queued on its connection; closing
  // the inputs lets those writes finish, then the loop runs out of work and returns.
  for (auto& in : inputs_)
    in->close();
  for (auto& out : outputs_)
    out->close();
  stopped_ = true;
}

}  // namespace ferry
