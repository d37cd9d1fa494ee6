// TcpInput and UdpInput: listeners, settings resolution, and the shared record path
// (HekaIngest) from splitter to router.
#include "src/heka/heka_input.h"

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <stdexcept>
#include <vector>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/config_loader.h"
#include "src/connection_options.h"
#include "src/heka/heka_session.h"
#include "src/heka_view.h"
#include "src/net_address.h"
#include "src/router.h"
#include "src/stats.h"

namespace ferry::heka {

// ---------------------------------------------------------------------------------------
// Addresses and settings

bool parseHekaListenAddress(const std::string& text, const std::string& net, sockaddr_storage& addr,
                            std::string& error) {
  const bool v4_only = net == "tcp4" || net == "udp4";
  const bool v6_only = net == "tcp6" || net == "udp6";
  HostPort hp;
  if (!splitHostPort(text, "127.0.0.1:5565\" or \":5565", hp, error)) return false;
  std::string host = hp.host;
  const int port = hp.port;
  // Go's listeners treat an empty host as "every interface"; "localhost" is the one
  // name hekad configs commonly use. Other names are not resolved (no DNS at load).
  if (host.empty()) host = v6_only ? "::" : "0.0.0.0";
  if (host == "localhost") host = v6_only ? "::1" : "127.0.0.1";
  addr = {};
  const bool is_v4 = uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&addr)) == 0;
  if (!is_v4) {
    addr = {};
    if (uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&addr)) != 0) {
      error = "'" + host + "' is not an IP address (host names are not resolved)";
      return false;
    }
  }
  if (v4_only && !is_v4) {
    error = "net = \"" + net + "\" needs an IPv4 address";
    return false;
  }
  if (v6_only && is_v4) {
    error = "net = \"" + net + "\" needs an IPv6 address";
    return false;
  }
  return true;
}

namespace {

void mergeSigners(const PluginConfig& where, const std::string& key,
                  const std::map<std::string, std::string>& from,
                  std::map<std::string, std::string>& into) {
  for (const auto& [id, k] : from) {
    auto [it, inserted] = into.emplace(id, k);
    if (!inserted && it->second != k) {
      where.fail(key + "." + id, "signer " + id +
                                     " is configured twice with different keys (on the input and "
                                     "on its splitter)");
    }
  }
}

}  // namespace

