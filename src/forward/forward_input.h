// ForwardInput: the Fluentd forward protocol server (TCP, plus the UDP heartbeat on the
// same port). Owns the listener and its sessions; limits and counters are per instance.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <uv.h>

#include "src/forward/forward_decoder.h"
#include "src/forward/forward_handshake.h"
#include "src/forward/forward_session.h"
#include "src/plugin.h"
#include "src/tcp_session.h"

namespace ferry::forward {

PluginType forwardInputType();

class ForwardInput : public Input {
 public:
  explicit ForwardInput(const PluginContext& ctx);
  ~ForwardInput() override;

  void start() override;
  void stopAccepting() override;
  void drain(std::function<void()> done) override;
  void close() override;

  // For sessions.
  const std::string& name() const { return name_; }
  const std::shared_ptr<const SourceInfo>& source() const { return source_; }
  Router& router() { return *router_; }
  const Limits& limits() const { return limits_; }
  InputCounters& counters() { return counters_; }
  TcpListener& listener() { return *listener_; }
  // The shared-key handshake settings; null when `[<input>.security]` is not set.
  const std::shared_ptr<const handshake::ServerOptions>& security() const { return security_; }

 private:
  static void onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf,
                        const struct sockaddr* addr, unsigned flags);

  std::string name_;
  std::shared_ptr<const SourceInfo> source_;
  uv_loop_t* loop_;
  Router* router_;
  Limits limits_;
  std::string address_;
  bool udp_heartbeat_;
  std::shared_ptr<const handshake::ServerOptions> security_;
  InputCounters counters_;
  std::unique_ptr<TcpListener> listener_;
  uv_udp_t* udp_ = nullptr;
};

// The handshake settings of `[<input>.security]`, validated; null when it is not set.
// Throws ConfigError naming the file, line and key (e.g. `in.security.shared_key`).
std::shared_ptr<const handshake::ServerOptions> securityOptions(const PluginConfig& cfg);

// Parses "host:port", "[v6]:port" or ":port" (all interfaces). False on bad syntax.
bool parseHostPort(const std::string& text, std::string& host, int& port);
// parseHostPort plus an IP literal for the host. False when it is not one.
bool parseListenAddress(const std::string& text, sockaddr_storage& addr);

}  // namespace ferry::forward
