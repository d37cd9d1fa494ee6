// StdoutOutput, FileOutput and NullOutput. The two writers format a whole batch into one
// buffer and hand it to an AsyncFileWriter; the batch's ack share is accepted when the
// bytes are written.
#include "src/local_outputs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "src/async_writer.h"
#include "src/heka_view.h"
#include "src/json.h"
#include "src/stats.h"

namespace ferry {
namespace {

void splitTime(int64_t time_ns, time_t& sec, uint32_t& nsec) {
  int64_t s = time_ns / 1'000'000'000;
  int64_t n = time_ns % 1'000'000'000;
  if (n < 0) {
    n += 1'000'000'000;
    --s;
  }
  sec = static_cast<time_t>(s);
  nsec = static_cast<uint32_t>(n);
}

}  // namespace

void appendLocalTime(std::string& out, int64_t time_ns) {
  time_t sec;
  uint32_t nsec;
  splitTime(time_ns, sec, nsec);
  struct tm tm {};
  localtime_r(&sec, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm);
  char zone[8];
  std::strftime(zone, sizeof(zone), "%z", &tm);
  fmt::format_to(std::back_inserter(out), "{}.{:09d} {}", date, nsec, zone);
}

void appendUtcTime(std::string& out, int64_t time_ns) {
  time_t sec;
  uint32_t nsec;
  splitTime(time_ns, sec, nsec);
  struct tm tm {};
  gmtime_r(&sec, &tm);
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  fmt::format_to(std::back_inserter(out), "{}.{:09d}Z", date, nsec);
}

namespace {
void appendRecord(std::string& out, std::string_view rec) {
  if (json::appendMsgpack(out, reinterpret_cast<const uint8_t*>(rec.data()), rec.size()) == 0) {
    out += "{}";  // unreachable for decoded events: the decoder validated the record
  }
}
}  // namespace

void formatStdoutLine(std::string& out, std::string_view tag, int64_t time_ns,
                      std::string_view record) {
  appendLocalTime(out, time_ns);
  out += ' ';
  out += tag;
  out += ": ";
  appendRecord(out, record);
  out += '\n';
}

void formatJsonLine(std::string& out, std::string_view tag, int64_t time_ns,
                    std::string_view record) {
  out += "{\"tag\":";
  json::appendString(out, tag);
  out += ",\"time\":\"";
  appendUtcTime(out, time_ns);
  out += "\",\"record\":";
  appendRecord(out, record);
  out += "}\n";
}

void forEachAsFluent(const Batch& batch, const HekaTagOptions& tags,
                     const std::function<void(std::string_view, int64_t, std::string_view)>& emit) {
  if (batch.format == EventFormat::FluentRecord) {
    for (const Event& e : batch.events)
      emit(batch.tag, e.time_ns, batch.record(e));
    return;
  }
  std::string record;
  for (const Event& e : batch.events) {
    const std::string_view body = batch.record(e);
    record.clear();
    if (!hekaToFluentRecord(body, record)) continue;
    emit(hekaTag(HekaWireView(body), tags), e.time_ns, record);
  }
}

namespace {

using Formatter = void (*)(std::string&, std::string_view, int64_t, std::string_view);

HekaTagOptions tagOptions(const PluginConfig& cfg) {
  HekaTagOptions o;
  o.default_tag = cfg.str("default_tag");
  if (cfg.has("tag")) o.tag_template = cfg.str("tag");
  return o;
}

// Shared body of the stdout and file outputs: format, write, ack when written. The share
// is accepted only from the write's callback (all bytes written) and failed on a write
// error, so these already resolve on delivery: resolveOnDelivery() has nothing to change.
class WriterOutput : public Output {
 public:
  WriterOutput(const PluginContext& ctx, Formatter format)
      : name_(ctx.config->name),
        format_(format),
        tags_(tagOptions(*ctx.config)),
        writer_(ctx.loop),
        events_(ctx.stats->counter(name_, "events_out")),
        batches_(ctx.stats->counter(name_, "batches_out")),
        bytes_(ctx.stats->counter(name_, "bytes_written")),
        errors_(ctx.stats->counter(name_, "write_errors")) {}

  void submit(BatchPtr batch, AckShare ack) override {
    std::string text;
    text.reserve(batch->events.size() * 128);
    forEachAsFluent(*batch, tags_, [&](std::string_view tag, int64_t t, std::string_view rec) {
      format_(text, tag, t, rec);
    });
    const size_t n = batch->events.size();
    const size_t bytes = text.size();
    auto shared_ack = std::make_shared<AckShare>(std::move(ack));
    writer_.write(text, [this, shared_ack, n, bytes](bool ok) {
      if (ok) {
        events_.inc(n);
        batches_.inc();
        bytes_.inc(bytes);
        shared_ack->accept();
      } else {
        errors_.inc();
        spdlog::error("[{}] write failed: {}", name_, uv_strerror(writer_.lastError()));
        shared_ack->fail();
      }
    });
  }

