// SpoolStore: segment files, the ledger and the read cursor over plain POSIX calls. Spool:
// a writer thread that runs SpoolStore commands in order and posts completions to the loop
// through a uv_async, batching appends so one fdatasync covers many records.
#include "src/spool.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include "src/spool_segment.h"

namespace ferry {
namespace {

constexpr std::string_view kLedgerName = "ledger";

// Reads the whole file; false on an I/O error.
bool readFile(const std::string& path, std::string& out) {
  out.clear();
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[65536];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      ::close(fd);
      return false;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return true;
}

bool preadAll(int fd, char* buf, size_t n, off_t off) {
  while (n > 0) {
    const ssize_t r = ::pread(fd, buf, n, off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    buf += r;
    n -= static_cast<size_t>(r);
    off += r;
  }
  return true;
}

// New directory entries (segments) are durable only once the directory itself is synced.
void syncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

SpoolStatus statusFromErrno(int err) {
  return err == ENOSPC || err == EDQUOT ? SpoolStatus::DiskFull : SpoolStatus::IoError;
}

}  // namespace

const char* spoolStatusName(SpoolStatus s) {
  switch (s) {
    case SpoolStatus::Ok:
      return "ok";
    case SpoolStatus::Full:
      return "full";
    case SpoolStatus::TooLarge:
      return "record too large";
    case SpoolStatus::DiskFull:
      return "disk full";
    case SpoolStatus::IoError:
      return "i/o error";
    case SpoolStatus::Closed:
      return "closed";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------
// SpoolStore

SpoolStore::~SpoolStore() {
  close();
}

uint32_t SpoolStore::maxPayload() const {
  const uint64_t m = opts_.segment_size > spool::kRecordHeaderSize
                         ? opts_.segment_size - spool::kRecordHeaderSize
                         : 0;
  return static_cast<uint32_t>(std::min<uint64_t>(m, UINT32_MAX));
}

std::string SpoolStore::segPath(uint64_t first_seq) const {
  return dir_ + "/" + spool::segmentName(first_seq);
}

SpoolStatus SpoolStore::open(const std::string& dir, const SpoolOptions& options,
                             std::string& error) {
  close();
  opts_ = options;
  dir_ = dir;
  stats_ = {};
  segs_.clear();
  bytes_used_ = 0;
  tail_dirty_ = dirty_ = failing_ = false;
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) {
    error = "cannot create spool directory " + dir_ + ": " + ec.message();
    return SpoolStatus::IoError;
  }
  std::vector<uint64_t> names;
  if (DIR* d = ::opendir(dir_.c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (auto s = spool::parseSegmentName(e->d_name)) names.push_back(*s);
    }
    ::closedir(d);
  } else {
    error = "cannot list spool directory " + dir_ + ": " + std::strerror(errno);
    return SpoolStatus::IoError;
  }
  std::sort(names.begin(), names.end());

  // The ledger. Missing with segments present, or damaged, both mean we no longer know what
  // was delivered: replay everything (duplicates are allowed, loss is not).
  spool::Ledger ledger;
  std::string bytes;
  const std::string ledger_path = dir_ + "/" + std::string(kLedgerName);
  const bool have_ledger = readFile(ledger_path, bytes);
  if (have_ledger || !names.empty()) {
    if (auto l = spool::decodeLedger(bytes)) {
      ledger = *l;
    } else {
      ++stats_.ledger_resets;
      spdlog::warn("[{}] spool ledger {} in {}; replaying from the oldest segment", opts_.name,
                   have_ledger ? "damaged" : "missing", dir_);
    }
  }

  uint64_t last = 0;
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string path = segPath(names[i]);
    if (!readFile(path, bytes)) {
      error = "cannot read spool segment " + path + ": " + std::strerror(errno);
      return SpoolStatus::IoError;
    }
    const spool::ScanResult r = spool::scanRecords(bytes, maxPayload(), last);
    for (const auto& rec : r.records) {
      if (rec.seq > ledger.acked_seq) ++stats_.recovered_records;
    }
    stats_.corrupt_records += r.corrupt_spans;
    stats_.corrupt_bytes += r.corrupt_bytes;
    if (r.corrupt_spans > 0) {
      spdlog::warn("[{}] spool segment {}: skipped {} damaged range(s), {} bytes", opts_.name, path,
                   r.corrupt_spans, r.corrupt_bytes);
    }
    uint64_t size = bytes.size();
    if (r.torn_tail) {
      ++stats_.torn_tails;
      stats_.torn_bytes += r.torn_bytes;
      spdlog::warn("[{}] spool segment {}: skipped a torn or damaged tail of {} bytes", opts_.name,
                   path, r.torn_bytes);
      // Only the newest segment can have been torn by a crash; cutting its tail lets new
      // records follow a valid one. Older segments are left as they are (and skipped).
      if (i + 1 == names.size()) {
        if (::truncate(path.c_str(), static_cast<off_t>(r.valid_end)) == 0) {
          size = r.valid_end;
        } else {
          tail_dirty_ = true;
        }
      }
    }
    last = r.last_seq;
    segs_.push_back({names[i], size, last});
    bytes_used_ += size;
  }
  next_seq_ = std::max(ledger.next_seq, last + 1);
  acked_seq_ = std::min(ledger.acked_seq, next_seq_ - 1);

  ledger_fd_ = ::open(ledger_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (ledger_fd_ < 0) {
    error = "cannot open spool ledger " + ledger_path + ": " + std::strerror(errno);
    return SpoolStatus::IoError;
  }
  if (!segs_.empty() && !tail_dirty_) {
    active_fd_ = ::open(segPath(segs_.back().first_seq).c_str(), O_WRONLY | O_CLOEXEC);
    if (active_fd_ < 0) tail_dirty_ = true;  // append to a fresh segment instead
  }
  open_ = true;
  rewind();
  // Segments acked before the crash but not yet deleted.
  while (segs_.size() > 1 && segs_.front().last_seq <= acked_seq_)
    deleteFront();
  writeLedger();
  if (stats_.recovered_records > 0) {
    spdlog::info("[{}] spool {}: {} undelivered record(s) to replay", opts_.name, dir_,
                 stats_.recovered_records);
  }
  return SpoolStatus::Ok;
}

SpoolStatus SpoolStore::deleteFront() {
  const Segment s = segs_.front();
  if (segs_.size() == 1) {
    dirty_ = false;  // about to be deleted: no point syncing it
    closeActive();
  }
  if (::unlink(segPath(s.first_seq).c_str()) != 0 && errno != ENOENT) {
    spdlog::warn("[{}] cannot delete spool segment {}: {}", opts_.name, segPath(s.first_seq),
                 std::strerror(errno));
    return SpoolStatus::IoError;
  }
  bytes_used_ -= s.size;
  ++stats_.segments_deleted;
  segs_.pop_front();
  if (read_buf_seg_ == s.first_seq) read_buf_.clear();
  return SpoolStatus::Ok;
}

void SpoolStore::closeActive() {
  if (active_fd_ >= 0) {
    if (dirty_ && opts_.sync != SpoolSync::None) ::fdatasync(active_fd_);
    ::close(active_fd_);
    active_fd_ = -1;
    dirty_ = false;
  }
}

SpoolStatus SpoolStore::roll(uint64_t seq) {
  closeActive();
  const std::string path = segPath(seq);
  // A newest segment already named `seq` holds no record (else next_seq_ would be past it),
  // only damage or nothing: start it over instead of failing on the existing name.
  const bool reuse = !segs_.empty() && segs_.back().first_seq == seq;
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | (reuse ? O_TRUNC : O_EXCL), 0644);
  if (fd < 0) {
    const int err = errno;
    ++stats_.write_errors;
    if (!failing_) {
      spdlog::error("[{}] cannot create spool segment {}: {}", opts_.name, path,
                    std::strerror(err));
    }
    failing_ = true;
    return statusFromErrno(err);
  }
  if (opts_.sync != SpoolSync::None) syncDir(dir_);
  active_fd_ = fd;
  tail_dirty_ = false;
  if (reuse) {
    bytes_used_ -= segs_.back().size;
    segs_.back().size = 0;
    if (read_buf_seg_ == seq) read_buf_.clear();
    if (read_seg_ == seq) read_off_ = 0;
  } else {
    segs_.push_back({seq, 0, next_seq_ - 1});
  }
  return SpoolStatus::Ok;
}

SpoolStatus SpoolStore::append(std::string_view payload, uint64_t seq, uint64_t* seq_out) {
  if (!open_) return SpoolStatus::Closed;
  if (payload.size() > maxPayload()) return SpoolStatus::TooLarge;
  const uint64_t rec = spool::recordSize(payload.size());
  if (bytes_used_ + rec > opts_.total_limit_size) return SpoolStatus::Full;
  if (seq == 0) seq = next_seq_;
  // A caller bug, or seqs exhausted: never reuse a seq, never wrap.
  if (seq < next_seq_ || seq == UINT64_MAX) return SpoolStatus::IoError;
  if (active_fd_ < 0 || tail_dirty_ ||
      (segs_.back().size > 0 && segs_.back().size + rec > opts_.segment_size)) {
    if (SpoolStatus s = roll(seq); s != SpoolStatus::Ok) return s;
  }
  std::string buf;
  spool::encodeRecord(seq, payload, buf);
  Segment& seg = segs_.back();
  size_t done = 0;
  int err = 0;
  while (done < buf.size()) {
    const off_t off = static_cast<off_t>(seg.size + done);
    const ssize_t n = opts_.pwrite_hook
                          ? opts_.pwrite_hook(active_fd_, buf.data() + done, buf.size() - done, off)
                          : ::pwrite(active_fd_, buf.data() + done, buf.size() - done, off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      err = n < 0 ? errno : ENOSPC;
      break;
    }
    done += static_cast<size_t>(n);
  }
  if (err != 0) {
    ++stats_.write_errors;
    // Cut the partial record so the segment still ends on a record boundary; if even that
    // fails, the next append starts a new segment and recovery will see a torn tail here.
    if (done > 0 && ::ftruncate(active_fd_, static_cast<off_t>(seg.size)) != 0) {
      tail_dirty_ = true;
    }
    if (!failing_) {
      spdlog::error("[{}] spool write failed: {}; records are refused until it succeeds",
                    opts_.name, std::strerror(err));
    }
    failing_ = true;
    return statusFromErrno(err);
  }
  if (failing_) spdlog::info("[{}] spool writes succeed again", opts_.name);
  failing_ = false;
  seg.size += buf.size();
  seg.last_seq = seq;
  bytes_used_ += buf.size();
  next_seq_ = seq + 1;
  dirty_ = true;
  ++stats_.appended;
  if (seq_out) *seq_out = seq;
  return SpoolStatus::Ok;
}

SpoolStatus SpoolStore::sync() {
  if (!dirty_ || active_fd_ < 0) return SpoolStatus::Ok;
  if (::fdatasync(active_fd_) != 0) {
    ++stats_.write_errors;
    return statusFromErrno(errno);
  }
  dirty_ = false;
  ++stats_.syncs;
  return SpoolStatus::Ok;
}

void SpoolStore::rewind() {
  read_seg_ = segs_.empty() ? 0 : segs_.front().first_seq;
  read_off_ = 0;
  read_last_seq_ = 0;
  read_buf_.clear();
}

SpoolStatus SpoolStore::read(size_t max_records, size_t max_bytes, std::vector<SpoolRecord>& out) {
  if (!open_) return SpoolStatus::Closed;
  size_t bytes = 0;
  const size_t start = out.size();
  while (out.size() - start < max_records && (out.size() == start || bytes < max_bytes)) {
    // The cursor's segment may have been deleted by an ack that ran ahead of the reads.
    auto it = std::find_if(segs_.begin(), segs_.end(),
                           [&](const Segment& s) { return s.first_seq >= read_seg_; });
    if (it == segs_.end()) break;
    if (it->first_seq != read_seg_) {
      read_seg_ = it->first_seq;
      read_off_ = 0;
    }
    if (read_off_ >= it->size) {
      if (std::next(it) == segs_.end()) break;
      read_seg_ = std::next(it)->first_seq;
      read_off_ = 0;
      continue;
    }
    if (read_buf_seg_ != read_seg_ || read_buf_.empty() || read_off_ < read_buf_base_ ||
        read_off_ >= read_buf_base_ + read_buf_.size()) {
      // Load the rest of the segment once; later reads in it are served from memory.
      read_buf_.assign(it->size - read_off_, '\0');
      const std::string path = segPath(read_seg_);
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      const bool ok = fd >= 0 && preadAll(fd, read_buf_.data(), read_buf_.size(),
                                          static_cast<off_t>(read_off_));
      if (fd >= 0) ::close(fd);
      if (!ok) {
        read_buf_.clear();
        return SpoolStatus::IoError;
      }
      read_buf_seg_ = read_seg_;
      read_buf_base_ = read_off_;
    }
    const std::string_view view = std::string_view(read_buf_).substr(read_off_ - read_buf_base_);
    const size_t want = max_records - (out.size() - start);
    const uint64_t after = read_last_seq_;
    const spool::ScanResult r = spool::scanRecords(view, maxPayload(), after, want);
    const size_t scanned = r.records.size() < want ? view.size() : r.valid_end;
    size_t consumed = scanned;
    for (size_t i = 0; i < r.records.size(); ++i) {
      const spool::ScannedRecord& rec = r.records[i];
      if (out.size() > start && bytes >= max_bytes) {
        consumed = rec.offset;
        break;
      }
      read_last_seq_ = rec.seq;
      if (rec.seq <= acked_seq_) continue;
      out.push_back(
          {rec.seq, std::string(view.substr(rec.offset + spool::kRecordHeaderSize, rec.length))});
      bytes += rec.length;
    }
    // Count only the damage the cursor moves past: a read cut short scans the rest again.
    if (consumed < scanned) {
      const spool::ScanResult p = spool::scanRecords(view.substr(0, consumed), maxPayload(), after);
      stats_.read_skipped += p.corrupt_spans + (p.torn_tail ? 1 : 0);
    } else {
      stats_.read_skipped += r.corrupt_spans + (r.torn_tail ? 1 : 0);
    }
    read_off_ += consumed;
  }
  return SpoolStatus::Ok;
}

SpoolStatus SpoolStore::writeLedger() {
  if (ledger_fd_ < 0) return SpoolStatus::Closed;
  const std::string l = spool::encodeLedger({acked_seq_, next_seq_});
  // 32 bytes rewritten in place: in practice atomic, and if torn the CRC says so and the
  // next open replays from the oldest segment.
  if (::pwrite(ledger_fd_, l.data(), l.size(), 0) != static_cast<ssize_t>(l.size())) {
    ++stats_.write_errors;
    return statusFromErrno(errno);
  }
  if (opts_.sync == SpoolSync::Always) ::fdatasync(ledger_fd_);
  return SpoolStatus::Ok;
}

SpoolStatus SpoolStore::dropOldestSegment(uint64_t& acked) {
  acked = acked_seq_;
  if (!open_) return SpoolStatus::Closed;
  if (segs_.empty()) return SpoolStatus::Ok;
  const SpoolStatus st = ack(segs_.front().last_seq);
  acked = acked_seq_;
  return st;
}

SpoolStatus SpoolStore::ack(uint64_t seq) {
  if (!open_) return SpoolStatus::Closed;
  seq = std::min(seq, next_seq_ - 1);
  if (seq <= acked_seq_) return SpoolStatus::Ok;
  acked_seq_ = seq;
  SpoolStatus st = writeLedger();
  while (!segs_.empty() && segs_.front().last_seq <= acked_seq_) {
    // The newest segment goes too when everything is delivered; the next append starts a
    // new one. The ledger's next_seq keeps seqs increasing meanwhile.
    if (deleteFront() != SpoolStatus::Ok) {
      st = SpoolStatus::IoError;
      break;
    }
  }
  return st;
}

void SpoolStore::close() {
  if (!open_) return;
  closeActive();
  writeLedger();
  if (ledger_fd_ >= 0) {
    if (opts_.sync != SpoolSync::None) ::fdatasync(ledger_fd_);
    ::close(ledger_fd_);
    ledger_fd_ = -1;
  }
  open_ = false;
  segs_.clear();
  bytes_used_ = 0;
  read_buf_.clear();
}

// ---------------------------------------------------------------------------------------
// Spool

Spool::Spool(uv_loop_t* loop) : loop_(loop) {}

Spool::~Spool() {
  if (thread_.joinable()) {
    {
      std::lock_guard lk(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  if (async_) {
    // Callbacks no longer reach this object; the handle frees itself once closed.
    async_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
  }
}

SpoolStatus Spool::open(const std::string& dir, const SpoolOptions& options, std::string& error) {
  if (open_ || closing_) return SpoolStatus::Closed;
  const SpoolStatus st = store_.open(dir, options, error);
  if (st != SpoolStatus::Ok) return st;
  next_seq_ = store_.nextSeq();
  acked_at_open_ = store_.ackedSeq();
  store_bytes_ = store_.bytesUsed();
  limit_ = options.total_limit_size;
  max_payload_ = store_.maxPayload();
  stats_ = store_.stats();
  async_ = new uv_async_t;
  uv_async_init(loop_, async_, &Spool::onAsync);
  async_->data = this;
  last_sync_ = std::chrono::steady_clock::now();
  open_ = true;
  thread_ = std::thread([this] { run(); });
  return SpoolStatus::Ok;
}

SpoolStatus Spool::append(std::string payload, AppendDone done, uint64_t* seq) {
  if (!open_) return SpoolStatus::Closed;
  if (payload.size() > max_payload_) return SpoolStatus::TooLarge;
  const uint64_t rec = spool::recordSize(payload.size());
  if (store_bytes_ + reserved_ + rec > limit_) return SpoolStatus::Full;
  reserved_ += rec;
  Cmd c;
  c.kind = Cmd::Append;
  c.seq = next_seq_++;
  if (seq) *seq = c.seq;
  c.record_bytes = rec;
  c.payload = std::move(payload);
  c.append_done = std::move(done);
  {
    std::lock_guard lk(mu_);
    cmds_.push_back(std::move(c));
  }
  cv_.notify_one();
  return SpoolStatus::Ok;
}

void Spool::read(size_t max_records, size_t max_bytes, ReadDone done) {
  if (!open_) {
    if (done) done(SpoolStatus::Closed, {});
    return;
  }
  Cmd c;
  c.kind = Cmd::Read;
  c.max_records = max_records;
  c.max_bytes = max_bytes;
  c.read_done = std::move(done);
  {
    std::lock_guard lk(mu_);
    cmds_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void Spool::ack(uint64_t seq, AckDone done) {
  if (!open_) {
    if (done) done(SpoolStatus::Closed);
    return;
  }
  Cmd c;
  c.kind = Cmd::Ack;
  c.seq = seq;
  c.ack_done = std::move(done);
  {
    std::lock_guard lk(mu_);
    cmds_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void Spool::dropOldest(std::function<void(SpoolStatus, uint64_t)> done) {
  if (!open_) {
    if (done) done(SpoolStatus::Closed, 0);
    return;
  }
  Cmd c;
  c.kind = Cmd::DropOldest;
  c.drop_done = std::move(done);
  {
    std::lock_guard lk(mu_);
    cmds_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void Spool::rewind() {
  if (!open_) return;
  Cmd c;
  c.kind = Cmd::Rewind;
  {
    std::lock_guard lk(mu_);
    cmds_.push_back(std::move(c));
  }
  cv_.notify_one();
}

void Spool::close(std::function<void()> done) {
  if (!open_) {
    if (done) done();
    return;
  }
  open_ = false;
  closing_ = true;
  close_done_ = std::move(done);
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
}

void Spool::run() {
  std::unique_lock lk(mu_);
  for (;;) {
    if (cmds_.empty()) {
      if (stopping_) break;
      const SpoolOptions& o = store_.options();
      if (o.sync == SpoolSync::Interval && store_.dirty()) {
        // Idle with unsynced bytes: sync when the interval is up even if nothing else comes.
        if (cv_.wait_until(lk, last_sync_ + o.sync_interval) == std::cv_status::timeout &&
            cmds_.empty()) {
          lk.unlock();
          store_.sync();
          last_sync_ = std::chrono::steady_clock::now();
          lk.lock();
        }
      } else {
        cv_.wait(lk);
      }
      continue;
    }
    std::vector<Cmd> batch = std::move(cmds_);
    cmds_.clear();
    lk.unlock();
    process(batch);
    lk.lock();
  }
  lk.unlock();
  store_.close();
  post([this] {
    thread_.join();
    closing_ = false;
    uv_close(reinterpret_cast<uv_handle_t*>(async_),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_async_t*>(h); });
    async_ = nullptr;
    if (close_done_) std::exchange(close_done_, nullptr)();
  });
}

void Spool::flushAppends(std::vector<Cmd*>& appends, std::vector<SpoolStatus>& results) {
  if (appends.empty()) return;
  const SpoolOptions& o = store_.options();
  const auto now = std::chrono::steady_clock::now();
  bool any_ok = false;
  for (SpoolStatus s : results)
    any_ok = any_ok || s == SpoolStatus::Ok;
  if (any_ok && (o.sync == SpoolSync::Always ||
                 (o.sync == SpoolSync::Interval && now - last_sync_ >= o.sync_interval))) {
    const SpoolStatus s = store_.sync();
    last_sync_ = now;
    // Under "always" an Ok promises durability, so a failed fdatasync fails the batch.
    if (s != SpoolStatus::Ok && o.sync == SpoolSync::Always) {
      for (SpoolStatus& r : results) {
        if (r == SpoolStatus::Ok) r = s;
      }
    }
  }
  std::vector<std::pair<Cmd, SpoolStatus>> finished;
  finished.reserve(appends.size());
  for (size_t i = 0; i < appends.size(); ++i) {
    appends[i]->payload.clear();
    finished.emplace_back(std::move(*appends[i]), results[i]);
  }
  postWithSnapshot([this, finished = std::move(finished)]() mutable {
    for (auto& [c, s] : finished) {
      reserved_ -= c.record_bytes;
      if (c.append_done) c.append_done(c.seq, s);
    }
  });
  appends.clear();
  results.clear();
}

void Spool::process(std::vector<Cmd>& batch) {
  std::vector<Cmd*> appends;
  std::vector<SpoolStatus> results;
  for (Cmd& c : batch) {
    if (c.kind == Cmd::Append) {
      appends.push_back(&c);
      results.push_back(store_.append(c.payload, c.seq));
      continue;
    }
    flushAppends(appends, results);
    switch (c.kind) {
      case Cmd::Read: {
        std::vector<SpoolRecord> recs;
        const SpoolStatus s = store_.read(c.max_records, c.max_bytes, recs);
        postWithSnapshot([done = std::move(c.read_done), s, recs = std::move(recs)]() mutable {
          if (done) done(s, std::move(recs));
        });
        break;
      }
      case Cmd::Ack: {
        const SpoolStatus s = store_.ack(c.seq);
        postWithSnapshot([done = std::move(c.ack_done), s] {
          if (done) done(s);
        });
        break;
      }
      case Cmd::Rewind:
        store_.rewind();
        break;
      case Cmd::DropOldest: {
        uint64_t acked = 0;
        const SpoolStatus s = store_.dropOldestSegment(acked);
        postWithSnapshot([done = std::move(c.drop_done), s, acked] {
          if (done) done(s, acked);
        });
        break;
      }
      case Cmd::Append:
        break;
    }
  }
  flushAppends(appends, results);
}

void Spool::postWithSnapshot(std::function<void()> fn) {
  post([this, bytes = store_.bytesUsed(), stats = store_.stats(), fn = std::move(fn)] {
    store_bytes_ = bytes;
    stats_ = stats;
    fn();
  });
}

void Spool::post(std::function<void()> fn) {
  {
    std::lock_guard lk(mu_);
    done_.push_back(std::move(fn));
  }
  uv_async_send(async_);
}

void Spool::onAsync(uv_async_t* handle) {
  auto* self = static_cast<Spool*>(handle->data);
  if (!self) return;
  std::vector<std::function<void()>> fns;
  {
    std::lock_guard lk(self->mu_);
    fns.swap(self->done_);
  }
  for (auto& fn : fns)
    fn();
}

}  // namespace ferry
