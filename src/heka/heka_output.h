// Heka's TcpOutput (heka.md §6.4): framed protobuf to one peer over TCP, from a bounded
// in-memory queue, reconnecting with backoff. Heka messages leave as the exact bytes
// they arrived in (the relay rule); Fluentd events are bridged (bridge.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>

#include "src/heka/heka_framing.h"
#include "src/plugin.h"

namespace ferry::heka {

PluginType tcpOutputType();

// Splits "host:port" or "[v6]:port" (a host name, an IPv4 or an IPv6 literal; the host
// must not be empty and the port must be 1-65535 unless `allow_port_zero`). False with
// `error` set otherwise.
bool splitOutputAddress(const std::string& text, bool allow_port_zero, std::string& host,
                        uint16_t& port, std::string& error);

// The optional `[<output>.signer]` table: messages are framed with a signed header
// (heka.md §2.2), as Heka's clients (not its outputs) do.
struct OutputSigner {
  std::string name;
  HmacHash hash = HmacHash::MD5;
  std::string key;
  uint32_t version = 0;
};

// Checks the table's keys (name, hmac_hash "md5"|"sha1", hmac_key, version). False with
// `key` (the offending sub-key) and `error` set.
bool parseOutputSigner(const std::map<std::string, std::string>& table, OutputSigner& out,
                       std::string& key, std::string& error);

// Bytes one framed record of a `body_len`-byte body takes on the wire: unsigned, or with
// `signer`'s header (the digest length is fixed by the hash, so this is exact).
size_t framedRecordSize(size_t body_len, const OutputSigner* signer);

}  // namespace ferry::heka
