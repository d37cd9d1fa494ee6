// ForwardOutput: batching into per-tag chunks, the send queue with retries and backoff,
// give-up to a secondary, graceful flush, and the plugin's option table. The network side
// (nodes, connections, heartbeats, load balancing) is in forward_upstream.cc.
#include "src/forward/forward_output.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/config_loader.h"
#include "src/gzip.h"
#include "src/local_outputs.h"
#include "src/stats.h"

namespace ferry::forward {
namespace {

template <typename H>
H* newHandle() {
  return new H{};
}

template <typename H>
void closeAndDelete(H* h) {
  if (h == nullptr) return;
  uv_close(reinterpret_cast<uv_handle_t*>(h),
           [](uv_handle_t* x) { delete reinterpret_cast<H*>(x); });
}

HeartbeatType parseHeartbeatType(const std::string& s) {
  if (s == "udp") return HeartbeatType::Udp;
  if (s == "none") return HeartbeatType::None;
  return HeartbeatType::Transport;  // "transport", and "tcp", Fluentd's deprecated alias
}

struct GzipWork {
  uv_work_t req;
  ForwardOutput* self;
  ChunkPtr chunk;
};

// Entries larger than this (after the time rewrite) cannot be, so an entry is
// estimated at its time (at most 13 bytes once rewritten) plus record plus 1.
constexpr size_t kMaxTimeGrowth = 13;

}  // namespace

ForwardOutput::ForwardOutput(const PluginContext& ctx)
    : name_(ctx.config->name),
      loop_(ctx.loop),
      find_output_(ctx.find_output),
      lb_(std::random_device{}()),
      backoff_(ctx.config->durationMs("retry_wait"), ctx.config->durationMs("retry_max_interval")) {
  const PluginConfig& cfg = *ctx.config;
  tags_.default_tag = cfg.str("default_tag");
  if (cfg.has("tag")) tags_.tag_template = cfg.str("tag");

  up_.output_name = name_;
  up_.connect_timeout_ms = cfg.durationMs("connect_timeout");
  up_.send_timeout_ms = cfg.durationMs("send_timeout");
  up_.ack_timeout_ms = cfg.durationMs("ack_response_timeout");
  up_.require_ack = cfg.boolean("require_ack_response");
  up_.keepalive = cfg.boolean("keepalive");
  up_.keepalive_timeout_ms = cfg.durationMs("keepalive_timeout");
  up_.window = static_cast<uint32_t>(cfg.integer("max_inflight_chunks"));
  up_.dns_ttl_ms = cfg.has("expire_dns_cache") ? cfg.durationMs("expire_dns_cache") : -1;
  up_.heartbeat = parseHeartbeatType(cfg.str("heartbeat_type"));
  up_.max_missed_heartbeats = static_cast<uint32_t>(cfg.integer("max_missed_heartbeats"));
  up_.self_hostname = cfg.has("self_hostname") ? cfg.str("self_hostname") : ctx.hostname;

  time_format_ =
      cfg.boolean("time_as_integer")
          ? TimeFormat::Integer
          : (cfg.boolean("send_metadata") ? TimeFormat::Metadata : TimeFormat::EventTime);
  gzip_ = cfg.str("compress") == "gzip";
  chunk_limit_ = cfg.size("chunk_limit_size");
  total_limit_ = cfg.size("total_limit_size");
  flush_interval_ms_ = cfg.durationMs("flush_interval");
  heartbeat_interval_ms_ = cfg.durationMs("heartbeat_interval");
  retry_max_times_ = cfg.has("retry_max_times") ? cfg.integer("retry_max_times") : -1;
  retry_timeout_ms_ = cfg.durationMs("retry_timeout");
  if (cfg.has("secondary")) secondary_name_ = cfg.str("secondary");
  int64_t shutdown_ms = 10'000;
  if (ctx.full_config && ctx.full_config->global.has("shutdown_timeout"))
    shutdown_ms = ctx.full_config->global.durationMs("shutdown_timeout");
  // Leave the last quarter of shutdown_timeout for the secondary to write what is left.
  stop_deadline_ms_ = shutdown_ms * 3 / 4;

  StatsRegistry& st = *ctx.stats;
  auto c = [&](const char* n) { return &st.counter(name_, n); };
  c_ = Counters{
      c("events_in"),           c("batches_in"),       c("events_refused"),
      c("acks_held"),           c("chunks_sealed"),    c("chunks_sent"),
      c("chunks_delivered"),    c("events_delivered"), c("chunks_resent"),
      c("events_resent"),       c("retries"),          c("backoff_waits"),
      c("backoff_ms"),          c("connect_failures"), c("handshake_failures"),
      c("connections_lost"),    c("send_timeouts"),    c("ack_timeouts"),
      c("ack_mismatches"),      c("negative_acks"),    c("server_down_failovers"),
      c("no_server_available"), c("chunks_given_up"),  c("events_to_secondary"),
      c("events_dropped"),
  };

  const std::vector<ServerSpec> specs = parseServers(cfg);
  for (size_t i = 0; i < specs.size(); ++i)
    nodes_.push_back(
        std::make_unique<Node>(loop_, i, specs[i], up_, static_cast<UpstreamEvents&>(*this), st));
  rebuildBalancer();

  flush_timer_ = newHandle<uv_timer_t>();
  retry_timer_ = newHandle<uv_timer_t>();
  heartbeat_timer_ = newHandle<uv_timer_t>();
  stop_timer_ = newHandle<uv_timer_t>();
  for (uv_timer_t* t : {flush_timer_, retry_timer_, heartbeat_timer_, stop_timer_}) {
    uv_timer_init(loop_, t);
    t->data = this;
  }
  if (up_.heartbeat == HeartbeatType::Udp) {
    // One socket per address family: an IPv4 destination cannot be sent to from an
    // IPv6 socket without mapping, and a host may resolve to either.
    for (int family : {AF_INET, AF_INET6}) {
      auto* u = newHandle<uv_udp_t>();
      uv_udp_init(loop_, u);
      u->data = this;
      sockaddr_storage any{};
      if (family == AF_INET) {
        uv_ip4_addr("0.0.0.0", 0, reinterpret_cast<sockaddr_in*>(&any));
      } else {
        uv_ip6_addr("::", 0, reinterpret_cast<sockaddr_in6*>(&any));
      }
      int rc = uv_udp_bind(u, reinterpret_cast<const sockaddr*>(&any),
                           family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
      if (rc == 0) {
        rc = uv_udp_recv_start(
            u,
            [](uv_handle_t*, size_t, uv_buf_t* buf) {
              // Answers are one byte; what they say does not matter, only who sent them.
              static char space[64];
              buf->base = space;
              buf->len = sizeof(space);
            },
            &ForwardOutput::onUdpRecv);
      }
      if (rc != 0) {
        if (family == AF_INET) {
          spdlog::warn("[{}] cannot open the UDP heartbeat socket: {}", name_, uv_strerror(rc));
        }
        closeAndDelete(u);
        u = nullptr;
      }
      (family == AF_INET ? udp4_ : udp6_) = u;
    }
    for (auto& n : nodes_)
      n->setUdpSockets(udp4_, udp6_);
  }
  // The first tick runs once the loop starts (every output exists by then): it looks the
  // secondary up and sends the first heartbeats.
  uv_timer_start(
      heartbeat_timer_,
      [](uv_timer_t* t) { static_cast<ForwardOutput*>(t->data)->heartbeatTick(); }, 0,
      static_cast<uint64_t>(heartbeat_interval_ms_));
}

ForwardOutput::~ForwardOutput() {
  // Normally closed by the server inside the loop; if not, the handles must still be
  // closed (the loop frees them later) and must not call back into a dead object.
  close();
}

// ---------------------------------------------------------------------------------------
// Taking events in

void ForwardOutput::submit(BatchPtr batch, AckShare ack) {
  if (closed_) {
    ack.fail();
    return;
  }
  c_.batches_in->inc();
  const size_t n = batch->events.size();
  if (n == 0) {
    ack.accept();
    return;
  }
  if (!on_delivery_ && held_bytes_ >= total_limit_) {
    // Senders that do not wait for acks (or too many that do) would grow memory without
    // bound: refuse. An ack-asking sender gets no ack and sends it again later.
    c_.events_refused->inc(n);
    const int64_t t = now();
    if (last_refusal_log_ms_ < 0 || t - last_refusal_log_ms_ >= 10'000) {
      last_refusal_log_ms_ = t;
      spdlog::error(
          "[{}] buffer full ({} bytes buffered, total_limit_size {}): refusing events "
          "(events_refused counts them; senders that asked for acks will resend)",
          name_, buffered_, total_limit_);
    }
    ack.fail();
    return;
  }
  c_.events_in->inc(n);
  if (on_delivery_) {
    // submit() itself holds the share until every event is placed, so it cannot resolve
    // halfway (nothing here does, but a chunk it filled may be sealed on the way).
    submitting_ = std::make_shared<ChunkShare>();
    submitting_->ack = std::move(ack);
    submitting_->chunks = 1;
  }
  uint64_t added = 0;
  if (batch->format == EventFormat::FluentRecord) {
    // One tag per batch: one map lookup, then a stable reference to the slot (references
    // into an unordered_map survive rehashing).
    ChunkPtr& slot = open_[batch->tag];
    for (const Event& e : batch->events)
      added += addEntry(slot, batch->tag, batch->time(e), e.time_ns, batch->record(e));
  } else {
    forEachAsFluent(*batch, tags_,
                    [&](std::string_view tag, int64_t time_ns, std::string_view rec) {
                      std::string t(tag);
                      added += addEntry(open_[t], t, {}, time_ns, rec);
                    });
  }
  if (on_delivery_) {
    // Events that did not become entries (a Heka message with no record to convert) can
    // never be delivered: they do not hold the share back.
    ChunkSharePtr share = std::move(submitting_);
    submitting_.reset();
    settleShare(*share, true);
  } else if (buffered_ > total_limit_) {
    c_.acks_held->inc();
    held_bytes_ += added;
    held_.emplace_back(added, std::move(ack));
  } else {
    ack.accept();
  }
  pump();
}

ChunkPtr ForwardOutput::newChunk(const std::string& tag) {
  auto c = std::make_shared<Chunk>();
  c->seq = next_seq_++;
  c->tag = tag;
  c->created_ms = now();
  ++live_chunks_;
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(flush_timer_))) {
    uv_timer_start(
        flush_timer_, [](uv_timer_t* t) { static_cast<ForwardOutput*>(t->data)->sealAll(); },
        static_cast<uint64_t>(flush_interval_ms_), 0);
  }
  return c;
}