HekaInputSettings resolveHekaInputSettings(const PluginConfig& input, const Config* config) {
  HekaInputSettings out;
  if (config) out.max_message_size = config->global.size("max_message_size");

  const std::string& splitter = input.str("splitter");
  const PluginConfig* st = config ? config->other(splitter) : nullptr;
  if (st) {
    if (st->type != "HekaFramingSplitter") {
      input.fail("splitter", fmt::format("[{}] is a {}; {} reads Heka framed protobuf and needs a "
                                         "HekaFramingSplitter",
                                         splitter, st->type, input.type));
    }
    out.signers = st->get("signer").signers;
    out.skip_authentication = st->boolean("skip_authentication");
  } else if (splitter != "HekaFramingSplitter") {
    input.fail("splitter",
               fmt::format("no splitter table [{}] in the config: define it with type = "
                           "\"HekaFramingSplitter\", or use the built-in \"HekaFramingSplitter\"",
                           splitter));
  }
  // The pre-0.9 form: signer tables on the input itself ([TcpInput.signer.test_0]).
  mergeSigners(input, "signer", input.get("signer").signers, out.signers);

  const std::string& decoder = input.str("decoder");
  const PluginConfig* dt = config ? config->other(decoder) : nullptr;
  if (dt ? dt->type != "ProtobufDecoder" : decoder != "ProtobufDecoder") {
    input.fail("decoder", fmt::format("decoder '{}' is {}: {} decodes Heka messages with "
                                      "ProtobufDecoder only (or a table of that type)",
                                      decoder, dt ? "a " + dt->type : "not defined in the config",
                                      input.type));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Drop logging and the shared record path

namespace {
// A header's signer name is client bytes: keep log lines on one line and short.
std::string signerForLog(const HekaHeader& h) {
  std::string out;
  for (char c : h.signer.substr(0, 64))
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  return fmt::format("signer {}_{}", out, h.key_version);
}
}  // namespace

void DropLog::note(uv_loop_t* loop, const std::string& input, uint64_t n, std::string_view what,
                   std::string_view detail) {
  pending_ += n;
  const uint64_t now = uv_now(loop);
  if (logged_ && now - last_ms_ < 1000) return;
  spdlog::warn("[{}] {}: {}{}{} (at most one such line per second; see the counters)", input, what,
               pending_, detail.empty() ? "" : ", e.g. ", detail);
  pending_ = 0;
  last_ms_ = now;
  logged_ = true;
}

HekaIngest::HekaIngest(const PluginContext& ctx, HekaInputSettings settings,
                       bool log_decode_failures)
    : name_(ctx.config->name),
      loop_(ctx.loop),
      router_(ctx.router),
      source_(std::make_shared<const SourceInfo>(SourceInfo{name_, ctx.hostname, ""})),
      settings_(std::move(settings)),
      signers_(settings_.signers),
      log_decode_failures_(log_decode_failures) {
  StatsRegistry& st = *ctx.stats;
  auto c = [&](const char* n) { return &st.counter(name_, n); };
  bytes_ = c("bytes");
  records_ = c("records");
  messages_ = c("messages");
  batches_ = c("batches");
  skipped_bytes_ = c("skipped_bytes");
  oversize_records_ = c("oversize_records");
  bad_signatures_ = c("bad_signatures");
  unknown_signers_ = c("unknown_signers");
  decode_errors_ = c("decode_errors");
}

void HekaIngest::consume(HekaFramingSplitter& sp) {
  // Every body of this read goes into one buffer, sized once: what the splitter holds
  // bounds the bodies it can yield.
  const size_t available = sp.buffered();
  const uint64_t skipped0 = sp.skippedBytes(), oversized0 = sp.oversizedRecords();
  std::shared_ptr<Batch> batch;
  std::string* bytes = nullptr;
  uint64_t bad = 0, unknown = 0, undecodable = 0;
  std::string bad_detail, unknown_detail;
  HekaRecord rec;
  while (sp.next(rec)) {
    records_->inc();
    std::string_view signer;
    if (!settings_.skip_authentication) {
      switch (signers_.verify(rec.parsed, rec.body, signer)) {
        case SignerCheck::Unsigned:
        case SignerCheck::Verified:
          break;
        case SignerCheck::BadDigest:
          if (bad++ == 0) bad_detail = signerForLog(rec.parsed);
          continue;
        case SignerCheck::UnknownSigner:
          if (unknown++ == 0) unknown_detail = signerForLog(rec.parsed);
          continue;
      }
    }
    int64_t ts = 0;
    if (!hekaCheckMessage(rec.body, ts)) {
      ++undecodable;
      continue;
    }
    if (!batch) {
      batch = std::make_shared<Batch>();
      auto buf = std::make_shared<std::string>();
      buf->reserve(available);
      bytes = buf.get();
      batch->bytes = std::move(buf);
      batch->format = EventFormat::HekaMessage;
      batch->source = source_;
    }
    Event e;
    e.time_ns = ts;
    e.record_off = static_cast<uint32_t>(bytes->size());
    e.record_len = static_cast<uint32_t>(rec.body.size());
    if (!signer.empty()) {
      size_t k = 0;
      while (k < batch->signers.size() && batch->signers[k] != signer)
        ++k;
      if (k == batch->signers.size()) batch->signers.emplace_back(signer);
      e.signer = static_cast<uint16_t>(k + 1);
    }
    bytes->append(rec.body);
    batch->events.push_back(e);
  }
  if (bad) {
    bad_signatures_->inc(bad);
    log_bad_sig_.note(loop_, name_, bad, "dropped messages with a wrong HMAC digest", bad_detail);
  }
  if (unknown) {
    unknown_signers_->inc(unknown);
    log_unknown_.note(loop_, name_, unknown, "dropped signed messages with no configured key",
                      unknown_detail);
  }
  if (undecodable) {
    decode_errors_->inc(undecodable);
    if (log_decode_failures_) {
      log_decode_.note(loop_, name_, undecodable,
                       "dropped records whose body is not a protobuf Message", "");
    }
  }
  noteSplitterDrops(sp.skippedBytes() - skipped0, sp.oversizedRecords() - oversized0);
  if (batch) {
    messages_->inc(batch->events.size());
    batches_->inc();
    router_->route(batch, nullptr);
  }
}

void HekaIngest::discard(HekaFramingSplitter& sp) {
  const uint64_t skipped0 = sp.skippedBytes();
  sp.reset();
  noteSplitterDrops(sp.skippedBytes() - skipped0, 0);
}

void HekaIngest::noteSplitterDrops(uint64_t skipped, uint64_t oversized) {
  if (oversized) {
    oversize_records_->inc(oversized);
    log_oversize_.note(loop_, name_, oversized, "dropped records longer than max_message_size",
                       fmt::format("max_message_size = {}", settings_.max_message_size));
  }
  if (skipped) {
    skipped_bytes_->inc(skipped);
    log_garbage_.note(loop_, name_, skipped, "skipped bytes that are not Heka records", "");
  }
}

// ---------------------------------------------------------------------------------------
// TcpInput

namespace {

template <typename H>
void closeAndDelete(H* h) {
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* hh) { delete reinterpret_cast<H*>(hh); });
}

}  // namespace

