// Config-only Heka plugin types: HekaFramingSplitter (carries the signer keys),
// ProtobufDecoder and ProtobufEncoder. ferry runs no instance of them; inputs and outputs
// read their tables, so a hekad.toml naming them loads as is (heka.md §6.1, §6.3).
#include "src/heka/heka_input.h"

namespace ferry::heka {

PluginType hekaFramingSplitterType() {
  return PluginType{
      .name = "HekaFramingSplitter",
      .kind = PluginKind::Splitter,
      .summary =
          "Heka stream framing for TcpInput/UdpInput (`splitter = \"<table>\"`): the "
          "signer keys that verify HMAC-signed messages. Without a table, "
          "`\"HekaFramingSplitter\"` is the built-in one with no signers.",
      .options =
          {
              {.key = "signer",
               .type = OptionType::Signers,
               .description = "Sub-tables `[<splitter>.signer.<name>_<version>]` with "
                              "`hmac_key`: a header signed by `<name>` with key version "
                              "`<version>` must carry the HMAC (MD5 or SHA1, as the header "
                              "says) of its body with this key, else it is dropped "
                              "(`bad_signatures`); signed headers of unknown signers are "
                              "dropped too (`unknown_signers`)."},
              {.key = "skip_authentication",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "Do not check digests: every record is delivered, as unsigned."},
              {.key = "use_message_bytes",
               .type = OptionType::Bool,
               .default_value = "true",
               .description = "Accepted for hekad configs; only `true` (the record body is "
                              "the message) is supported."},
              {.key = "deliver_incomplete_final",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "Accepted for hekad configs and ignored: an incomplete final "
                              "record cannot decode, so it is dropped and counted "
                              "(`skipped_bytes`)."},
              {.key = "keep_truncated",
               .type = OptionType::Bool,
               .default_value = "false",
               .description = "Accepted for hekad configs and ignored: Heka records are never "
                              "truncated (longer ones are dropped, `oversize_records`)."},
              {.key = "min_buffer_size",
               .type = OptionType::Size,
               .default_value = "8KiB",
               .min = 0,
               .max = (int64_t{64} << 20) + 258,
               .description = "Accepted for hekad configs and ignored: buffers grow to the "
                              "largest record (`[ferry] max_message_size` + 258 bytes) and a "
                              "UDP datagram is always read whole."},
          },
      .validate =
          [](const PluginConfig& cfg) {
            validateSignerTables(cfg);
            if (!cfg.boolean("use_message_bytes")) {
              cfg.fail("use_message_bytes",
                       "only true is supported: ferry's Heka inputs take each record body as "
                       "a protobuf message (hekad would wrap it in a Payload)");
            }
          },
  };
}

PluginType protobufDecoderType() {
  return PluginType{
      .name = "ProtobufDecoder",
      .kind = PluginKind::Decoder,
      .summary =
          "Heka's protobuf message decoder, named by `decoder = ...` on TcpInput and "
          "UdpInput: bodies are checked as protobuf Messages and kept byte for byte. No "
          "options.",
  };
}

PluginType protobufEncoderType() {
  return PluginType{
      .name = "ProtobufEncoder",
      .kind = PluginKind::Encoder,
      .summary =
          "Heka's protobuf message encoder, named by `encoder = ...` on Heka outputs: "
          "messages that arrived as Heka protobuf are written byte for byte. No options.",
  };
}

}  // namespace ferry::heka
