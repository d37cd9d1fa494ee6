// ferry_heka_bench: Heka framed-protobuf load generator and counting sink behind
// bench/heka_run.sh. Sends heka-flood's fixed message (or a small one) to a TcpInput,
// counts what arrives at an in-process sink, and reports messages/s and server CPU.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "src/heka/message.pb.h"

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "ferry_heka_bench: %s\n", msg.c_str());
  std::exit(2);
}

std::string errnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

// ---------------------------------------------------------------------------------------
// Command line: `ferry_heka_bench MODE --key value ...`.

struct Args {
  std::map<std::string, std::string> values;

  uint64_t num(const std::string& key, uint64_t def, uint64_t lo, uint64_t hi) const {
    auto it = values.find(key);
    if (it == values.end()) return def;
    uint64_t v = 0;
    const std::string& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size()) die("--" + key + ": not a number: " + s);
    if (v < lo || v > hi) {
      die("--" + key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    return v;
  }
  std::string str(const std::string& key, const std::string& def) const {
    auto it = values.find(key);
    return it == values.end() ? def : it->second;
  }
};

Args parseArgs(int argc, char** argv, const std::set<std::string>& known) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0 || !known.count(arg.substr(2)) || i + 1 >= argc)
      die("bad argument '" + arg + "' (see --help)");
    a.values[arg.substr(2)] = argv[++i];
  }
  return a;
}

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

// ---------------------------------------------------------------------------------------
// Messages

std::string frame(const std::string& body) {
  std::string header;
  header += '\x08';
  for (uint64_t v = body.size();; v >>= 7) {
    if (v < 0x80) {
      header += static_cast<char>(v);
      break;
    }
    header += static_cast<char>((v & 0x7F) | 0x80);
  }
  std::string out;
  out += '\x1e';
  out += static_cast<char>(header.size());
  out += header;
  out += '\x1f';
  out += body;
  return out;
}

std::string uuidBytes(std::mt19937_64& rng) {
  std::string u(16, '\0');
  for (auto& c : u)
    c = static_cast<char>(rng());
  u[6] = static_cast<char>((u[6] & 0x0f) | 0x40);
  u[8] = static_cast<char>((u[8] & 0x3f) | 0x80);
  return u;
}

// heka-flood's fixed message (heka.md §7.1, the flood-fixed vectors): Type "hekabench",
// severity 6, env "0.8", a payload of "hekabench: <host> - " and 1000 random printable
// bytes; about 1070 bytes of protobuf.
std::string fixedBody(std::mt19937_64& rng) {
  message::Message m;
  m.set_uuid(uuidBytes(rng));
  m.set_timestamp(1795531566725902934);
  m.set_type("hekabench");
  m.set_severity(6);
  std::string payload = "hekabench: bench - ";
  for (int i = 0; i < 1000; ++i)
    payload += static_cast<char>(' ' + 1 + rng() % 94);
  m.set_payload(payload);
  m.set_env_version("0.8");
  m.set_pid(10847);
  m.set_hostname("bench");
  return m.SerializeAsString();
}

// A small application log line with a few typed fields: about 180 bytes.
std::string smallBody(std::mt19937_64& rng) {
  message::Message m;
  m.set_uuid(uuidBytes(rng));
  m.set_timestamp(1795531566725902934);
  m.set_type("app.access");
  m.set_logger("nginx");
  m.set_severity(6);
  m.set_payload("GET /api/v1/items?page=2 HTTP/1.1 200 1234");
  m.set_pid(4242);
  m.set_hostname("web-01");
  auto add = [&](const char* name, message::Field::ValueType t) {
    auto* f = m.add_fields();
    f->set_name(name);
    f->set_value_type(t);
    return f;
  };
  add("status", message::Field::INTEGER)->add_value_integer(200);
  add("bytes", message::Field::INTEGER)->add_value_integer(1234);
  add("path", message::Field::STRING)->add_value_string("/api/v1/items");
  add("ms", message::Field::DOUBLE)->add_value_double(12.5);
  return m.SerializeAsString();
}

// The end marker: a tiny message whose body length no benchmark message has, so the sink
// can tell it without decoding protobuf.
std::string sentinelBody() {
  message::Message m;
  m.set_uuid(std::string(16, '\x01'));
  m.set_timestamp(1);
  m.set_type("bench.end");
  return m.SerializeAsString();
}

