// The shared-key handshake of the Fluentd forward protocol (forward.md §1.8): HELO, PING
// and PONG as bytes, their SHA-512 digests, and the checks each side makes. Pure state
// and functions, no I/O: ForwardInput uses the server half, ForwardOutput the client half.
//
// Server, per accepted connection:
//   ServerHandshake hs(options);            // draws a fresh nonce (and auth salt)
//   write(hs.heloMessage());
//   ... read one msgpack object `msg` ...
//   PingVerdict v = hs.verifyPing(msg);
//   write(v.pong);  if (!v.ok) close after the write; else the transport phase begins.
//
// Client, per connection:
//   ClientHandshake hs(options);            // fresh salt (or pass Fluentd's fixed one)
//   ... read one object (messageLength() says when it is complete) ...
//   if (!hs.onHelo(msg, error)) fail;
//   write(hs.ping());
//   ... read one object ...
//   PongCheck c = hs.checkPong(msg);        // !c.ok: c.error says why
//
// Every string field is read as str or bin (Fluentd sends nonce/auth as bin, Fluent
// Bit as str of raw bytes); every PING field is written as str (Fluent Bit's server
// accepts nothing else).
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace ferry::forward::handshake {

// Size of the nonce and of the user-auth salt a server draws, as Fluentd and Fluent Bit.
inline constexpr size_t kNonceSize = 16;
// Largest handshake message either side accepts. A real PING is about 320 bytes; the
// bound stops an unauthenticated peer from making us buffer max_frame_size.
inline constexpr size_t kMaxMessageSize = 64 * 1024;

// The failure reasons Fluentd's server puts in a PONG (clients log them).
inline constexpr std::string_view kReasonInvalidPing = "invalid ping message";
inline constexpr std::string_view kReasonSharedKeyMismatch = "shared_key mismatch";
inline constexpr std::string_view kReasonUserMismatch = "username/password mismatch";

// ---- Building blocks ----

// Lowercase hex of the SHA-512 of the parts concatenated with no separator.
std::string sha512Hex(std::initializer_list<std::string_view> parts);
// The PING's and the PONG's digest: sha512Hex(salt, hostname, nonce, shared_key). The
// PING uses the client's hostname, the PONG the server's, both with the client's salt.
std::string sharedKeyDigest(std::string_view salt, std::string_view hostname,
                            std::string_view nonce, std::string_view shared_key);
// The PING's password digest: sha512Hex(auth_salt, username, password).
std::string passwordDigest(std::string_view auth_salt, std::string_view username,
                           std::string_view password);
// `n` bytes from OpenSSL's CSPRNG. Throws std::runtime_error if it fails.
std::string randomBytes(size_t n);
// Lowercase hex of `bytes`.
std::string toHex(std::string_view bytes);
// A client salt like Fluentd's (SecureRandom.hex(16)): 16 random bytes as 32 hex chars,
// so it is valid UTF-8 for servers that check.
std::string makeSalt();

// Length of the msgpack object that starts `buf`: 0 while more bytes are needed, -1 when
// the bytes are not msgpack or the object would exceed `max_size`. For a client reading
// HELO and PONG from a socket (the server side uses its FrameSplitter).
int64_t messageLength(std::string_view buf, size_t max_size = kMaxMessageSize);

// ---- Messages as values ----

// ["HELO", {"nonce": N, "auth": A, "keepalive": bool}]
struct Helo {
  std::string nonce;      // raw bytes
  std::string auth;       // raw bytes; empty: the server does not authenticate users
  bool keepalive = true;  // absent in Fluent Bit's HELO, which means true
};

// ["PING", hostname, shared_key_salt, shared_key_digest, username, password_digest]
struct Ping {
  std::string hostname;
  std::string shared_key_salt;
  std::string shared_key_digest;
  std::string username;
  std::string password_digest;
};

// ["PONG", auth_ok, reason, hostname, digest]
struct Pong {
  bool auth_ok = false;
  std::string reason;
  std::string hostname;
  std::string digest;
};

// Encoders. HELO: nonce and auth as bin, map keys in Fluentd's order, so given the same
// nonce and auth the bytes equal Fluentd's. PING and PONG: every string a str.
std::string encodeHelo(const Helo& h);
std::string encodePing(const Ping& p);
std::string encodePong(const Pong& p);
// Fluentd's failure PONG: ["PONG", false, reason, "", ""].
std::string failurePong(std::string_view reason);

// Decoders of the first msgpack object in `msg` (bytes after it are ignored). False, with
// a reason in `error` when given, if the shape or a field's type is wrong.
// HELO: a 2-array, "HELO", a map (or nil) whose nonce is required; auth and keepalive
// are optional; unknown keys are ignored.
bool parseHelo(std::string_view msg, Helo& out, std::string* error = nullptr);
// PING: exactly 6 elements, "PING", then five str or bin (Fluentd's rule).
bool parsePing(std::string_view msg, Ping& out, std::string* error = nullptr);
// PONG: exactly 5 elements, "PONG", a bool, then three str or bin (nil reads as "").
bool parsePong(std::string_view msg, Pong& out, std::string* error = nullptr);

// ---- Server side ----

struct User {
  std::string username;
  std::string password;
};

struct ServerOptions {
  std::string self_hostname;  // sent in the PONG
  std::string shared_key;
  bool user_auth = false;  // check username/password against `users`
  // false: refuse peers that match no known client. ferry has no client list yet, so
  // its config rejects false; the check is here for when it has one.
  bool allow_anonymous_source = true;
  std::vector<User> users;
  bool keepalive = true;  // advertised in the HELO
};

// The outcome of a PING, with the PONG to send either way.
struct PingVerdict {
  bool ok = false;
  std::string reason;           // Fluentd's failure text; empty when ok
  std::string client_hostname;  // from the PING, for logs (empty if unparsable)
  std::string username;         // from the PING, for logs
  std::string pong;             // encoded PONG: success, or failurePong(reason)
};

// One connection's server state: the HELO it sent and what a PING must match.
class ServerHandshake {
 public:
  // Draws a fresh nonce, and an auth salt when options->user_auth (otherwise auth is ""
  // and clients send an empty username and password digest).
  explicit ServerHandshake(std::shared_ptr<const ServerOptions> options);
  // Fixed nonce and auth, for tests and for replaying captures.
  ServerHandshake(std::shared_ptr<const ServerOptions> options, std::string nonce,
                  std::string auth);

  const Helo& helo() const { return helo_; }
  std::string heloMessage() const { return encodeHelo(helo_); }

  // Checks a PING as Fluentd's in_forward does, in its order: shape, anonymous source,
  // shared key digest, then (with user_auth) username and password digest. Digests are
  // compared in constant time. `peer_known`: the peer matched a configured client;
  // `peer_address` goes into the anonymous-source reason.
  PingVerdict verifyPing(std::string_view msg, bool peer_known = false,
                         std::string_view peer_address = {}) const;

 private:
  std::shared_ptr<const ServerOptions> options_;
  Helo helo_;
};

// ---- Client side ----

struct ClientOptions {
  std::string self_hostname;  // sent in the PING; must differ from the server's
  std::string shared_key;
  std::string username;  // used only when the HELO carries an auth salt
  std::string password;
};

// The outcome of a PONG.
struct PongCheck {
  bool ok = false;
  // The server said no (auth_ok false): `error` is "authentication failed: <reason>"
  // and `server_reason` the server's own text.
  bool rejected_by_server = false;
  std::string server_reason;
  std::string server_hostname;
  std::string error;  // why not ok, worded like Fluentd's out_forward
};

// One connection's client state.
class ClientHandshake {
 public:
  // `salt` empty: a fresh makeSalt(). Fluentd draws one per plugin instance and reuses it
  // on every connection; a caller wanting that passes the same salt each time.
  explicit ClientHandshake(ClientOptions options, std::string salt = {});

  // Reads the server's HELO. False, with `error`, when it is not a valid HELO.
  bool onHelo(std::string_view msg, std::string& error);
  // The PING for the HELO read by onHelo. Every field a str; username and password
  // digest are "" when the HELO had no auth salt (as Fluentd and Fluent Bit do).
  std::string ping() const;
  // Checks the PONG as Fluentd's out_forward does: shape, auth_ok, a server hostname
  // different from ours ("same hostname between input and output"), then the digest
  // sha512Hex(salt, server_hostname, nonce, shared_key).
  PongCheck checkPong(std::string_view msg) const;

  const Helo& helo() const { return helo_; }
  // Whether the server allows more than one request per connection (HELO keepalive).
  bool keepalive() const { return helo_.keepalive; }
  const std::string& salt() const { return salt_; }

 private:
  ClientOptions options_;
  std::string salt_;
  Helo helo_;
  bool have_helo_ = false;
};

}  // namespace ferry::forward::handshake
