// Unit tests for config loading: Heka-style tables, defaults, and one test per error
// kind, each checking that the message names the file, line and key.
#include <catch2/catch.hpp>

#include <fstream>

#include "src/config_loader.h"
#include "src/server.h"

using Catch::Matchers::Contains;

namespace {
const ferry::PluginRegistry& registry() {
  static ferry::PluginRegistry r = [] {
    ferry::PluginRegistry reg;
    ferry::registerBuiltinPlugins(reg);
    return reg;
  }();
  return r;
}

ferry::Config load(const std::string& text) {
  return ferry::loadConfigString(text, "test.toml", registry());
}

// Loads `text` expecting a ConfigError; returns its message.
std::string errorOf(const std::string& text) {
  try {
    auto cfg = load(text);
    ferry::compileMatchers(cfg);
  } catch (const ferry::ConfigError& e) {
    return e.what();
  }
  FAIL("no ConfigError for:\n" << text);
  return "";
}
}  // namespace

TEST_CASE("a Heka-style config loads with defaults", "[config]") {
  auto cfg = load(R"(
[hekad]
shutdown_timeout = "2s"

[ForwardInput]
address = "127.0.0.1:24224"
max_frame_size = "1MiB"
idle_timeout = "250ms"

[out]
type = "FileOutput"
match = "app.**"
path = "/tmp/x"
)");
  CHECK(cfg.global.name == "hekad");
  CHECK(cfg.global.durationMs("shutdown_timeout") == 2000);
  REQUIRE(cfg.inputs.size() == 1);
  CHECK(cfg.inputs[0].type == "ForwardInput");  // type defaults to the table name
  CHECK(cfg.inputs[0].size("max_frame_size") == 1u << 20);
  CHECK(cfg.inputs[0].durationMs("idle_timeout") == 250);
  CHECK(cfg.inputs[0].integer("max_tag_length") == 1024);  // default
  CHECK(cfg.inputs[0].boolean("udp_heartbeat"));
  REQUIRE(cfg.outputs.size() == 1);
  CHECK(cfg.outputs[0].str("path") == "/tmp/x");
  CHECK(cfg.outputs[0].line == 11);
}

TEST_CASE("the default config file is valid", "[config]") {
  auto cfg = ferry::loadConfigFile(std::string(FERRY_SOURCE_DIR) + "/conf/ferry.toml", registry());
  CHECK(cfg.inputs.size() == 1);
  CHECK(cfg.outputs.size() == 1);
  CHECK(cfg.inputs[0].str("address") == "127.0.0.1:24224");
  CHECK_NOTHROW(ferry::compileMatchers(cfg));
}

TEST_CASE("the container config is valid", "[config]") {
  auto cfg =
      ferry::loadConfigFile(std::string(FERRY_SOURCE_DIR) + "/docker/ferry.toml", registry());
  REQUIRE(cfg.inputs.size() == 1);
  CHECK(cfg.inputs[0].str("address") == "0.0.0.0:24224");
  CHECK(cfg.inputs[0].str("payload_key") == "log");
  CHECK_NOTHROW(ferry::compileMatchers(cfg));
}

