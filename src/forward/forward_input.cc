// ForwardInput: listener, UDP heartbeat, connection limit, security options, drain on shutdown.
#include "src/forward/forward_input.h"

#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/connection_options.h"
#include "src/net_address.h"
#include "src/router.h"
#include "src/stats.h"

namespace ferry::forward {

bool parseHostPort(const std::string& text, std::string& host, int& port) {
  HostPort hp;
  std::string error;
  if (!splitHostPort(text, "127.0.0.1:24224", hp, error)) return false;
  host = hp.host.empty() ? "0.0.0.0" : hp.host;
  port = hp.port;
  return true;
}

namespace {
void closeAndDelete(uv_udp_t* udp) {
  uv_close(reinterpret_cast<uv_handle_t*>(udp),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_udp_t*>(h); });
}
}  // namespace

ForwardInput::ForwardInput(const PluginContext& ctx)
    : name_(ctx.config->name), loop_(ctx.loop), router_(ctx.router) {
  const PluginConfig& cfg = *ctx.config;
  source_ = std::make_shared<const SourceInfo>(
      SourceInfo{name_, ctx.hostname, cfg.has("payload_key") ? cfg.str("payload_key") : ""});
  address_ = cfg.str("address");
  limits_.max_frame_size = cfg.size("max_frame_size");
  limits_.max_decompressed_size = cfg.size("max_decompressed_size");
  limits_.max_entries = static_cast<uint32_t>(cfg.integer("max_entries_per_frame"));
  limits_.max_tag_length = static_cast<uint32_t>(cfg.integer("max_tag_length"));
  limits_.max_depth = static_cast<uint32_t>(cfg.integer("max_nesting_depth"));
  TcpListenerSettings ls;
  ls.name = name_;
  ls.loop = loop_;
  ls.flow = ctx.flow;
  ls.idle_timeout_ms = cfg.durationMs("idle_timeout");
  ls.max_connections = cfg.integer("max_connections");
  udp_heartbeat_ = cfg.boolean("udp_heartbeat");
  security_ = securityOptions(cfg);

  StatsRegistry& st = *ctx.stats;
  auto c = [&](const char* n) { return &st.counter(name_, n); };
  counters_ = InputCounters{
      c("connections_accepted"),
      c("connections_rejected"),
      c("connections_closed_on_error"),
      c("connections_idle_closed"),
      c("frames"),
      c("batches"),
      c("events"),
      c("bytes"),
      c("heartbeats_tcp"),
      c("heartbeats_udp"),
      c("ignored_roots"),
      c("invalid_entries"),
      c("frames_too_large"),
      c("frames_skipped"),
      c("frames_tag_too_long"),
      c("frames_too_many_entries"),
      c("frames_decompressed_too_large"),
      c("frames_bad_compression"),
      c("parse_errors"),
      c("acks_sent"),
      c("acks_withheld"),
      c("json_connections"),
      c("handshakes"),
      c("auth_failures"),
      c("handshake_errors"),
      c("handshake_timeouts"),
  };
  ls.accepted = counters_.connections_accepted;
  ls.rejected = counters_.connections_rejected;
  ls.idle_closed = counters_.connections_idle_closed;
  ls.flow_counters = registerFlowCounters(st, name_, true);
  ls.limits.frame_timeout_ms = static_cast<uint64_t>(cfg.durationMs("frame_timeout"));
  ls.limits.ack_queue_limit = cfg.size("ack_queue_limit");
  ls.limits.ack_queue_timeout_ms = static_cast<uint64_t>(cfg.durationMs("ack_queue_timeout"));
  listener_ =
      std::make_unique<TcpListener>(std::move(ls), [this] { return new ForwardSession(*this); });
}

ForwardInput::~ForwardInput() {
  // Sessions are deleted from their close callbacks; any left here were never started.
}

bool parseListenAddress(const std::string& text, sockaddr_storage& addr) {
  std::string host;
  int port = 0;
  if (!parseHostPort(text, host, port)) return false;
  addr = {};
  return uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
         uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) == 0;
}

void ForwardInput::start() {
  sockaddr_storage addr{};
  if (!parseListenAddress(address_, addr)) {
    throw std::runtime_error(fmt::format("[{}] bad address '{}'", name_, address_));
  }
  listener_->listen(reinterpret_cast<const sockaddr*>(&addr), 0, address_);
  if (udp_heartbeat_) {
    udp_ = new uv_udp_t;
    uv_udp_init(loop_, udp_);
    udp_->data = this;
    int rc = uv_udp_bind(udp_, reinterpret_cast<const sockaddr*>(&addr), 0);
    if (rc == 0) {
      rc = uv_udp_recv_start(
          udp_,
          [](uv_handle_t*, size_t, uv_buf_t* buf) {
            // Heartbeats are one byte; a small static buffer is enough (longer
            // datagrams are truncated, and still answered, as Fluentd does).
            static char space[128];
            buf->base = space;
            buf->len = sizeof(space);
          },
          &ForwardInput::onUdpRecv);
    }
    if (rc != 0) {
      closeAndDelete(udp_);
      udp_ = nullptr;
      throw std::runtime_error(fmt::format("[{}] cannot bind UDP heartbeat on {}: {}", name_,
                                           address_, uv_strerror(rc)));
    }
  }
  spdlog::info("[{}] listening on {} (tcp{}{})", name_, address_,
               udp_heartbeat_ ? ", udp heartbeat" : "", security_ ? ", shared-key handshake" : "");
}

