// ferryd: parse the command line, load the config, run the server until it stops.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>

#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include "src/config_loader.h"
#include "src/default_config.h"
#include "src/logging.h"
#include "src/match_tool.h"
#include "src/server.h"
#include "src/version.h"

int main(int argc, char** argv) {
  CLI::App app{"ferryd: log forwarder for the Fluentd forward and Heka protocols"};
  std::string config_path;
  std::string log_level;
  std::string pid_file;
  bool check_only = false;
  bool version = false;
  bool option_reference = false;
  bool print_default = false;
  std::vector<std::string> match_args;
  app.add_option("-c,--config", config_path,
                 "TOML config file (default: the built-in config, identical to conf/ferry.toml)");
  app.add_flag("--check-config", check_only,
               "Validate the config, print what would run, exit 0 or 1");
  app.add_flag("--version", version, "Print the version and exit");
  app.add_option("--log-level", log_level,
                 "trace, debug, info, warn, error or off (overrides [ferry] log_level)");
  app.add_option("--pid-file", pid_file, "Write the process id to this file while running");
  app.add_flag("--print-option-reference", option_reference,
               "Print the option reference (docs/configuration.md) and exit");
  app.add_flag("--print-default-config", print_default, "Print the built-in config and exit");
  app.add_option("--match", match_args,
                 "EXPR FILE: print the events in FILE (forward msgpack/JSON or a Heka stream) "
                 "that the message_matcher EXPR matches, one JSON object per line")
      ->expected(2);
  CLI11_PARSE(app, argc, argv);
  // A peer that closed while we write to it must give EPIPE, not kill the process.
  std::signal(SIGPIPE, SIG_IGN);

  if (version) {
    std::printf("ferryd %s\n", FERRY_VERSION);
    return 0;
  }
  ferry::PluginRegistry registry;
  ferry::registerBuiltinPlugins(registry);
  if (option_reference) {
    std::cout << ferry::optionReferenceMarkdown(registry);
    return 0;
  }
  if (!match_args.empty()) return ferry::runMatchTool(match_args[0], match_args[1]);
  if (print_default) {
    std::cout << ferry::kDefaultConfig;
    return 0;
  }
  if (!ferry::setupLogging(log_level.empty() ? "info" : log_level)) {
    std::fprintf(stderr, "ferryd: unknown --log-level '%s'\n", log_level.c_str());
    return 1;
  }

  ferry::Config config;
  try {
    config = config_path.empty() ? ferry::loadConfigString(ferry::kDefaultConfig,
                                                           "<built-in conf/ferry.toml>", registry)
                                 : ferry::loadConfigFile(config_path, registry);
    ferry::compileMatchers(config);
  } catch (const ferry::ConfigError& e) {
    std::fprintf(stderr, "ferryd: config error: %s\n", e.what());
    return 1;
  }
  if (check_only) {
    std::cout << ferry::describeConfig(config);
    return 0;
  }
  if (log_level.empty()) ferry::setLogLevel(config.global.str("log_level"));

  uv_loop_t loop;
  uv_loop_init(&loop);
  int rc = 0;
  {
    ferry::Server server(&loop, std::move(config), registry);
    try {
      server.start();
    } catch (const std::exception& e) {
      spdlog::error("cannot start: {}", e.what());
      std::fflush(stderr);
      std::_Exit(1);
    }
    if (!pid_file.empty()) {
      std::ofstream(pid_file) << getpid() << "\n";
      server.setForcedExitHook([&pid_file] { ::unlink(pid_file.c_str()); });
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    rc = server.stopped() ? 0 : 1;
    // After the loop: the last acks have been written, so the counters are final.
    spdlog::info("stopped: {}", server.stats().toJson());
  }
  // Let the close callbacks of everything the server owned run, then close the loop.
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (!pid_file.empty()) ::unlink(pid_file.c_str());
  return rc;
}