TcpInput::TcpInput(const PluginContext& ctx)
    : ingest_(ctx, resolveHekaInputSettings(*ctx.config, ctx.full_config),
              ctx.config->boolean("log_decode_failures")) {
  const PluginConfig& cfg = *ctx.config;
  address_ = cfg.str("address");
  net_ = cfg.str("net");
  TcpListenerSettings ls;
  ls.name = cfg.name;
  ls.loop = ctx.loop;
  ls.idle_timeout_ms = cfg.durationMs("idle_timeout");
  ls.max_connections = cfg.integer("max_connections");
  keep_alive_ = cfg.boolean("keep_alive");
  keep_alive_period_s_ = cfg.integer("keep_alive_period");
  StatsRegistry& st = *ctx.stats;
  ls.accepted = &st.counter(cfg.name, "connections_accepted");
  ls.rejected = &st.counter(cfg.name, "connections_rejected");
  ls.idle_closed = &st.counter(cfg.name, "connections_idle_closed");
  ls.read_errors = &st.counter(cfg.name, "connections_closed_on_error");
  ls.flow = ctx.flow;
  ls.flow_counters = registerFlowCounters(st, cfg.name, false);
  ls.limits.frame_timeout_ms = static_cast<uint64_t>(cfg.durationMs("frame_timeout"));
  listener_ =
      std::make_unique<TcpListener>(std::move(ls), [this] { return new HekaTcpSession(*this); });
}

TcpInput::~TcpInput() {
  // Sessions are deleted from their close callbacks; any left here were never started.
}

void TcpInput::start() {
  sockaddr_storage addr{};
  std::string error;
  if (!parseHekaListenAddress(address_, net_, addr, error)) {
    throw std::runtime_error(
        fmt::format("[{}] bad address '{}': {}", ingest_.name(), address_, error));
  }
  listener_->listen(reinterpret_cast<const sockaddr*>(&addr), net_ == "tcp6" ? UV_TCP_IPV6ONLY : 0,
                    address_);
  spdlog::info("[{}] listening on {} (heka tcp)", ingest_.name(), address_);
}

void TcpInput::setKeepAlive(uv_tcp_t* tcp) {
  if (!keep_alive_) return;
  if (keep_alive_period_s_ > 0) {
    uv_tcp_keepalive(tcp, 1, static_cast<unsigned>(keep_alive_period_s_));
    return;
  }
  // Period 0 = the OS default (as Go's SetKeepAlive without a period): SO_KEEPALIVE
  // only; uv_tcp_keepalive would also set an idle time, and 0 is not a valid one.
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) == 0) {
    const int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
  }
}

void TcpInput::stopAccepting() {
  listener_->stopAccepting();
}

void TcpInput::drain(std::function<void()> done) {
  listener_->drain(std::move(done));
}

void TcpInput::close() {
  listener_->closeAll();
}

// ---------------------------------------------------------------------------------------
// UdpInput

namespace {
// Larger than any UDP payload (65507 bytes over IPv4, 65527 over IPv6), so a datagram
// is never cut by the read (hekad's 8 KiB default buffer can cut them).
constexpr size_t kDatagramBuffer = 64 * 1024 + 512;
}  // namespace

