// Forward protocol handshake: SHA-512 digests through OpenSSL EVP, HELO/PING/PONG
// encoding with our msgpack writer, decoding with the bounds-checked reader, and the
// server's and client's checks in the order Fluentd makes them.
#include "src/forward/forward_handshake.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <stdexcept>

#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace ferry::forward::handshake {
namespace {

void setError(std::string* error, std::string_view what) {
  if (error) error->assign(what);
}

// Reads a str or bin field (handshake strings may be either); `nil_ok` reads nil as "".
bool readText(mp::Reader& r, std::string& out, bool nil_ok = false) {
  mp::Value v;
  if (!r.next(v)) return false;
  if (v.isStrOrBin()) {
    out.assign(v.str());
    return true;
  }
  if (nil_ok && v.type == mp::Type::Nil) {
    out.clear();
    return true;
  }
  return false;
}

// Reads the array header and the leading message name ("HELO", "PING", "PONG").
bool readHead(mp::Reader& r, std::string_view name, uint32_t& count) {
  mp::Value v;
  if (!r.next(v) || v.type != mp::Type::Array || v.len == 0) return false;
  count = v.len;
  mp::Value head;
  return r.next(head) && head.isStrOrBin() && head.str() == name;
}

// Constant-time equality, so a wrong digest takes as long to reject at any position.
bool sameDigest(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

// ---- Building blocks ----

std::string sha512Hex(std::initializer_list<std::string_view> parts) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestInit_ex(ctx, EVP_sha512(), nullptr) == 1;
  for (std::string_view p : parts) {
    if (ok && !p.empty()) ok = EVP_DigestUpdate(ctx, p.data(), p.size()) == 1;
  }
  ok = ok && EVP_DigestFinal_ex(ctx, md, &md_len) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) throw std::runtime_error("SHA-512 failed in OpenSSL");
  return toHex(std::string_view(reinterpret_cast<const char*>(md), md_len));
}

std::string sharedKeyDigest(std::string_view salt, std::string_view hostname,
                            std::string_view nonce, std::string_view shared_key) {
  return sha512Hex({salt, hostname, nonce, shared_key});
}

std::string passwordDigest(std::string_view auth_salt, std::string_view username,
                           std::string_view password) {
  return sha512Hex({auth_salt, username, password});
}

std::string randomBytes(size_t n) {
  std::string out(n, '\0');
  if (n > 0 && RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n)) != 1) {
    throw std::runtime_error("OpenSSL RAND_bytes failed: no random bytes for the handshake");
  }
  return out;
}

std::string toHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

std::string makeSalt() {
  return toHex(randomBytes(16));
}

int64_t messageLength(std::string_view buf, size_t max_size) {
  mp::ObjectScanner scanner;
  const auto* p = reinterpret_cast<const uint8_t*>(buf.data());
  switch (scanner.scan(p, buf.size())) {
    case mp::ObjectScanner::Result::Done:
      return scanner.end() > max_size ? -1 : static_cast<int64_t>(scanner.end());
    case mp::ObjectScanner::Result::NeedMore:
      return buf.size() > max_size ? -1 : 0;
    case mp::ObjectScanner::Result::Invalid:
    case mp::ObjectScanner::Result::TooDeep:
      break;
  }
  return -1;
}

// ---- Encoders ----

std::string encodeHelo(const Helo& h) {
  std::string out;
  mp::Writer w(out);
  w.arrayHeader(2);
  w.str("HELO");
  w.mapHeader(3);
  w.str("nonce");
  w.bin(h.nonce);
  w.str("auth");
  w.bin(h.auth);
  w.str("keepalive");
  w.boolean(h.keepalive);
  return out;
}

std::string encodePing(const Ping& p) {
  std::string out;
  mp::Writer w(out);
  w.arrayHeader(6);
  w.str("PING");
  w.str(p.hostname);
  w.str(p.shared_key_salt);
  w.str(p.shared_key_digest);
  w.str(p.username);
  w.str(p.password_digest);
  return out;
}

std::string encodePong(const Pong& p) {
  std::string out;
  mp::Writer w(out);
  w.arrayHeader(5);
  w.str("PONG");
  w.boolean(p.auth_ok);
  w.str(p.reason);
  w.str(p.hostname);
  w.str(p.digest);
  return out;
}

std::string failurePong(std::string_view reason) {
  return encodePong(Pong{.auth_ok = false, .reason = std::string(reason)});
}

// ---- Decoders ----

bool parseHelo(std::string_view msg, Helo& out, std::string* error) {
  mp::Reader r(msg);
  uint32_t count = 0;
  if (!readHead(r, "HELO", count) || count != 2) {
    setError(error, "not a HELO message ([\"HELO\", {options}])");
    return false;
  }
  mp::Value opts;
  if (!r.next(opts) || (opts.type != mp::Type::Map && opts.type != mp::Type::Nil)) {
    setError(error, "HELO options are not a map");
    return false;
  }
  out = Helo{};
  bool have_nonce = false;
  const uint32_t pairs = opts.type == mp::Type::Map ? opts.len : 0;
  for (uint32_t i = 0; i < pairs; ++i) {
    std::string key;
    if (!readText(r, key)) {
      setError(error, "HELO option key is not a string");
      return false;
    }
    if (key == "nonce") {
      if (!readText(r, out.nonce)) {
        setError(error, "HELO nonce is not str or bin");
        return false;
      }
      have_nonce = true;
    } else if (key == "auth") {
      if (!readText(r, out.auth, /*nil_ok=*/true)) {
        setError(error, "HELO auth is not str or bin");
        return false;
      }
    } else if (key == "keepalive") {
      mp::Value v;
      if (!r.next(v) || v.type != mp::Type::Bool) {
        setError(error, "HELO keepalive is not a boolean");
        return false;
      }
      out.keepalive = v.boolean;
    } else if (!r.skip()) {
      setError(error, "HELO is truncated");
      return false;
    }
  }
  if (!have_nonce || out.nonce.empty()) {
    // A digest over no nonce could be replayed on any connection: refuse it.
    setError(error, "HELO has no nonce");
    return false;
  }
  return true;
}

