// HekaSignerSet (verification with re-used OpenSSL EVP_MAC contexts), signer ids, and
// the signed header writer.
#include "src/heka/heka_signer.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/params.h>

#include <stdexcept>

namespace ferry::heka {
namespace {

const char* digestName(HmacHash h) {
  return h == HmacHash::SHA1 ? "SHA1" : "MD5";
}

EVP_MAC* hmacAlgorithm() {
  // Fetched once: EVP_MAC_fetch looks the algorithm up in the provider tables.
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  return mac;
}

void appendVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7F) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}

void appendBytesField(std::string& out, uint32_t field, std::string_view value) {
  appendVarint(out, (field << 3) | 2);
  appendVarint(out, value.size());
  out.append(value);
}

}  // namespace

struct HekaSignerSet::Key {
  std::string name;
  uint32_t version = 0;
  std::string key;
  EVP_MAC_CTX* ctx[2] = {nullptr, nullptr};  // by HmacHash, keyed on first use

  ~Key() {
    for (EVP_MAC_CTX* c : ctx)
      EVP_MAC_CTX_free(c);
  }

  // A context ready for a new message: keyed once, then re-initialised with the same
  // key (EVP_MAC_init with a null key keeps the precomputed pads).
  EVP_MAC_CTX* start(HmacHash h) {
    EVP_MAC_CTX*& c = ctx[static_cast<int>(h)];
    if (c == nullptr) {
      EVP_MAC* mac = hmacAlgorithm();
      if (mac == nullptr) return nullptr;
      c = EVP_MAC_CTX_new(mac);
      if (c == nullptr) return nullptr;
      OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                              const_cast<char*>(digestName(h)), 0),
                             OSSL_PARAM_construct_end()};
      if (EVP_MAC_init(c, reinterpret_cast<const unsigned char*>(key.data()), key.size(), params) !=
          1) {
        EVP_MAC_CTX_free(c);
        c = nullptr;
      }
      return c;
    }
    return EVP_MAC_init(c, nullptr, 0, nullptr) == 1 ? c : nullptr;
  }
};

bool parseSignerId(std::string_view id, std::string_view& name, uint32_t& version) {
  const size_t us = id.rfind('_');
  if (us == std::string_view::npos || us == 0 || us + 1 >= id.size()) return false;
  const std::string_view digits = id.substr(us + 1);
  if (digits.size() > 10 || (digits.size() > 1 && digits[0] == '0')) return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > UINT32_MAX) return false;
  name = id.substr(0, us);
  version = static_cast<uint32_t>(v);
  return true;
}

HekaSignerSet::HekaSignerSet() = default;
HekaSignerSet::~HekaSignerSet() = default;
HekaSignerSet::HekaSignerSet(HekaSignerSet&&) noexcept = default;
HekaSignerSet& HekaSignerSet::operator=(HekaSignerSet&&) noexcept = default;

HekaSignerSet::HekaSignerSet(const std::map<std::string, std::string>& signers) {
  for (const auto& [id, key] : signers) {
    std::string_view name;
    uint32_t version = 0;
    if (!parseSignerId(id, name, version)) {
      throw std::invalid_argument("signer id '" + id +
                                  "' is not <name>_<version> with a decimal version");
    }
    auto k = std::make_unique<Key>();
    k->name = std::string(name);
    k->version = version;
    k->key = key;
    keys_.push_back(std::move(k));
  }
}

SignerCheck HekaSignerSet::verify(const HekaHeader& header, std::string_view body,
                                  std::string_view& signer) {
  // Heka treats a header without a digest as authentic and still copies hmac_signer
  // into the pack (heka.md §2.3): anyone could then claim any signer. Here such a
  // message is unsigned, so `message_signer` routing cannot be spoofed.
  if (!header.has_hmac) return SignerCheck::Unsigned;
  Key* key = nullptr;
  for (auto& k : keys_) {
    if (k->version == header.key_version && k->name == header.signer) {
      key = k.get();
      break;
    }
  }
  if (key == nullptr) return SignerCheck::UnknownSigner;
  if (header.hash_function > static_cast<uint32_t>(HmacHash::SHA1)) return SignerCheck::BadDigest;
  const auto hash = static_cast<HmacHash>(header.hash_function);
  EVP_MAC_CTX* c = key->start(hash);
  unsigned char digest[EVP_MAX_MD_SIZE];
  size_t len = 0;
  if (c == nullptr ||
      EVP_MAC_update(c, reinterpret_cast<const unsigned char*>(body.data()), body.size()) != 1 ||
      EVP_MAC_final(c, digest, &len, sizeof(digest)) != 1) {
    return SignerCheck::BadDigest;
  }
  // The digest length is public (it follows from the hash); only its bytes are compared
  // in constant time.
  if (len != header.hmac.size() || CRYPTO_memcmp(digest, header.hmac.data(), len) != 0) {
    return SignerCheck::BadDigest;
  }
  signer = header.signer;
  return SignerCheck::Verified;
}

std::string hekaHmac(HmacHash hash, std::string_view key, std::string_view body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  const EVP_MD* md = hash == HmacHash::SHA1 ? EVP_sha1() : EVP_md5();
  if (HMAC(md, key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest,
           &len) == nullptr) {
    throw std::runtime_error("HMAC failed");
  }
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string hekaSignedHeader(std::string_view body, std::string_view signer, uint32_t version,
                             HmacHash hash, std::string_view key) {
  std::string out;
  appendVarint(out, (1 << 3) | 0);
  appendVarint(out, body.size());
  // The Go client writes hmac_hash_function only for SHA1 (MD5 is the default).
  if (hash == HmacHash::SHA1) {
    appendVarint(out, (3 << 3) | 0);
    appendVarint(out, static_cast<uint32_t>(hash));
  }
  appendBytesField(out, 4, signer);
  appendVarint(out, (5 << 3) | 0);
  appendVarint(out, version);
  appendBytesField(out, 6, hekaHmac(hash, key, body));
  if (out.size() > kMaxHeaderSize) {
    throw std::length_error("Heka header longer than 255 bytes (signer name too long)");
  }
  return out;
}

std::string frameSignedHekaRecord(std::string_view body, std::string_view signer, uint32_t version,
                                  HmacHash hash, std::string_view key) {
  const std::string header = hekaSignedHeader(body, signer, version, hash, key);
  std::string out;
  out.reserve(header.size() + 3 + body.size());
  out += static_cast<char>(kRecordSeparator);
  out += static_cast<char>(header.size());
  out += header;
  out += static_cast<char>(kUnitSeparator);
  out.append(body);
  return out;
}

}  // namespace ferry::heka