  void flush(std::function<void()> done) override { writer_.whenIdle(std::move(done)); }

 protected:
  std::string name_;
  Formatter format_;
  HekaTagOptions tags_;
  AsyncFileWriter writer_;
  Counter& events_;
  Counter& batches_;
  Counter& bytes_;
  Counter& errors_;
};

class StdoutOutput : public WriterOutput {
 public:
  explicit StdoutOutput(const PluginContext& ctx) : WriterOutput(ctx, &formatStdoutLine) {
    writer_.setFd(STDOUT_FILENO);
  }
};

class FileOutput : public WriterOutput {
 public:
  explicit FileOutput(const PluginContext& ctx)
      : WriterOutput(ctx, &formatJsonLine),
        path_(ctx.config->str("path")),
        reopens_(ctx.stats->counter(name_, "reopens")) {
    fd_ = openFile();
    if (fd_ < 0) {
      ctx.config->fail(
          "path", fmt::format("cannot open '{}' for appending: {}", path_, std::strerror(errno)));
    }
    writer_.setFd(fd_);
  }
  ~FileOutput() override {
    if (fd_ >= 0) ::close(fd_);
  }

  // Reopen after the writes already queued, so none of them lands in the renamed file
  // half-written and none goes to the new one out of order.
  void reopen() override {
    writer_.whenIdle([this] {
      const int fd = openFile();
      if (fd < 0) {
        spdlog::error("[{}] reopen of '{}' failed: {}; keeping the old file", name_, path_,
                      std::strerror(errno));
        return;
      }
      ::close(fd_);
      fd_ = fd;
      writer_.setFd(fd_);
      reopens_.inc();
      spdlog::info("[{}] reopened {}", name_, path_);
    });
  }

 private:
  // Opening is a short syscall done on the loop; only the writes go to the pool.
  int openFile() const {
    return ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  }

  std::string path_;
  int fd_ = -1;
  Counter& reopens_;
};

class NullOutput : public Output {
 public:
  explicit NullOutput(const PluginContext& ctx)
      : events_(ctx.stats->counter(ctx.config->name, "events_out")),
        batches_(ctx.stats->counter(ctx.config->name, "batches_out")) {}
  void submit(BatchPtr batch, AckShare ack) override {
    events_.inc(batch->events.size());
    batches_.inc();
    ack.accept();
  }
  void flush(std::function<void()> done) override { done(); }

 private:
  Counter& events_;
  Counter& batches_;
};

}  // namespace

std::vector<OptionSpec> hekaTagOptionSpecs() {
  return {{.key = "default_tag",
           .type = OptionType::String,
           .default_value = "heka",
           .description = "Tag of a Heka message whose Type is empty (bridge.md)."},
          {.key = "tag",
           .type = OptionType::String,
           .description = "Tag template for Heka messages, e.g. `\"heka.%{Logger}.%{Type}\"` "
                          "(%{Type}, %{Logger}, %{Hostname}, %{Payload}, %{EnvVersion}, %{Uuid}); "
                          "default: the Type."}};
}

std::vector<OptionSpec> withHekaTagOptions(std::vector<OptionSpec> specs) {
  for (auto& s : hekaTagOptionSpecs())
    specs.push_back(std::move(s));
  return specs;
}

PluginType stdoutOutputType() {
  return PluginType{.name = "StdoutOutput",
                    .kind = PluginKind::Output,
                    .summary =
                        "Prints each event as Fluentd's stdout output does: `<time> <tag>: <record "
                        "as JSON>`, time in local time with nanoseconds and the UTC offset.",
                    .options = hekaTagOptionSpecs(),
                    .make_output = [](const PluginContext& ctx) -> std::unique_ptr<Output> {
                      return std::make_unique<StdoutOutput>(ctx);
                    }};
}

PluginType fileOutputType() {
  return PluginType{
      .name = "FileOutput",
      .kind = PluginKind::Output,
      .summary =
          "Appends one JSON object per event and line: `{\"tag\":…,\"time\":"
          "\"2023-11-14T22:13:20.123456789Z\",\"record\":{…}}`. Reopens the file on "
          "SIGUSR1 (for logrotate).",
      .options = withHekaTagOptions({{.key = "path",
                                      .type = OptionType::String,
                                      .required = true,
                                      .reloadable = true,
                                      .description = "File to append to; created with mode 0644 "
                                                     "if missing."}}),
      .make_output = [](const PluginContext& ctx) -> std::unique_ptr<Output> {
        return std::make_unique<FileOutput>(ctx);
      }};
}

PluginType nullOutputType() {
  return PluginType{.name = "NullOutput",
                    .kind = PluginKind::Output,
                    .summary = "Counts events and discards them (benchmarks).",
                    .options = {},
                    .make_output = [](const PluginContext& ctx) -> std::unique_ptr<Output> {
                      return std::make_unique<NullOutput>(ctx);
                    }};
}

}  // namespace ferry
