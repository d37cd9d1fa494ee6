// Spool: the record and ledger codecs, then SpoolStore over real temp directories (round
// trips, segment deletion, torn tails at every offset, flipped bytes, size cap, ledger damage,
// ENOSPC), then the loop-facing Spool with each sync policy.
#include <catch2/catch.hpp>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include <uv.h>

#include "src/spool.h"
#include "src/spool_segment.h"

namespace fs = std::filesystem;
using ferry::SpoolOptions;
using ferry::SpoolRecord;
using ferry::SpoolStatus;
using ferry::SpoolStore;
using ferry::SpoolSync;

namespace {

// A fresh directory under /tmp, removed with everything in it at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/ferry-spool-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    REQUIRE(p != nullptr);
    path = p;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string sub(const std::string& name) const { return path + "/" + name; }
};

std::string payloadFor(uint64_t i, size_t size = 100) {
  std::string s = "record-" + std::to_string(i) + ":";
  while (s.size() < size)
    s.push_back(static_cast<char>('a' + (s.size() + i) % 26));
  return s;
}

SpoolOptions smallOptions() {
  SpoolOptions o;
  o.segment_size = 1024;  // about 8 records of 100 bytes per segment
  o.total_limit_size = 1 << 20;
  o.sync = SpoolSync::None;
  return o;
}

std::vector<std::string> segmentFiles(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<SpoolRecord> readAll(SpoolStore& s) {
  std::vector<SpoolRecord> out;
  for (;;) {
    const size_t before = out.size();
    REQUIRE(s.read(3, 1 << 20, out) == SpoolStatus::Ok);
    if (out.size() == before) return out;
  }
}

std::string fileBytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}

void writeBytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("spool codec: records round-trip and the scan rejects damage", "[spool]") {
  std::string buf;
  ferry::spool::encodeRecord(7, "hello", buf);
  ferry::spool::encodeRecord(9, "", buf);
  REQUIRE(buf.size() == 2 * ferry::spool::kRecordHeaderSize + 5);
  auto r = ferry::spool::scanRecords(buf, 1000, 0);
  REQUIRE(r.records.size() == 2);
  CHECK(r.records[0].seq == 7);
  CHECK(buf.substr(r.records[0].offset + ferry::spool::kRecordHeaderSize, 5) == "hello");
  CHECK(r.records[1].seq == 9);
  CHECK_FALSE(r.torn_tail);
  CHECK(r.corrupt_spans == 0);

  // Seqs must increase: a record not after `after_seq` is damage, not data.
  r = ferry::spool::scanRecords(buf, 1000, 8);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].seq == 9);
  CHECK(r.corrupt_spans == 1);

  // A length over the limit is damage even with a valid CRC.
  r = ferry::spool::scanRecords(buf, 4, 0);
  REQUIRE(r.records.size() == 1);
  CHECK(r.records[0].seq == 9);
}

TEST_CASE("spool codec: ledger and segment names", "[spool]") {
  const std::string l = ferry::spool::encodeLedger({41, 50});
  REQUIRE(l.size() == ferry::spool::kLedgerSize);
  auto d = ferry::spool::decodeLedger(l);
  REQUIRE(d);
  CHECK(d->acked_seq == 41);
  CHECK(d->next_seq == 50);
  for (size_t i = 0; i < l.size(); ++i) {
    std::string bad = l;
    bad[i] ^= 0x10;
    CHECK_FALSE(ferry::spool::decodeLedger(bad));
  }
  CHECK_FALSE(ferry::spool::decodeLedger(l.substr(0, 31)));
  CHECK(ferry::spool::segmentName(42) == "00000000000000000042.seg");
  CHECK(ferry::spool::parseSegmentName("00000000000000000042.seg") == 42u);
  CHECK_FALSE(ferry::spool::parseSegmentName("0000000000000000042.seg"));
  CHECK_FALSE(ferry::spool::parseSegmentName("0000000000000000004x.seg"));
  CHECK_FALSE(ferry::spool::parseSegmentName("ledger"));
}