TEST_CASE("config errors name file, line and key", "[config]") {
  SECTION("unknown key") {
    auto m = errorOf("[ForwardInput]\naddress = \"127.0.0.1:1\"\nmax_frame = 3\n");
    CHECK_THAT(m, Contains("test.toml:3") && Contains("ForwardInput.max_frame") &&
                      Contains("unknown key") && Contains("max_frame_size"));
  }
  SECTION("wrong type") {
    auto m = errorOf("[ForwardInput]\n\nmax_tag_length = \"long\"\n");
    CHECK_THAT(m, Contains("test.toml:3") && Contains("ForwardInput.max_tag_length") &&
                      Contains("expected an integer"));
  }
  SECTION("out of range") {
    auto m = errorOf("[ForwardInput]\nmax_tag_length = 0\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("max_tag_length") &&
                      Contains("out of range [1, 65535]"));
  }
  SECTION("size out of range is printed with units") {
    auto m = errorOf("[ForwardInput]\nmax_frame_size = \"3GiB\"\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("3GiB") && Contains("2GiB"));
  }
  SECTION("bad size string") {
    auto m = errorOf("[ForwardInput]\nmax_frame_size = \"64XB\"\n");
    CHECK_THAT(
        m, Contains("test.toml:2") && Contains("max_frame_size") && Contains("expected a size"));
  }
  SECTION("bad duration string") {
    auto m = errorOf("[ForwardInput]\n\n\nidle_timeout = \"10 parsecs\"\n");
    CHECK_THAT(
        m, Contains("test.toml:4") && Contains("idle_timeout") && Contains("expected a duration"));
  }
  SECTION("unknown plugin type lists the known ones") {
    auto m = errorOf("[a]\ntype = \"KafkaInput\"\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("a.type") &&
                      Contains("unknown plugin type 'KafkaInput'") && Contains("ForwardInput") &&
                      Contains("FileOutput") && Contains("StdoutOutput"));
  }
  SECTION("unknown table name without type") {
    auto m = errorOf("\n[Nope]\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("unknown plugin type 'Nope'"));
  }
  SECTION("duplicate global table") {
    auto m = errorOf("[ferry]\n[hekad]\n");
    CHECK_THAT(m, Contains("test.toml:") && Contains("duplicate global table"));
  }
  SECTION("duplicate table name") {
    auto m =
        errorOf("[out]\ntype = \"NullOutput\"\nmatch = \"**\"\n[out]\ntype = \"NullOutput\"\n");
    CHECK_THAT(m, Contains("test.toml:4") && Contains("TOML syntax error"));
  }
  SECTION("TOML syntax error") {
    auto m = errorOf("[ForwardInput]\naddress = \n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("TOML syntax error"));
  }
  SECTION("top-level key that is not a table") {
    auto m = errorOf("\nfoo = 1\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("foo") && Contains("must be tables"));
  }
  SECTION("type is not a string") {
    auto m = errorOf("[x]\ntype = 3\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("x.type") && Contains("expected a string"));
  }
  SECTION("required key missing") {
    auto m = errorOf("[f]\ntype = \"FileOutput\"\nmatch = \"**\"\n");
    CHECK_THAT(m, Contains("f.path") && Contains("required"));
  }
  SECTION("output without match matches nothing") {
    auto m = errorOf("[n]\ntype = \"NullOutput\"\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("n.match") && Contains("matches nothing"));
  }
  SECTION("invalid match pattern") {
    auto m = errorOf("[n]\ntype = \"NullOutput\"\nmatch = \"a.{b\"\n");
    CHECK_THAT(m,
               Contains("test.toml:3") && Contains("n.match") && Contains("invalid tag pattern"));
  }
  SECTION("bad log level") {
    auto m = errorOf("[ferry]\nlog_level = \"loud\"\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("log_level"));
  }
  SECTION("unknown global key") {
    auto m = errorOf("[ferry]\nmaxprocs = 2\n");
    CHECK_THAT(m, Contains("test.toml:2") && Contains("ferry.maxprocs") && Contains("unknown key"));
  }
}

TEST_CASE("unreadable config file names the path", "[config]") {
  try {
    ferry::loadConfigFile("/nonexistent/ferry.toml", registry());
    FAIL("no error");
  } catch (const ferry::ConfigError& e) {
    CHECK_THAT(std::string(e.what()),
               Contains("/nonexistent/ferry.toml") && Contains("cannot read"));
  }
}

TEST_CASE("docs/configuration.md is the generated option reference", "[config][docs]") {
  std::ifstream in(std::string(FERRY_SOURCE_DIR) + "/docs/configuration.md");
  REQUIRE(in.good());
  std::string doc((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Regenerate with: build/ferryd --print-option-reference > docs/configuration.md
  CHECK(doc == ferry::optionReferenceMarkdown(registry()));
}
