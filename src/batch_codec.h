// The payload of a spool record: one Batch serialized, so an output's undelivered batches
// survive a restart (docs/spool-format.md, "Record payload: a batch"). The spool frames and
// CRC-protects the payload; this codec only has to be exact and safe on any bytes.
//
// Format (integers little-endian, fixed width; "str" = u32 length + that many bytes):
//
//   u8  magic 'B' (0x42)
//   u8  version, 1
//   u8  format: 0 FluentRecord, 1 HekaMessage
//   str tag
//   str source name
//   str source hostname
//   str source payload_key
//   u16 signer count S, then S x str signer name
//   u32 event count N, then N x event:
//       i64 time_ns
//       u16 signer (0 unsigned, k = signer name k - 1; k <= S)
//       str time bytes (FluentRecord: the msgpack time as received; HekaMessage: empty)
//       str record bytes (msgpack map / Heka protobuf Message body, as received)
//
// Only each event's time and record bytes are stored, not the batch's whole (possibly
// shared) buffer. The decoder rejects an unknown magic, version or format, a signer index
// above S, time bytes on a HekaMessage event, any length or count running past the end, and
// trailing bytes; so every accepted payload is exactly what encodeBatch writes for the batch
// it returns. A count is checked against the bytes left before anything is reserved, so
// decoding allocates at most about the payload's size.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "src/batch.h"

namespace ferry {

inline constexpr uint8_t kBatchCodecMagic = 'B';
inline constexpr uint8_t kBatchCodecVersion = 1;

// Appends the encoding of `batch` to `out`. Preconditions: every string is shorter than
// 4 GiB, the events' bytes lie within batch.bytes, and there are at most 65535 signers
// (an event's u16 signer cannot refer to more).
void encodeBatch(const Batch& batch, std::string& out);

// Decodes one payload. On success returns a Batch whose `bytes` is a fresh buffer holding
// the events' time and record bytes (Event offsets point into it), whose format, tag,
// signers, per-event time_ns/signer are as encoded, and whose `source` is a new SourceInfo
// with the encoded name/hostname/payload_key. On malformed input returns nullptr and sets
// `error` to a one-line reason. Never reads out of bounds and allocates at most about
// payload.size() bytes, whatever the input.
BatchPtr decodeBatch(std::string_view payload, std::string& error);

}  // namespace ferry
