// Heka message signing (heka.md §2.3): the spec's signed-header vectors byte for byte,
// verification outcomes (verified, bad key, unknown signer, missing digest = unsigned),
// the allocation-free header decoder, and every captured vector file's HMAC verdict.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>
#include <vector>

#include "src/heka/heka_framing.h"
#include "src/heka/heka_signer.h"

using ferry::heka::frameSignedHekaRecord;
using ferry::heka::HekaFramingSplitter;
using ferry::heka::HekaHeader;
using ferry::heka::HekaRecord;
using ferry::heka::hekaSignedHeader;
using ferry::heka::HekaSignerSet;
using ferry::heka::HmacHash;
using ferry::heka::parseHekaHeader;
using ferry::heka::parseSignerId;
using ferry::heka::SignerCheck;

namespace {

using Keys = std::map<std::string, std::string>;

std::string unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16));
  return out;
}

std::string toHex(std::string_view bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out += d[c >> 4];
    out += d[c & 15];
  }
  return out;
}

// The 62-byte body of heka.md §2.3's record (the test message of splitters_test.go).
const std::string kBody = unhex(
    "0a10901d5627ec494c8fba8e849baaf7a6f610a6978a8fb6c1ae8e131a0968656b6162656e636828063a03302e"
    "3840bfe5014a0a7472696e6b2d78323330");
constexpr char kMd5Header[] = "083e22047465737428013210e850d73c60c06badb303e21b0499b10c";
constexpr char kSha1Header[] =
    "083e18012204746573742801321493fe32c0dd11eeeadd2ccc09861384092885d2b3";

HekaHeader header(const std::string& bytes) {
  HekaHeader h;
  REQUIRE(parseHekaHeader(bytes, h));
  return h;
}

SignerCheck check(HekaSignerSet& set, const std::string& header_bytes, const std::string& body,
                  std::string_view* signer_out = nullptr) {
  std::string_view ignored;
  return set.verify(header(header_bytes), body, signer_out ? *signer_out : ignored);
}

std::string readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The README's receiver keys.
const std::map<std::string, std::string> kVectorKeys = {
    {"test_0", "4865ey9urgkidls xtb0[7lf9rzcivthkm"},
    {"test_1", "xdd908lfcgikauexdi8elogusridaxoalf"},
};

}  // namespace

TEST_CASE("signed headers match heka.md §2.3 byte for byte", "[heka][signer]") {
  REQUIRE(kBody.size() == 62);
  const std::string md5 = hekaSignedHeader(kBody, "test", 1, HmacHash::MD5, "testkey");
  CHECK(md5.size() == 28);
  CHECK(toHex(md5) == kMd5Header);
  const std::string sha1 = hekaSignedHeader(kBody, "test", 1, HmacHash::SHA1, "testkey");
  CHECK(sha1.size() == 34);
  CHECK(toHex(sha1) == kSha1Header);
  CHECK(toHex(ferry::heka::hekaHmac(HmacHash::MD5, "testkey", kBody)) ==
        "e850d73c60c06badb303e21b0499b10c");
  // Version 0 is still written (field 5), as the Go client does.
  const std::string v0 = hekaSignedHeader(kBody, "test", 0, HmacHash::MD5, "testkey");
  CHECK(v0.find(std::string("\x28\x00", 2)) != std::string::npos);

  const std::string record = frameSignedHekaRecord(kBody, "test", 1, HmacHash::SHA1, "testkey");
  CHECK(record == std::string("\x1e\x22", 2) + unhex(kSha1Header) + "\x1f" + kBody);
  CHECK_THROWS_AS(hekaSignedHeader(kBody, std::string(250, 's'), 1, HmacHash::MD5, "k"),
                  std::length_error);
}

