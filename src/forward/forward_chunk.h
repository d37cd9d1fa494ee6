// ForwardOutput's unit of delivery: a chunk of [time, record] entries of one tag, sent as
// one PackedForward (or CompressedPackedForward) request and kept until acked. Also the
// pure pieces around it: entry encoding, chunk ids, request framing, ack parsing.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "src/batch.h"

namespace ferry::forward {

// How entry times go on the wire.
enum class TimeFormat {
  EventTime,  // integer or EventTime as received; anything else becomes fixext8 EventTime
  Integer,    // integer seconds (time_as_integer, for v0.12 receivers)
  Metadata,   // the v1.5 [EventTime, {}] form (send_metadata)
};

// Appends the msgpack EventTime (fixext8, ext type 0) for `time_ns`. Times before 1970 or
// past 2106 do not fit its unsigned fields and are clamped.
void appendEventTime(std::string& out, int64_t time_ns);

// Appends one entry `[time, record]`. `time_bytes` is the msgpack time as received (may
// be empty, e.g. for a Heka message): copied as is when `format` allows it (a positive
// integer or an EventTime for EventTime, a positive integer for Integer, a v1.5 array
// for Metadata); otherwise the time is written from `time_ns`. `record` is copied.
void appendEntry(std::string& out, std::string_view time_bytes, int64_t time_ns,
                 std::string_view record, TimeFormat format);

// Standard base64 with padding (RFC 4648 §4).
std::string base64Encode(std::string_view bytes);

// Chunk ids: 16 random bytes in base64 (24 characters), as Fluent Bit and Fluentd (less
// its trailing LF) send them. A seeded PRNG, not a syscall per chunk: the ids must be
// unique, not secret.
class ChunkIdGenerator {
 public:
  ChunkIdGenerator();  // seeded from std::random_device
  explicit ChunkIdGenerator(uint64_t seed);
  std::string next();

 private:
  std::mt19937_64 rng_;
};

// The request around a payload, so the payload itself is written from where it lies
// (uv_write of three buffers) instead of being copied into one request buffer:
//   prefix  = array(3), tag (str), bin header for `payload_size` bytes
//   suffix  = {"size": events[, "chunk": id][, "compressed": "gzip"]}
struct RequestFraming {
  std::string prefix;
  std::string suffix;
};
RequestFraming frameRequest(std::string_view tag, size_t payload_size, uint32_t events,
                            std::string_view chunk_id, bool gzip);

// Where a chunk is in its life.
enum class ChunkState {
  Open,         // taking entries (one open chunk per tag)
  Compressing,  // sealed, being gzipped in the thread pool
  Waiting,      // sealed, in the send queue (possibly waiting for a retry)
  InFlight,     // handed to a connection: written or being written, not acked yet
  Done,         // acked, written without ack, handed to the secondary, or dropped
};

// Delivery mode (ForwardOutput::resolveOnDelivery): one submitted batch's ack share, held
// by every chunk that took some of its events and resolved when the last of them is done:
// accepted if all were delivered, failed if any was given up and not taken by the
// secondary. Destroying it unresolved fails the share (AckShare's rule).
struct ChunkShare {
  AckShare ack;
  uint32_t chunks = 0;  // holders not done yet (chunks, and submit() while it runs)
  bool failed = false;
};
using ChunkSharePtr = std::shared_ptr<ChunkShare>;

// Marks one holder of `share` done (`ok` = its events were delivered); resolves the share
// when it was the last.
void settleShare(ChunkShare& share, bool ok);

struct Chunk {
  uint64_t seq = 0;  // creation order
  std::string tag;
  std::string entries;  // concatenated msgpack entries; emptied once gzipped
  std::string gzipped;  // the gzip payload when compress = "gzip"
  uint32_t events = 0;
  size_t accounted = 0;  // bytes counted against total_limit_size
  std::string id;        // the `chunk` option; empty when no ack is asked for
  RequestFraming framing;
  ChunkState state = ChunkState::Open;
  int64_t created_ms = 0;
  // Retries: failed attempts so far, when the first one failed, when the next may start.
  uint32_t failures = 0;
  int64_t first_failure_ms = -1;
  int64_t next_attempt_ms = 0;
  // Bumped on every hand-over to a connection, so callbacks of an older attempt (a write
  // completing after the connection was dropped) can tell they are stale.
  uint64_t attempt = 0;
  bool written = false;       // this attempt's bytes are all in the kernel
  bool ever_written = false;  // some attempt wrote it: sending again may duplicate
  int64_t written_ms = 0;     // when this attempt's write completed (ack timeout start)
  // Delivery mode only: the shares of the batches whose events this chunk holds (each
  // once, in submit order). Empty otherwise.
  std::vector<ChunkSharePtr> shares;

  // What goes between the framing: the gzip member, or the entries as they are.
  std::string_view payload() const { return gzipped.empty() ? entries : gzipped; }
};
using ChunkPtr = std::shared_ptr<Chunk>;

// A reply the server sent on a data connection.
enum class ReplyKind {
  Ack,          // {"ack": id}
  NegativeAck,  // {} (Vector's answer when its sink rejected the events)
  Helo,         // ["HELO", ...]: the server wants the shared-key handshake
  Invalid,      // anything else: the stream can no longer be trusted
};
struct Reply {
  ReplyKind kind = ReplyKind::Invalid;
  std::string ack;  // the id, for Ack
};
// Interprets one complete msgpack object received from the server.
Reply parseReply(std::string_view object);

// Largest reply object accepted (acks are ~40 bytes; a HELO ~100).
inline constexpr size_t kMaxReplySize = 64 * 1024;

// The position in `in_flight` (oldest first) of the chunk `ack` acknowledges, or -1 when
// none has that id (a mismatch: the connection is out of step and must be dropped).
// Servers answer in request order, so this is almost always 0; any position is
// accepted so a server that answers out of order loses nothing.
int findAcked(const std::deque<ChunkPtr>& in_flight, std::string_view ack);

// Rebuilds a FluentRecord batch over `entries` (a chunk's uncompressed payload), for the
// secondary output. Entries that do not parse are skipped and counted in `invalid`.
BatchPtr batchFromEntries(std::string tag, std::string entries, uint32_t& invalid);

}  // namespace ferry::forward
