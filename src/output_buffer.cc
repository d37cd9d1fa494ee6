// BufferedOutput: memory queue, write-ahead spool and full_action in front of an output.
#include "src/output_buffer.h"

#include <algorithm>
#include <set>
#include <stdexcept>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/batch_codec.h"
#include "src/config_loader.h"
#include "src/units.h"

namespace ferry {

namespace {

constexpr uint64_t kMiB = 1024 * 1024;

// How much the output may hold at once: a quarter of the memory limit, so the queue in
// front still has room to absorb bursts, but never less than 1 MiB.
uint64_t inflightLimit(const OutputQueueOptions& q) {
  return std::max<uint64_t>(q.memory_limit / 4, kMiB);
}

uint64_t eventsOf(const BatchPtr& b) {
  return b ? b->events.size() : 0;
}

}  // namespace

OptionSpec bufferOptionSpec() {
  return OptionSpec{
      .key = "buffer",
      .type = OptionType::Table,
      .reloadable = false,
      .description =
          "`[<output>.buffer]`: the queue in front of the output (docs/flow_control.md). "
          "`type` \"memory\" (default) or \"file\" (a disk spool under `[ferry] base_dir`); "
          "`memory_limit` (default per output type), `high_watermark` (= memory_limit), "
          "`low_watermark` (= high / 2), `overflow_limit` (= 2 × memory_limit), "
          "`full_action` \"block\" | \"drop_oldest\" | \"drop_newest\" (default per type); "
          "with type = \"file\": `total_limit_size` (1GiB), `segment_size` (8MiB, at most a "
          "quarter of total_limit_size), `sync` "
          "\"always\" | \"interval\" | \"none\" (interval), `sync_interval` (1s), `path` "
          "(`<base_dir>/spool/<output>`)."};
}

BufferOptions parseBufferOptions(const PluginConfig& cfg, const PluginType& type,
                                 const Config& full_config) {
  BufferOptions o;
  o.queue.name = cfg.name;
  o.on_delivery = type.buffer_on_delivery;
  o.queue.memory_limit = type.default_memory_limit;
  if (!parseFullAction(type.default_full_action, o.queue.full_action)) {
    throw std::logic_error("bad default full_action for " + type.name);
  }
  o.spool.name = cfg.name;
  o.spool.total_limit_size = uint64_t{1} << 30;
  o.spool.segment_size = 8 * kMiB;
  o.spool.sync = SpoolSync::Interval;
  o.spool.sync_interval = std::chrono::milliseconds(1000);
  const std::string base =
      full_config.global.has("base_dir") ? full_config.global.str("base_dir") : "/var/lib/ferry";
  o.path = base + "/spool/" + cfg.name;
  if (!cfg.has("buffer")) return o;

  const OptionValue& table = cfg.get("buffer");
  auto fail = [&](const std::string& key, const std::string& what) {
    throw ConfigError(cfg.file, table.line > 0 ? table.line : cfg.line, cfg.name + ".buffer." + key,
                      what);
  };
  if (!table.list.empty()) fail(table.list.front(), "expected a value, not a table array");
  auto size = [&](const std::string& key, const std::string& text, uint64_t min) {
    auto v = parseSize(text);
    if (!v)
      fail(key, "expected a size such as \"64MiB\" or a number of bytes, got \"" + text + "\"");
    if (*v < min) fail(key, fmt::format("must be at least {}", formatSize(min)));
    return *v;
  };
  uint64_t high = 0, low = 0, overflow = 0;
  bool spool_keys = false;
  bool segment_set = false;
  for (const auto& [key, value] : table.table) {
    if (key == "type") {
      if (value == "file") {
        o.spooled = true;
      } else if (value != "memory") {
        fail(key, "expected \"memory\" or \"file\", got \"" + value + "\"");
      }
    } else if (key == "memory_limit") {
      o.queue.memory_limit = size(key, value, 1024);
    } else if (key == "high_watermark") {
      high = size(key, value, 1);
    } else if (key == "low_watermark") {
      low = size(key, value, 0);
    } else if (key == "overflow_limit") {
      overflow = size(key, value, 1);
    } else if (key == "full_action") {
      if (!parseFullAction(value, o.queue.full_action)) {
        fail(key, "expected \"block\", \"drop_oldest\" or \"drop_newest\", got \"" + value + "\"");
      }
    } else if (key == "total_limit_size") {
      o.spool.total_limit_size = size(key, value, 64 * 1024);
      spool_keys = true;
    } else if (key == "segment_size") {
      o.spool.segment_size = size(key, value, 4096);
      segment_set = true;
      spool_keys = true;
    } else if (key == "sync") {
      if (value == "always") {
        o.spool.sync = SpoolSync::Always;
      } else if (value == "interval") {
        o.spool.sync = SpoolSync::Interval;
      } else if (value == "none") {
        o.spool.sync = SpoolSync::None;
      } else {
        fail(key, "expected \"always\", \"interval\" or \"none\", got \"" + value + "\"");
      }
      spool_keys = true;
    } else if (key == "sync_interval") {
      auto ms = parseDurationMs(value);
      if (!ms || *ms < 1) fail(key, "expected a duration of at least 1ms such as \"1s\"");
      o.spool.sync_interval = std::chrono::milliseconds(*ms);
      spool_keys = true;
    } else if (key == "path") {
      if (value.empty()) fail(key, "must not be empty");
      o.path = value;
      spool_keys = true;
    } else {
      fail(key,
           "unknown key (known: type, memory_limit, high_watermark, low_watermark, "
           "overflow_limit, full_action, total_limit_size, segment_size, sync, sync_interval, "
           "path)");
    }
  }
  if (spool_keys && !o.spooled) {
    fail("type",
         "spool keys (total_limit_size, segment_size, sync, sync_interval, path) need "
         "type = \"file\"");
  }
  if (!segment_set) {
    // A small spool gets smaller segments, so drop_oldest and deletion stay fine-grained.
    o.spool.segment_size = std::max<uint64_t>(
        4096, std::min<uint64_t>(o.spool.segment_size, o.spool.total_limit_size / 4));
  }
  if (o.spooled && o.spool.segment_size > o.spool.total_limit_size) {
    fail("segment_size", "is larger than total_limit_size");
  }
  if (high > o.queue.memory_limit) fail("high_watermark", "is above memory_limit");
  const uint64_t h = high ? high : o.queue.memory_limit;
  if (low && low >= h) fail("low_watermark", "must be below high_watermark");
  if (overflow && overflow < o.queue.memory_limit) fail("overflow_limit", "is below memory_limit");
  o.queue.high_watermark = high;
  o.queue.low_watermark = low;
  o.queue.overflow_limit = overflow;
  return o;
}

std::unique_ptr<Output> wrapOutput(const PluginContext& ctx, const PluginType& type,
                                   std::unique_ptr<Output> output) {
  if (!type.buffered) return output;
  BufferOptions o = parseBufferOptions(*ctx.config, type, *ctx.full_config);
  return std::make_unique<BufferedOutput>(ctx, std::move(output), std::move(o));
}

BufferedOutput::BufferedOutput(const PluginContext& ctx, std::unique_ptr<Output> inner,
                               BufferOptions options)
    : name_(ctx.config->name),
      loop_(ctx.loop),
      flow_(ctx.flow),
      inner_(std::move(inner)),
      opt_(std::move(options)),
      inflight_limit_(inflightLimit(opt_.queue)) {
  if (const uint64_t own = inner_->maxInflightBytes(); own > 0) {
    inflight_limit_ = std::min(inflight_limit_, own);
  }
  StatsRegistry& st = *ctx.stats;
  auto counter = [&](const char* n) { return &st.counter(name_, n); };
  c_ = Counters{counter("buffer_queued_bytes"),
                counter("buffer_queued_events"),
                counter("buffer_inflight_bytes"),
                counter("buffer_peak_bytes"),
                counter("buffer_dropped_oldest_events"),
                counter("buffer_dropped_newest_events"),
                counter("buffer_refused_overflow_events"),
                counter("buffer_above_high"),
                counter("delivery_failures"),
                counter("spool_bytes"),
                counter("spool_appended"),
                counter("spool_acked_seq"),
                counter("spool_recovered_records"),
                counter("spool_corrupt_records"),
                counter("spool_torn_tails"),
                counter("spool_read_skipped"),
                counter("spool_undecodable"),
                counter("spool_full"),
                counter("spool_write_errors"),
                counter("spool_dropped_records"),
                counter("spool_too_large"),
                counter("replayed_batches")};

  MemoryBudget::Account account;
  if (flow_) account = flow_->budget.account(name_);
  if (!opt_.spooled) {
    if (opt_.on_delivery) inner_->resolveOnDelivery();
    queue_ = std::make_unique<OutputQueue>(opt_.queue, std::move(account));
    if (opt_.queue.full_action == FullAction::Block && flow_) {
      queue_->setWatermarkCallbacks([this] { flow_->output_full.raise(name_); },
                                    [this] { flow_->output_full.lower(name_); });
    }
    return;
  }
  // The queue options are checked the same way in both modes.
  OutputQueue check(opt_.queue);
  opt_.queue = check.options();
  if (opt_.queue.high_watermark == 0) opt_.queue.high_watermark = opt_.queue.memory_limit;
  if (opt_.queue.low_watermark == 0) opt_.queue.low_watermark = opt_.queue.high_watermark / 2;
  if (opt_.queue.overflow_limit == 0) opt_.queue.overflow_limit = 2 * opt_.queue.memory_limit;
  account_ = std::move(account);

  spool_ = std::make_unique<Spool>(loop_);
  std::string error;
  const SpoolStatus s = spool_->open(opt_.path, opt_.spool, error);
  if (s != SpoolStatus::Ok) {
    throw std::runtime_error(fmt::format("[{}] cannot open the spool in '{}': {}", name_, opt_.path,
                                         error.empty() ? spoolStatusName(s) : error));
  }
  inner_->resolveOnDelivery();
  handed_max_ = acked_sent_ = spool_->ackedAtOpen();
  const SpoolStats& ss = spool_->stats();
  c_.spool_recovered_records->set(ss.recovered_records);
  c_.spool_corrupt_records->set(ss.corrupt_records);
  c_.spool_torn_tails->set(ss.torn_tails);
  if (ss.corrupt_records || ss.torn_tails) {
    spdlog::warn(
        "[{}] spool '{}': skipped {} damaged range(s) ({} bytes) and {} torn tail(s) ({} bytes); "
        "they are not replayed",
        name_, opt_.path, ss.corrupt_records, ss.corrupt_bytes, ss.torn_tails, ss.torn_bytes);
  }
  if (ss.recovered_records > 0) {
    spdlog::info("[{}] spool '{}' holds {} undelivered record(s) from before: replaying them",
                 name_, opt_.path, ss.recovered_records);
    disk_mode_ = true;
  }
  retry_timer_ = new uv_timer_t;
  uv_timer_init(loop_, retry_timer_);
  retry_timer_->data = this;
  blocked_timer_ = new uv_timer_t;
  uv_timer_init(loop_, blocked_timer_);
  blocked_timer_->data = this;
  if (disk_mode_) {
    // Start replaying from the loop, once every output exists (a secondary may be needed).
    uv_timer_start(
        blocked_timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<BufferedOutput*>(t->data);
          self->spoolPump();
        },
        0, 0);
  }
  updateGauges();
}