TEST_CASE("verification outcomes", "[heka][signer]") {
  const std::string md5 = unhex(kMd5Header);
  const std::string sha1 = unhex(kSha1Header);

  SECTION("the right key verifies MD5 and SHA1, repeatedly (contexts are re-used)") {
    HekaSignerSet set(Keys{{"test_1", "testkey"}});
    for (int round = 0; round < 3; ++round) {
      std::string_view signer;
      CHECK(check(set, md5, kBody, &signer) == SignerCheck::Verified);
      CHECK(signer == "test");
      CHECK(check(set, sha1, kBody, &signer) == SignerCheck::Verified);
      CHECK(signer == "test");
    }
  }
  SECTION("a wrong key, a changed body or a cut digest is a bad digest") {
    HekaSignerSet bad(Keys{{"test_1", "testkey2"}});
    CHECK(check(bad, md5, kBody) == SignerCheck::BadDigest);
    CHECK(check(bad, sha1, kBody) == SignerCheck::BadDigest);
    HekaSignerSet good(Keys{{"test_1", "testkey"}});
    std::string changed = kBody;
    changed[20] ^= 1;
    CHECK(check(good, md5, changed) == SignerCheck::BadDigest);
    // The SHA1 digest presented as MD5 (tag 3 removed): wrong length, so bad.
    const std::string sha1_as_md5 = unhex(kSha1Header).erase(2, 2);
    CHECK(check(good, sha1_as_md5, kBody) == SignerCheck::BadDigest);
    // An empty digest is still a digest (Heka: a non-nil empty hmac fails the compare).
    const std::string empty_hmac = unhex(
        "083e220474657374280132"
        "00");
    CHECK(check(good, empty_hmac, kBody) == SignerCheck::BadDigest);
    // A hash function Heka does not define.
    std::string unknown_hash = sha1;
    REQUIRE(unknown_hash[3] == 0x01);
    unknown_hash[3] = 0x02;
    CHECK(check(good, unknown_hash, kBody) == SignerCheck::BadDigest);
  }
  SECTION("an unknown name or key version is an unknown signer") {
    HekaSignerSet other_version(Keys{{"test_0", "testkey"}});
    CHECK(check(other_version, md5, kBody) == SignerCheck::UnknownSigner);
    HekaSignerSet other_name(Keys{{"tester_1", "testkey"}});
    CHECK(check(other_name, sha1, kBody) == SignerCheck::UnknownSigner);
    HekaSignerSet none;
    CHECK(none.empty());
    CHECK(check(none, md5, kBody) == SignerCheck::UnknownSigner);
  }
  SECTION("a signer name without a digest is unsigned, not signed") {
    // hekad would accept this header as signed by "test" (heka.md §2.3 quirk).
    const std::string no_hmac = unhex("083e2204746573742801");
    HekaSignerSet set(Keys{{"test_1", "testkey"}});
    std::string_view signer = "unchanged";
    CHECK(check(set, no_hmac, kBody, &signer) == SignerCheck::Unsigned);
    CHECK(signer == "unchanged");
    CHECK(check(set, unhex("083e"), kBody) == SignerCheck::Unsigned);
  }
  SECTION("tag 3 written explicitly as MD5 is accepted") {
    const std::string explicit_md5 = unhex("083e1800" + std::string(kMd5Header).substr(4));
    HekaSignerSet set(Keys{{"test_1", "testkey"}});
    CHECK(check(set, explicit_md5, kBody) == SignerCheck::Verified);
  }
  SECTION("an empty key is a key (Go's hmac.New accepts it)") {
    HekaSignerSet set(Keys{{"test_1", ""}});
    const std::string h = hekaSignedHeader(kBody, "test", 1, HmacHash::MD5, "");
    CHECK(check(set, h, kBody) == SignerCheck::Verified);
    CHECK(check(set, md5, kBody) == SignerCheck::BadDigest);
  }
  SECTION("signer names with underscores") {
    HekaSignerSet set(Keys{{"my_app_7", "k"}});
    const std::string h = hekaSignedHeader(kBody, "my_app", 7, HmacHash::SHA1, "k");
    std::string_view signer;
    CHECK(check(set, h, kBody, &signer) == SignerCheck::Verified);
    CHECK(signer == "my_app");
  }
}

TEST_CASE("signer ids", "[heka][signer]") {
  std::string_view name;
  uint32_t version = 99;
  CHECK(parseSignerId("test_0", name, version));
  CHECK((name == "test" && version == 0));
  CHECK(parseSignerId("a_b_4294967295", name, version));
  CHECK((name == "a_b" && version == 4294967295u));
  for (const char* bad :
       {"test", "_1", "test_", "test_01", "test_x", "test_-1", "test_4294967296", "test_1x"}) {
    INFO(bad);
    CHECK_FALSE(parseSignerId(bad, name, version));
  }
  CHECK_THROWS_AS(HekaSignerSet(Keys{{"test_01", "k"}}), std::invalid_argument);
}