bool parsePing(std::string_view msg, Ping& out, std::string* error) {
  mp::Reader r(msg);
  uint32_t count = 0;
  if (!readHead(r, "PING", count) || count != 6 || !readText(r, out.hostname) ||
      !readText(r, out.shared_key_salt) || !readText(r, out.shared_key_digest) ||
      !readText(r, out.username) || !readText(r, out.password_digest)) {
    setError(error,
             "not a PING: expected [\"PING\", hostname, salt, digest, username, "
             "password digest], every field a string");
    return false;
  }
  return true;
}

bool parsePong(std::string_view msg, Pong& out, std::string* error) {
  mp::Reader r(msg);
  uint32_t count = 0;
  mp::Value ok;
  if (!readHead(r, "PONG", count) || count != 5 || !r.next(ok) || ok.type != mp::Type::Bool ||
      !readText(r, out.reason, true) || !readText(r, out.hostname, true) ||
      !readText(r, out.digest, true)) {
    setError(error, "invalid format for PONG message");
    return false;
  }
  out.auth_ok = ok.boolean;
  return true;
}

// ---- Server ----

ServerHandshake::ServerHandshake(std::shared_ptr<const ServerOptions> options)
    : ServerHandshake(options, randomBytes(kNonceSize),
                      options->user_auth ? randomBytes(kNonceSize) : std::string()) {}

ServerHandshake::ServerHandshake(std::shared_ptr<const ServerOptions> options, std::string nonce,
                                 std::string auth)
    : options_(std::move(options)) {
  helo_.nonce = std::move(nonce);
  helo_.auth = std::move(auth);
  helo_.keepalive = options_->keepalive;
}

PingVerdict ServerHandshake::verifyPing(std::string_view msg, bool peer_known,
                                        std::string_view peer_address) const {
  PingVerdict v;
  auto fail = [&](std::string reason) {
    v.reason = std::move(reason);
    v.pong = failurePong(v.reason);
    return v;
  };
  Ping ping;
  if (!parsePing(msg, ping)) return fail(std::string(kReasonInvalidPing));
  v.client_hostname = ping.hostname;
  v.username = ping.username;
  const ServerOptions& o = *options_;
  if (!peer_known && !o.allow_anonymous_source) {
    return fail("anonymous source host '" + std::string(peer_address) + "' denied");
  }
  const std::string expected =
      sharedKeyDigest(ping.shared_key_salt, ping.hostname, helo_.nonce, o.shared_key);
  if (!sameDigest(ping.shared_key_digest, expected)) {
    return fail(std::string(kReasonSharedKeyMismatch));
  }
  if (o.user_auth) {
    bool matched = false;
    for (const User& u : o.users) {
      // Every user is tried (no early exit), like Fluentd, so timing does not say which
      // name exists.
      const bool hit =
          sameDigest(ping.password_digest, passwordDigest(helo_.auth, ping.username, u.password));
      matched = matched || (u.username == ping.username && hit);
    }
    if (!matched) return fail(std::string(kReasonUserMismatch));
  }
  v.ok = true;
  v.pong = encodePong(Pong{
      .auth_ok = true,
      .reason = "",
      .hostname = o.self_hostname,
      .digest = sharedKeyDigest(ping.shared_key_salt, o.self_hostname, helo_.nonce, o.shared_key),
  });
  return v;
}

// ---- Client ----

ClientHandshake::ClientHandshake(ClientOptions options, std::string salt)
    : options_(std::move(options)), salt_(salt.empty() ? makeSalt() : std::move(salt)) {}

bool ClientHandshake::onHelo(std::string_view msg, std::string& error) {
  Helo h;
  if (!parseHelo(msg, h, &error)) return false;
  helo_ = std::move(h);
  have_helo_ = true;
  return true;
}

std::string ClientHandshake::ping() const {
  Ping p;
  p.hostname = options_.self_hostname;
  p.shared_key_salt = salt_;
  p.shared_key_digest =
      sharedKeyDigest(salt_, options_.self_hostname, helo_.nonce, options_.shared_key);
  if (!helo_.auth.empty()) {
    p.username = options_.username;
    p.password_digest = passwordDigest(helo_.auth, options_.username, options_.password);
  }
  return encodePing(p);
}

PongCheck ClientHandshake::checkPong(std::string_view msg) const {
  PongCheck c;
  Pong p;
  if (!have_helo_) {
    c.error = "PONG before HELO";
    return c;
  }
  if (!parsePong(msg, p, &c.error)) return c;
  c.server_hostname = p.hostname;
  if (!p.auth_ok) {
    c.rejected_by_server = true;
    c.server_reason = p.reason;
    c.error = "authentication failed: " + p.reason;
    return c;
  }
  if (p.hostname == options_.self_hostname) {
    c.error = "same hostname between input and output: invalid configuration";
    return c;
  }
  const std::string expected = sharedKeyDigest(salt_, p.hostname, helo_.nonce, options_.shared_key);
  if (!sameDigest(p.digest, expected)) {
    c.error = "shared key mismatch";
    return c;
  }
  c.ok = true;
  return c;
}

}  // namespace ferry::forward::handshake
