// Pure on-disk codecs of the spool (docs/spool-format.md): record framing, the recovery scan
// that validates and resynchronises over a segment's bytes, the ledger, and segment names.
// No I/O here, so recovery is unit-tested and fuzzed on plain buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::spool {

// Record: magic "FSR1" | u32 payload length | u64 seq | u32 crc32c(length, seq, payload) |
// payload. Integers little-endian. The CRC covers the length and the seq too, so a flipped
// header bit is caught like a flipped payload bit.
inline constexpr std::string_view kRecordMagic = "FSR1";
inline constexpr size_t kRecordHeaderSize = 20;

// Appends the framed record to `out`.
void encodeRecord(uint64_t seq, std::string_view payload, std::string& out);

inline size_t recordSize(size_t payload_size) {
  return kRecordHeaderSize + payload_size;
}

struct ScannedRecord {
  uint64_t seq = 0;
  size_t offset = 0;  // of the header, from the start of the scanned buffer
  uint32_t length = 0;
};

struct ScanResult {
  std::vector<ScannedRecord> records;  // CRC-valid, strictly increasing seqs
  size_t valid_end = 0;                // end of the last valid record (0 when none)
  uint32_t corrupt_spans = 0;          // damaged byte ranges followed by a valid record
  uint64_t corrupt_bytes = 0;
  bool torn_tail = false;  // damaged bytes after the last valid record
  uint64_t torn_bytes = 0;
  uint64_t last_seq = 0;  // highest accepted seq, or the min_seq passed in
};

// Scans `data` for records. A candidate is accepted only when its magic, length (at most
// `max_payload`, inside the buffer), CRC and seq (greater than `after_seq` and than every
// record before it, and not UINT64_MAX, which is never written) all check; anything else is damage,
// and the scan resumes at the next magic. Each contiguous damaged range counts as one skipped
// record: the scan cannot know how many records it held. Damage reaching the end of the buffer is a
// torn tail. Stops after `max_records` accepted records (the rest is not examined, valid_end marks
// the stop).
ScanResult scanRecords(std::string_view data, uint32_t max_payload, uint64_t after_seq,
                       size_t max_records = SIZE_MAX);

// Ledger: magic "FSL1" | u32 version (1) | u64 acked_seq | u64 next_seq | u32 crc32c of the
// first 24 bytes | u32 zero. 32 bytes, rewritten in place.
inline constexpr size_t kLedgerSize = 32;

struct Ledger {
  uint64_t acked_seq = 0;  // every record with seq <= acked_seq is delivered
  uint64_t next_seq = 1;   // the seq the writer assigns next
};

std::string encodeLedger(const Ledger& l);
// nullopt for anything but a well-formed, CRC-valid ledger.
std::optional<Ledger> decodeLedger(std::string_view data);

// Segment files are named after the seq of their first record: 20 zero-padded digits + ".seg",
// so a lexical sort is the write order.
std::string segmentName(uint64_t first_seq);
std::optional<uint64_t> parseSegmentName(std::string_view name);

}  // namespace ferry::spool
