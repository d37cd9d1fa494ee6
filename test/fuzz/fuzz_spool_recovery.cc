// libFuzzer target for spool recovery: the input becomes a segment file in a temp directory
// and SpoolStore recovers and reads it. Every record it returns must be found, framed with a
// matching CRC, in the input; the raw scanner's results must stay in bounds and in order.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

#include "src/spool.h"
#include "src/spool_segment.h"

namespace {

// A plain array, not a std::string: the atexit cleanup runs after static destructors.
char g_dir[] = "/tmp/ferry-fuzz-spool-XXXXXX";

std::string tempDir() {
  static const bool made = [] {
    if (!::mkdtemp(g_dir)) std::abort();
    spdlog::set_level(spdlog::level::off);  // damage is logged; keep the fuzzer quiet
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(g_dir, ec);
    });
    return true;
  }();
  (void)made;
  return g_dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  constexpr uint32_t kMaxPayload = 4096;

  const ferry::spool::ScanResult r = ferry::spool::scanRecords(input, kMaxPayload, 0);
  uint64_t last = 0;
  for (const auto& rec : r.records) {
    if (rec.seq <= last || rec.offset + ferry::spool::recordSize(rec.length) > size) std::abort();
    last = rec.seq;
  }
  if (r.valid_end > size) std::abort();

  const std::string dir = tempDir();
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::filesystem::remove(e.path(), ec);
  }
  {
    std::ofstream f(dir + "/" + ferry::spool::segmentName(1), std::ios::binary);
    f.write(input.data(), static_cast<std::streamsize>(input.size()));
  }
  ferry::SpoolOptions o;
  o.segment_size = kMaxPayload + ferry::spool::kRecordHeaderSize;
  o.sync = ferry::SpoolSync::None;
  ferry::SpoolStore store;
  std::string error;
  if (store.open(dir, o, error) != ferry::SpoolStatus::Ok) std::abort();
  std::vector<ferry::SpoolRecord> out;
  for (;;) {
    const size_t before = out.size();
    if (store.read(7, 1 << 16, out) != ferry::SpoolStatus::Ok) std::abort();
    if (out.size() == before) break;
  }
  if (out.size() != r.records.size()) std::abort();
  for (const auto& rec : out) {
    std::string framed;
    ferry::spool::encodeRecord(rec.seq, rec.payload, framed);
    if (input.find(framed) == std::string_view::npos) std::abort();
  }
  // Appending after recovery must work on whatever was left.
  // (Unless the input used up the seqs: then the store refuses rather than wrap.)
  const uint64_t next = store.nextSeq();
  if (store.append("after", 0) != ferry::SpoolStatus::Ok && next != UINT64_MAX) std::abort();
  store.close();
  return 0;
}
