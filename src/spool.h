// Per-output disk spool: append-only segment files of CRC32C-framed records plus a small
// ledger, so what an output has not delivered survives a restart or a crash. SpoolStore is
// the synchronous file logic; Spool runs it on a writer thread so the loop never waits on disk.
//
// On-disk format and invariants (docs/spool-format.md has the full text):
//  - A spool is one directory: segment files "<first seq, 20 digits>.seg" and "ledger".
//  - A record is: "FSR1" | u32 length | u64 seq | u32 crc32c(length, seq, payload) | payload,
//    little-endian. Seqs strictly increase across the whole spool (gaps are allowed).
//  - Records never span segments; a segment is at most segment_size bytes unless it holds a
//    single record. Segments are only appended to, never rewritten.
//  - The ledger (32 bytes, CRC32C) holds acked_seq (every seq <= it is delivered) and
//    next_seq. It is rewritten in place; a damaged or missing ledger means "replay from the
//    oldest segment" (at-least-once: duplicates, never loss).
//  - A segment is deleted only when every record in it has seq <= acked_seq.
//  - Recovery validates every record; damaged bytes (torn tail, flipped bits) are counted,
//    logged and skipped by resynchronising on the next magic; they are never replayed. A torn
//    tail of the newest segment is truncated away so appends continue at a record boundary.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <uv.h>

namespace ferry {

// What each policy can lose, on top of records not yet handed to the spool:
//  Always:   nothing once the append callback reported Ok (written and fdatasync'ed).
//  Interval: up to sync_interval of appends on an OS crash or power loss; nothing on a
//            process crash (the bytes are in the page cache).
//  None:     whatever the kernel had not written back on an OS crash or power loss.
enum class SpoolSync { Always, Interval, None };

enum class SpoolStatus {
  Ok,
  Full,      // total_limit_size would be crossed: apply full_action
  TooLarge,  // one record larger than a segment can hold
  DiskFull,  // ENOSPC/EDQUOT; the record is not stored, later appends retry
  IoError,   // any other I/O failure; the record is not stored
  Closed,
};

const char* spoolStatusName(SpoolStatus s);

struct SpoolOptions {
  uint64_t segment_size = 8 * 1024 * 1024;
  uint64_t total_limit_size = 256 * 1024 * 1024;  // bytes of segment files, acked or not
  SpoolSync sync = SpoolSync::Interval;
  std::chrono::milliseconds sync_interval{1000};
  std::string name = "spool";  // log prefix, e.g. the output's name
  // Test hook standing in for pwrite(2) on segment files, to simulate ENOSPC and short
  // writes. Empty in production.
  std::function<ssize_t(int fd, const void* buf, size_t n, off_t off)> pwrite_hook;
};

struct SpoolStats {
  uint64_t recovered_records = 0;  // undelivered records found by open()
  uint64_t corrupt_records = 0;    // damaged ranges between valid records, found by open()
  uint64_t corrupt_bytes = 0;
  uint64_t torn_tails = 0;  // damaged ranges at a segment's end, found by open()
  uint64_t torn_bytes = 0;
  uint64_t ledger_resets = 0;  // ledger missing or damaged: replayed from the oldest segment
  uint64_t read_skipped = 0;   // damaged ranges passed by the read cursor
  uint64_t segments_deleted = 0;
  uint64_t write_errors = 0;
  uint64_t appended = 0;
  uint64_t syncs = 0;  // fdatasync calls on segments
};

struct SpoolRecord {
  uint64_t seq = 0;
  std::string payload;
};

// Synchronous spool over one directory. Not thread-safe: one thread at a time (the tests, or
// Spool's writer thread).
class SpoolStore {
 public:
  SpoolStore() = default;
  ~SpoolStore();
  SpoolStore(const SpoolStore&) = delete;
  SpoolStore& operator=(const SpoolStore&) = delete;

  // Creates `dir` if needed and recovers what it holds. The read cursor starts at the first
  // unacked record.
  SpoolStatus open(const std::string& dir, const SpoolOptions& options, std::string& error);
  // Writes one record (no fsync). `seq` 0 means "the next one"; otherwise it must be at
  // least nextSeq(). On Ok `seq_out` (if given) receives the record's seq.
  SpoolStatus append(std::string_view payload, uint64_t seq = 0, uint64_t* seq_out = nullptr);
  // fdatasync of the newest segment, if anything was written since the last one.
  SpoolStatus sync();
  bool dirty() const { return dirty_; }
  // Up to `max_records` unacked records (and about `max_bytes`, at least one) from the read
  // cursor on, advancing it. Empty when the cursor reached the end.
  SpoolStatus read(size_t max_records, size_t max_bytes, std::vector<SpoolRecord>& out);
  // Moves the read cursor back to the first unacked record (after a failed delivery).
  void rewind();
  // Every record with seq <= `seq` is delivered: records it in the ledger and deletes the
  // segments that hold nothing else.
  SpoolStatus ack(uint64_t seq);
  // full_action = drop_oldest: marks every record of the oldest segment delivered (the
  // segment is deleted) and returns the new acked seq in `acked`. Nothing to drop: Ok with
  // `acked` unchanged.
  SpoolStatus dropOldestSegment(uint64_t& acked);
  void close();

