// libFuzzer target for everything a Heka client's bytes reach: the framing splitter (fed
// in two pieces), header decoding, HMAC verification with a fixed signer set, the
// lenient message check and HekaWireView reads. Built with -DFERRY_FUZZ=ON (clang).
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "src/heka/heka_framing.h"
#include "src/heka/heka_signer.h"
#include "src/heka_view.h"

namespace {

ferry::heka::HekaSignerSet& signers() {
  // The vectors' keys, so signed seeds verify and mutations reach every outcome.
  static ferry::heka::HekaSignerSet set(std::map<std::string, std::string>{
      {"test_0", "4865ey9urgkidls xtb0[7lf9rzcivthkm"},
      {"test_1", "xdd908lfcgikauexdi8elogusridaxoalf"},
  });
  return set;
}

// Reads what the router and the bridge would read, so their paths see mutated bodies.
uint64_t readMessage(std::string_view body) {
  int64_t ts = 0;
  if (!ferry::hekaCheckMessage(body, ts)) return 0;
  ferry::HekaWireView view(body);
  uint64_t sink = static_cast<uint64_t>(ts);
  for (auto v : {ferry::StringVar::Uuid, ferry::StringVar::Type, ferry::StringVar::Logger,
                 ferry::StringVar::Payload, ferry::StringVar::Hostname}) {
    sink += view.stringVar(v).size();
  }
  for (auto v : {ferry::NumberVar::Timestamp, ferry::NumberVar::Severity, ferry::NumberVar::Pid})
    sink += static_cast<uint64_t>(view.numberVar(v));
  ferry::FieldValue fv;
  for (const char* name : {"str", "int", "dbl", "bool_t", "raw", "dup", "filler"}) {
    for (uint32_t occurrence = 0; occurrence < 2; ++occurrence) {
      if (view.field(name, occurrence, 0, fv)) sink += fv.s.size() + static_cast<uint64_t>(fv.i);
      if (view.field(name, occurrence, 1, fv)) sink += fv.s.size();
    }
  }
  return sink + view.uuidBytes().size();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A small limit too, so the oversize path runs on inputs libFuzzer can reach.
  const size_t max = size > 0 && (data[0] & 1) ? 1024 : ferry::heka::kDefaultMaxMessageSize;
  ferry::heka::HekaFramingSplitter splitter(max);
  const size_t cut = size == 0 ? 0 : data[0] % (size + 1);
  const char* bytes = reinterpret_cast<const char*>(data);
  volatile uint64_t sink = 0;
  for (int piece = 0; piece < 2; ++piece) {
    if (piece == 0) {
      splitter.append(bytes, cut);
    } else {
      splitter.append(bytes + cut, size - cut);
    }
    ferry::heka::HekaRecord rec;
    for (int guard = 0; guard < 100000 && splitter.next(rec); ++guard) {
      std::string_view signer;
      const auto check = signers().verify(rec.parsed, rec.body, signer);
      if (check == ferry::heka::SignerCheck::Verified && signer != rec.parsed.signer)
        __builtin_trap();
      sink = sink + readMessage(rec.body);
    }
  }
  splitter.reset();
  if (splitter.buffered() != 0) __builtin_trap();
  return 0;
}
