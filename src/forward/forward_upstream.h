// ForwardOutput's side of the network: the configured servers (nodes), their weighted
// load balancing with standby nodes, health (heartbeats, failed connects), DNS caching,
// and the data connection that carries chunks and reads their acks.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <uv.h>

#include "src/config_schema.h"
#include "src/forward/forward_chunk.h"

namespace ferry {
class Counter;
class StatsRegistry;
}  // namespace ferry

namespace ferry::forward {

// One `servers` entry.
struct ServerSpec {
  std::string host;
  int port = 24224;
  uint32_t weight = 60;  // Fluentd's default
  bool standby = false;
  std::string name;  // default "host:port"; names the node's counters
  std::string shared_key;
  std::string username;
  std::string password;
};

// Reads and checks `servers` (keys, types, bounds, unique names). Throws ConfigError
// naming the file, the entry's line and the key.
std::vector<ServerSpec> parseServers(const PluginConfig& cfg);

// ---- Load balancing (Fluentd's load_balancer.rb, restated) ----

struct NodeWeight {
  uint32_t weight = 0;
  bool standby = false;
  bool available = false;
};

// The order chunks go to nodes in: every available regular node weight/gcd times; when
// regular nodes are down, available standby nodes (in config order) until their weight
// covers the weight lost; repeated to at least 6 entries per node it holds, so a short
// cycle does not make the split lumpy; shuffled so nodes interleave. Weight 0 nodes
// never appear. Empty when nothing is available.
std::vector<size_t> buildWeightArray(const std::vector<NodeWeight>& nodes, std::mt19937_64& rng);

class LoadBalancer {
 public:
  explicit LoadBalancer(uint64_t seed) : rng_(seed) {}
  void rebuild(const std::vector<NodeWeight>& nodes);
  // The node the next chunk goes to, without moving on (the caller moves on with
  // advance() once the node took the chunk); nullopt when no node is available.
  std::optional<size_t> peek() const;
  void advance();
  const std::vector<size_t>& order() const { return order_; }

 private:
  std::mt19937_64 rng_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
};

// ---- Nodes and connections ----

enum class HeartbeatType { Transport, Udp, None };

struct UpstreamSettings {
  std::string output_name;  // for logs
  int64_t connect_timeout_ms = 10'000;
  int64_t send_timeout_ms = 60'000;
  int64_t ack_timeout_ms = 190'000;
  bool require_ack = true;
  bool keepalive = true;
  int64_t keepalive_timeout_ms = 0;  // 0: keep idle connections forever
  uint32_t window = 4;               // chunks written but not acked, per connection
  int64_t dns_ttl_ms = -1;           // -1: resolve once; 0: before every connection
  HeartbeatType heartbeat = HeartbeatType::Transport;
  uint32_t max_missed_heartbeats = 3;
  std::string self_hostname;  // the PING's client hostname
};

// Why chunks came back undelivered.
enum class Failure {
  ConnectFailed,  // resolve, connect or connect_timeout
  Handshake,      // shared-key handshake refused or invalid (or a HELO we cannot answer)
  ConnectionLost,
  SendTimeout,
  AckTimeout,
  AckMismatch,  // an ack for no chunk in flight, or a reply that is not an ack
  NegativeAck,  // {}: the server refused this chunk
  NodeDown,     // heartbeats missed: its connection was dropped
  NoServer,     // no server available when the chunk was due
  Aborted,      // the output is stopping and gave up waiting
};
const char* failureName(Failure f);

class Node;

// What nodes report to their owner (ForwardOutput). Never called from inside a call
// the owner made into the node, so the owner may call back into nodes from here.
class UpstreamEvents {
 public:
  // The chunk is acked (or written, without require_ack_response).
  virtual void onDelivered(Node& node, const ChunkPtr& chunk) = 0;
  // The chunks were not delivered (in send order); the connection is gone.
  virtual void onFailed(Node& node, std::vector<ChunkPtr> chunks, Failure why) = 0;
  // The node went down or came back.
  virtual void onAvailabilityChanged(Node& node) = 0;
  // The node can take chunks again (connected, or a window slot freed).
  virtual void onCapacity(Node& node) = 0;