UdpInput::UdpInput(const PluginContext& ctx)
    : ingest_(ctx, resolveHekaInputSettings(*ctx.config, ctx.full_config),
              ctx.config->boolean("log_decode_failures")),
      splitter_(ingest_.maxMessageSize()) {
  const PluginConfig& cfg = *ctx.config;
  address_ = cfg.str("address");
  net_ = cfg.str("net");
  datagrams_ = &ctx.stats->counter(cfg.name, "datagrams");
  truncated_datagrams_ = &ctx.stats->counter(cfg.name, "truncated_datagrams");
  read_pauses_ = &ctx.stats->counter(cfg.name, "read_pauses");
  read_resumes_ = &ctx.stats->counter(cfg.name, "read_resumes");
  flow_ = ctx.flow;
  pause_.setCallbacks(
      [this] {
        read_pauses_->inc();
        if (udp_) uv_udp_recv_stop(udp_);
      },
      [this] {
        read_resumes_->inc();
        if (udp_) startReceiving();
      });
}

int UdpInput::startReceiving() {
  return uv_udp_recv_start(
      udp_,
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* self = static_cast<UdpInput*>(h->data);
        buf->base = self->recv_buf_.data();
        buf->len = self->recv_buf_.size();
      },
      &UdpInput::onRecv);
}

UdpInput::~UdpInput() = default;

void UdpInput::start() {
  sockaddr_storage addr{};
  std::string error;
  if (!parseHekaListenAddress(address_, net_, addr, error)) {
    throw std::runtime_error(
        fmt::format("[{}] bad address '{}': {}", ingest_.name(), address_, error));
  }
  recv_buf_.resize(kDatagramBuffer);
  udp_ = new uv_udp_t;
  uv_udp_init(ingest_.loop(), udp_);
  udp_->data = this;
  const unsigned flags = net_ == "udp6" ? UV_UDP_IPV6ONLY : 0;
  int rc = uv_udp_bind(udp_, reinterpret_cast<const sockaddr*>(&addr), flags);
  // A fanout already active pauses at once (no recv_start then: udp_ is not receiving yet).
  if (rc == 0 && flow_) members_ = flow_->joinAll(pause_);
  if (rc == 0 && !pause_.paused()) rc = startReceiving();
  if (rc != 0) {
    closeAndDelete(udp_);
    udp_ = nullptr;
    throw std::runtime_error(fmt::format("[{}] cannot bind {} on {}: {}", ingest_.name(), net_,
                                         address_, uv_strerror(rc)));
  }
  spdlog::info("[{}] listening on {} (heka {})", ingest_.name(), address_, net_);
}

void UdpInput::onRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr,
                      unsigned flags) {
  auto* self = static_cast<UdpInput*>(h->data);
  if (nread < 0) {
    spdlog::debug("[{}] receive error: {}", self->ingest_.name(),
                  uv_strerror(static_cast<int>(nread)));
  } else if (addr != nullptr) {
    // nread == 0 with an address is an empty datagram; without one, nothing was read.
    self->datagrams_->inc();
    if (flags & UV_UDP_PARTIAL) self->truncated_datagrams_->inc();
    self->ingest_.countBytes(static_cast<uint64_t>(nread));
    self->splitter_.append(buf->base, static_cast<size_t>(nread));
    self->ingest_.consume(self->splitter_);
    // A record never spans datagrams: what is left is an incomplete record.
    self->ingest_.discard(self->splitter_);
  }
  if (self->drain_done_) self->checkDrained();
}

void UdpInput::stopAccepting() {
  // Datagrams already queued in the kernel were sent before the stop: drain() reads
  // them, so the socket stays open until then.
}

void UdpInput::drain(std::function<void()> done) {
  drain_done_ = std::move(done);
  checkDrained();
}

void UdpInput::checkDrained() {
  int pending = 0;
  uv_os_fd_t fd;
  if (udp_ != nullptr && uv_fileno(reinterpret_cast<uv_handle_t*>(udp_), &fd) == 0 &&
      ioctl(fd, FIONREAD, &pending) == 0 && pending > 0) {
    return;  // more datagrams queued: the next receive callback checks again
  }
  closeHandle();
  auto done = std::move(drain_done_);
  drain_done_ = nullptr;
  if (done) done();
}

