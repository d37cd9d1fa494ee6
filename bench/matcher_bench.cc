// Matcher and router benchmark (issue: the shared message matcher). For a few
// representative expressions: ns per evaluation on a Fluentd event, and events/s through
// the router into a counting output, each against routing with no matcher (`match =
// "**"`) measured in the same run. A measurement, not a test: it never asserts.
#include <time.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "src/event_view.h"
#include "src/matcher.h"
#include "src/msgpack_writer.h"
#include "src/router.h"
#include "src/stats.h"

namespace {

double cpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A forward chunk of `n` access-log events with tag app.access; one in ten is a 5xx.
ferry::BatchPtr makeBatch(const std::string& tag, int n) {
  auto bytes = std::make_shared<std::string>();
  ferry::mp::Writer w(*bytes);
  std::vector<ferry::Event> events;
  for (int k = 0; k < n; ++k) {
    const size_t start = bytes->size();
    w.mapHeader(6);
    w.str("host");
    w.str("web-01");
    w.str("method");
    w.str("GET");
    w.str("path");
    w.str("/api/v1/items/" + std::to_string(k));
    w.str("status");
    w.integer(k % 10 == 0 ? 503 : 200);
    w.str("bytes");
    w.integer(1234 + k);
    w.str("ua");
    w.str("curl/7.88.1");
    events.push_back(ferry::Event{.time_ns = 1700000000000000000 + k,
                                  .record_off = static_cast<uint32_t>(start),
                                  .record_len = static_cast<uint32_t>(bytes->size() - start)});
  }
  auto b = std::make_shared<ferry::Batch>();
  b->bytes = bytes;
  b->tag = tag;
  b->events = std::move(events);
  return b;
}

class CountingOutput : public ferry::Output {
 public:
  void submit(ferry::BatchPtr batch, ferry::AckShare ack) override {
    events += batch->events.size();
    ack.accept();
  }
  void flush(std::function<void()> done) override { done(); }
  uint64_t events = 0;
};

std::string twentyClauses() {
  std::string e;
  for (int k = 0; k < 19; ++k) {
    e += "Fields[path] == '/nope/" + std::to_string(k) + "' || ";
  }
  return e + "Fields[status] >= 500";
}

struct Result {
  double ns_per_eval;
  double router_events_per_s;
  double router_cpu_s_per_m;
  uint64_t matched;
};

Result measure(const std::string& expr, const ferry::BatchPtr& batch, int rounds) {
  Result r{};
  std::string error;
  std::unique_ptr<ferry::Matcher> matcher;
  if (!expr.empty()) {
    matcher = ferry::Matcher::compile(expr, error);
    if (!matcher) {
      std::fprintf(stderr, "bad expression %s: %s\n", expr.c_str(), error.c_str());
      std::exit(1);
    }
    // Direct evaluation, one view per event (as the router does).
    volatile uint64_t sink = 0;
    const double t0 = cpuSeconds();
    for (int round = 0; round < rounds; ++round) {
      for (const auto& e : batch->events) {
        sink = sink + matcher->matches(ferry::FluentEventView(*batch, e));
      }
    }
    r.ns_per_eval =
        (cpuSeconds() - t0) * 1e9 / (static_cast<double>(rounds) * batch->events.size());
  }
  ferry::StatsRegistry stats;
  ferry::Router router(stats);
  CountingOutput out;
  if (expr.empty()) {
    std::string err;
    router.addRoute(
        "out", std::make_unique<ferry::TagPredicate>(*ferry::TagPattern::compile("**", err)), &out);
  } else {
    router.addRoute("out", std::make_unique<ferry::MessageMatcherPredicate>(std::move(matcher)),
                    &out);
  }
  const double t0 = cpuSeconds();
  timespec w0, w1;
  clock_gettime(CLOCK_MONOTONIC, &w0);
  for (int round = 0; round < rounds; ++round)
    router.route(batch, nullptr);
  clock_gettime(CLOCK_MONOTONIC, &w1);
  const double cpu = cpuSeconds() - t0;
  const double wall = static_cast<double>(w1.tv_sec - w0.tv_sec) + (w1.tv_nsec - w0.tv_nsec) * 1e-9;
  const double events = static_cast<double>(rounds) * batch->events.size();
  r.router_events_per_s = events / wall;
  r.router_cpu_s_per_m = cpu / events * 1e6;
  r.matched = out.events;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 2000;
  const auto batch = makeBatch("app.access", 1000);
  struct Case {
    const char* name;
    std::string expr;
  };
  const std::vector<Case> cases = {
      {"baseline: match = \"**\" (no matcher)", ""},
      {"TRUE", "TRUE"},
      {"Type == 'app.access'", "Type == 'app.access'"},
      {"Type =~ /^app\\./ && Fields[status] >= 500", "Type =~ /^app\\./ && Fields[status] >= 500"},
      {"20 clauses (19 x Fields[path] == ... || Fields[status] >= 500)", twentyClauses()},
  };
  std::printf("matcher bench: %d rounds x %zu events (one forward chunk, tag app.access)\n", rounds,
              batch->events.size());
  std::printf("%-62s %10s %14s %12s %10s %9s\n", "expression", "ns/eval", "router ev/s", "CPU-s/1M",
              "x base", "matched");
  double base_cpu = 0;
  for (const auto& c : cases) {
    const Result r = measure(c.expr, batch, rounds);
    if (c.expr.empty()) base_cpu = r.router_cpu_s_per_m;
    char ns[32];
    if (c.expr.empty()) {
      std::snprintf(ns, sizeof(ns), "-");
    } else {
      std::snprintf(ns, sizeof(ns), "%.1f", r.ns_per_eval);
    }
    std::printf("%-62s %10s %14.0f %12.4f %10.2f %9llu\n", c.name, ns, r.router_events_per_s,
                r.router_cpu_s_per_m, base_cpu > 0 ? r.router_cpu_s_per_m / base_cpu : 1.0,
                static_cast<unsigned long long>(r.matched));
  }
  return 0;
}
