// Heka message signing (heka.md §2.3): HMAC-MD5/SHA1 over the message body, keyed by
// "<hmac_signer>_<hmac_key_version>". Verifies framing headers for the inputs and builds
// signed headers in the Go client's field order for writers and tests.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "src/heka/heka_framing.h"

namespace ferry::heka {

enum class SignerCheck {
  Unsigned,       // no digest in the header (a signer name alone does not count)
  Verified,       // the digest matches the configured key
  BadDigest,      // known signer, wrong digest (or an unknown hash function)
  UnknownSigner,  // a digest from a signer/version with no configured key
};

// The receiver's keys: Heka's `[<splitter>.signer.<name>_<version>] hmac_key = "..."`.
// Keeps one HMAC context per key and hash, re-used for every message (no allocation per
// verified message), so it is not thread-safe: one set per worker loop.
class HekaSignerSet {
 public:
  HekaSignerSet();
  // `signers`: "<name>_<version>" → hmac_key, as OptionType::Signers holds them. Throws
  // std::invalid_argument for an id that is not <name>_<decimal version>.
  explicit HekaSignerSet(const std::map<std::string, std::string>& signers);
  ~HekaSignerSet();
  HekaSignerSet(HekaSignerSet&&) noexcept;
  HekaSignerSet& operator=(HekaSignerSet&&) noexcept;

  // Checks `header`'s digest against `body`. Verified sets `signer` to the header's
  // hmac_signer (a view into the header), which is what `message_signer` compares.
  SignerCheck verify(const HekaHeader& header, std::string_view body, std::string_view& signer);

  bool empty() const { return keys_.empty(); }
  size_t size() const { return keys_.size(); }

 private:
  struct Key;
  std::vector<std::unique_ptr<Key>> keys_;
};

// True when `id` is "<name>_<version>" with a non-empty name and a version in Heka's
// canonical decimal form (what "%s_%d" prints: no sign, no leading zero, ≤ 2^32-1), the
// only ids a header can ever name.
bool parseSignerId(std::string_view id, std::string_view& name, uint32_t& version);

// The digest of `body` (16 bytes for MD5, 20 for SHA1).
std::string hekaHmac(HmacHash hash, std::string_view key, std::string_view body);

// A signed Header for `body`, encoded as Heka's Go client does (heka.md §2.2): fields
// 1, 3 (only for SHA1), 4, 5 (always, even 0), 6. Throws std::length_error when it
// would not fit the one-byte header length.
std::string hekaSignedHeader(std::string_view body, std::string_view signer, uint32_t version,
                             HmacHash hash, std::string_view key);

// A whole framed record (0x1E, length, header, 0x1F, body) signed as above.
std::string frameSignedHekaRecord(std::string_view body, std::string_view signer, uint32_t version,
                                  HmacHash hash, std::string_view key);

}  // namespace ferry::heka