  uint64_t nextSeq() const { return next_seq_; }
  uint64_t ackedSeq() const { return acked_seq_; }
  uint64_t bytesUsed() const { return bytes_used_; }
  size_t segmentCount() const { return segs_.size(); }
  uint32_t maxPayload() const;
  const SpoolStats& stats() const { return stats_; }
  const SpoolOptions& options() const { return opts_; }

 private:
  struct Segment {
    uint64_t first_seq = 0;  // from the name: a lower bound of the seqs inside
    uint64_t size = 0;
    uint64_t last_seq = 0;  // highest seq in it or in any older segment
  };
  std::string segPath(uint64_t first_seq) const;
  SpoolStatus roll(uint64_t seq);
  SpoolStatus writeLedger();
  SpoolStatus deleteFront();
  void closeActive();

  SpoolOptions opts_;
  std::string dir_;
  bool open_ = false;
  std::deque<Segment> segs_;
  int active_fd_ = -1;  // the newest segment, -1 until the first append
  int ledger_fd_ = -1;
  bool tail_dirty_ = false;  // a failed write could not be truncated away: roll first
  bool dirty_ = false;
  bool failing_ = false;  // last write failed (logged once, until one succeeds)
  uint64_t next_seq_ = 1;
  uint64_t acked_seq_ = 0;
  uint64_t bytes_used_ = 0;
  // Read cursor: a segment, a byte offset in it, and the last seq passed.
  uint64_t read_seg_ = 0;
  uint64_t read_off_ = 0;
  uint64_t read_last_seq_ = 0;
  std::string read_buf_;  // bytes of read_seg_ from read_buf_base_ on
  uint64_t read_buf_seg_ = 0;
  uint64_t read_buf_base_ = 0;
  SpoolStats stats_;
};

// The loop-thread face of a spool. open() recovers synchronously (at start-up, before the
// loop serves traffic); afterwards every disk operation runs in order on a writer thread and
// its callback runs on the loop.
class Spool {
 public:
  using AppendDone = std::function<void(uint64_t seq, SpoolStatus)>;
  using ReadDone = std::function<void(SpoolStatus, std::vector<SpoolRecord>)>;
  using AckDone = std::function<void(SpoolStatus)>;

  explicit Spool(uv_loop_t* loop);
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  SpoolStatus open(const std::string& dir, const SpoolOptions& options, std::string& error);
  // Full and TooLarge are answered at once (nothing queued, `done` not called). Otherwise
  // `seq` is assigned and `done` runs once the record is written, and with sync = always
  // also fdatasync'ed: that is the durability callback.
  SpoolStatus append(std::string payload, AppendDone done, uint64_t* seq = nullptr);
  void read(size_t max_records, size_t max_bytes, ReadDone done);
  void ack(uint64_t seq, AckDone done = {});
  // SpoolStore::dropOldestSegment on the writer thread; `done` gets the new acked seq.
  void dropOldest(std::function<void(SpoolStatus, uint64_t acked)> done);
  void rewind();
  // Finishes queued work, syncs (unless sync = none), writes the ledger, then runs `done`.
  void close(std::function<void()> done);

  // Loop-side view, refreshed by each completion.
  uint64_t bytesUsed() const { return store_bytes_ + reserved_; }
  // Every seq up to this was delivered when the spool was opened (what recovery skips).
  uint64_t ackedAtOpen() const { return acked_at_open_; }
  uint64_t nextSeq() const { return next_seq_; }
  const SpoolStats& stats() const { return stats_; }
  bool isOpen() const { return open_; }

 private:
  struct Cmd {
    enum Kind { Append, Read, Ack, Rewind, DropOldest } kind = Append;
    uint64_t seq = 0;
    std::string payload;
    size_t max_records = 0;
    size_t max_bytes = 0;
    uint64_t record_bytes = 0;  // an append's framed size, for the loop's byte accounting
    AppendDone append_done;
    ReadDone read_done;
    AckDone ack_done;
    std::function<void(SpoolStatus, uint64_t)> drop_done;
  };
  void run();
  void process(std::vector<Cmd>& batch);
  void flushAppends(std::vector<Cmd*>& appends, std::vector<SpoolStatus>& results);
  void post(std::function<void()> fn);
  void postWithSnapshot(std::function<void()> fn);
  static void onAsync(uv_async_t* handle);

  uv_loop_t* loop_;
  uv_async_t* async_ = nullptr;
  SpoolStore store_;  // touched only by the writer thread once it runs
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Cmd> cmds_;
  std::vector<std::function<void()>> done_;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point last_sync_;
  // Loop thread only.
  bool open_ = false;
  bool closing_ = false;
  uint64_t next_seq_ = 1;
  uint64_t acked_at_open_ = 0;
  uint64_t store_bytes_ = 0;
  uint64_t reserved_ = 0;  // bytes of appends queued but not yet done
  uint64_t limit_ = 0;
  uint32_t max_payload_ = 0;
  SpoolStats stats_;
  std::function<void()> close_done_;
};

}  // namespace ferry
