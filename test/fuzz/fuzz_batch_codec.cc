// libFuzzer target for the batch codec (the spool record payload): decodes arbitrary bytes;
// whatever decodes must have its events inside its buffer, re-encode to exactly the input
// (the format has one encoding per batch) and decode again to the same batch.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "src/batch.h"
#include "src/batch_codec.h"

namespace {

void check(bool ok) {
  if (!ok) std::abort();
}

void checkInBounds(const ferry::Batch& b) {
  check(b.bytes != nullptr && b.source != nullptr);
  for (const ferry::Event& e : b.events) {
    check(uint64_t{e.time_off} + e.time_len <= b.bytes->size());
    check(uint64_t{e.record_off} + e.record_len <= b.bytes->size());
    check(e.signer <= b.signers.size());
  }
}

void checkSame(const ferry::Batch& a, const ferry::Batch& b) {
  check(a.format == b.format && a.tag == b.tag && a.signers == b.signers);
  check(a.source->name == b.source->name && a.source->hostname == b.source->hostname &&
        a.source->payload_key == b.source->payload_key);
  check(a.events.size() == b.events.size());
  for (size_t i = 0; i < a.events.size(); ++i) {
    const ferry::Event& x = a.events[i];
    const ferry::Event& y = b.events[i];
    check(x.time_ns == y.time_ns && x.signer == y.signer);
    check(a.time(x) == b.time(y) && a.record(x) == b.record(y));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string error;
  const ferry::BatchPtr batch = ferry::decodeBatch(input, error);
  if (!batch) {
    check(!error.empty());
    return 0;
  }
  checkInBounds(*batch);
  std::string again;
  ferry::encodeBatch(*batch, again);
  check(again == input);
  const ferry::BatchPtr round = ferry::decodeBatch(again, error);
  check(round != nullptr);
  checkInBounds(*round);
  checkSame(*batch, *round);
  return 0;
}
