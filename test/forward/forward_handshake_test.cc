// Unit tests for the forward handshake: digests, encoders and decoders, the server's and
// client's checks, byte-exact replays of the Fluentd captures in shared/vectors/forward,
// and ForwardInput's `[<input>.security]` config (including nested `users` tables).
#include <catch2/catch.hpp>

#include <cctype>
#include <fstream>
#include <functional>
#include <iterator>

#include "src/config_loader.h"
#include "src/forward/forward_handshake.h"
#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace hs = ferry::forward::handshake;
using Catch::Matchers::Contains;

namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// The msgpack objects of one direction of a captured connection, in order.
std::vector<std::string> capture(const std::string& name, const std::string& side) {
  const std::string bytes =
      readFile(std::string(FERRY_SHARED_DIR) + "/vectors/forward/" + name + "." + side + ".bin");
  std::vector<std::string> out;
  std::string_view rest(bytes);
  for (int i = 0; i < 100 && !rest.empty(); ++i) {
    const int64_t n = hs::messageLength(rest, 1u << 20);
    REQUIRE(n > 0);
    out.emplace_back(rest.substr(0, static_cast<size_t>(n)));
    rest.remove_prefix(static_cast<size_t>(n));
  }
  REQUIRE(rest.empty());
  return out;
}

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  return out;
}

std::shared_ptr<const hs::ServerOptions> serverOptions(const std::string& hostname,
                                                       const std::string& key = "vector-key") {
  auto o = std::make_shared<hs::ServerOptions>();
  o->self_hostname = hostname;
  o->shared_key = key;
  return o;
}

// A PING built field by field, each field written as str or bin as asked.
std::string pingWith(const std::vector<std::string>& fields, bool as_bin) {
  std::string out;
  ferry::mp::Writer w(out);
  w.arrayHeader(static_cast<uint32_t>(fields.size()));
  for (size_t i = 0; i < fields.size(); ++i) {
    if (as_bin && i > 0) {
      w.bin(fields[i]);
    } else {
      w.str(fields[i]);
    }
  }
  return out;
}

}  // namespace