size_t ForwardOutput::addEntry(ChunkPtr& slot, const std::string& tag, std::string_view time_bytes,
                               int64_t time_ns, std::string_view record) {
  const size_t estimate = 1 + std::max(time_bytes.size(), kMaxTimeGrowth) + record.size();
  if (!slot) {
    slot = newChunk(tag);
  } else if (slot->events > 0 && slot->entries.size() + estimate > chunk_limit_) {
    ChunkPtr full = std::move(slot);
    slot = newChunk(tag);
    seal(std::move(full));
  }
  Chunk& c = *slot;
  if (submitting_ && (c.shares.empty() || c.shares.back() != submitting_)) {
    ++submitting_->chunks;
    c.shares.push_back(submitting_);
  }
  const size_t before = c.entries.size();
  appendEntry(c.entries, time_bytes, time_ns, record, time_format_);
  const size_t grown = c.entries.size() - before;
  ++c.events;
  c.accounted += grown;
  buffered_ += grown;
  // Exactly full: send it now rather than at the next tick.
  if (c.entries.size() >= chunk_limit_) {
    ChunkPtr full = std::move(slot);
    slot = nullptr;
    seal(std::move(full));
  }
  return grown;
}

void ForwardOutput::sealAll() {
  auto open = std::move(open_);
  open_.clear();
  for (auto& [tag, chunk] : open) {
    if (chunk) seal(std::move(chunk));
  }
  pump();
}