TEST_CASE("spool: append, read and ack across segments and a reopen", "[spool]") {
  TempDir t;
  const std::string dir = t.sub("out");
  std::string err;
  {
    SpoolStore s;
    REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
    for (uint64_t i = 1; i <= 30; ++i) {
      uint64_t seq = 0;
      REQUIRE(s.append(payloadFor(i), 0, &seq) == SpoolStatus::Ok);
      REQUIRE(seq == i);
    }
    CHECK(s.segmentCount() >= 3);
    std::vector<SpoolRecord> got = readAll(s);
    REQUIRE(got.size() == 30);
    for (uint64_t i = 1; i <= 30; ++i) {
      CHECK(got[i - 1].seq == i);
      CHECK(got[i - 1].payload == payloadFor(i));
    }
    // The read cursor is not the ack: nothing acked yet, a rewind replays everything.
    s.rewind();
    CHECK(readAll(s).size() == 30);
    REQUIRE(s.ack(12) == SpoolStatus::Ok);
    s.close();
  }
  SpoolStore s;
  REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  CHECK(s.stats().recovered_records == 18);
  CHECK(s.stats().corrupt_records == 0);
  CHECK(s.stats().torn_tails == 0);
  CHECK(s.ackedSeq() == 12);
  std::vector<SpoolRecord> got = readAll(s);
  REQUIRE(got.size() == 18);
  CHECK(got.front().seq == 13);
  CHECK(got.back().payload == payloadFor(30));
  // Appends continue the seqs.
  uint64_t seq = 0;
  REQUIRE(s.append("after reopen", 0, &seq) == SpoolStatus::Ok);
  CHECK(seq == 31);
  got.clear();
  REQUIRE(s.read(10, 1 << 20, got) == SpoolStatus::Ok);
  REQUIRE(got.size() == 1);
  CHECK(got[0].payload == "after reopen");
}

TEST_CASE("spool: the read byte limit returns at least one record and resumes after it",
          "[spool]") {
  TempDir t;
  std::string err;
  SpoolStore s;
  REQUIRE(s.open(t.sub("out"), smallOptions(), err) == SpoolStatus::Ok);
  for (uint64_t i = 1; i <= 5; ++i)
    REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
  std::vector<SpoolRecord> got;
  REQUIRE(s.read(100, 1, got) == SpoolStatus::Ok);
  REQUIRE(got.size() == 1);
  REQUIRE(s.read(100, 150, got) == SpoolStatus::Ok);
  REQUIRE(got.size() == 3);
  REQUIRE(s.read(100, 1 << 20, got) == SpoolStatus::Ok);
  REQUIRE(got.size() == 5);
  for (uint64_t i = 1; i <= 5; ++i)
    CHECK(got[i - 1].seq == i);
}