 protected:
  ~UpstreamEvents() = default;
};

// Counters of one node, under the component "<output>.<node name>".
struct NodeCounters {
  Counter* chunks_sent;
  Counter* events_sent;
  Counter* bytes_sent;
  Counter* chunks_delivered;
  Counter* events_delivered;
  Counter* connections_opened;
  Counter* connect_failures;
  Counter* connections_lost;
  Counter* send_timeouts;
  Counter* ack_timeouts;
  Counter* ack_mismatches;
  Counter* negative_acks;
  Counter* handshake_failures;
  Counter* heartbeats_ok;
  Counter* heartbeats_missed;
  Counter* marked_down;
  Counter* marked_up;
};

class Connection;
struct Probe;

class Node {
 public:
  Node(uv_loop_t* loop, size_t index, ServerSpec spec, const UpstreamSettings& settings,
       UpstreamEvents& events, StatsRegistry& stats);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  size_t index() const { return index_; }
  const ServerSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  bool available() const { return available_; }
  NodeCounters& counters() { return counters_; }
  // Whether send() takes a chunk now: no connection yet, or a window slot free.
  bool canTake() const;
  // Hands `chunk` (state InFlight) to the data connection, opening it if needed. Never
  // reports back from inside this call.
  void send(const ChunkPtr& chunk);
  // Chunks on the data connection.
  size_t inFlight() const;

  // Heartbeats. Transport: one connect per call (a probe still pending from the last
  // call is a miss). UDP: `udpPing` sends 0x00 from the owner's socket of the address's
  // family (a ping still unanswered is a miss) and the owner calls `udpAnswered` when a
  // datagram comes from this node.
  void probe();
  void setUdpSockets(uv_udp_t* v4, uv_udp_t* v6) {
    udp_v4_ = v4;
    udp_v6_ = v6;
  }
  void udpPing();
  void udpAnswered();
  // The address UDP answers come from (the resolved one), if resolved.
  const sockaddr_storage* resolvedAddress() const { return resolved_ ? &addr_ : nullptr; }

  // Drops the data connection, handing its chunks back with `why` (used when stopping).
  void abort(Failure why);
  // Closes every handle; nothing is reported after this.
  void close();

  // ---- For Connection and Probe ----
  uv_loop_t* loop() const { return loop_; }
  const UpstreamSettings& settings() const { return settings_; }
  UpstreamEvents& events() { return events_; }
  bool closed() const { return closed_; }
  void connectionClosed(Connection* c);
  void probeDone(Probe* p, bool ok);
  // Health inputs: a heartbeat or a reply came back / a heartbeat was missed / a data
  // connection could not be opened or its chunks timed out (down at once).
  void heartbeatOk();
  void heartbeatMissed();
  void markDown(const std::string& why);

 private:
  static void onResolved(uv_getaddrinfo_t* req, int status, struct addrinfo* res);
  // Calls resolvedOrFailed() once the address is known (now, or after uv_getaddrinfo).
  void ensureAddress();
  void addressReady(int status);
  void sendUdp();
  bool cacheFresh() const;

  uv_loop_t* loop_;
  size_t index_;
  ServerSpec spec_;
  const UpstreamSettings& settings_;
  UpstreamEvents& events_;
  NodeCounters counters_;
  bool available_ = true;
  uint32_t missed_ = 0;
  bool closed_ = false;

  // DNS: the cached address; an IP literal never expires.
  bool literal_ = false;
  bool resolved_ = false;
  int64_t resolved_at_ms_ = 0;
  sockaddr_storage addr_{};
  uv_getaddrinfo_t* resolving_ = nullptr;
  size_t address_rotation_ = 0;  // which of several resolved addresses to use

  Connection* conn_ = nullptr;
  Probe* probe_ = nullptr;
  bool probe_wants_address_ = false;
  uv_udp_t* udp_v4_ = nullptr;
  uv_udp_t* udp_v6_ = nullptr;
  bool udp_waiting_address_ = false;
  bool udp_outstanding_ = false;
};

}  // namespace ferry::forward