void UdpInput::closeHandle() {
  members_.clear();
  pause_.reset();
  if (udp_) {
    uv_udp_recv_stop(udp_);
    closeAndDelete(udp_);
    udp_ = nullptr;
  }
}

void UdpInput::close() {
  closeHandle();
}

// ---------------------------------------------------------------------------------------
// Plugin types

void validateSignerTables(const PluginConfig& cfg) {
  for (const auto& [id, key] : cfg.get("signer").signers) {
    std::string_view name;
    uint32_t version = 0;
    if (!parseSignerId(id, name, version)) {
      cfg.fail("signer." + id,
               "the version after the last '_' must be a decimal number without leading zeros "
               "(a header's signer \"name\" with key version N is looked up as \"name_N\")");
    }
  }
}

namespace {

void validateCommon(const PluginConfig& cfg) {
  validateSignerTables(cfg);
  if (cfg.boolean("send_decode_failures")) {
    cfg.fail("send_decode_failures",
             "not supported: ferry drops a record whose body is not a protobuf Message and "
             "counts it (decode_errors); it cannot forward it as hekad does");
  }
}

void validateAddress(const PluginConfig& cfg) {
  sockaddr_storage addr{};
  std::string error;
  if (!parseHekaListenAddress(cfg.str("address"), cfg.str("net"), addr, error)) {
    cfg.fail("address", fmt::format("\"{}\": {}", cfg.str("address"), error));
  }
}

// `net` must be the family or its 4/6 variant (hekad's names); then the address.
void validateNetAndAddress(const PluginConfig& cfg, const std::string& family,
                           const std::string& unsupported) {
  const std::string& net = cfg.str("net");
  if (net != family && net != family + "4" && net != family + "6") {
    cfg.fail("net", "expected \"" + family + "\", \"" + family + "4\" or \"" + family +
                        "6\", got \"" + net + "\" (" + unsupported + ")");
  }
  validateAddress(cfg);
}

std::vector<OptionSpec> commonOptions() {
  return {
      {.key = "signer",
       .type = OptionType::Signers,
       .description = "Signer keys on the input itself, the pre-0.9 Heka form "
                      "(`[TcpInput.signer.test_0] hmac_key = \"...\"`); merged with the "
                      "splitter's."},
      {.key = "log_decode_failures",
       .type = OptionType::Bool,
       .default_value = "true",
       .description = "Log (at most once per second) records whose body is not a protobuf "
                      "Message; they are always counted (`decode_errors`)."},
      {.key = "send_decode_failures",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "hekad's option to forward undecodable messages; only `false` is "
                      "supported."},
      {.key = "synchronous_decode",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "Accepted for hekad configs; ferry always decodes in the read path."},
      {.key = "can_exit",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "Accepted for hekad configs; a ferry input never stops on its own."},
  };
}

}  // namespace