void ForwardOutput::seal(ChunkPtr chunk) {
  if (chunk->events == 0) {
    --live_chunks_;
    return;
  }
  c_.chunks_sealed->inc();
  if (up_.require_ack) chunk->id = ids_.next();
  if (!gzip_) {
    chunk->framing =
        frameRequest(chunk->tag, chunk->entries.size(), chunk->events, chunk->id, false);
    enqueue(chunk);
    return;
  }
  // gzip of a multi-megabyte chunk takes tens of milliseconds: off the loop.
  chunk->state = ChunkState::Compressing;
  auto* w = new GzipWork{{}, this, std::move(chunk)};
  w->req.data = w;
  uv_queue_work(
      loop_, &w->req,
      [](uv_work_t* req) {
        // The loop does not touch a Compressing chunk, so this thread owns it.
        Chunk& c = *static_cast<GzipWork*>(req->data)->chunk;
        c.gzipped = gzipCompress(c.entries);
      },
      [](uv_work_t* req, int) {
        auto* w = static_cast<GzipWork*>(req->data);
        w->self->afterGzip(w->chunk);
        delete w;
      });
}

void ForwardOutput::afterGzip(const ChunkPtr& chunk) {
  std::string().swap(chunk->entries);  // only the gzip member is kept
  buffered_ -= chunk->accounted;
  chunk->accounted = chunk->gzipped.size();
  buffered_ += chunk->accounted;
  chunk->framing = frameRequest(chunk->tag, chunk->gzipped.size(), chunk->events, chunk->id, true);
  if (deadline_passed_) {
    giveUp(chunk, "the output is stopping");
    return;
  }
  enqueue(chunk);
  releaseHeld();
  pump();
}