TEST_CASE("header decoding", "[heka][signer]") {
  HekaHeader h;
  const std::string sha1 = unhex(kSha1Header);  // the views point into it
  REQUIRE(parseHekaHeader(sha1, h));
  CHECK(h.message_length == 62);
  CHECK(h.hash_function == 1);
  CHECK(h.signer == "test");
  CHECK(h.key_version == 1);
  CHECK(h.has_hmac);
  CHECK(toHex(h.hmac) == "93fe32c0dd11eeeadd2ccc09861384092885d2b3");
  // Tag 2 (message_encoding of Heka <= 0.3) is an unknown field: skipped.
  REQUIRE(parseHekaHeader(unhex("083e1000"), h));
  CHECK(h.message_length == 62);
  CHECK_FALSE(h.has_hmac);
  REQUIRE(parseHekaHeader("", h));
  CHECK(h.message_length == 0);
  // Not headers: a known field with the wrong wire type, tag 0, truncated bytes.
  CHECK_FALSE(parseHekaHeader(unhex("0a01ff"), h));
  CHECK_FALSE(parseHekaHeader(unhex("0008"), h));
  CHECK_FALSE(parseHekaHeader(unhex("083e2205746573"), h));
  CHECK_FALSE(parseHekaHeader(unhex("08"), h));
  CHECK_FALSE(parseHekaHeader(unhex("083e0c"), h));  // end group without a start
}

TEST_CASE("splitter views, reset, and the vector files' HMAC verdicts", "[heka][signer]") {
  SECTION("next(HekaRecord) and reset()") {
    const std::string rec = frameSignedHekaRecord(kBody, "test", 1, HmacHash::MD5, "testkey");
    HekaFramingSplitter sp;
    sp.append(rec.data(), rec.size());
    sp.append(rec.data(), 10);  // the start of a second record
    HekaRecord r;
    REQUIRE(sp.next(r));
    CHECK(r.body == kBody);
    CHECK(toHex(r.header) == kMd5Header);
    CHECK(r.parsed.signer == "test");
    CHECK_FALSE(sp.next(r));
    CHECK(sp.buffered() == 10);
    sp.reset();
    CHECK(sp.buffered() == 0);
    CHECK(sp.skippedBytes() == 10);
  }
  SECTION("every frame of every capture") {
    int files = 0;
    for (const char* name :
         {"go-client-gen-none", "go-client-gen-md5", "go-client-gen-sha1",
          "go-client-gen-md5-badkey", "go-client-gen-md5-unknown", "flood-fixed_signed_sha1",
          "flood-variable_signed_md5", "flood-fixed_unsigned", "stream-garbage-then-7-valid",
          "heka-inject-1"}) {
      INFO(name);
      const std::string base = std::string(FERRY_SHARED_DIR) + "/vectors/heka/" + name;
      const std::string data = readFile(base + ".bin");
      // The expected verdict of each frame, in order, from the capture's .json.
      std::vector<std::string> expected;
      std::istringstream json(readFile(base + ".json"));
      for (std::string line; std::getline(json, line);) {
        const auto at = line.find("\"hmac_check\":\"");
        if (at == std::string::npos) continue;
        const auto from = at + 14;
        expected.push_back(line.substr(from, line.find('"', from) - from));
      }
      REQUIRE_FALSE(expected.empty());
      HekaSignerSet set(kVectorKeys);
      HekaFramingSplitter sp(1 << 20);
      sp.append(data.data(), data.size());
      HekaRecord r;
      size_t n = 0;
      while (sp.next(r)) {
        REQUIRE(n < expected.size());
        std::string_view signer;
        const SignerCheck got = set.verify(r.parsed, r.body, signer);
        const std::string& want = expected[n];
        INFO("frame " << n << " expected " << want);
        if (want == "unsigned") {
          CHECK(got == SignerCheck::Unsigned);
        } else if (want.rfind("valid:", 0) == 0) {
          CHECK(got == SignerCheck::Verified);
          CHECK(want.substr(6, signer.size() + 1) == std::string(signer) + "_");
        } else if (want.rfind("INVALID:", 0) == 0) {
          CHECK(got == SignerCheck::BadDigest);
        } else if (want.rfind("unknown-signer:", 0) == 0) {
          CHECK(got == SignerCheck::UnknownSigner);
        } else {
          FAIL("unexpected verdict " << want);
        }
        ++n;
      }
      CHECK(n == expected.size());
      ++files;
    }
    CHECK(files == 10);
  }
}
