// Plugin interfaces: an Input produces batches into the Router, an Output accepts them.
// A PluginType (name, kind, option table, factory) is separate from a configured
// instance; the registry lists the types (see builtin_plugins.cc).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <uv.h>

#include "src/batch.h"
#include "src/config_schema.h"

namespace ferry {

class Router;
class StatsRegistry;
struct FlowControl;
struct Config;

class Output {
 public:
  virtual ~Output() = default;
  // Takes a share of `batch`. Must resolve `ack` (accept once stored, or fail) exactly
  // once, possibly later from the loop; never blocks the loop.
  virtual void submit(BatchPtr batch, AckShare ack) = 0;
  // Calls `done` (from the loop) once everything submitted so far is written or failed.
  virtual void flush(std::function<void()> done) = 0;
  // Called once, before the first submit, by the buffering layer (src/output_buffer.h) when
  // the output has a disk spool: from then on resolve each AckShare only when its events are
  // delivered (written out; acked by the peer where the protocol has acks), never when they
  // are merely held in the output's memory, so the spool keeps them until then. A failed
  // share then means "not delivered": the buffer keeps the events and submits them again.
  virtual void resolveOnDelivery() {}
  // The most the buffering layer should have submitted here and not yet resolved; 0: no
  // bound of the output's own. An output with its own drop policy answers below it, so the
  // policy never applies behind a buffer.
  virtual uint64_t maxInflightBytes() const { return 0; }
  // SIGUSR1: reopen files. Default: nothing to reopen.
  virtual void reopen() {}
  virtual void close() {}
};

class Input {
 public:
  virtual ~Input() = default;
  // Binds its sockets. Throws std::runtime_error with a clear reason on failure.
  virtual void start() = 0;
  // Graceful stop, step 1: close listeners, accept nothing new.
  virtual void stopAccepting() = 0;
  // Step 2: read what clients already sent, hand it to the router, then call `done`.
  virtual void drain(std::function<void()> done) = 0;
  // Step 3: close every connection now.
  virtual void close() = 0;
};

struct PluginContext {
  uv_loop_t* loop = nullptr;
  Router* router = nullptr;
  StatsRegistry* stats = nullptr;
  const PluginConfig* config = nullptr;
  std::string hostname;  // [ferry] hostname, or this machine's name
  // The whole config: for tables that name others (`splitter = "..."`) and [ferry].
  const Config* full_config = nullptr;
  // Finds another configured output by name (e.g. a `secondary`); null when unknown.
  // Valid once every output is built: call it from start-up or later, not in a
  // constructor.
  std::function<Output*(const std::string&)> find_output;
  // Process-wide flow control (src/flow_control.h): the memory budget and the pause
  // fanouts. Owned by the server, outlives every plugin. Null in unit tests that need none.
  FlowControl* flow = nullptr;
};

struct PluginType {
  std::string name;
  PluginKind kind = PluginKind::Input;
  std::string summary;
  std::vector<OptionSpec> options;
  // Checks that read other tables (`splitter = "name"`); runs once the whole file is
  // loaded, so --check-config sees them too.
  std::function<void(const PluginConfig&, const Config&)> validate_with_config;
  // Checks that need more than one option's type and bounds (an address that parses);
  // throws ConfigError through PluginConfig::fail. Runs at load, so --check-config
  // catches what start would.
  std::function<void(const PluginConfig&)> validate;
  // Outputs: whether a BufferedOutput (src/output_buffer.h, `[<output>.buffer]`) sits in
  // front of each instance, and the defaults that suit the type (docs/flow_control.md).
  bool buffered = false;
  std::string default_full_action = "block";
  uint64_t default_memory_limit = uint64_t{64} << 20;
  // The buffer runs the output in resolveOnDelivery() mode even without a spool: for an
  // output whose own accept means only "queued" (Heka TcpOutput), so that a dead peer
  // fills the buffer and its full_action applies, not the output's private queue.
  bool buffer_on_delivery = false;
  std::function<std::unique_ptr<Input>(const PluginContext&)> make_input;
  std::function<std::unique_ptr<Output>(const PluginContext&)> make_output;
};

class PluginRegistry {
 public:
  // Adds a type; outputs get the common routing options (`match`). Throws on a
  // duplicate type name.
  void add(PluginType type);
  const PluginType* find(const std::string& name) const;
  const std::vector<PluginType>& all() const { return types_; }
  std::string knownNames(PluginKind kind) const;
  // The global [ferry] table's options.
  static const std::vector<OptionSpec>& globalOptions();

 private:
  std::vector<PluginType> types_;
};

// The one explicit list of every built-in plugin (src/builtin_plugins.cc).
void registerBuiltinPlugins(PluginRegistry& registry);

}  // namespace ferry