void ForwardOutput::enqueue(const ChunkPtr& chunk) {
  chunk->state = ChunkState::Waiting;
  waiting_.insert(chunk);
}

// ---------------------------------------------------------------------------------------
// Sending

void ForwardOutput::pump() {
  if (closed_) return;
  // Nodes never report from inside send(), but abort/markDown paths can re-enter here.
  if (pumping_) {
    pump_again_ = true;
    return;
  }
  pumping_ = true;
  do {
    pump_again_ = false;
    const int64_t t = now();
    std::vector<ChunkPtr> stranded;
    while (!waiting_.empty()) {
      const ChunkPtr chunk = *waiting_.begin();
      if (chunk->next_attempt_ms > t) break;
      const auto pick = lb_.peek();
      if (!pick) {
        waiting_.erase(waiting_.begin());
        stranded.push_back(chunk);
        continue;
      }
      Node& node = *nodes_[*pick];
      // The chosen node's window is full: wait for it rather than skip it, so the
      // weights hold (a node that stops acking is marked down by its ack timeout).
      if (!node.canTake()) break;
      waiting_.erase(waiting_.begin());
      lb_.advance();
      chunk->state = ChunkState::InFlight;
      c_.chunks_sent->inc();
      if (chunk->ever_written) {
        c_.chunks_resent->inc();
        c_.events_resent->inc(chunk->events);
      }
      node.send(chunk);
    }
    if (!stranded.empty()) {
      c_.no_server_available->inc();
      retry(std::move(stranded), Failure::NoServer, nullptr);
    }
  } while (pump_again_);
  pumping_ = false;
  armRetryTimer();
}

void ForwardOutput::armRetryTimer() {
  if (closed_) return;
  if (waiting_.empty()) {
    uv_timer_stop(retry_timer_);
    return;
  }
  const int64_t due = (*waiting_.begin())->next_attempt_ms;
  const int64_t t = now();
  if (due <= t) {
    // Due but blocked on a node: its next ack, connect or state change pumps again.
    uv_timer_stop(retry_timer_);
    return;
  }
  uv_timer_start(
      retry_timer_, [](uv_timer_t* h) { static_cast<ForwardOutput*>(h->data)->pump(); },
      static_cast<uint64_t>(due - t), 0);
}

void ForwardOutput::onDelivered(Node&, const ChunkPtr& chunk) {
  c_.chunks_delivered->inc();
  c_.events_delivered->inc(chunk->events);
  backoff_.reset();
  finish(chunk, true);
  pump();
}

void ForwardOutput::onFailed(Node& node, std::vector<ChunkPtr> chunks, Failure why) {
  switch (why) {
    case Failure::ConnectFailed:
      c_.connect_failures->inc();
      break;
    case Failure::Handshake:
      c_.handshake_failures->inc();
      break;
    case Failure::ConnectionLost:
      c_.connections_lost->inc();
      break;
    case Failure::SendTimeout:
      c_.send_timeouts->inc();
      break;
    case Failure::AckTimeout:
      c_.ack_timeouts->inc();
      break;
    case Failure::AckMismatch:
      c_.ack_mismatches->inc();
      break;
    case Failure::NegativeAck:
      c_.negative_acks->inc();
      // The server said it did not take it: sending it again duplicates nothing.
      for (auto& c : chunks)
        c->ever_written = false;
      break;
    case Failure::NodeDown:
      c_.server_down_failovers->inc();
      break;
    case Failure::NoServer:
    case Failure::Aborted:
      break;
  }
  retry(std::move(chunks), why, &node);
  pump();
}

void ForwardOutput::retry(std::vector<ChunkPtr> chunks, Failure why, const Node* node) {
  const int64_t t = now();
  if (deadline_passed_ || closed_) {
    for (auto& c : chunks)
      giveUp(c, std::string(failureName(why)) + ", while stopping");
    return;
  }
  std::vector<ChunkPtr> again;
  for (auto& c : chunks) {
    ++c->failures;
    if (c->first_failure_ms < 0) c->first_failure_ms = t;
    if (exhausted(*c, t)) {
      giveUp(c, fmt::format("{} failure(s), the last: {}", c->failures, failureName(why)));
    } else {
      again.push_back(std::move(c));
    }
  }
  if (again.empty()) return;
  // One backoff step per failure event, not per chunk: four chunks lost with one
  // connection are one failure, and retry together after one wait.
  const int64_t delay = backoff_.next();
  c_.backoff_waits->inc();
  c_.backoff_ms->inc(static_cast<uint64_t>(delay));
  const size_t retried = again.size();
  uint64_t events = 0;
  for (auto& c : again) {
    c->next_attempt_ms = t + delay;
    events += c->events;
    enqueue(c);
  }
  c_.retries->inc(retried);
  spdlog::warn("[{}] {} chunk(s) ({} events) not delivered ({}{}): retrying in {} ms", name_,
               retried, events, failureName(why), node ? " on " + node->name() : std::string(),
               delay);
}