void ForwardInput::onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t*, const sockaddr* addr,
                             unsigned) {
  if (nread <= 0 || addr == nullptr) return;
  auto* self = static_cast<ForwardInput*>(h->data);
  self->counters_.heartbeats_udp->inc();
  char pong = 0;
  uv_buf_t b = uv_buf_init(&pong, 1);
  // Non-blocking send; a heartbeat that cannot be answered right now is just missed.
  uv_udp_try_send(h, &b, 1, addr);
}

void ForwardInput::stopAccepting() {
  listener_->stopAccepting();
  if (udp_) {
    closeAndDelete(udp_);
    udp_ = nullptr;
  }
}

void ForwardInput::drain(std::function<void()> done) {
  listener_->drain(std::move(done));
}

void ForwardInput::close() {
  listener_->closeAll();
}

std::shared_ptr<const handshake::ServerOptions> securityOptions(const PluginConfig& cfg) {
  if (!cfg.has("security")) return nullptr;
  const OptionValue& sec = cfg.get("security");
  const std::string base = cfg.name + ".security.";
  // Table values carry no line of their own: errors point at the table (or the entry).
  auto fail = [&](int line, const std::string& key, const std::string& what) {
    throw ConfigError(cfg.file, line > 0 ? line : cfg.line, base + key, what);
  };
  static const std::set<std::string> kScalars = {"self_hostname", "shared_key", "user_auth",
                                                 "allow_anonymous_source"};
  for (const auto& [key, value] : sec.table) {
    if (key == "users") {
      fail(sec.line, key,
           "expected an array of tables: users = [{username = \"...\", "
           "password = \"...\"}]");
    }
    if (!kScalars.count(key)) {
      fail(sec.line, key,
           "unknown key for ForwardInput security (known keys: self_hostname, shared_key, "
           "user_auth, allow_anonymous_source, users)");
    }
  }
  for (size_t i = 0; i < sec.list.size(); ++i) {
    if (sec.list[i] != "users") {
      fail(sec.table_lines[i], sec.list[i],
           "unknown key for ForwardInput security (only users is an array of tables)");
    }
  }
  auto text = [&](const std::string& key) -> std::string {
    auto it = sec.table.find(key);
    if (it == sec.table.end()) fail(sec.line, key, "required key is missing");
    if (it->second.empty()) fail(sec.line, key, "must not be empty");
    return it->second;
  };
  auto flag = [&](const std::string& key, bool fallback) {
    auto it = sec.table.find(key);
    if (it == sec.table.end()) return fallback;
    if (it->second != "true" && it->second != "false")
      fail(sec.line, key, "expected true or false");
    return it->second == "true";
  };
  auto o = std::make_shared<handshake::ServerOptions>();
  o->self_hostname = text("self_hostname");
  o->shared_key = text("shared_key");
  o->user_auth = flag("user_auth", false);
  o->allow_anonymous_source = flag("allow_anonymous_source", true);
  if (!o->allow_anonymous_source) {
    // Fluentd requires <client> entries with this; ferry has no client list yet, so every
    // peer would be refused.
    fail(sec.line, "allow_anonymous_source",
         "false needs a list of known clients (Fluentd's <client>), which ferry does not "
         "support: every connection would be refused");
  }
  for (size_t i = 0; i < sec.tables.size(); ++i) {
    const auto& entry = sec.tables[i];
    const int line = sec.table_lines[i];
    const std::string at = fmt::format("users[{}].", i);
    for (const auto& [key, value] : entry) {
      if (key != "username" && key != "password") {
        fail(line, at + key, "unknown key for a user (known keys: username, password)");
      }
    }
    for (const char* key : {"username", "password"}) {
      auto it = entry.find(key);
      if (it == entry.end()) fail(line, at + key, "required key is missing");
      if (it->second.empty()) fail(line, at + key, "must not be empty");
    }
    o->users.push_back({entry.at("username"), entry.at("password")});
  }
  if (o->user_auth && o->users.empty()) {
    fail(sec.line, "users",
         "user_auth = true needs at least one user: "
         "users = [{username = \"...\", password = \"...\"}]");
  }
  if (!o->user_auth && !o->users.empty()) {
    // Fluentd ignores them silently; a user who wrote them surely meant them checked.
    fail(sec.table_lines[0], "users",
         "users are only checked with user_auth = true: set it, or remove the users");
  }
  return o;
}