// ---------------------------------------------------------------------------------------
// CPU clocks

// utime + stime of a process from /proc/PID/stat, in seconds (10 ms ticks).
std::optional<double> procStatSeconds(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s;
  if (!std::getline(f, s)) return std::nullopt;
  const size_t close_paren = s.rfind(')');  // comm may hold spaces and parentheses
  if (close_paren == std::string::npos) return std::nullopt;
  std::istringstream in(s.substr(close_paren + 1));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    if (!(in >> field)) return std::nullopt;
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

std::optional<double> clockSeconds(clockid_t clk) {
  timespec ts{};
  if (clock_gettime(clk, &ts) != 0) return std::nullopt;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// The whole process's CPU time (every thread), to the nanosecond.
std::optional<double> processClockSeconds(long pid) {
  clockid_t clk;
  if (clock_getcpuclockid(static_cast<pid_t>(pid), &clk) != 0) return std::nullopt;
  return clockSeconds(clk);
}

// ---------------------------------------------------------------------------------------
// The counting sink: the floor of any Heka receiver. It finds each record's length in
// its header and steps over the body; it does not decode, copy or keep anything.

struct SinkState {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  bool failed = false;
  std::string error;
  uint64_t records = 0;  // benchmark records (the sentinel not counted)
  uint64_t connections = 0;
  // Every byte received, read by the sender without the lock to keep its window.
  std::atomic<uint64_t> bytes{0};
};

class Sink {
 public:
  Sink(uint16_t port, size_t sentinel_len) : sentinel_len_(sentinel_len) {
    fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in sa = loopback(port);
    socklen_t len = sizeof sa;
    if (fd_ < 0 || bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
        listen(fd_, 16) < 0 || getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
      die(errnoText("sink listen"));
    port_ = ntohs(sa.sin_port);
  }
  ~Sink() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    close(fd_);
  }

  void start() {
    thread_ = std::thread([this] { run(); });
    pthread_getcpuclockid(thread_.native_handle(), &cpu_clock_);
  }
  uint16_t port() const { return port_; }
  clockid_t cpuClock() const { return cpu_clock_; }
  SinkState& state() { return st_; }

 private:
  struct Conn {
    int fd;
    std::string buf;    // an incomplete header
    uint64_t skip = 0;  // body bytes still to step over
  };

  void run() {
    std::vector<Conn> conns;
    std::vector<char> rbuf(256 * 1024);
    // Bounded by stop_: the main thread sets it at the end of the run or on timeout.
    while (!stop_) {
      std::vector<pollfd> pfds{{fd_, POLLIN, 0}};
      for (const Conn& c : conns)
        pfds.push_back({c.fd, POLLIN, 0});
      if (poll(pfds.data(), pfds.size(), 50) <= 0) continue;
      if (pfds[0].revents & POLLIN) {
        const int c = accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) {
          conns.push_back(Conn{c, {}, 0});
          std::lock_guard<std::mutex> lk(st_.mu);
          ++st_.connections;
        }
      }
      for (size_t k = 1; k < pfds.size(); ++k) {
        if (!(pfds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
        Conn& c = conns[k - 1];
        const ssize_t n = recv(c.fd, rbuf.data(), rbuf.size(), 0);
        if (n <= 0) {
          close(c.fd);
          c.fd = -1;
          continue;
        }
        consume(c, rbuf.data(), static_cast<size_t>(n));
      }
      std::erase_if(conns, [](const Conn& c) { return c.fd < 0; });
    }
    for (const Conn& c : conns)
      close(c.fd);
  }

  void consume(Conn& c, const char* p, size_t n) {
    st_.bytes.fetch_add(n, std::memory_order_relaxed);
    uint64_t records = 0;
    bool saw_end = false;
    std::string error;
    while (n > 0 && error.empty()) {
      if (c.skip > 0) {
        const size_t k = static_cast<size_t>(std::min<uint64_t>(c.skip, n));
        c.skip -= k;
        p += k;
        n -= k;
        continue;
      }
      c.buf.push_back(*p++);
      --n;
      if (static_cast<uint8_t>(c.buf[0]) != 0x1e) {
        error = "stream out of sync: no record separator";
        break;
      }
      if (c.buf.size() < 2) continue;
      const size_t hlen = static_cast<uint8_t>(c.buf[1]);
      if (c.buf.size() < hlen + 3) continue;
      uint64_t len = 0;
      if (hlen < 2 || c.buf[2] != '\x08' || c.buf[hlen + 2] != '\x1f') {
        error = "unexpected header";
        break;
      }
      for (size_t i = 3, shift = 0; i < hlen + 2 && shift < 64; ++i, shift += 7) {
        len |= static_cast<uint64_t>(static_cast<uint8_t>(c.buf[i]) & 0x7f) << shift;
        if (!(static_cast<uint8_t>(c.buf[i]) & 0x80)) break;
      }
      c.buf.clear();
      c.skip = len;
      if (len == sentinel_len_) {
        saw_end = true;
      } else {
        ++records;
      }
    }
    std::lock_guard<std::mutex> lk(st_.mu);
    st_.records += records;
    if (!error.empty()) {
      st_.failed = true;
      st_.error = error;
    }
    if (saw_end || !error.empty()) st_.done = true;
    st_.cv.notify_all();  // also wakes a sender waiting for its window
  }

  int fd_ = -1;
  uint16_t port_ = 0;
  size_t sentinel_len_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  clockid_t cpu_clock_{};
  SinkState st_;
};

// ---------------------------------------------------------------------------------------
// The run

void sendAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0) {
      if (errno == EINTR) continue;
      die(errnoText("send"));
    }
    p += k;
    n -= static_cast<size_t>(k);
  }
}