bool ForwardOutput::exhausted(const Chunk& chunk, int64_t t) const {
  if (retry_max_times_ >= 0 && static_cast<int64_t>(chunk.failures) > retry_max_times_) return true;
  return t - chunk.first_failure_ms >= retry_timeout_ms_;
}

Output* ForwardOutput::secondary() {
  if (!secondary_looked_up_ && !secondary_name_.empty() && find_output_) {
    secondary_looked_up_ = true;
    Output* o = find_output_(secondary_name_);
    if (o == nullptr) {
      spdlog::error(
          "[{}] secondary \"{}\" is not a configured output: chunks that run out of "
          "retries will be dropped",
          name_, secondary_name_);
    } else if (o == this) {
      spdlog::error("[{}] secondary names this output itself: ignored", name_);
    } else {
      secondary_ = o;
    }
  }
  return secondary_;
}

void ForwardOutput::giveUp(const ChunkPtr& chunk, const std::string& why) {
  c_.chunks_given_up->inc();
  Output* sec = closed_ ? nullptr : secondary();
  if (sec == nullptr) {
    c_.events_dropped->inc(chunk->events);
    spdlog::error("[{}] dropping {} event(s) of tag \"{}\" ({}): {}", name_, chunk->events,
                  chunk->tag, why,
                  secondary_name_.empty() ? "no secondary configured" : "no secondary available");
    finish(chunk, false);
    return;
  }
  std::string entries;
  if (chunk->gzipped.empty()) {
    entries = std::move(chunk->entries);
  } else if (gunzip(chunk->gzipped, SIZE_MAX, entries) != GunzipResult::Ok) {
    entries.clear();  // our own gzip: cannot happen short of memory corruption
  }
  uint32_t invalid = 0;
  BatchPtr batch = batchFromEntries(chunk->tag, std::move(entries), invalid);
  const size_t n = batch->events.size();
  const uint64_t lost = chunk->events - std::min<uint64_t>(chunk->events, n);
  if (lost > 0) c_.events_dropped->inc(lost);
  spdlog::warn(
      "[{}] giving up on {} event(s) of tag \"{}\" ({}): handing them to secondary "
      "\"{}\"",
      name_, chunk->events, chunk->tag, why, secondary_name_);
  // Delivery mode: the shares are settled by what the secondary does with the events.
  auto delivery = std::make_shared<Delivery>(
      [this, n, tag = chunk->tag, lost, shares = std::move(chunk->shares)](bool ok) {
        settleShares(shares, ok && lost == 0);
        if (ok) {
          c_.events_to_secondary->inc(n);
        } else {
          c_.events_dropped->inc(n);
          spdlog::error("[{}] secondary \"{}\" failed to take {} event(s) of tag \"{}\": dropped",
                        name_, secondary_name_, n, tag);
        }
      });
  chunk->shares.clear();
  sec->submit(std::move(batch), AckShare(delivery));
  finish(chunk, false);  // its shares went with the batch
}

void ForwardOutput::settleShares(std::vector<ChunkSharePtr> shares, bool ok) {
  for (auto& sh : shares)
    settleShare(*sh, ok);
}

void ForwardOutput::finish(const ChunkPtr& chunk, bool delivered) {
  chunk->state = ChunkState::Done;
  buffered_ -= std::min(buffered_, static_cast<uint64_t>(chunk->accounted));
  chunk->accounted = 0;
  --live_chunks_;
  // Delivery mode: delivered chunks come here with their shares; dropped ones too (a
  // chunk handed to the secondary gave its shares to the secondary's delivery). Settled
  // once the bookkeeping is done: whoever waits on them may submit again from there.
  if (!chunk->shares.empty()) {
    std::vector<ChunkSharePtr> shares = std::move(chunk->shares);
    chunk->shares.clear();
    settleShares(std::move(shares), delivered);
  }
  releaseHeld();
  checkFlushed();
}