PluginType tcpInputType() {
  std::vector<OptionSpec> options = {
      {.key = "address",
       .type = OptionType::String,
       .default_value = ":5565",
       .reloadable = false,
       .description = "TCP address to listen on: `ip:port`, `[v6]:port`, `localhost:port`, or "
                      "`:port` for every IPv4 interface (`[::]:port` for IPv6 too)."},
      {.key = "net",
       .type = OptionType::String,
       .default_value = "tcp",
       .reloadable = false,
       .description = "`tcp`, `tcp4` or `tcp6` (an IPv6-only socket). Unix sockets are not "
                      "supported."},
      {.key = "splitter",
       .type = OptionType::String,
       .default_value = "HekaFramingSplitter",
       .description = "A HekaFramingSplitter table (its signers and `skip_authentication` "
                      "apply), or the built-in `HekaFramingSplitter` (no signers)."},
      {.key = "decoder",
       .type = OptionType::String,
       .default_value = "ProtobufDecoder",
       .description = "`ProtobufDecoder` or a table of that type: bodies are checked as "
                      "protobuf Messages and kept byte for byte."},
      maxConnectionsOption(),
      idleTimeoutOption(" (hekad never closes idle connections)"),
      frameTimeoutOption(),
      {.key = "keep_alive",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "TCP keep-alive on accepted connections."},
      {.key = "keep_alive_period",
       .type = OptionType::Int,
       .default_value = "0",
       .min = 0,
       .max = 86'400,
       .description = "Keep-alive idle time in seconds (hekad's unit); 0 = the OS default."},
      {.key = "use_tls",
       .type = OptionType::Bool,
       .default_value = "false",
       .reloadable = false,
       .description = "hekad's TLS listener; only `false` is supported (terminate TLS in "
                      "front of ferry)."},
  };
  for (auto& o : commonOptions())
    options.push_back(std::move(o));
  return PluginType{
      .name = "TcpInput",
      .kind = PluginKind::Input,
      .summary =
          "Heka's TCP input: framed protobuf messages (HekaFramingSplitter + "
          "ProtobufDecoder), HMAC-verified when signers are configured, relayed byte "
          "for byte.",
      .options = std::move(options),
      .validate_with_config = [](const PluginConfig& pc,
                                 const Config& c) { resolveHekaInputSettings(pc, &c); },
      .validate =
          [](const PluginConfig& cfg) {
            validateNetAndAddress(cfg, "tcp", "ferry's TcpInput does not listen on unix sockets");
            if (cfg.boolean("use_tls")) {
              cfg.fail("use_tls",
                       "TLS is not supported by ferry's TcpInput: terminate TLS in front of "
                       "ferry (stunnel, haproxy) or set use_tls = false");
            }
            validateCommon(cfg);
          },
      .make_input = [](const PluginContext& ctx) -> std::unique_ptr<Input> {
        return std::make_unique<TcpInput>(ctx);
      }};
}

PluginType udpInputType() {
  std::vector<OptionSpec> options = {
      {.key = "address",
       .type = OptionType::String,
       .required = true,
       .reloadable = false,
       .description = "UDP address to listen on: `ip:port`, `[v6]:port`, `localhost:port` or "
                      "`:port`."},
      {.key = "net",
       .type = OptionType::String,
       .default_value = "udp",
       .reloadable = false,
       .description = "`udp`, `udp4` or `udp6` (an IPv6-only socket); `unixgram` is not "
                      "supported."},
      {.key = "splitter",
       .type = OptionType::String,
       .description = "Required: a HekaFramingSplitter table or `\"HekaFramingSplitter\"`. "
                      "hekad's default for UdpInput (NullSplitter: each datagram as a Payload) "
                      "is not supported, so ferry asks for it explicitly."},
      {.key = "decoder",
       .type = OptionType::String,
       .description = "Required: `\"ProtobufDecoder\"` or a table of that type."},
      {.key = "set_hostname",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "Accepted for hekad configs; like hekad with HekaFramingSplitter, the "
                      "message's own Hostname is kept."},
  };
  for (auto& o : commonOptions())
    options.push_back(std::move(o));
  return PluginType{
      .name = "UdpInput",
      .kind = PluginKind::Input,
      .summary =
          "Heka's UDP input for framed protobuf: one or more Heka records per "
          "datagram (a record never spans datagrams), signers as TcpInput.",
      .options = std::move(options),
      .validate_with_config = [](const PluginConfig& pc,
                                 const Config& c) { resolveHekaInputSettings(pc, &c); },
      .validate =
          [](const PluginConfig& cfg) {
            validateNetAndAddress(cfg, "udp",
                                  "ferry's UdpInput does not read unix datagram sockets");
            if (!cfg.has("splitter") || cfg.str("splitter").empty()) {
              cfg.fail("splitter",
                       "required: ferry's UdpInput reads Heka framed protobuf only; set "
                       "splitter = \"HekaFramingSplitter\" and decoder = \"ProtobufDecoder\" "
                       "(hekad's default NullSplitter, each datagram as a Payload, is not "
                       "supported)");
            }
            if (!cfg.has("decoder") || cfg.str("decoder").empty()) {
              cfg.fail("decoder", "required: set decoder = \"ProtobufDecoder\"");
            }
            validateCommon(cfg);
          },
      .make_input = [](const PluginContext& ctx) -> std::unique_ptr<Input> {
        return std::make_unique<UdpInput>(ctx);
      }};
}

}  // namespace ferry::heka
