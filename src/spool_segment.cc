// Record framing, the resynchronising recovery scan and the ledger codec of the spool. The
// scan trusts nothing in the buffer: every length is bounds-checked before use, so any bytes
// (torn writes, bit rot, a fuzzer) give a result and never a read out of range.
#include "src/spool_segment.h"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "src/crc32c.h"

namespace ferry::spool {
namespace {

void putLe(std::string& out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

uint64_t getLe(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

}  // namespace

void encodeRecord(uint64_t seq, std::string_view payload, std::string& out) {
  const size_t start = out.size();
  out.reserve(start + recordSize(payload.size()));
  out.append(kRecordMagic);
  putLe(out, payload.size(), 4);
  putLe(out, seq, 8);
  uint32_t crc = crc32cExtend(0, out.data() + start + 4, 12);
  crc = crc32cExtend(crc, payload.data(), payload.size());
  putLe(out, crc, 4);
  out.append(payload);
}

ScanResult scanRecords(std::string_view data, uint32_t max_payload, uint64_t after_seq,
                       size_t max_records) {
  ScanResult r;
  r.last_seq = after_seq;
  size_t pos = 0;
  size_t damage_start = 0;
  bool in_damage = false;
  const size_t n = data.size();
  while (pos < n && r.records.size() < max_records) {
    bool ok = false;
    uint32_t len = 0;
    uint64_t seq = 0;
    if (n - pos >= kRecordHeaderSize && data.compare(pos, 4, kRecordMagic) == 0) {
      const char* h = data.data() + pos;
      len = static_cast<uint32_t>(getLe(h + 4, 4));
      seq = getLe(h + 8, 8);
      const auto crc = static_cast<uint32_t>(getLe(h + 16, 4));
      if (len <= max_payload && len <= n - pos - kRecordHeaderSize && seq > r.last_seq &&
          seq != UINT64_MAX) {
        uint32_t c = crc32cExtend(0, h + 4, 12);
        c = crc32cExtend(c, h + kRecordHeaderSize, len);
        ok = c == crc;
      }
    }
    if (ok) {
      if (in_damage) {
        ++r.corrupt_spans;
        r.corrupt_bytes += pos - damage_start;
        in_damage = false;
      }
      r.records.push_back({seq, pos, len});
      r.last_seq = seq;
      pos += kRecordHeaderSize + len;
      r.valid_end = pos;
      continue;
    }
    if (!in_damage) {
      in_damage = true;
      damage_start = pos;
    }
    // Resynchronise: the next candidate is the next occurrence of the magic. A record that
    // merely contains the magic in its payload is harmless: its candidate fails the CRC.
    const size_t next = data.find(kRecordMagic, pos + 1);
    pos = next == std::string_view::npos ? n : next;
  }
  if (in_damage) {
    r.torn_tail = true;
    r.torn_bytes = pos - damage_start;
  }
  return r;
}

std::string encodeLedger(const Ledger& l) {
  std::string out = "FSL1";
  putLe(out, 1, 4);
  putLe(out, l.acked_seq, 8);
  putLe(out, l.next_seq, 8);
  putLe(out, crc32cExtend(0, out.data(), out.size()), 4);
  putLe(out, 0, 4);
  return out;
}

std::optional<Ledger> decodeLedger(std::string_view data) {
  if (data.size() != kLedgerSize || data.substr(0, 4) != "FSL1") return std::nullopt;
  if (getLe(data.data() + 4, 4) != 1) return std::nullopt;
  if (getLe(data.data() + 24, 4) != crc32cExtend(0, data.data(), 24)) return std::nullopt;
  if (getLe(data.data() + 28, 4) != 0) return std::nullopt;  // reserved: a future version's
  Ledger l;
  l.acked_seq = getLe(data.data() + 8, 8);
  l.next_seq = getLe(data.data() + 16, 8);
  if (l.next_seq == 0 || l.acked_seq >= l.next_seq) return std::nullopt;
  return l;
}

std::string segmentName(uint64_t first_seq) {
  std::string digits = std::to_string(first_seq);
  return std::string(20 - std::min<size_t>(20, digits.size()), '0') + digits + ".seg";
}

std::optional<uint64_t> parseSegmentName(std::string_view name) {
  if (name.size() != 24 || name.substr(20) != ".seg") return std::nullopt;
  uint64_t v = 0;
  const char* end = name.data() + 20;
  auto [p, ec] = std::from_chars(name.data(), end, v);
  if (ec != std::errc() || p != end || v == 0) return std::nullopt;
  return v;
}

}  // namespace ferry::spool