PluginType forwardInputType() {
  return PluginType{
      .name = "ForwardInput",
      .kind = PluginKind::Input,
      .summary =
          "Fluentd forward protocol server: Message, Forward, PackedForward and "
          "CompressedPackedForward (gzip), EventTime/integer/float/v1.5 times, acks, "
          "JSON connections, the UDP heartbeat on the same port, and the shared-key "
          "handshake (`[<input>.security]`).",
      .options =
          {
              {.key = "address",
               .type = OptionType::String,
               .default_value = "0.0.0.0:24224",
               .reloadable = false,
               .description = "TCP address to listen on (`host:port`, `[::1]:port`); the UDP "
                              "heartbeat uses the same port."},
              {.key = "payload_key",
               .type = OptionType::String,
               .description = "Record key whose string value is the event's Heka `Payload` "
                              "when the record has no `Payload` key (e.g. `\"log\"` for "
                              "Docker's fluentd log driver, `\"message\"`)."},
              {.key = "udp_heartbeat",
               .type = OptionType::Bool,
               .default_value = "true",
               .description = "Answer Fluentd's UDP heartbeat (one byte `0x00`) on the same "
                              "port."},
              {.key = "max_frame_size",
               .type = OptionType::Size,
               .default_value = "64MiB",
               .min = 1024,
               .max = int64_t{2} << 30,
               .description = "Largest request (one msgpack or JSON object). A connection "
                              "sending a larger one is closed (`frames_too_large`)."},
              {.key = "max_decompressed_size",
               .type = OptionType::Size,
               .default_value = "256MiB",
               .min = 1024,
               .max = int64_t{2} << 30,
               .description = "Largest gzip payload after decompression, checked while "
                              "inflating; larger requests are skipped, not acked "
                              "(`frames_decompressed_too_large`)."},
              {.key = "max_entries_per_frame",
               .type = OptionType::Int,
               .default_value = "1000000",
               .min = 1,
               .max = 100'000'000,
               .description = "Most events in one request; a request with more is skipped, "
                              "not acked (`frames_too_many_entries`)."},
              {.key = "max_tag_length",
               .type = OptionType::Int,
               .default_value = "1024",
               .min = 1,
               .max = 65535,
               .description = "Longest tag in bytes; a request with a longer tag is skipped, "
                              "not acked (`frames_tag_too_long`)."},
              {.key = "max_nesting_depth",
               .type = OptionType::Int,
               .default_value = "128",
               .min = 4,
               .max = 256,
               .description = "Deepest nesting of arrays and maps; deeper bytes close the "
                              "connection (`parse_errors`)."},
              maxConnectionsOption(),
              idleTimeoutOption(" and is not waiting for an ack"),
              frameTimeoutOption(),
              {.key = "ack_queue_limit",
               .type = OptionType::Size,
               .default_value = "1MiB",
               .min = 1024,
               .max = int64_t{1} << 30,
               .description =
                   "Most ack bytes one connection may leave unread (acks not yet taken by "
                   "the kernel). Above it ferry stops reading that connection only "
                   "(`paused_read_buffer`) until the client has read half of them."},
              {.key = "ack_queue_timeout",
               .type = OptionType::Duration,
               .default_value = "60s",
               .min = 0,
               .max = 86'400'000,
               .description = "Close a connection that stays paused by `ack_queue_limit` this "
                              "long (`slow_ack_readers_closed`); 0 = never, it stays paused."},
              {.key = "security",
               .type = OptionType::Table,
               .reloadable = false,
               .description =
                   "Fluentd's `<security>`: `[<input>.security]` with `self_hostname` and "
                   "`shared_key` (both required), `user_auth` (default false), `users = "
                   "[{username, password}]`. Every connection must complete the HELO/PING/PONG "
                   "handshake within `idle_timeout` (docs/forward-input.md)."},
          },
      .validate =
          [](const PluginConfig& cfg) {
            sockaddr_storage addr{};
            if (!parseListenAddress(cfg.str("address"), addr)) {
              cfg.fail("address",
                       "expected an IP address and port, \"127.0.0.1:24224\" or "
                       "\"[::1]:24224\" (host names are not resolved), got \"" +
                           cfg.str("address") + "\"");
            }
            securityOptions(cfg);
          },
      .make_input = [](const PluginContext& ctx) -> std::unique_ptr<Input> {
        return std::make_unique<ForwardInput>(ctx);
      }};
}

}  // namespace ferry::forward