void ForwardOutput::releaseHeld() {
  while (!held_.empty() && buffered_ <= total_limit_) {
    held_bytes_ -= held_.front().first;
    AckShare share = std::move(held_.front().second);
    held_.pop_front();
    share.accept();
  }
}

// ---------------------------------------------------------------------------------------
// Health

void ForwardOutput::onAvailabilityChanged(Node&) {
  rebuildBalancer();
  pump();
}

void ForwardOutput::onCapacity(Node&) {
  pump();
}

void ForwardOutput::rebuildBalancer() {
  std::vector<NodeWeight> w;
  for (const auto& n : nodes_)
    w.push_back(NodeWeight{n->spec().weight, n->spec().standby, n->available()});
  lb_.rebuild(w);
  if (lb_.order().empty()) {
    spdlog::warn("[{}] no server is available", name_);
  } else {
    std::string names;
    std::vector<bool> seen(nodes_.size());
    for (size_t i : lb_.order()) {
      if (seen[i]) continue;
      seen[i] = true;
      names += (names.empty() ? "" : ", ") + nodes_[i]->name();
    }
    spdlog::debug("[{}] sending to: {}", name_, names);
  }
}

void ForwardOutput::heartbeatTick() {
  if (closed_) return;
  if (!started_) {
    started_ = true;
    secondary();  // report a bad `secondary` at start, not at the first give-up
  }
  switch (up_.heartbeat) {
    case HeartbeatType::Transport:
      for (auto& n : nodes_)
        n->probe();
      break;
    case HeartbeatType::Udp:
      for (auto& n : nodes_)
        n->udpPing();
      break;
    case HeartbeatType::None:
      uv_timer_stop(heartbeat_timer_);
      break;
  }
}