TEST_CASE("sha512Hex is lowercase hex over the concatenated parts", "[handshake]") {
  // FIPS 180-2 test vector for "abc", split across parts to check the concatenation.
  const std::string abc =
      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
      "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
  CHECK(hs::sha512Hex({"abc"}) == abc);
  CHECK(hs::sha512Hex({"a", "", "bc"}) == abc);
  CHECK(hs::sha512Hex({}).size() == 128);
  CHECK(hs::toHex(std::string("\x00\xff\x10", 3)) == "00ff10");
  const std::string salt = hs::makeSalt();
  CHECK(salt.size() == 32);
  CHECK(salt.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(hs::makeSalt() != salt);
  CHECK(hs::randomBytes(16).size() == 16);
}

TEST_CASE("messageLength finds one object in a growing buffer", "[handshake]") {
  const std::string pong = hs::failurePong("x");
  CHECK(hs::messageLength(pong) == static_cast<int64_t>(pong.size()));
  CHECK(hs::messageLength(std::string_view(pong).substr(0, 3)) == 0);
  CHECK(hs::messageLength("") == 0);
  CHECK(hs::messageLength(pong + "trailing") == static_cast<int64_t>(pong.size()));
  CHECK(hs::messageLength("\xc1") == -1);  // never msgpack
  // A bin32 announcing 1 MiB: more bytes are wanted until max_size is passed, then -1,
  // so a client never buffers more than kMaxMessageSize.
  const std::string big = std::string("\xc6\x00\x10\x00\x00", 5);
  CHECK(hs::messageLength(big) == 0);
  CHECK(hs::messageLength(big + std::string(hs::kMaxMessageSize, 'x')) == -1);
  CHECK(hs::messageLength(pong, pong.size() - 1) == -1);
}

TEST_CASE("fluentd-in-secure: our client's PING is Fluentd's, byte for byte", "[handshake]") {
  // The capture's client was a script acting like Fluentd's out_forward; Fluentd v1.16
  // was the server. Same hostname, key and salt must give the same bytes.
  const auto server = capture("fluentd-in-secure", "server");
  const auto client = capture("fluentd-in-secure", "client");
  REQUIRE(server.size() == 3);
  hs::ClientHandshake c({.self_hostname = "vector-client", .shared_key = "vector-key"},
                        "541acd6132b648fc8c617cef0c146959");
  std::string error;
  REQUIRE(c.onHelo(server[0], error));
  CHECK(c.helo().nonce == unhex("c340e57fb378be1abc276a097f313891"));
  CHECK(c.helo().auth == unhex("0fe7e61fd29ec533316c199de5ad43ed"));
  CHECK(c.keepalive());

  hs::Ping ours;
  hs::Ping theirs;
  REQUIRE(hs::parsePing(c.ping(), ours));
  REQUIRE(hs::parsePing(client[0], theirs));
  CHECK(ours.hostname == theirs.hostname);
  CHECK(ours.shared_key_salt == theirs.shared_key_salt);
  CHECK(ours.shared_key_digest == theirs.shared_key_digest);
  CHECK(ours.username == "");
  // HELO carried auth: an empty username's digest is sent, as Fluentd does.
  CHECK(ours.password_digest == theirs.password_digest);
  CHECK(c.ping() == client[0]);

  // Fluentd's PONG passes our client's checks.
  const hs::PongCheck pc = c.checkPong(server[1]);
  INFO(pc.error);
  CHECK(pc.ok);
  CHECK(pc.server_hostname == "fluentd-agg");
}

TEST_CASE("fluentd-in-secure: our server answers as Fluentd did", "[handshake]") {
  const auto server = capture("fluentd-in-secure", "server");
  const auto client = capture("fluentd-in-secure", "client");
  hs::Helo helo;
  REQUIRE(hs::parseHelo(server[0], helo));
  hs::ServerHandshake s(serverOptions("fluentd-agg"), helo.nonce, helo.auth);
  // Same nonce and auth: our HELO is Fluentd's bytes (bin8 nonce/auth, keepalive true).
  CHECK(s.heloMessage() == server[0]);
  const hs::PingVerdict v = s.verifyPing(client[0]);
  INFO(v.reason);
  REQUIRE(v.ok);
  CHECK(v.client_hostname == "vector-client");
  // PONG digest = sha512(salt + server hostname + nonce + key): Fluentd's exact bytes.
  CHECK(v.pong == server[1]);
}

TEST_CASE("fluentd-in-secure-wrongkey: the failure PONG is Fluentd's", "[handshake]") {
  const auto server = capture("fluentd-in-secure-wrongkey", "server");
  const auto client = capture("fluentd-in-secure-wrongkey", "client");
  REQUIRE(server.size() == 2);
  hs::Helo helo;
  REQUIRE(hs::parseHelo(server[0], helo));
  hs::ServerHandshake s(serverOptions("fluentd-agg"), helo.nonce, helo.auth);
  const hs::PingVerdict v = s.verifyPing(client[0]);
  CHECK_FALSE(v.ok);
  CHECK(v.reason == "shared_key mismatch");
  CHECK(v.pong == server[1]);  // ["PONG", false, "shared_key mismatch", "", ""]
  CHECK(hs::failurePong(hs::kReasonSharedKeyMismatch) == server[1]);

  // What a client makes of it: the server's reason, reported.
  hs::ClientHandshake c({.self_hostname = "vector-client", .shared_key = "wrong-key"});
  std::string error;
  REQUIRE(c.onHelo(server[0], error));
  const hs::PongCheck pc = c.checkPong(server[1]);
  CHECK_FALSE(pc.ok);
  CHECK(pc.rejected_by_server);
  CHECK(pc.server_reason == "shared_key mismatch");
  CHECK(pc.error == "authentication failed: shared_key mismatch");
}

TEST_CASE("fluentd-out-secure: Fluentd's PING is accepted by our server", "[handshake]") {
  for (const std::string name : {"fluentd-out-secure", "fluentd-out-heartbeat-secure"}) {
    INFO(name);
    const auto server = capture(name, "server");
    const auto client = capture(name, "client");
    hs::Helo helo;
    REQUIRE(hs::parseHelo(server[0], helo));
    hs::ServerHandshake s(serverOptions("capture-server"), helo.nonce, helo.auth);
    CHECK(s.heloMessage() == server[0]);
    const hs::PingVerdict v = s.verifyPing(client[0]);
    INFO(v.reason);
    REQUIRE(v.ok);
    CHECK(v.client_hostname == "fluentd-fwd");
    CHECK(v.username == "");
    CHECK(v.pong == server[1]);  // the capture server's PONG, same formula

    // Another connection's nonce: the same PING is a replay and fails.
    hs::ServerHandshake fresh(serverOptions("capture-server"));
    CHECK(fresh.verifyPing(client[0]).reason == "shared_key mismatch");
    // Our client, given Fluentd's fixed salt, sends Fluentd's PING.
    hs::ClientHandshake c({.self_hostname = "fluentd-fwd", .shared_key = "vector-key"},
                          "6af26759c3bf45aee184081c3a5ad247");
    std::string error;
    REQUIRE(c.onHelo(server[0], error));
    CHECK(c.ping() == client[0]);
    CHECK(c.checkPong(server[1]).ok);
  }
}

TEST_CASE("server: HELO shape with and without user auth", "[handshake]") {
  hs::ServerHandshake plain(serverOptions("agg"));
  CHECK(plain.helo().nonce.size() == 16);
  CHECK(plain.helo().auth.empty());  // no user auth: auth "" (SPEC-v1)
  hs::Helo back;
  REQUIRE(hs::parseHelo(plain.heloMessage(), back));
  CHECK(back.nonce == plain.helo().nonce);
  CHECK(back.keepalive);
  // bin8(16) nonce right after the "nonce" key, bin8(0) auth.
  const std::string m = plain.heloMessage();
  CHECK(m.substr(0, 14) == std::string("\x92\xa4HELO\x83\xa5nonce\xc4\x10", 14));
  CHECK(m.find(std::string("\xa4"
                           "auth\xc4\x00",
                           7)) != std::string::npos);

  auto o = std::make_shared<hs::ServerOptions>(*serverOptions("agg"));
  o->user_auth = true;
  o->keepalive = false;
  hs::ServerHandshake withAuth(o);
  CHECK(withAuth.helo().auth.size() == 16);
  CHECK(withAuth.helo().nonce != plain.helo().nonce);
  REQUIRE(hs::parseHelo(withAuth.heloMessage(), back));
  CHECK_FALSE(back.keepalive);
}

TEST_CASE("server: PING fields may be str or bin; anything else is invalid", "[handshake]") {
  auto o = serverOptions("agg");
  hs::ServerHandshake s(o, "0123456789abcdef", "");
  const std::string digest =
      hs::sharedKeyDigest("salt", "client", "0123456789abcdef", "vector-key");
  const std::vector<std::string> fields = {"PING", "client", "salt", digest, "", ""};
  CHECK(s.verifyPing(pingWith(fields, false)).ok);
  CHECK(s.verifyPing(pingWith(fields, true)).ok);  // every field after "PING" a bin

  CHECK(s.verifyPing(pingWith({"PING", "client", "salt", digest, ""}, false)).reason ==
        "invalid ping message");  // 5 elements
  CHECK(s.verifyPing(pingWith({"PING", "client", "salt", digest, "", "", ""}, false)).reason ==
        "invalid ping message");  // 7 elements
  CHECK(s.verifyPing(pingWith({"PONG", "client", "salt", digest, "", ""}, false)).reason ==
        "invalid ping message");
  std::string int_field;
  ferry::mp::Writer w(int_field);
  w.arrayHeader(6);
  w.str("PING");
  w.integer(7);  // hostname not a string
  for (int i = 0; i < 4; ++i)
    w.str("");
  const hs::PingVerdict bad = s.verifyPing(int_field);
  CHECK(bad.reason == "invalid ping message");
  CHECK(bad.pong == hs::failurePong("invalid ping message"));
  // A data frame, a nil heartbeat, garbage: all invalid pings.
  CHECK_FALSE(s.verifyPing(std::string("\x93\xa1t\x90\x80", 5)).ok);
  CHECK_FALSE(s.verifyPing(std::string("\xc0", 1)).ok);
  CHECK_FALSE(s.verifyPing("").ok);
  // Wrong digest, digest of another case: mismatch.
  std::string upper = digest;
  for (char& ch : upper)
    ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  CHECK(s.verifyPing(pingWith({"PING", "client", "salt", upper, "", ""}, false)).reason ==
        "shared_key mismatch");
  CHECK(s.verifyPing(pingWith({"PING", "other", "salt", digest, "", ""}, false)).reason ==
        "shared_key mismatch");
}

TEST_CASE("server: user auth and anonymous sources", "[handshake]") {
  auto o = std::make_shared<hs::ServerOptions>();
  o->self_hostname = "agg";
  o->shared_key = "k";
  o->user_auth = true;
  o->users = {{"alice", "wonderland"}, {"bob", "builder"}};
  hs::ServerHandshake s(o);
  auto pingFor = [&](const std::string& user, const std::string& password) {
    hs::ClientHandshake c(
        {.self_hostname = "fwd", .shared_key = "k", .username = user, .password = password});
    std::string error;
    REQUIRE(c.onHelo(s.heloMessage(), error));
    return std::make_pair(c.ping(), c);
  };
  {
    auto [ping, c] = pingFor("bob", "builder");
    const hs::PingVerdict v = s.verifyPing(ping);
    REQUIRE(v.ok);
    CHECK(v.username == "bob");
    CHECK(c.checkPong(v.pong).ok);
  }
  CHECK(s.verifyPing(pingFor("bob", "wonderland").first).reason == "username/password mismatch");
  CHECK(s.verifyPing(pingFor("carol", "x").first).reason == "username/password mismatch");
  CHECK(s.verifyPing(pingFor("", "").first).reason == "username/password mismatch");
  // The key is checked before the user, as in Fluentd.
  {
    hs::ClientHandshake c({.self_hostname = "fwd",
                           .shared_key = "wrong",
                           .username = "alice",
                           .password = "wonderland"});
    std::string error;
    REQUIRE(c.onHelo(s.heloMessage(), error));
    CHECK(s.verifyPing(c.ping()).reason == "shared_key mismatch");
  }

  auto closed = std::make_shared<hs::ServerOptions>(*o);
  closed->allow_anonymous_source = false;
  hs::ServerHandshake strict(closed);
  hs::ClientHandshake c(
      {.self_hostname = "fwd", .shared_key = "k", .username = "alice", .password = "wonderland"});
  std::string error;
  REQUIRE(c.onHelo(strict.heloMessage(), error));
  CHECK(strict.verifyPing(c.ping(), false, "192.0.2.7").reason ==
        "anonymous source host '192.0.2.7' denied");
  CHECK(strict.verifyPing(c.ping(), true, "192.0.2.7").ok);
}

TEST_CASE("client: HELO as Fluent Bit sends it (str nonce, no keepalive)", "[handshake]") {
  std::string helo;
  ferry::mp::Writer w(helo);
  w.arrayHeader(2);
  w.str("HELO");
  w.mapHeader(2);
  w.str("nonce");
  w.str(
      std::string("\xff\x00\xfe\x01"
                  "abcdefghijkl",
                  16));  // raw bytes, not UTF-8
  w.str("auth");
  w.str(
      std::string("\x80\x81\x82\x83"
                  "mnopqrstuvwx",
                  16));
  hs::ClientHandshake c({.self_hostname = "fwd", .shared_key = "k"}, "fixed-salt");
  std::string error;
  REQUIRE(c.onHelo(helo, error));
  CHECK(c.helo().nonce.size() == 16);
  CHECK(c.keepalive());  // absent means true
  // Every PING field is a str, even though nonce and auth came as raw bytes.
  const std::string ping = c.ping();
  ferry::mp::Reader r(ping);
  ferry::mp::Value v;
  REQUIRE(r.next(v));
  REQUIRE(v.type == ferry::mp::Type::Array);
  REQUIRE(v.len == 6);
  for (int i = 0; i < 6; ++i) {
    REQUIRE(r.next(v));
    CHECK(v.type == ferry::mp::Type::Str);
  }
  hs::Ping p;
  REQUIRE(hs::parsePing(ping, p));
  CHECK(p.shared_key_digest == hs::sharedKeyDigest("fixed-salt", "fwd", c.helo().nonce, "k"));
  CHECK(p.password_digest == hs::passwordDigest(c.helo().auth, "", ""));

  // Fluentd's client rule: no auth in the HELO, so username and password digest are "".
  hs::ServerHandshake s(serverOptions("agg", "k"));
  REQUIRE(c.onHelo(s.heloMessage(), error));
  REQUIRE(hs::parsePing(c.ping(), p));
  CHECK(p.username.empty());
  CHECK(p.password_digest.empty());
}

TEST_CASE("client: bad HELOs are refused with a reason", "[handshake]") {
  hs::ClientHandshake c({.self_hostname = "fwd", .shared_key = "k"});
  std::string error;
  auto helo = [](const std::function<void(ferry::mp::Writer&)>& body) {
    std::string out;
    ferry::mp::Writer w(out);
    body(w);
    return out;
  };
  CHECK_FALSE(c.onHelo(hs::failurePong("x"), error));
  CHECK_THAT(error, Contains("not a HELO"));
  CHECK_FALSE(c.onHelo(helo([](auto& w) {
                         w.arrayHeader(2);
                         w.str("HELO");
                         w.mapHeader(0);
                       }),
                       error));
  CHECK(error == "HELO has no nonce");
  CHECK_FALSE(c.onHelo(helo([](auto& w) {
                         w.arrayHeader(2);
                         w.str("HELO");
                         w.mapHeader(1);
                         w.str("nonce");
                         w.integer(5);
                       }),
                       error));
  CHECK(error == "HELO nonce is not str or bin");
  CHECK_FALSE(c.onHelo(helo([](auto& w) {
                         w.arrayHeader(2);
                         w.str("HELO");
                         w.integer(1);
                       }),
                       error));
  // Unknown keys are skipped, nested or not.
  CHECK(c.onHelo(helo([](auto& w) {
                   w.arrayHeader(2);
                   w.str("HELO");
                   w.mapHeader(2);
                   w.str("future");
                   w.mapHeader(1);
                   w.str("a");
                   w.arrayHeader(1);
                   w.nil();
                   w.str("nonce");
                   w.bin("0123456789abcdef");
                 }),
                 error));
  CHECK(c.checkPong(hs::failurePong("x")).rejected_by_server);
  hs::ClientHandshake fresh({.self_hostname = "fwd", .shared_key = "k"});
  CHECK(fresh.checkPong(hs::failurePong("x")).error == "PONG before HELO");
}

TEST_CASE("client: PONG checks (hostname, digest, shape)", "[handshake]") {
  auto o = serverOptions("agg", "k");
  hs::ServerHandshake s(o);
  hs::ClientHandshake c({.self_hostname = "fwd", .shared_key = "k"});
  std::string error;
  REQUIRE(c.onHelo(s.heloMessage(), error));
  const hs::PingVerdict v = s.verifyPing(c.ping());
  REQUIRE(v.ok);
  REQUIRE(c.checkPong(v.pong).ok);

  hs::Pong p;
  REQUIRE(hs::parsePong(v.pong, p));
  hs::Pong wrong = p;
  wrong.digest[0] = wrong.digest[0] == 'a' ? 'b' : 'a';
  CHECK(c.checkPong(hs::encodePong(wrong)).error == "shared key mismatch");
  // A server calling itself by our name: Fluentd's configuration error.
  auto same = serverOptions("fwd", "k");
  hs::ServerHandshake mirror(same);
  REQUIRE(c.onHelo(mirror.heloMessage(), error));
  const hs::PingVerdict mv = mirror.verifyPing(c.ping());
  REQUIRE(mv.ok);
  CHECK(c.checkPong(mv.pong).error ==
        "same hostname between input and output: invalid configuration");
  // Shape: 4 elements, a non-bool auth result.
  std::string four;
  ferry::mp::Writer w(four);
  w.arrayHeader(4);
  w.str("PONG");
  w.boolean(true);
  w.str("");
  w.str("agg");
  CHECK(c.checkPong(four).error == "invalid format for PONG message");
  std::string notbool;
  ferry::mp::Writer w2(notbool);
  w2.arrayHeader(5);
  w2.str("PONG");
  w2.integer(1);
  w2.str("");
  w2.str("agg");
  w2.str("");
  CHECK_FALSE(c.checkPong(notbool).ok);
}

// ---- ForwardInput's [<input>.security] config ----

namespace {

const ferry::PluginRegistry& registry() {
  static ferry::PluginRegistry r = [] {
    ferry::PluginRegistry reg;
    ferry::registerBuiltinPlugins(reg);
    return reg;
  }();
  return r;
}

ferry::Config load(const std::string& security) {
  return ferry::loadConfigString("[in]\ntype = \"ForwardInput\"\naddress = \"127.0.0.1:24224\"\n" +
                                     security + "\n[out]\ntype = \"NullOutput\"\nmatch = \"**\"\n",
                                 "sec.toml", registry());
}

std::string errorOf(const std::string& security) {
  try {
    load(security);
  } catch (const ferry::ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError for:\n" << security);
  return "";
}

}  // namespace

TEST_CASE("config: security sub-table with users as [[...]] or inline", "[handshake][config]") {
  const ferry::Config a = load(R"(
[in.security]
self_hostname = "agg"
shared_key = "s3cret"
user_auth = true

[[in.security.users]]
username = "alice"
password = "wonderland"

[[in.security.users]]
username = "bob"
password = "builder"
)");
  const ferry::OptionValue& sec = a.inputs.at(0).get("security");
  REQUIRE(sec.is_set);
  CHECK(sec.table.at("self_hostname") == "agg");
  CHECK(sec.table.at("user_auth") == "true");
  REQUIRE(sec.tables.size() == 2);
  CHECK(sec.list == std::vector<std::string>{"users", "users"});
  CHECK(sec.tables[0].at("username") == "alice");
  CHECK(sec.tables[1].at("password") == "builder");
  REQUIRE(sec.table_lines.size() == 2);
  CHECK(sec.table_lines[0] > sec.line);
  // --check-config prints neither the key nor the passwords.
  const std::string described = ferry::describeConfig(a);
  CHECK_THAT(described, Contains("username = alice"));
  CHECK_THAT(described, !Contains("s3cret") && !Contains("wonderland"));

  const ferry::Config b = load(R"(
[in.security]
self_hostname = "agg"
shared_key = "k"
user_auth = true
users = [{username = "carol", password = "p"}]
)");
  REQUIRE(b.inputs.at(0).get("security").tables.size() == 1);
  CHECK_FALSE(load("").inputs.at(0).has("security"));
}

TEST_CASE("config: security errors name file, line and key", "[handshake][config]") {
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"agg\"\n"),
             Contains("sec.toml:4") && Contains("in.security.shared_key") && Contains("required"));
  CHECK_THAT(errorOf("[in.security]\nshared_key = \"k\"\n"),
             Contains("in.security.self_hostname") && Contains("required"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"\"\n"),
             Contains("in.security.shared_key") && Contains("empty"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\nshared = 1\n"),
             Contains("in.security.shared") && Contains("unknown key"));
  CHECK_THAT(
      errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\nuser_auth = \"yes\"\n"),
      Contains("in.security.user_auth") && Contains("true or false"));
  CHECK_THAT(
      errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\nuser_auth = true\n"),
      Contains("in.security.users") && Contains("user_auth"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\n"
                     "users = [{username = \"u\", password = \"p\"}]\n"),
             Contains("in.security.users") && Contains("user_auth = true"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\n"
                     "user_auth = true\n\n[[in.security.users]]\nusername = \"u\"\n"),
             Contains("sec.toml:9") && Contains("in.security.users[0].password"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\n"
                     "user_auth = true\nusers = [{username = \"u\", password = \"p\", x = 1}]\n"),
             Contains("in.security.users[0].x") && Contains("unknown key"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\n"
                     "allow_anonymous_source = false\n"),
             Contains("in.security.allow_anonymous_source"));
  CHECK_THAT(errorOf("[in.security]\nself_hostname = \"a\"\nshared_key = \"k\"\n"
                     "users = [\"alice\"]\n"),
             Contains("in.security.users") && Contains("array of tables"));
  CHECK_THAT(errorOf("security = \"on\"\n"), Contains("in.security") && Contains("table"));
}