int runLoad(const Args& a) {
  const std::string size = a.str("size", "fixed");
  if (size != "fixed" && size != "small") die("--size must be fixed or small");
  const uint64_t messages = a.num("messages", 1'000'000, 1, 1'000'000'000);
  const uint64_t timeout_s = a.num("timeout", 300, 1, 86'400);
  const long pid = static_cast<long>(a.num("pid", 0, 0, 1u << 30));
  const std::string path = a.str("path", "");
  const uint64_t window = a.num("window-mib", 0, 0, 1 << 20) << 20;

  std::mt19937_64 rng(20231114);
  const std::string body = size == "fixed" ? fixedBody(rng) : smallBody(rng);
  const std::string end = sentinelBody();
  if (end.size() == body.size()) die("sentinel and message have the same length");
  const std::string record = frame(body);

  // The sink listens on --sink-port (0: any); with --port 0 the load goes straight to it
  // (the baseline), otherwise to the server under test, whose output must reach the sink.
  Sink sink(static_cast<uint16_t>(a.num("sink-port", 0, 0, 65535)), end.size());
  sink.start();
  uint16_t port = static_cast<uint16_t>(a.num("port", 0, 0, 65535));
  const bool baseline = port == 0;
  if (baseline) port = sink.port();

  // ~256 KiB of records per send(): the client should not be what limits the server.
  std::string block;
  const uint64_t per_block = std::max<uint64_t>(1, (256 * 1024) / record.size());
  for (uint64_t i = 0; i < per_block; ++i)
    block += record;

  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = loopback(port);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    die(errnoText("connect"));

  auto serverCpu = [&]() -> std::pair<std::optional<double>, std::optional<double>> {
    if (baseline) return {std::nullopt, clockSeconds(sink.cpuClock())};
    if (pid == 0) return {std::nullopt, std::nullopt};
    return {procStatSeconds(pid), processClockSeconds(pid)};
  };
  rusage ru0{};
  getrusage(RUSAGE_SELF, &ru0);
  const auto [stat0, clock0] = serverCpu();
  const auto t0 = Clock::now();
  SinkState& st = sink.state();
  uint64_t left = messages;
  uint64_t sent = 0;
  while (left > 0) {
    if (window > 0 && sent > st.bytes.load(std::memory_order_relaxed) + window) {
      // Closed loop: ferryd's outputs drop the oldest when their queue is full rather
      // than slow the sender, so an open-loop sender faster than the sink would measure
      // drops. The sink is never more than `window` behind.
      std::unique_lock<std::mutex> lk(st.mu);
      if (!st.cv.wait_for(lk, std::chrono::seconds(timeout_s), [&] {
            return st.done || sent <= st.bytes.load(std::memory_order_relaxed) + window;
          })) {
        die("timed out waiting for the sink to catch up");
      }
      if (st.done) break;  // the sink failed
      continue;
    }
    const uint64_t n = std::min(left, per_block);
    sendAll(fd, block.data(), n * record.size());
    sent += n * record.size();
    left -= n;
  }
  const std::string end_record = frame(end);
  sendAll(fd, end_record.data(), end_record.size());

  bool done;
  {
    std::unique_lock<std::mutex> lk(st.mu);
    done = st.cv.wait_for(lk, std::chrono::seconds(timeout_s), [&] { return st.done; });
  }
  const double wall = std::chrono::duration<double>(Clock::now() - t0).count();
  const auto [stat1, clock1] = serverCpu();
  rusage ru1{};
  getrusage(RUSAGE_SELF, &ru1);
  close(fd);
  if (!done) die("timed out waiting for the end marker at the sink");
  if (st.failed) die("sink: " + st.error);

  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
  const double client_cpu =
      tv(ru1.ru_utime) + tv(ru1.ru_stime) - tv(ru0.ru_utime) - tv(ru0.ru_stime);
  const double per_m = 1e6 / static_cast<double>(messages);
  auto diff = [&](const std::optional<double>& x, const std::optional<double>& y, double k) {
    return x && y ? std::to_string((*y - *x) * k) : std::string("null");
  };
  std::printf(
      "{\"path\":\"%s\",\"size\":\"%s\",\"messages\":%llu,\"body_bytes\":%zu,"
      "\"delivered\":%llu,\"sink_connections\":%llu,\"wall_s\":%.4f,\"messages_per_s\":%.0f,"
      "\"mib_per_s\":%.1f,\"server_cpu_s\":%s,\"server_cpu_s_per_m\":%s,"
      "\"server_cpu_clock_s\":%s,\"server_cpu_clock_s_per_m\":%s,\"client_cpu_s\":%.3f}\n",
      path.c_str(), size.c_str(), static_cast<unsigned long long>(messages), body.size(),
      static_cast<unsigned long long>(st.records), static_cast<unsigned long long>(st.connections),
      wall, static_cast<double>(messages) / wall,
      static_cast<double>(messages * record.size()) / wall / (1 << 20),
      diff(stat0, stat1, 1).c_str(), diff(stat0, stat1, per_m).c_str(),
      diff(clock0, clock1, 1).c_str(), diff(clock0, clock1, per_m).c_str(), client_cpu);
  return 0;
}

int runFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa = loopback(0);
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    die(errnoText("bind"));
  std::printf("%d\n", ntohs(sa.sin_port));
  close(fd);
  return 0;
}

constexpr const char* kUsage = R"(usage:
  ferry_heka_bench load [--port P] [--sink-port Q] [--size fixed|small] [--messages N]
                        [--window-mib W] [--pid PID] [--timeout S] [--path LABEL]
      Listens on 127.0.0.1:Q (a counting sink; 0 = any port), sends N framed Heka
      messages and then an end marker to 127.0.0.1:P in ~256 KiB writes, and waits until
      the end marker reaches the sink. Without --port (or with 0) the load goes straight
      to the sink: the baseline, whose CPU is the sink thread's. Otherwise P is ferryd's
      TcpInput and ferryd must route the marker (Type "bench.end") to a TcpOutput at Q;
      --pid PID reports that process's CPU during the run. With --window-mib W the
      sender stays at most W MiB ahead of what the sink received (only for paths where
      every message reaches the sink). Prints one JSON line.
      fixed: heka-flood's fixed message (~1070 bytes); small: a ~180-byte log message.
  ferry_heka_bench free-port
      Prints a currently free TCP port on 127.0.0.1.
)";

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "load") {
    return runLoad(parseArgs(
        argc, argv,
        {"port", "sink-port", "size", "messages", "pid", "timeout", "path", "window-mib"}));
  }
  if (cmd == "free-port") return runFreePort();
  std::fputs(kUsage, cmd == "-h" || cmd == "--help" ? stdout : stderr);
  return cmd == "-h" || cmd == "--help" ? 0 : 2;
}