void ForwardOutput::onUdpRecv(uv_udp_t* h, ssize_t nread, const uv_buf_t*, const sockaddr* addr,
                              unsigned) {
  if (nread < 0 || addr == nullptr) return;
  auto* self = static_cast<ForwardOutput*>(h->data);
  if (self->closed_) return;
  for (auto& n : self->nodes_) {
    const sockaddr_storage* a = n->resolvedAddress();
    if (a == nullptr || a->ss_family != addr->sa_family) continue;
    bool same = false;
    if (addr->sa_family == AF_INET) {
      const auto* x = reinterpret_cast<const sockaddr_in*>(a);
      const auto* y = reinterpret_cast<const sockaddr_in*>(addr);
      same = x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    } else if (addr->sa_family == AF_INET6) {
      const auto* x = reinterpret_cast<const sockaddr_in6*>(a);
      const auto* y = reinterpret_cast<const sockaddr_in6*>(addr);
      same = x->sin6_port == y->sin6_port &&
             std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
    if (same) n->udpAnswered();
  }
}

// ---------------------------------------------------------------------------------------
// Stopping

void ForwardOutput::flush(std::function<void()> done) {
  flush_waiters_.push_back(std::move(done));
  if (!stopping_) {
    stopping_ = true;
    uv_timer_start(
        stop_timer_, [](uv_timer_t* t) { static_cast<ForwardOutput*>(t->data)->stopDeadline(); },
        static_cast<uint64_t>(stop_deadline_ms_), 0);
    if (live_chunks_ > 0) {
      spdlog::info("[{}] flushing {} chunk(s) before stopping (deadline {} ms)", name_,
                   live_chunks_, stop_deadline_ms_);
    }
  }
  uv_timer_stop(flush_timer_);
  sealAll();
  checkFlushed();
}

void ForwardOutput::stopDeadline() {
  if (deadline_passed_ || closed_) return;
  deadline_passed_ = true;
  if (live_chunks_ > 0) {
    spdlog::warn("[{}] stop deadline reached with {} chunk(s) undelivered: giving up on them",
                 name_, live_chunks_);
  }
  std::vector<ChunkPtr> waiting(waiting_.begin(), waiting_.end());
  waiting_.clear();
  for (auto& c : waiting)
    giveUp(c, "not delivered before the stop deadline");
  // Their chunks come back through onFailed, which gives them up now.
  for (auto& n : nodes_)
    n->abort(Failure::Aborted);
  // Compressing chunks are given up as their gzip completes (afterGzip).
}

void ForwardOutput::checkFlushed() {
  if (flush_waiters_.empty() || live_chunks_ > 0) return;
  uv_timer_stop(stop_timer_);
  auto waiters = std::move(flush_waiters_);
  flush_waiters_.clear();
  for (auto& w : waiters)
    w();
}

void ForwardOutput::close() {
  if (handles_closed_) return;
  if (live_chunks_ > 0 && !closed_) {
    // Only reachable without flush(): give up on what is left rather than lose it silently.
    sealAll();
    stopDeadline();
  }
  closed_ = true;
  handles_closed_ = true;
  for (auto& n : nodes_)
    n->close();
  for (uv_timer_t* t : {flush_timer_, retry_timer_, heartbeat_timer_, stop_timer_})
    closeAndDelete(t);
  closeAndDelete(udp4_);
  closeAndDelete(udp6_);
  udp4_ = udp6_ = nullptr;
  // Nothing is owed any more; whoever still waits for an ack from us gets "accepted" as
  // the events were handed on or dropped (and counted) above.
  releaseHeld();
  for (auto& [bytes, share] : held_)
    share.accept();
  held_.clear();
}

// ---------------------------------------------------------------------------------------
// Plugin type

namespace {

std::vector<OptionSpec> forwardOutputOptions() {
  return withHekaTagOptions({
      {.key = "servers",
       .type = OptionType::TableList,
       .required = true,
       .reloadable = true,
       .description =
           "Servers to send to: `[{host = \"10.0.0.1\", port = 24224, weight = 60}, "
           "{host = \"10.0.0.3\", standby = true}]`. Keys: `host` (required; name or IP), "
           "`port` (24224), `weight` (60, 0..1000; 0 = never), `standby` (false: used only "
           "while a regular server is down), `name` (host:port; names its counters), "
           "`shared_key`, `username`, `password` (the handshake)."},
      {.key = "require_ack_response",
       .type = OptionType::Bool,
       .default_value = "true",
       .description = "Ask for and wait for `{\"ack\": chunk}`; a chunk is kept until acked "
                      "(at-least-once). false: done once written (at-most-once, Fluentd's "
                      "default)."},
      {.key = "ack_response_timeout",
       .type = OptionType::Duration,
       .default_value = "190s",
       .min = 100,
       .max = 86'400'000,
       .description = "How long after a chunk is written its ack may take; then the "
                      "connection is dropped, the server marked down and the chunk retried "
                      "after backoff (`ack_timeouts`)."},
      {.key = "connect_timeout",
       .type = OptionType::Duration,
       .default_value = "10s",
       .min = 10,
       .max = 3'600'000,
       .description = "Resolve, connect and (with shared_key) handshake within this; else "
                      "the server is marked down (`connect_failures`)."},
      {.key = "send_timeout",
       .type = OptionType::Duration,
       .default_value = "60s",
       .min = 10,
       .max = 3'600'000,
       .description = "A write that does not complete within this (the server stopped "
                      "reading) drops the connection (`send_timeouts`)."},
      {.key = "keepalive",
       .type = OptionType::Bool,
       .default_value = "true",
       .description = "Reuse one connection per server for many chunks. false: one "
                      "connection per chunk (also chosen when the server's HELO says "
                      "keepalive false)."},
      {.key = "keepalive_timeout",
       .type = OptionType::Duration,
       .default_value = "30s",
       .min = 0,
       .max = 86'400'000,
       .description = "Close a connection idle for this long; 0 = never."},
      {.key = "max_inflight_chunks",
       .type = OptionType::Int,
       .default_value = "4",
       .min = 1,
       .max = 1024,
       .description = "Chunks written and not yet acked per connection (pipelining)."},
      {.key = "heartbeat_type",
       .type = OptionType::String,
       .default_value = "transport",
       .description = "`transport` (a TCP connect per interval; `tcp` is an alias), `udp` "
                      "(one byte to the server's UDP port; Fluent Bit has no UDP listener) "
                      "or `none` (servers are never marked down)."},
      {.key = "heartbeat_interval",
       .type = OptionType::Duration,
       .default_value = "1s",
       .min = 10,
       .max = 3'600'000,
       .description = "Time between heartbeats."},
      {.key = "max_missed_heartbeats",
       .type = OptionType::Int,
       .default_value = "3",
       .min = 1,
       .max = 1000,
       .description = "A server is marked down after this many heartbeats in a row go "
                      "unanswered (a failed connect or ack timeout marks it down at once); "
                      "one answered heartbeat brings it back."},
      {.key = "expire_dns_cache",
       .type = OptionType::Duration,
       .min = 0,
       .max = 86'400'000,
       .description = "How long a resolved host name is reused; unset = until the server "
                      "goes down, 0 = resolve for every connection."},
      {.key = "compress",
       .type = OptionType::String,
       .default_value = "text",
       .description = "`text` (PackedForward) or `gzip` (CompressedPackedForward)."},
      {.key = "time_as_integer",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "Send integer seconds instead of EventTime (Fluentd v0.12 receivers)."},
      {.key = "send_metadata",
       .type = OptionType::Bool,
       .default_value = "false",
       .description = "Send times in the v1.5 `[EventTime, {}]` form (Fluentd 1.19 and older "
                      "reject it)."},
      {.key = "flush_interval",
       .type = OptionType::Duration,
       .default_value = "1s",
       .min = 1,
       .max = 3'600'000,
       .description = "Longest time an event waits in an open chunk before it is sent."},
      {.key = "chunk_limit_size",
       .type = OptionType::Size,
       .default_value = "4MiB",
       .min = 256,
       .max = int64_t{256} << 20,
       .description = "A chunk (its entries, before gzip) is sent once it reaches this. The "
                      "default stays under Fluent Bit's 6,144,000-byte receive limit."},
      {.key = "total_limit_size",
       .type = OptionType::Size,
       .default_value = "256MiB",
       .min = 1024,
       .max = int64_t{64} << 30,
       .description = "Memory for chunks not yet delivered. Above it, acks to our own "
                      "senders are held until it drains (`acks_held`); when the batches "
                      "waiting for that reach it too, batches are refused "
                      "(`events_refused`)."},
      {.key = "retry_wait",
       .type = OptionType::Duration,
       .default_value = "1s",
       .min = 1,
       .max = 3'600'000,
       .description = "First wait before a failed chunk is sent again; doubled per failure "
                      "in a row, with jitter (uniform in [wait/2, wait])."},
      {.key = "retry_max_interval",
       .type = OptionType::Duration,
       .default_value = "60s",
       .min = 1,
       .max = 86'400'000,
       .description = "Cap of the retry wait."},
      {.key = "retry_max_times",
       .type = OptionType::Int,
       .min = 0,
       .max = 1'000'000'000,
       .description = "Retries per chunk before it goes to `secondary` (or is dropped, "
                      "logged and counted); unset = no limit (retry_timeout still applies)."},
      {.key = "retry_timeout",
       .type = OptionType::Duration,
       .default_value = "72h",
       .min = 1,
       .max = int64_t{365} * 86'400'000,
       .description = "Time from a chunk's first failure after which it goes to "
                      "`secondary` (or is dropped)."},
      {.key = "secondary",
       .type = OptionType::String,
       .description = "Name of another output (e.g. a FileOutput with `message_matcher = "
                      "\"FALSE\"`) that takes chunks whose retries ran out or that were "
                      "undelivered at the stop deadline."},
      {.key = "self_hostname",
       .type = OptionType::String,
       .description = "Our hostname in the handshake's PING; default [ferry] hostname. Must "
                      "differ from the server's."},
  });
}

void validateForwardOutput(const PluginConfig& cfg) {
  parseServers(cfg);
  const std::string& hb = cfg.str("heartbeat_type");
  if (hb != "transport" && hb != "tcp" && hb != "udp" && hb != "none")
    cfg.fail("heartbeat_type", "expected transport, tcp, udp or none, got \"" + hb + "\"");
  const std::string& compress = cfg.str("compress");
  if (compress != "text" && compress != "gzip")
    cfg.fail("compress", "expected text or gzip, got \"" + compress + "\"");
  if (cfg.boolean("time_as_integer") && cfg.boolean("send_metadata"))
    cfg.fail("send_metadata",
             "cannot be combined with time_as_integer (v0.12 receivers know "
             "neither EventTime nor the v1.5 form)");
  if (cfg.durationMs("retry_wait") > cfg.durationMs("retry_max_interval"))
    cfg.fail("retry_wait", "is longer than retry_max_interval");
  if (cfg.size("chunk_limit_size") > cfg.size("total_limit_size"))
    cfg.fail("chunk_limit_size", "is larger than total_limit_size");
  if (cfg.has("secondary") && cfg.str("secondary") == cfg.name)
    cfg.fail("secondary", "names this output itself");
}

}  // namespace

PluginType forwardOutputType() {
  return PluginType{.name = "ForwardOutput",
                    .kind = PluginKind::Output,
                    .summary =
                        "Fluentd forward protocol client: PackedForward chunks per tag (gzip "
                        "optional), acks with retries and backoff, weighted load balancing with "
                        "standby servers, heartbeats, the shared-key handshake, and a secondary "
                        "output for what cannot be delivered.",
                    .options = forwardOutputOptions(),
                    .validate = &validateForwardOutput,
                    .make_output = [](const PluginContext& ctx) -> std::unique_ptr<Output> {
                      return std::make_unique<ForwardOutput>(ctx);
                    }};
}

}  // namespace ferry::forward