BufferedOutput::~BufferedOutput() {
  *alive_ = false;
  for (uv_timer_t* t : {retry_timer_, blocked_timer_}) {
    if (!t) continue;
    uv_close(reinterpret_cast<uv_handle_t*>(t),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
  }
  if (flow_) {
    flow_->output_full.lower(name_);
    flow_->spool_full.lower(name_);
  }
}

void BufferedOutput::submit(BatchPtr batch, AckShare ack) {
  if (closed_) {
    ack.fail();
    return;
  }
  if (!spool_) {
    if (opt_.on_delivery) {
      // The output only reports delivery; "accepted into memory" is this queue taking it
      // (architecture §5), as the output itself would have said without a buffer.
      if (queue_->push(std::move(batch), AckShare()) == OutputQueue::PushResult::Queued) {
        ack.accept();
      } else {
        ack.fail();
      }
    } else {
      queue_->push(std::move(batch), std::move(ack));
    }
    memoryPump();
  } else {
    spoolSubmit(std::move(batch), std::move(ack));
  }
  updateGauges();
}

// ---- memory mode -------------------------------------------------------------------

void BufferedOutput::memoryPump() {
  // An output may resolve a share inside submit() (ForwardOutput accepts at once when it
  // has room): the callback's pump returns here instead of recursing once per batch.
  if (pumping_) return;
  pumping_ = true;
  while (!queue_->empty() &&
         (flushing_ || inflight_bytes_ == 0 || inflight_bytes_ < inflight_limit_)) {
    OutputQueue::Entry e = queue_->pop();
    inflight_bytes_ += e.bytes;
    auto up = std::make_shared<AckShare>(std::move(e.ack));
    auto d = std::make_shared<Delivery>([this, alive = alive_, up, bytes = e.bytes](bool ok) {
      if (ok) {
        up->accept();
      } else {
        up->fail();
      }
      if (!*alive) return;
      inflight_bytes_ -= bytes;
      memoryPump();
      updateGauges();
    });
    inner_->submit(std::move(e.batch), AckShare(d));
  }
  pumping_ = false;
}

// ---- spooled mode ------------------------------------------------------------------

void BufferedOutput::spoolSubmit(BatchPtr batch, AckShare ack) {
  const uint64_t bytes = batchQueueBytes(*batch);
  if (!blocked_.empty() || dropping_) {
    // Keep order: behind what is already waiting for room.
    onSpoolFull(std::move(batch), std::move(ack), bytes, SpoolStatus::Full);
    return;
  }
  if (opt_.queue.full_action != FullAction::Block && !pending_.empty() &&
      pending_bytes_ + bytes > opt_.queue.memory_limit) {
    // The disk is behind by a whole memory_limit and this output must not push back.
    c_.dropped_newest_events->inc(eventsOf(batch));
    ack.fail();
    return;
  }
  tryAppend(batch, ack, bytes);
}

SpoolStatus BufferedOutput::appendToSpool(BatchPtr& batch, AckShare& ack, uint64_t bytes) {
  std::string payload;
  encodeBatch(*batch, payload);
  uint64_t seq = 0;
  const SpoolStatus s = spool_->append(
      std::move(payload),
      [this, alive = alive_](uint64_t sq, SpoolStatus st) {
        if (*alive) onAppended(sq, st);
      },
      &seq);
  if (s == SpoolStatus::Ok) {
    pending_.push_back(Pending{seq, std::move(batch), std::move(ack), bytes});
    pending_bytes_ += bytes;
  }
  return s;
}

void BufferedOutput::settleUnspooled(BatchPtr batch, AckShare ack, uint64_t bytes,
                                     SpoolStatus why) {
  if (why != SpoolStatus::TooLarge) {
    ack.fail();
    return;
  }
  // One batch larger than a segment: deliver it from memory only (not crash-safe), so a big
  // chunk is never refused forever. The client's ack waits for the delivery.
  c_.spool_too_large->inc();
  spdlog::warn(
      "[{}] a batch of {} bytes does not fit a spool segment (segment_size {}); "
      "delivering it without the spool",
      name_, bytes, opt_.spool.segment_size);
  inner_->submit(std::move(batch), std::move(ack));
}

void BufferedOutput::tryAppend(BatchPtr& batch, AckShare& ack, uint64_t bytes) {
  const SpoolStatus s = appendToSpool(batch, ack, bytes);
  if (s == SpoolStatus::Ok) {
    updateMemoryWatermarks();
  } else if (s == SpoolStatus::Full) {
    onSpoolFull(std::move(batch), std::move(ack), bytes, s);
  } else {
    settleUnspooled(std::move(batch), std::move(ack), bytes, s);
  }
}

void BufferedOutput::onAppended(uint64_t seq, SpoolStatus status) {
  auto it = std::find_if(pending_.begin(), pending_.end(),
                         [seq](const Pending& p) { return p.seq == seq; });
  if (it == pending_.end()) return;
  Pending p = std::move(*it);
  pending_.erase(it);
  pending_bytes_ -= p.bytes;
  if (status == SpoolStatus::Ok) {
    c_.spool_appended->inc();
    p.ack.accept();  // in the spool (and synced, with sync = "always"): the client may be acked
    if (p.seq <= handed_max_) {
      // Already read back from disk and handed to the output.
    } else if (!disk_mode_ &&
               cache_bytes_ + inflight_bytes_ + p.bytes <= opt_.queue.high_watermark) {
      cache_.push_back(Cached{p.seq, std::move(p.batch), p.bytes});
      cache_bytes_ += p.bytes;
    } else {
      disk_mode_ = true;  // over the memory limit: this one and the next come from disk
    }
    if (blocked_.empty()) endFullEpisode();
  } else {
    c_.spool_write_errors->inc();
    onSpoolFull(std::move(p.batch), std::move(p.ack), p.bytes, status);
  }
  updateMemoryWatermarks();
  spoolPump();
  maybeFinishFlush();
  updateGauges();
}

void BufferedOutput::onSpoolFull(BatchPtr batch, AckShare ack, uint64_t bytes, SpoolStatus why) {
  const uint64_t events = eventsOf(batch);
  if (!full_episode_) {
    full_episode_ = true;
    episode_dropped_ = 0;
    c_.spool_full->inc();
    spdlog::warn("[{}] spool {} ({} of total_limit_size {} used): applying full_action {}", name_,
                 why == SpoolStatus::Full ? "full" : spoolStatusName(why),
                 formatSize(spool_->bytesUsed()), formatSize(opt_.spool.total_limit_size),
                 fullActionName(opt_.queue.full_action));
  }
  switch (opt_.queue.full_action) {
    case FullAction::DropNewest:
      c_.dropped_newest_events->inc(events);
      episode_dropped_ += events;
      ack.fail();
      return;
    case FullAction::DropOldest:
    case FullAction::Block:
      break;
  }
  if (!blocked_.empty() && blocked_bytes_ + bytes > opt_.queue.overflow_limit) {
    c_.refused_overflow_events->inc(events);
    episode_dropped_ += events;
    ack.fail();
    return;
  }
  blocked_.push_back(Blocked{std::move(batch), std::move(ack), bytes});
  blocked_bytes_ += bytes;
  updateMemoryWatermarks();
  if (opt_.queue.full_action == FullAction::Block) {
    if (!spool_full_raised_ && flow_) {
      flow_->spool_full.raise(name_);
      spool_full_raised_ = true;
    }
  } else {
    startDropOldest();
  }
  // Disk full (or nothing could be dropped): try again shortly as well as after each ack.
  if (!uv_is_active(reinterpret_cast<uv_handle_t*>(blocked_timer_))) {
    uv_timer_start(
        blocked_timer_,
        [](uv_timer_t* t) {
          auto* self = static_cast<BufferedOutput*>(t->data);
          self->drop_stalled_ = false;
          self->retryBlocked();
          self->spoolPump();
        },
        1000, 0);
  }
}

void BufferedOutput::startDropOldest() {
  if (dropping_ || drop_stalled_) return;
  dropping_ = true;
  const uint64_t before = acked_sent_;
  spool_->dropOldest([this, alive = alive_, before](SpoolStatus st, uint64_t acked) {
    if (!*alive) return;
    dropping_ = false;
    if (st != SpoolStatus::Ok || acked <= before) {
      // Nothing to drop (all of it is with the output): wait for deliveries or the timer.
      drop_stalled_ = true;
      return;
    }
    acked_sent_ = std::max(acked_sent_, acked);
    if (acked > handed_max_) {
      // Records up to `acked` are gone from the spool without being handed to the output.
      // Those still cached are counted by their events, the rest by records.
      c_.spool_dropped_records->inc(acked - handed_max_);
      uint64_t events = 0;
      while (!cache_.empty() && cache_.front().seq <= acked) {
        events += eventsOf(cache_.front().batch);
        cache_bytes_ -= cache_.front().bytes;
        cache_.pop_front();
      }
      c_.dropped_oldest_events->inc(events);
      episode_dropped_ += acked - handed_max_;
      handed_max_ = acked;
    }
    retryBlocked();
  });
}

void BufferedOutput::retryBlocked() {
  while (!blocked_.empty() && !dropping_) {
    Blocked& b = blocked_.front();
    const SpoolStatus s = appendToSpool(b.batch, b.ack, b.bytes);
    if (s == SpoolStatus::Full) {
      if (opt_.queue.full_action == FullAction::DropOldest) startDropOldest();
      break;
    }
    Blocked taken = std::move(b);
    blocked_.pop_front();
    blocked_bytes_ -= taken.bytes;
    if (s != SpoolStatus::Ok)
      settleUnspooled(std::move(taken.batch), std::move(taken.ack), taken.bytes, s);
  }
  if (blocked_.empty()) {
    if (spool_full_raised_ && flow_) flow_->spool_full.lower(name_);
    spool_full_raised_ = false;
    if (flushing_) maybeFinishFlush();
  }
  updateMemoryWatermarks();
  updateGauges();
}

void BufferedOutput::endFullEpisode() {
  if (!full_episode_) return;
  full_episode_ = false;
  spdlog::info("[{}] spool has room again; {} event(s)/record(s) dropped or refused meanwhile",
               name_, episode_dropped_);
}

void BufferedOutput::updateMemoryWatermarks() {
  if (!spool_) return;
  const uint64_t mem = pending_bytes_ + blocked_bytes_;
  if (!mem_above_high_ && mem > opt_.queue.high_watermark) {
    mem_above_high_ = true;
    c_.above_high->inc();
    if (opt_.queue.full_action == FullAction::Block && flow_) flow_->output_full.raise(name_);
  } else if (mem_above_high_ && mem <= opt_.queue.low_watermark) {
    mem_above_high_ = false;
    if (flow_) flow_->output_full.lower(name_);
  }
}

void BufferedOutput::spoolPump() {
  if (!spool_ || closed_ || flushing_ || pumping_) return;
  pumping_ = true;  // see memoryPump
  while (inflight_.empty() || inflight_bytes_ < inflight_limit_) {
    if (!cache_.empty()) {
      Cached c = std::move(cache_.front());
      cache_.pop_front();
      cache_bytes_ -= c.bytes;
      if (c.seq <= handed_max_) continue;
      hand(c.seq, std::move(c.batch), c.bytes);
      continue;
    }
    if (disk_mode_) readMore();
    break;
  }
  pumping_ = false;
}

void BufferedOutput::readMore() {
  if (reading_ || !spool_->isOpen()) return;
  reading_ = true;
  const uint64_t room = inflight_bytes_ < inflight_limit_ ? inflight_limit_ - inflight_bytes_ : 0;
  spool_->read(
      1024, std::max<uint64_t>(room, 64 * 1024),
      [this, alive = alive_](SpoolStatus st, std::vector<SpoolRecord> recs) {
        if (!*alive) return;
        reading_ = false;
        if (st != SpoolStatus::Ok) {
          spdlog::error("[{}] cannot read the spool: {}; trying again", name_, spoolStatusName(st));
          if (!uv_is_active(reinterpret_cast<uv_handle_t*>(blocked_timer_))) {
            uv_timer_start(
                blocked_timer_,
                [](uv_timer_t* t) { static_cast<BufferedOutput*>(t->data)->spoolPump(); }, 1000, 0);
          }
          maybeFinishFlush();
          return;
        }
        if (recs.empty()) {
          disk_mode_ = false;  // caught up with what is on disk
          // With no append outstanding, seqs below nextSeq() that no read returned were
          // damaged away (a torn tail): nothing is left to deliver for them.
          if (pending_.empty() && cache_.empty()) {
            handed_max_ = std::max(handed_max_, spool_->nextSeq() - 1);
          }
        }
        for (SpoolRecord& r : recs) {
          if (r.seq <= handed_max_) continue;
          if (flushing_ || closed_) break;  // replayed at the next start
          std::string error;
          BatchPtr b = decodeBatch(r.payload, error);
          if (!b) {
            c_.spool_undecodable->inc();
            spdlog::error("[{}] spool record {} does not decode ({}); skipping it", name_, r.seq,
                          error);
            handed_max_ = r.seq;
            continue;
          }
          c_.replayed_batches->inc();
          const uint64_t bytes = batchQueueBytes(*b);
          hand(r.seq, std::move(b), bytes);
        }
        c_.spool_read_skipped->set(spool_->stats().read_skipped);
        ackDelivered();
        spoolPump();
        maybeFinishFlush();
        updateGauges();
      });
}

void BufferedOutput::hand(uint64_t seq, BatchPtr batch, uint64_t bytes) {
  handed_max_ = std::max(handed_max_, seq);
  auto [it, inserted] = inflight_.emplace(seq, Inflight{std::move(batch), bytes, false});
  if (!inserted) return;
  inflight_bytes_ += bytes;
  auto d = std::make_shared<Delivery>([this, alive = alive_, seq](bool ok) {
    if (*alive) onDelivered(seq, ok);
  });
  inner_->submit(it->second.batch, AckShare(d));
}

void BufferedOutput::onDelivered(uint64_t seq, bool ok) {
  auto it = inflight_.find(seq);
  if (it == inflight_.end()) return;
  if (ok) {
    inflight_bytes_ -= it->second.bytes;
    inflight_.erase(it);
    retry_backoff_.reset();
    ackDelivered();
    spoolPump();
  } else {
    c_.delivery_failures->inc();
    if (!flushing_ && !closed_) {
      // Not delivered: it stays in the spool; hand it to the output again after a pause.
      it->second.retry_due = true;
      if (!uv_is_active(reinterpret_cast<uv_handle_t*>(retry_timer_))) {
        uv_timer_start(
            retry_timer_,
            [](uv_timer_t* t) { static_cast<BufferedOutput*>(t->data)->retryFailed(); },
            static_cast<uint64_t>(retry_backoff_.next()), 0);
      }
    }
  }
  maybeFinishFlush();
  updateGauges();
}

void BufferedOutput::retryFailed() {
  if (closed_ || flushing_) return;
  std::vector<uint64_t> due;
  for (auto& [seq, item] : inflight_) {
    if (item.retry_due) due.push_back(seq);
  }
  for (uint64_t seq : due) {
    auto it = inflight_.find(seq);
    if (it == inflight_.end()) continue;
    it->second.retry_due = false;
    auto d = std::make_shared<Delivery>([this, alive = alive_, seq](bool ok) {
      if (*alive) onDelivered(seq, ok);
    });
    inner_->submit(it->second.batch, AckShare(d));
  }
}

void BufferedOutput::ackDelivered() {
  uint64_t frontier = handed_max_;
  if (!inflight_.empty()) frontier = std::min(frontier, inflight_.begin()->first - 1);
  if (frontier <= acked_sent_) return;
  acked_sent_ = frontier;
  c_.spool_acked_seq->set(frontier);
  spool_->ack(frontier, [this, alive = alive_](SpoolStatus) {
    if (!*alive) return;
    // An ack may have deleted segments: room for what waits.
    drop_stalled_ = false;
    if (!blocked_.empty()) retryBlocked();
    updateGauges();
  });
}

void BufferedOutput::setMemory(uint64_t bytes) {
  const uint64_t used = account_.used();
  if (bytes > used) {
    account_.charge(bytes - used);
  } else if (bytes < used) {
    account_.release(used - bytes);
  }
}

void BufferedOutput::updateGauges() {
  if (!spool_) {
    c_.queued_bytes->set(queue_->queuedBytes());
    c_.queued_events->set(queue_->queuedEvents());
    c_.inflight_bytes->set(inflight_bytes_);
    c_.peak_bytes->set(queue_->peakBytes());
    c_.dropped_oldest_events->set(queue_->droppedOldestEvents());
    c_.dropped_newest_events->set(queue_->droppedNewestEvents());
    c_.refused_overflow_events->set(queue_->refusedOverflowEvents());
    c_.above_high->set(queue_->aboveHighTransitions());
    return;
  }
  const uint64_t mem = pending_bytes_ + cache_bytes_ + blocked_bytes_;
  setMemory(mem + inflight_bytes_);
  peak_ = std::max(peak_, mem + inflight_bytes_);
  c_.queued_bytes->set(mem);
  c_.inflight_bytes->set(inflight_bytes_);
  c_.peak_bytes->set(peak_);
  c_.spool_bytes->set(spool_->bytesUsed());
  c_.queued_events->set(spool_->nextSeq() - 1 - acked_sent_);  // records, not events
}

// ---- stop ---------------------------------------------------------------------------

void BufferedOutput::flush(std::function<void()> done) {
  flushing_ = true;
  flush_done_ = std::move(done);
  if (!spool_) {
    memoryPump();
    inner_flushing_ = true;
    inner_->flush([this, alive = alive_] {
      if (!*alive) return;
      auto d = std::move(flush_done_);
      flush_done_ = nullptr;
      if (d) d();
    });
    return;
  }
  if (uv_is_active(reinterpret_cast<uv_handle_t*>(retry_timer_))) uv_timer_stop(retry_timer_);
  // What waits for spool room cannot be stored: no ack for it (the client sends it again).
  for (Blocked& b : blocked_) {
    c_.refused_overflow_events->inc(eventsOf(b.batch));
    b.ack.fail();
  }
  blocked_.clear();
  blocked_bytes_ = 0;
  if (spool_full_raised_ && flow_) flow_->spool_full.lower(name_);
  spool_full_raised_ = false;
  maybeFinishFlush();
}

void BufferedOutput::maybeFinishFlush() {
  if (!spool_ || !flushing_ || inner_flushing_) return;
  if (!pending_.empty() || reading_) return;
  inner_flushing_ = true;
  // Everything accepted is in the spool now. Let the output finish what it holds; what it
  // does not deliver stays in the spool for the next start.
  inner_->flush([this, alive = alive_] {
    if (!*alive) return;
    ackDelivered();
    spdlog::info("[{}] stopping: {} record(s) left in the spool for the next start", name_,
                 spool_->nextSeq() - 1 - acked_sent_);
    spool_->close([this, alive = alive_] {
      if (!*alive) return;
      auto d = std::move(flush_done_);
      flush_done_ = nullptr;
      if (d) d();
    });
  });
}

void BufferedOutput::close() {
  if (closed_) return;
  closed_ = true;
  inner_->close();
  if (flow_) {
    flow_->output_full.lower(name_);
    flow_->spool_full.lower(name_);
  }
}

}  // namespace ferry