TEST_CASE("spool: a segment is deleted only once all its records are acked", "[spool]") {
  TempDir t;
  const std::string dir = t.sub("out");
  std::string err;
  SpoolStore s;
  REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  for (uint64_t i = 1; i <= 20; ++i)
    REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
  const auto files = segmentFiles(dir);
  REQUIRE(files.size() >= 3);
  // The second segment's name is the seq of its first record.
  const uint64_t second = *ferry::spool::parseSegmentName(fs::path(files[1]).filename().string());
  REQUIRE(second > 1);
  const uint64_t before = s.bytesUsed();

  REQUIRE(s.ack(second - 2) == SpoolStatus::Ok);  // all but the first segment's last record
  CHECK(segmentFiles(dir).size() == files.size());
  CHECK(s.bytesUsed() == before);
  REQUIRE(s.ack(second - 1) == SpoolStatus::Ok);
  CHECK(segmentFiles(dir).size() == files.size() - 1);
  CHECK_FALSE(fs::exists(files[0]));
  CHECK(s.bytesUsed() < before);
  CHECK(s.stats().segments_deleted == 1);

  // Everything acked: even the newest segment goes; appends start a new one.
  REQUIRE(s.ack(20) == SpoolStatus::Ok);
  CHECK(segmentFiles(dir).empty());
  CHECK(s.bytesUsed() == 0);
  uint64_t seq = 0;
  REQUIRE(s.append("next", 0, &seq) == SpoolStatus::Ok);
  CHECK(seq == 21);
  std::vector<SpoolRecord> got;
  REQUIRE(s.read(10, 1 << 20, got) == SpoolStatus::Ok);
  REQUIRE(got.size() == 1);
  CHECK(got[0].seq == 21);
  s.close();

  // The ledger keeps seqs increasing although no segment is left from before.
  SpoolStore again;
  REQUIRE(again.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  CHECK(again.nextSeq() == 22);
  CHECK(again.stats().ledger_resets == 0);
}

TEST_CASE("spool: a crash copy replays what was written and not acked", "[spool]") {
  TempDir t;
  std::string err;
  SpoolStore s;
  REQUIRE(s.open(t.sub("live"), smallOptions(), err) == SpoolStatus::Ok);
  for (uint64_t i = 1; i <= 12; ++i)
    REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
  REQUIRE(s.ack(4) == SpoolStatus::Ok);
  // Copy the directory while the spool is still open: what a kill -9 leaves behind.
  fs::copy(t.sub("live"), t.sub("copy"));
  SpoolStore c;
  REQUIRE(c.open(t.sub("copy"), smallOptions(), err) == SpoolStatus::Ok);
  const auto got = readAll(c);
  REQUIRE(got.size() == 8);
  CHECK(got.front().seq == 5);
  CHECK(got.back().seq == 12);
}

TEST_CASE("spool: a torn last record is counted and never replayed, at every cut", "[spool]") {
  TempDir t;
  const std::string base = t.sub("base");
  std::string err;
  {
    SpoolStore s;
    SpoolOptions o = smallOptions();
    o.segment_size = 1 << 16;  // one segment
    REQUIRE(s.open(base, o, err) == SpoolStatus::Ok);
    for (uint64_t i = 1; i <= 5; ++i)
      REQUIRE(s.append(payloadFor(i, 200)) == SpoolStatus::Ok);
    s.close();
  }
  const auto files = segmentFiles(base);
  REQUIRE(files.size() == 1);
  const std::string full = fileBytes(files[0]);
  const size_t rec = ferry::spool::recordSize(200);
  REQUIRE(full.size() == 5 * rec);
  for (size_t cut = full.size() - 64; cut < full.size(); ++cut) {
    INFO("cut at " << cut);
    const std::string dir = t.sub("cut" + std::to_string(cut));
    fs::copy(base, dir);
    writeBytes(segmentFiles(dir)[0], full.substr(0, cut));
    SpoolStore s;
    REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
    CHECK(s.stats().torn_tails == 1);
    CHECK(s.stats().torn_bytes == cut - 4 * rec);
    CHECK(s.stats().recovered_records == 4);
    auto got = readAll(s);
    REQUIRE(got.size() == 4);
    for (uint64_t i = 1; i <= 4; ++i)
      CHECK(got[i - 1].payload == payloadFor(i, 200));
    // The tail was cut away: a new record follows the last valid one and a reopen is clean.
    uint64_t seq = 0;
    REQUIRE(s.append("fresh", 0, &seq) == SpoolStatus::Ok);
    CHECK(seq == 6);  // the ledger's next_seq retires the torn record's seq
    s.close();
    SpoolStore again;
    REQUIRE(again.open(dir, smallOptions(), err) == SpoolStatus::Ok);
    CHECK(again.stats().torn_tails == 0);
    got = readAll(again);
    REQUIRE(got.size() == 5);
    CHECK(got.back().payload == "fresh");
    again.close();
    fs::remove_all(dir);
  }
}

TEST_CASE("spool: flipped bytes in the middle record skip exactly that record", "[spool]") {
  TempDir t;
  const std::string base = t.sub("base");
  std::string err;
  {
    SpoolStore s;
    REQUIRE(s.open(base, smallOptions(), err) == SpoolStatus::Ok);
    for (uint64_t i = 1; i <= 5; ++i)
      REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
    s.close();
  }
  const std::string seg = segmentFiles(base)[0];
  const std::string full = fileBytes(seg);
  const size_t rec = ferry::spool::recordSize(100);
  REQUIRE(full.size() == 5 * rec);
  // Flip one byte at every position of record 3 in turn: magic, length, seq, crc, payload.
  for (size_t at = 2 * rec; at < 3 * rec; ++at) {
    INFO("flipped byte " << at);
    const std::string dir = t.sub("flip");
    fs::copy(base, dir);
    std::string bad = full;
    bad[at] = static_cast<char>(bad[at] ^ 0x5A);
    writeBytes(segmentFiles(dir)[0], bad);
    SpoolStore s;
    REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
    CHECK(s.stats().corrupt_records == 1);
    CHECK(s.stats().corrupt_bytes == rec);
    CHECK(s.stats().torn_tails == 0);
    CHECK(s.stats().recovered_records == 4);
    const auto got = readAll(s);
    REQUIRE(got.size() == 4);
    CHECK(got[0].seq == 1);
    CHECK(got[1].seq == 2);
    CHECK(got[2].seq == 4);
    CHECK(got[3].seq == 5);
    CHECK(got[2].payload == payloadFor(4));
    s.close();
    fs::remove_all(dir);
  }
}

TEST_CASE("spool: crossing total_limit_size returns Full until acks free space", "[spool]") {
  TempDir t;
  std::string err;
  SpoolOptions o = smallOptions();
  o.segment_size = 4 * ferry::spool::recordSize(100);
  o.total_limit_size = 10 * ferry::spool::recordSize(100);
  SpoolStore s;
  REQUIRE(s.open(t.sub("out"), o, err) == SpoolStatus::Ok);
  for (uint64_t i = 1; i <= 10; ++i)
    REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
  CHECK(s.bytesUsed() == o.total_limit_size);
  CHECK(s.append(payloadFor(11)) == SpoolStatus::Full);
  CHECK(s.append("") == SpoolStatus::Full);
  CHECK(s.append(std::string(o.segment_size, 'x')) == SpoolStatus::TooLarge);
  // Acking the first segment (4 records) frees room for exactly 4 more.
  REQUIRE(s.ack(4) == SpoolStatus::Ok);
  for (uint64_t i = 11; i <= 14; ++i)
    REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
  CHECK(s.append(payloadFor(15)) == SpoolStatus::Full);
}

TEST_CASE("spool: a damaged or missing ledger replays from the oldest segment", "[spool]") {
  TempDir t;
  const std::string dir = t.sub("out");
  std::string err;
  {
    SpoolStore s;
    REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
    for (uint64_t i = 1; i <= 6; ++i)
      REQUIRE(s.append(payloadFor(i)) == SpoolStatus::Ok);
    REQUIRE(s.ack(3) == SpoolStatus::Ok);  // same segment: nothing deleted
    s.close();
  }
  const std::string ledger = dir + "/ledger";
  SECTION("damaged") {
    std::string l = fileBytes(ledger);
    REQUIRE(l.size() == ferry::spool::kLedgerSize);
    l[9] ^= 1;
    writeBytes(ledger, l);
  }
  SECTION("truncated") {
    writeBytes(ledger, fileBytes(ledger).substr(0, 10));
  }
  SECTION("missing") {
    fs::remove(ledger);
  }
  SpoolStore s;
  REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  CHECK(s.stats().ledger_resets == 1);
  CHECK(s.ackedSeq() == 0);
  // At-least-once: records 1-3 come again, nothing is lost.
  const auto got = readAll(s);
  REQUIRE(got.size() == 6);
  CHECK(got.front().seq == 1);
  CHECK(s.nextSeq() == 7);
}

TEST_CASE("spool: ENOSPC is a status, leaves no partial record, and recovers", "[spool]") {
  TempDir t;
  const std::string dir = t.sub("out");
  std::string err;
  bool disk_full = false;
  SpoolOptions o = smallOptions();
  // Writes half of what was asked, then fails with ENOSPC while the "disk" is full.
  o.pwrite_hook = [&](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    if (!disk_full) return ::pwrite(fd, buf, n, off);
    if (n > 1) return ::pwrite(fd, buf, n / 2, off);
    errno = ENOSPC;
    return -1;
  };
  SpoolStore s;
  REQUIRE(s.open(dir, o, err) == SpoolStatus::Ok);
  REQUIRE(s.append(payloadFor(1)) == SpoolStatus::Ok);
  disk_full = true;
  CHECK(s.append(payloadFor(2)) == SpoolStatus::DiskFull);
  CHECK(s.append(payloadFor(3)) == SpoolStatus::DiskFull);
  CHECK(s.stats().write_errors == 2);
  CHECK(fs::file_size(segmentFiles(dir)[0]) == ferry::spool::recordSize(100));
  disk_full = false;
  uint64_t seq = 0;
  REQUIRE(s.append(payloadFor(4), 0, &seq) == SpoolStatus::Ok);
  CHECK(seq == 2);  // failed appends do not consume seqs here
  s.close();
  SpoolStore again;
  REQUIRE(again.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  CHECK(again.stats().torn_tails == 0);
  CHECK(again.stats().corrupt_records == 0);
  const auto got = readAll(again);
  REQUIRE(got.size() == 2);
  CHECK(got[1].payload == payloadFor(4));
}

TEST_CASE("spool: recovery of an unreadable tail never yields garbage records", "[spool]") {
  TempDir t;
  const std::string dir = t.sub("out");
  std::string err;
  fs::create_directories(dir);
  std::string bytes;
  ferry::spool::encodeRecord(1, "one", bytes);
  bytes += "FSR1 this is not a record FSR1FSR1";
  ferry::spool::encodeRecord(2, "two", bytes);
  bytes += std::string(10, '\0');
  writeBytes(dir + "/" + ferry::spool::segmentName(1), bytes);
  SpoolStore s;
  REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  CHECK(s.stats().corrupt_records == 1);
  CHECK(s.stats().torn_tails == 1);
  CHECK(s.stats().ledger_resets == 1);  // segments but no ledger
  const auto got = readAll(s);
  REQUIRE(got.size() == 2);
  CHECK(got[0].payload == "one");
  CHECK(got[1].payload == "two");
}

namespace {

// Runs the loop until `done()` or about five seconds passed.
void runUntil(uv_loop_t* loop, const std::function<bool()>& done) {
  for (int i = 0; i < 5000 && !done(); ++i) {
    uv_run(loop, UV_RUN_NOWAIT);
    if (!done()) uv_sleep(1);
  }
  REQUIRE(done());
}

}  // namespace

TEST_CASE("spool: the loop-side Spool under each sync policy", "[spool]") {
  const SpoolSync policy = GENERATE(SpoolSync::Always, SpoolSync::Interval, SpoolSync::None);
  TempDir t;
  const std::string dir = t.sub("out");
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string err;
  {
    ferry::Spool spool(&loop);
    SpoolOptions o = smallOptions();
    o.sync = policy;
    o.sync_interval = std::chrono::milliseconds(5);
    o.total_limit_size = 20 * ferry::spool::recordSize(100);
    REQUIRE(spool.open(dir, o, err) == SpoolStatus::Ok);

    std::vector<uint64_t> durable;
    uint64_t syncs_at_first_callback = 0;
    for (uint64_t i = 1; i <= 20; ++i) {
      uint64_t seq = 0;
      REQUIRE(spool.append(
                  payloadFor(i),
                  [&](uint64_t s, SpoolStatus st) {
                    CHECK(st == SpoolStatus::Ok);
                    if (durable.empty()) syncs_at_first_callback = spool.stats().syncs;
                    durable.push_back(s);
                  },
                  &seq) == SpoolStatus::Ok);
      CHECK(seq == i);
    }
    // The cap counts queued appends too, so Full is answered at once.
    CHECK(spool.append(payloadFor(21), nullptr) == SpoolStatus::Full);
    runUntil(&loop, [&] { return durable.size() == 20; });
    for (uint64_t i = 1; i <= 20; ++i)
      CHECK(durable[i - 1] == i);
    CHECK(spool.stats().appended == 20);
    if (policy == SpoolSync::Always) {
      // The durability callback: the fdatasync ran before the first record was reported.
      CHECK(syncs_at_first_callback >= 1);
    } else if (policy == SpoolSync::Interval) {
      // Idle with unsynced bytes, the writer syncs once the interval is up. An ack round
      // trip refreshes the loop's copy of the counters.
      runUntil(&loop, [&] {
        bool done = false;
        spool.ack(0, [&](SpoolStatus) { done = true; });
        while (!done)
          uv_run(&loop, UV_RUN_ONCE);
        return spool.stats().syncs >= 1;
      });
    } else {
      CHECK(spool.stats().syncs == 0);
    }

    bool read_done = false;
    std::vector<SpoolRecord> got;
    spool.read(8, 1 << 20, [&](SpoolStatus st, std::vector<SpoolRecord> recs) {
      CHECK(st == SpoolStatus::Ok);
      got = std::move(recs);
      read_done = true;
    });
    runUntil(&loop, [&] { return read_done; });
    REQUIRE(got.size() == 8);
    CHECK(got[7].seq == 8);

    bool acked = false;
    spool.ack(8, [&](SpoolStatus st) {
      CHECK(st == SpoolStatus::Ok);
      acked = true;
    });
    runUntil(&loop, [&] { return acked; });
    CHECK(spool.bytesUsed() < o.total_limit_size);
    CHECK(spool.append(payloadFor(21), nullptr) == SpoolStatus::Ok);

    bool closed = false;
    spool.close([&] { closed = true; });
    runUntil(&loop, [&] { return closed; });
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);

  SpoolStore s;
  REQUIRE(s.open(dir, smallOptions(), err) == SpoolStatus::Ok);
  const auto got = readAll(s);
  REQUIRE(got.size() == 13);
  CHECK(got.front().seq == 9);
  CHECK(got.back().seq == 21);
}

TEST_CASE("spool: Spool refuses work when not open and can be destroyed unclosed", "[spool]") {
  TempDir t;
  uv_loop_t loop;
  uv_loop_init(&loop);
  std::string err;
  {
    ferry::Spool closed(&loop);
    CHECK(closed.append("x", nullptr) == SpoolStatus::Closed);
    SpoolStatus st = SpoolStatus::Ok;
    closed.ack(1, [&](SpoolStatus s) { st = s; });
    CHECK(st == SpoolStatus::Closed);
    closed.read(1, 1, [&](SpoolStatus s, std::vector<SpoolRecord>) { st = s; });
    CHECK(st == SpoolStatus::Closed);
  }
  {
    // An error path that drops the spool without close(): the destructor stops the writer
    // and releases the loop handle; what was queued is still written.
    ferry::Spool spool(&loop);
    SpoolOptions o = smallOptions();
    REQUIRE(spool.open(t.sub("out"), o, err) == SpoolStatus::Ok);
    REQUIRE(spool.append("queued", nullptr) == SpoolStatus::Ok);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  REQUIRE(uv_loop_close(&loop) == 0);
  SpoolStore s;
  REQUIRE(s.open(t.sub("out"), smallOptions(), err) == SpoolStatus::Ok);
  const auto got = readAll(s);
  REQUIRE(got.size() == 1);
  CHECK(got[0].payload == "queued");
}
