// Heka's inputs: TcpInput and UdpInput reading framed protobuf (heka.md §2, §6.4), and
// the config-only HekaFramingSplitter / ProtobufDecoder / ProtobufEncoder tables a
// hekad.toml names. Records are verified, validated and routed one batch per read.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>

#include <uv.h>

#include "src/heka/heka_framing.h"
#include "src/heka/heka_signer.h"
#include "src/plugin.h"
#include "src/session_flow.h"
#include "src/stats.h"
#include "src/tcp_session.h"

namespace ferry::heka {

PluginType tcpInputType();
PluginType udpInputType();
PluginType hekaFramingSplitterType();
PluginType protobufDecoderType();
PluginType protobufEncoderType();

// What an input's `splitter`, `decoder` and `signer` settings resolve to across tables.
struct HekaInputSettings {
  std::map<std::string, std::string> signers;  // "<name>_<version>" → hmac_key
  bool skip_authentication = false;
  size_t max_message_size = kDefaultMaxMessageSize;  // [ferry] max_message_size
};

// Resolves `splitter = "..."` (a HekaFramingSplitter table, or the built-in default),
// `decoder = "..."` (ProtobufDecoder or a table of that type) and the input's own signer
// tables. Throws ConfigError naming the input's key. `config` may be null (defaults).
HekaInputSettings resolveHekaInputSettings(const PluginConfig& input, const Config* config);

// Fails (ConfigError) on a `signer` sub-table whose name a header can never match.
void validateSignerTables(const PluginConfig& cfg);

// Parses a listen address for `net` ("tcp", "tcp4", "tcp6", "udp", "udp4", "udp6"):
// "ip:port", "[v6]:port", ":port" (all IPv4 interfaces, or IPv6 for *6) and
// "localhost:port". False with `error` set when it is not one.
bool parseHekaListenAddress(const std::string& text, const std::string& net, sockaddr_storage& addr,
                            std::string& error);

// Logs one kind of drop at most once per second, with how many happened since the last
// line and one example (the counters keep the exact totals).
class DropLog {
 public:
  void note(uv_loop_t* loop, const std::string& input, uint64_t n, std::string_view what,
            std::string_view detail);

 private:
  uint64_t last_ms_ = 0;
  uint64_t pending_ = 0;
  bool logged_ = false;
};

// The record path both inputs share: splitter → signer check → message check → one
// batch per read → router. Counts every outcome.
class HekaIngest {
 public:
  HekaIngest(const PluginContext& ctx, HekaInputSettings settings, bool log_decode_failures);

  // Routes every complete record buffered in `sp` as one batch.
  void consume(HekaFramingSplitter& sp);
  // Counts `n` bytes read from the network.
  void countBytes(uint64_t n) { bytes_->inc(n); }
  // Drops what `sp` holds (a datagram's or a closed connection's incomplete tail).
  void discard(HekaFramingSplitter& sp);

  const std::string& name() const { return name_; }
  size_t maxMessageSize() const { return settings_.max_message_size; }
  uv_loop_t* loop() const { return loop_; }

 private:
  void noteSplitterDrops(uint64_t skipped, uint64_t oversized);

  std::string name_;
  uv_loop_t* loop_;
  Router* router_;
  std::shared_ptr<const SourceInfo> source_;
  HekaInputSettings settings_;
  HekaSignerSet signers_;
  bool log_decode_failures_;
  Counter* bytes_;
  Counter* records_;
  Counter* messages_;
  Counter* batches_;
  Counter* skipped_bytes_;
  Counter* oversize_records_;
  Counter* bad_signatures_;
  Counter* unknown_signers_;
  Counter* decode_errors_;
  DropLog log_garbage_, log_oversize_, log_bad_sig_, log_unknown_, log_decode_;
};

class TcpInput : public Input {
 public:
  explicit TcpInput(const PluginContext& ctx);
  ~TcpInput() override;

  void start() override;
  void stopAccepting() override;
  void drain(std::function<void()> done) override;
  void close() override;

  // For sessions.
  HekaIngest& ingest() { return ingest_; }
  TcpListener& listener() { return *listener_; }
  void setKeepAlive(uv_tcp_t* tcp);

 private:
  HekaIngest ingest_;
  std::string address_;
  std::string net_;
  bool keep_alive_;
  int64_t keep_alive_period_s_;
  std::unique_ptr<TcpListener> listener_;
};

class UdpInput : public Input {
 public:
  explicit UdpInput(const PluginContext& ctx);
  ~UdpInput() override;

  void start() override;
  void stopAccepting() override;
  void drain(std::function<void()> done) override;
  void close() override;

 private:
  static void onRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const struct sockaddr* addr,
                     unsigned flags);
  void checkDrained();
  void closeHandle();
  int startReceiving();

  HekaIngest ingest_;
  std::string address_;
  std::string net_;
  HekaFramingSplitter splitter_;
  std::string recv_buf_;
  Counter* datagrams_;
  Counter* truncated_datagrams_;
  Counter* read_pauses_;
  Counter* read_resumes_;
  uv_udp_t* udp_ = nullptr;
  std::function<void()> drain_done_;
  FlowControl* flow_;
  // Pressure stops receiving: the kernel drops datagrams meanwhile (UDP cannot push back),
  // which costs the same data as refusing them but no CPU or memory.
  PauseSet pause_;
  std::vector<PauseFanout::Membership> members_;  // after pause_
};

}  // namespace ferry::heka
