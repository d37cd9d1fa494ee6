// ferry_bench: the load generator and the baseline receiver behind bench/run.sh.
// `sink` does only what every forward server must (find request boundaries, answer acks),
// so it is the floor; `load` drives any forward server and reports its CPU per event.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "src/gzip.h"
#include "src/msgpack_reader.h"
#include "src/msgpack_writer.h"

namespace {

using Clock = std::chrono::steady_clock;
namespace mp = ferry::mp;

constexpr size_t kReadSize = 64 * 1024;
// Same cap as ForwardInput's default max_frame_size: past it a peer is misbehaving.
constexpr size_t kMaxFrame = 64u << 20;

[[noreturn]] void die(const std::string& msg) {
  std::fprintf(stderr, "ferry_bench: %s\n", msg.c_str());
  std::exit(2);
}

std::string errnoText(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

double secondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ---------------------------------------------------------------------------------------
// Command line: `ferry_bench MODE --key value ... --flag`.

struct Args {
  std::map<std::string, std::string> values;
  std::set<std::string> flags;

  uint64_t num(const std::string& key, uint64_t def, uint64_t lo, uint64_t hi) const {
    auto it = values.find(key);
    if (it == values.end()) return def;
    uint64_t v = 0;
    const auto& s = it->second;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size())
      die("--" + key + ": not a number: '" + s + "'");
    if (v < lo || v > hi)
      die("--" + key + " must be in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v;
  }
  std::string str(const std::string& key, const std::string& def) const {
    auto it = values.find(key);
    return it == values.end() ? def : it->second;
  }
  bool has(const std::string& flag) const { return flags.count(flag) != 0; }
};

Args parseArgs(int argc, char** argv, const std::set<std::string>& valued,
               const std::set<std::string>& flags) {
  Args a;
  for (int i = 2; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg.substr(0, 2) != "--") die("unexpected argument '" + std::string(arg) + "'");
    std::string key(arg.substr(2));
    if (flags.count(key)) {
      a.flags.insert(key);
    } else if (valued.count(key)) {
      if (i + 1 >= argc) die("--" + key + " needs a value");
      a.values[key] = argv[++i];
    } else {
      die("unknown option --" + key);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------
// Sockets: loopback only, by design; the benchmark must never reach another host.

sockaddr_in loopback(int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

void setNonBlocking(int fd) {
  const int fl = fcntl(fd, F_GETFL, 0);
  if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die(errnoText("fcntl"));
}

// ferryd sets TCP_NODELAY on its sessions; the sink and the client do too, so small acks
// and Message-mode requests are not held back by Nagle on either side of the comparison.
void setNoDelay(int fd) {
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int listenOn(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(errnoText("socket"));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = loopback(port);
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0) die(errnoText("bind"));
  if (listen(fd, 128) < 0) die(errnoText("listen"));
  setNonBlocking(fd);
  return fd;
}

int connectTo(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(errnoText("socket"));
  sockaddr_in sa = loopback(port);
  // Blocking connect is bounded: on loopback it either succeeds or is refused at once.
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0)
    die(errnoText(("connect 127.0.0.1:" + std::to_string(port)).c_str()));
  setNoDelay(fd);
  setNonBlocking(fd);
  return fd;
}

// A growable receive buffer holding [head, tail); reads go straight into its free tail.
struct InBuffer {
  std::vector<uint8_t> data;
  size_t head = 0;
  size_t tail = 0;

  // Makes room for one kReadSize read, moving the unconsumed bytes to the front only when
  // that is what frees the room (so a large frame is not moved on every read).
  void reserveRead() {
    if (head == tail) head = tail = 0;
    if (data.size() - tail >= kReadSize) return;
    if (head > 0) {
      std::memmove(data.data(), data.data() + head, tail - head);
      tail -= head;
      head = 0;
    }
    if (data.size() - tail < kReadSize) data.resize(tail + kReadSize);
  }
  uint8_t* writePtr() { return data.data() + tail; }
  size_t writeRoom() const { return data.size() - tail; }
  const uint8_t* readPtr() const { return data.data() + head; }
  size_t size() const { return tail - head; }
};

// Finishes the object whose header `v` was just read: Str/Bin/Ext payloads are already
// consumed, containers still have their elements ahead.
bool skipBody(mp::Reader& r, const mp::Value& v) {
  const uint64_t n = v.type == mp::Type::Map     ? uint64_t{v.len} * 2
                     : v.type == mp::Type::Array ? v.len
                                                 : 0;
  for (uint64_t i = 0; i < n; ++i)
    if (!r.skip()) return false;
  return true;
}

// ---------------------------------------------------------------------------------------
// sink: the baseline receiver.

volatile std::sig_atomic_t g_stop = 0;

struct SinkConn {
  int fd = -1;
  InBuffer in;
  mp::ObjectScanner scanner;
  std::string out;  // acks not yet written
  size_t out_off = 0;
  bool want_write = false;
};

struct SinkStats {
  uint64_t connections = 0, frames = 0, acks = 0, bytes = 0;
};

// The option map of one request, if it carries one and it has a string `chunk`. Mode is
// told apart the way Fluentd does, by the type of element 1 (str/bin/array: the option is
// element 2; anything else is Message mode and the option is element 3).
std::optional<std::string_view> chunkOf(const uint8_t* p, size_t n) {
  mp::Reader r(p, n);
  mp::Value v;
  if (!r.next(v) || v.type != mp::Type::Array || v.len < 3) return std::nullopt;
  const uint32_t len = v.len;
  if (!r.skip()) return std::nullopt;  // tag
  if (!r.next(v)) return std::nullopt;
  const bool message = !(v.isStrOrBin() || v.type == mp::Type::Array || v.type == mp::Type::Map);
  if (!skipBody(r, v)) return std::nullopt;
  const uint32_t opt_index = message ? 3 : 2;
  if (len <= opt_index) return std::nullopt;
  for (uint32_t i = 2; i < opt_index; ++i)
    if (!r.skip()) return std::nullopt;
  if (!r.next(v) || v.type != mp::Type::Map) return std::nullopt;
  const uint32_t pairs = v.len;
  for (uint32_t i = 0; i < pairs; ++i) {
    mp::Value key;
    if (!r.next(key)) return std::nullopt;
    const bool is_chunk = key.type == mp::Type::Str && key.str() == "chunk";
    if (!skipBody(r, key) || !r.next(v)) return std::nullopt;
    if (is_chunk && v.type == mp::Type::Str) return v.str();
    if (!skipBody(r, v)) return std::nullopt;
  }
  return std::nullopt;
}

// Writes pending acks; false when the connection must be closed.
bool sinkFlush(SinkConn& c) {
  for (int i = 0; i < 64 && c.out_off < c.out.size(); ++i) {
    const ssize_t w = send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    c.out_off += static_cast<size_t>(w);
  }
  if (c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  }
  return c.out.size() - c.out_off <= kMaxFrame;
}

// Reads what is there (64 KiB at a time), frames it, queues one ack per `chunk`, and
// writes the acks of this wakeup together. False when the connection must be closed.
bool sinkRead(SinkConn& c, SinkStats& st) {
  for (int i = 0; i < 64; ++i) {
    c.in.reserveRead();
    const ssize_t r = recv(c.fd, c.in.writePtr(), kReadSize, 0);
    if (r == 0) {
      sinkFlush(c);  // a client that half-closed still reads the acks it is owed
      return false;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return false;
    }
    c.in.tail += static_cast<size_t>(r);
    st.bytes += static_cast<uint64_t>(r);
    for (;;) {
      const auto res = c.scanner.scan(c.in.readPtr(), c.in.size());
      if (res == mp::ObjectScanner::Result::NeedMore) break;
      if (res != mp::ObjectScanner::Result::Done) return false;
      const size_t len = c.scanner.end();
      ++st.frames;
      if (auto chunk = chunkOf(c.in.readPtr(), len)) {
        mp::Writer w(c.out);
        w.mapHeader(1);
        w.str("ack");
        w.str(*chunk);
        ++st.acks;
      }
      c.in.head += len;
      c.scanner.reset();
    }
    if (c.in.size() > kMaxFrame) return false;
    if (static_cast<size_t>(r) < kReadSize) break;  // drained; skip the EAGAIN round trip
  }
  return sinkFlush(c);
}

int runSink(const Args& a) {
  const int port = static_cast<int>(a.num("port", 0, 1, 65535));
  const double max_seconds = static_cast<double>(a.num("max-seconds", 3600, 1, 86400));
  std::signal(SIGTERM, [](int) { g_stop = 1; });
  std::signal(SIGINT, [](int) { g_stop = 1; });

  const int lfd = listenOn(port);
  const int ep = epoll_create1(EPOLL_CLOEXEC);
  if (ep < 0) die(errnoText("epoll_create1"));
  epoll_event lev{};
  lev.events = EPOLLIN;
  lev.data.ptr = nullptr;  // nullptr marks the listener
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev);

  std::set<SinkConn*> conns;
  SinkStats st;
  auto closeConn = [&](SinkConn* c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, nullptr);
    close(c->fd);
    conns.erase(c);
    delete c;
  };

  const auto t0 = Clock::now();
  epoll_event evs[64];
  // Bounded by SIGTERM/SIGINT and by --max-seconds, whichever comes first.
  while (!g_stop && secondsSince(t0) < max_seconds) {
    const int n = epoll_wait(ep, evs, 64, 500);
    if (n < 0) {
      if (errno == EINTR) continue;
      die(errnoText("epoll_wait"));
    }
    for (int i = 0; i < n; ++i) {
      if (evs[i].data.ptr == nullptr) {
        for (int k = 0; k < 64; ++k) {
          const int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
          if (fd < 0) break;
          setNoDelay(fd);
          auto* c = new SinkConn;
          c->fd = fd;
          epoll_event ev{};
          ev.events = EPOLLIN;
          ev.data.ptr = c;
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
          conns.insert(c);
          ++st.connections;
        }
        continue;
      }
      auto* c = static_cast<SinkConn*>(evs[i].data.ptr);
      bool ok = true;
      if (evs[i].events & EPOLLOUT) ok = sinkFlush(*c);
      if (ok && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) ok = sinkRead(*c, st);
      if (!ok) {
        closeConn(c);
        continue;
      }
      // Wait for writability only while acks are stuck, so an idle socket never spins.
      const bool want = !c->out.empty();
      if (want != c->want_write) {
        epoll_event ev{};
        ev.events = EPOLLIN | (want ? EPOLLOUT : 0u);
        ev.data.ptr = c;
        epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
        c->want_write = want;
      }
    }
  }
  while (!conns.empty())
    closeConn(*conns.begin());
  close(lfd);
  close(ep);
  std::fprintf(stderr, "ferry_bench sink: %llu connections, %llu requests, %llu acks, %llu bytes\n",
               static_cast<unsigned long long>(st.connections),
               static_cast<unsigned long long>(st.frames), static_cast<unsigned long long>(st.acks),
               static_cast<unsigned long long>(st.bytes));
  return 0;
}

// ---------------------------------------------------------------------------------------
// load: the client.

enum class Mode { Message, Forward, Packed, PackedGzip };

Mode parseMode(const std::string& s) {
  if (s == "message") return Mode::Message;
  if (s == "forward") return Mode::Forward;
  if (s == "packed") return Mode::Packed;
  if (s == "packed-gzip") return Mode::PackedGzip;
  die("--mode must be message, forward, packed or packed-gzip, not '" + s + "'");
}

std::string base64(const uint8_t* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    const uint32_t b0 = p[i];
    const uint32_t b1 = i + 1 < n ? p[i + 1] : 0;
    const uint32_t b2 = i + 2 < n ? p[i + 2] : 0;
    const uint32_t w = (b0 << 16) | (b1 << 8) | b2;
    out += kAlphabet[(w >> 18) & 63];
    out += kAlphabet[(w >> 12) & 63];
    out += i + 1 < n ? kAlphabet[(w >> 6) & 63] : '=';
    out += i + 2 < n ? kAlphabet[w & 63] : '=';
  }
  return out;
}

// A 24-character id shaped like the ones real clients send (base64 of 16 bytes). Ids
// repeat when the pool is cycled; acks are still matched exactly, in request order.
std::string chunkId(uint64_t kind, uint64_t index) {
  uint8_t b[16];
  for (int i = 0; i < 8; ++i) {
    b[i] = static_cast<uint8_t>(kind >> (56 - 8 * i));
    b[8 + i] = static_cast<uint8_t>(index >> (56 - 8 * i));
  }
  return base64(b, sizeof b);
}

struct Request {
  std::string bytes;
  std::string chunk;      // empty: the server will not answer this one
  size_t plain_size = 0;  // before gzip; what building the request cost
};

// A typical access-log record; `n` differs per event so no two records are identical.
void appendRecord(mp::Writer& w, uint64_t n) {
  w.mapHeader(4);
  w.str("host");
  w.str("web-01");
  w.str("level");
  w.str("info");
  w.str("msg");
  w.str("GET /api/v1/items 200 1234 ms=12");
  w.str("n");
  w.uinteger(n);
}

uint32_t nsecOf(uint64_t n) {
  return static_cast<uint32_t>(n % 1'000'000'000);
}

// Options are written the way Fluentd's out_forward does (`size` always, `compressed`
// when gzip), so the server parses the same option maps it would in production.
Request buildRequest(Mode mode, uint32_t events, uint64_t first_n, uint32_t sec,
                     std::string chunk) {
  Request req;
  req.chunk = std::move(chunk);
  const bool opt = !req.chunk.empty();
  mp::Writer w(req.bytes);
  if (mode == Mode::Message) {
    w.arrayHeader(opt ? 4 : 3);
    w.str("bench.web");
    w.eventTime(sec, nsecOf(first_n));
    appendRecord(w, first_n);
    if (opt) {
      w.mapHeader(1);
      w.str("chunk");
      w.str(req.chunk);
    }
    req.plain_size = req.bytes.size();
    return req;
  }
  w.arrayHeader(3);
  w.str("bench.web");
  if (mode == Mode::Forward) {
    w.arrayHeader(events);
    for (uint32_t i = 0; i < events; ++i) {
      w.arrayHeader(2);
      w.eventTime(sec, nsecOf(first_n + i));
      appendRecord(w, first_n + i);
    }
  } else {
    std::string entries;
    mp::Writer ew(entries);
    for (uint32_t i = 0; i < events; ++i) {
      ew.arrayHeader(2);
      ew.eventTime(sec, nsecOf(first_n + i));
      appendRecord(ew, first_n + i);
    }
    req.plain_size = entries.size();
    w.bin(mode == Mode::PackedGzip ? ferry::gzipCompress(entries) : entries);
  }
  if (req.plain_size < req.bytes.size()) req.plain_size = req.bytes.size();
  const bool gz = mode == Mode::PackedGzip;
  w.mapHeader(1 + (gz ? 1 : 0) + (opt ? 1 : 0));
  w.str("size");
  w.uinteger(events);
  if (gz) {
    w.str("compressed");
    w.str("gzip");
  }
  if (opt) {
    w.str("chunk");
    w.str(req.chunk);
  }
  return req;
}

// utime + stime of the whole process (every thread, live or exited), in seconds, as
// /proc/PID/stat reports them: in clock ticks, so only to 1/_SC_CLK_TCK (10 ms).
std::optional<double> procStatCpuSeconds(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return std::nullopt;
  const std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  // comm (field 2) may hold spaces and parentheses; the fields after its last ')' are
  // plain. Field 3 is the first of them; utime and stime are fields 14 and 15.
  const size_t close_paren = s.rfind(')');
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

// The same quantity (CPU time of every thread of the process) from the kernel's
// per-process CPU clock, to the nanosecond. The sink spends so little per event that
// tick resolution alone would need runs ten times longer to give a usable ratio.
std::optional<double> cpuClockSeconds(long pid) {
  clockid_t clk;
  timespec ts{};
  if (clock_getcpuclockid(static_cast<pid_t>(pid), &clk) != 0 || clock_gettime(clk, &ts) != 0)
    return std::nullopt;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

double ownCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto sec = [](const timeval& tv) { return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6; };
  return sec(ru.ru_utime) + sec(ru.ru_stime);
}

struct Shared {
  std::vector<Request> pool;    // cycled through for all but each connection's last request
  std::vector<Request> finals;  // one per connection, always with a chunk
  bool ack = false;
  uint64_t window = 1;
};

struct LoadConn {
  int fd = -1;
  const Shared* sh = nullptr;
  uint64_t first_req = 0;  // global index of this connection's first request
  uint64_t count = 0;      // requests this connection sends
  uint64_t conn_index = 0;
  uint64_t next = 0;  // next request to queue
  std::deque<const Request*> sendq;
  size_t sent_off = 0;  // bytes of sendq.front() already written
  std::deque<const Request*> awaiting;
  InBuffer in;
  mp::ObjectScanner scanner;
  uint64_t bytes_sent = 0;
  uint64_t acks = 0;

  const Request* requestAt(uint64_t k) const {
    if (k + 1 == count) return &sh->finals[conn_index];
    return &sh->pool[(first_req + k) % sh->pool.size()];
  }
  bool finished() const { return next == count && sendq.empty() && awaiting.empty(); }

  // Queues requests while the ack window allows (each queued request with a chunk counts
  // as awaiting its ack). The queue is short so writev always has work but never piles up.
  // The window is refilled only once half of it is acked: topping it up by one request per
  // ack makes client and server trade single small requests, and whether a run falls into
  // that lockstep or not changed Message-mode CPU per event by 2x between identical runs.
  void fill() {
    if (sh->ack && awaiting.size() > sh->window / 2) return;
    while (next < count && sendq.size() < 64 && (!sh->ack || awaiting.size() < sh->window)) {
      const Request* r = requestAt(next++);
      sendq.push_back(r);
      if (!r->chunk.empty()) awaiting.push_back(r);
    }
  }

  // Writes until the socket is full or nothing is left; false on a socket error.
  bool flush(std::string& err) {
    while (!sendq.empty()) {
      iovec iov[64];
      size_t n = 0;
      for (size_t i = 0; i < sendq.size() && n < 64; ++i, ++n) {
        const size_t off = i == 0 ? sent_off : 0;
        iov[n].iov_base = const_cast<char*>(sendq[i]->bytes.data() + off);
        iov[n].iov_len = sendq[i]->bytes.size() - off;
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = n;
      const ssize_t w = sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        err = errnoText("send");
        return false;
      }
      bytes_sent += static_cast<uint64_t>(w);
      size_t left = static_cast<size_t>(w);
      while (left > 0) {
        const size_t rest = sendq.front()->bytes.size() - sent_off;
        if (left < rest) {
          sent_off += left;
          break;
        }
        left -= rest;
        sendq.pop_front();
        sent_off = 0;
      }
      fill();
    }
    return true;
  }

  // Reads acks and checks each against the oldest request awaiting one (acks come back in
  // request order). False on EOF, a socket error, or an ack that does not match.
  bool readAcks(std::string& err) {
    for (int i = 0; i < 64; ++i) {
      in.reserveRead();
      const ssize_t r = recv(fd, in.writePtr(), in.writeRoom(), 0);
      if (r == 0) {
        err = "server closed the connection with " + std::to_string(awaiting.size()) +
              " requests awaiting acks";
        return false;
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
        err = errnoText("recv");
        return false;
      }
      in.tail += static_cast<size_t>(r);
      for (;;) {
        const auto res = scanner.scan(in.readPtr(), in.size());
        if (res == mp::ObjectScanner::Result::NeedMore) break;
        if (res != mp::ObjectScanner::Result::Done) {
          err = "server sent bytes that are not msgpack";
          return false;
        }
        if (!checkAck(in.readPtr(), scanner.end(), err)) return false;
        in.head += scanner.end();
        scanner.reset();
      }
    }
    return true;
  }

  bool checkAck(const uint8_t* p, size_t n, std::string& err) {
    mp::Reader r(p, n);
    mp::Value v, key;
    std::optional<std::string_view> got;
    if (r.next(v) && v.type == mp::Type::Map) {
      const uint32_t pairs = v.len;
      for (uint32_t i = 0; i < pairs && r.next(key) && r.next(v); ++i) {
        if (key.type == mp::Type::Str && key.str() == "ack" && v.isStrOrBin()) got = v.str();
        if (!skipBody(r, v)) break;
      }
    }
    if (!got) {
      err = "server sent a reply that is not {\"ack\": chunk}";
      return false;
    }
    if (awaiting.empty() || *got != awaiting.front()->chunk) {
      err = "ack '" + std::string(*got) + "' does not answer the oldest request awaiting one";
      return false;
    }
    awaiting.pop_front();
    ++acks;
    return true;
  }
};

int runLoad(const Args& a) {
  const int port = static_cast<int>(a.num("port", 0, 1, 65535));
  const std::string mode_name = a.str("mode", "packed");
  const Mode mode = parseMode(mode_name);
  const uint64_t events = a.num("events", 1'000'000, 1, uint64_t{1} << 40);
  const uint64_t batch =
      mode == Mode::Message ? 1 : a.num("batch", 1000, 1, 1'000'000);  // Message: 1 each
  const bool ack = a.has("ack");
  const uint64_t window = a.num("window", 16, 1, 1'000'000);
  const long pid = static_cast<long>(a.num("pid", 0, 0, 1u << 30));
  const double timeout = static_cast<double>(a.num("timeout", 300, 1, 86400));
  const uint64_t pool_cap = a.num("pool-mib", 32, 1, 4096) << 20;

  const uint64_t requests = (events + batch - 1) / batch;
  const uint64_t conns_n = std::min<uint64_t>(a.num("connections", 1, 1, 1024), requests);
  const uint32_t remainder = static_cast<uint32_t>(events % batch);
  const uint32_t sec = static_cast<uint32_t>(std::time(nullptr));

  // Requests are built before the clock starts, so the client spends its time sending;
  // the pool is capped in bytes and cycled when the run needs more requests than it holds.
  Shared sh;
  sh.ack = ack;
  sh.window = window;
  // The cap counts bytes before gzip, which bounds the time spent compressing too.
  uint64_t pool_bytes = 0;
  for (uint64_t k = 0; k < requests && pool_bytes < pool_cap; ++k) {
    sh.pool.push_back(buildRequest(mode, static_cast<uint32_t>(batch), k * batch, sec,
                                   ack ? chunkId(0, k) : std::string()));
    pool_bytes += sh.pool.back().plain_size;
  }

  std::vector<LoadConn> conns(conns_n);
  uint64_t req_begin = 0;
  for (uint64_t c = 0; c < conns_n; ++c) {
    LoadConn& lc = conns[c];
    lc.sh = &sh;
    lc.conn_index = c;
    lc.first_req = req_begin;
    lc.count = requests * (c + 1) / conns_n - req_begin;
    req_begin += lc.count;
    // The last request of the last connection carries the events that do not fill a batch.
    const bool short_last = c + 1 == conns_n && remainder != 0;
    const uint64_t last = lc.first_req + lc.count - 1;
    sh.finals.push_back(buildRequest(mode, short_last ? remainder : static_cast<uint32_t>(batch),
                                     last * batch, sec, chunkId(1 + c, last)));
  }

  for (auto& lc : conns)
    lc.fd = connectTo(port);

  const std::optional<double> stat0 = pid ? procStatCpuSeconds(pid) : std::nullopt;
  const std::optional<double> clock0 = pid ? cpuClockSeconds(pid) : std::nullopt;
  if (pid && !stat0) die("cannot read /proc/" + std::to_string(pid) + "/stat");
  const double own0 = ownCpuSeconds();
  const auto t0 = Clock::now();
  auto last_progress = t0;
  uint64_t last_mark = 0;
  std::string err;
  std::vector<pollfd> pfds(conns.size());

  // Bounded by --timeout overall and by 30 s without a byte sent or an ack received.
  for (;;) {
    bool done = true;
    for (auto& lc : conns) {
      lc.fill();
      if (!lc.flush(err)) break;
      done = done && lc.finished();
    }
    if (!err.empty() || done) break;
    uint64_t mark = 0;
    for (auto& lc : conns)
      mark += lc.bytes_sent + lc.acks;
    if (mark != last_mark) {
      last_mark = mark;
      last_progress = Clock::now();
    }
    if (secondsSince(t0) > timeout) {
      err = "timed out after " + std::to_string(timeout) + " s";
      break;
    }
    if (secondsSince(last_progress) > 30) {
      err = "no progress for 30 s";
      break;
    }
    for (size_t i = 0; i < conns.size(); ++i) {
      pfds[i].fd = conns[i].fd;
      pfds[i].events = static_cast<short>(POLLIN | (conns[i].sendq.empty() ? 0 : POLLOUT));
      pfds[i].revents = 0;
    }
    const int pr = poll(pfds.data(), pfds.size(), 1000);
    if (pr < 0 && errno != EINTR) {
      err = errnoText("poll");
      break;
    }
    for (size_t i = 0; i < conns.size() && err.empty(); ++i)
      if (pfds[i].revents & (POLLIN | POLLHUP | POLLERR)) conns[i].readAcks(err);
    if (!err.empty()) break;
  }
  const double wall = secondsSince(t0);
  const std::optional<double> stat1 = pid ? procStatCpuSeconds(pid) : std::nullopt;
  const std::optional<double> clock1 = pid ? cpuClockSeconds(pid) : std::nullopt;
  const double own = ownCpuSeconds() - own0;
  for (auto& lc : conns)
    close(lc.fd);
  if (!err.empty()) {
    std::fprintf(stderr, "ferry_bench load: %s\n", err.c_str());
    return 1;
  }

  uint64_t bytes = 0, acks = 0;
  for (auto& lc : conns) {
    bytes += lc.bytes_sent;
    acks += lc.acks;
  }
  // "null" when there is no --pid (or the clock is unavailable), so the line stays JSON.
  auto seconds = [](std::optional<double> before, std::optional<double> after, double scale) {
    if (!before || !after) return std::string("null");
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6f", (*after - *before) * scale);
    return std::string(buf);
  };
  const double per_m = 1e6 / static_cast<double>(events);
  std::printf(
      "{\"mode\":\"%s\",\"events\":%llu,\"batch\":%llu,\"requests\":%llu,\"connections\":%llu,"
      "\"ack\":%s,\"window\":%llu,\"acks\":%llu,\"bytes\":%llu,\"wall_s\":%.4f,"
      "\"events_per_s\":%.0f,\"mib_per_s\":%.1f,\"server_cpu_s\":%s,"
      "\"server_cpu_s_per_m_events\":%s,\"server_cpu_clock_s\":%s,"
      "\"server_cpu_clock_s_per_m_events\":%s,\"client_cpu_s\":%.3f}\n",
      mode_name.c_str(), static_cast<unsigned long long>(events),
      static_cast<unsigned long long>(batch), static_cast<unsigned long long>(requests),
      static_cast<unsigned long long>(conns_n), ack ? "true" : "false",
      static_cast<unsigned long long>(window), static_cast<unsigned long long>(acks),
      static_cast<unsigned long long>(bytes), wall, static_cast<double>(events) / wall,
      static_cast<double>(bytes) / wall / (1 << 20), seconds(stat0, stat1, 1).c_str(),
      seconds(stat0, stat1, per_m).c_str(), seconds(clock0, clock1, 1).c_str(),
      seconds(clock0, clock1, per_m).c_str(), own);
  return 0;
}

// Prints a port that was free a moment ago (the kernel picks it), for bench/run.sh.
int runFreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) die(errnoText("socket"));
  sockaddr_in sa = loopback(0);
  socklen_t len = sizeof sa;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) < 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len) < 0)
    die(errnoText("bind"));
  std::printf("%d\n", ntohs(sa.sin_port));
  close(fd);
  return 0;
}

constexpr const char* kUsage = R"(usage:
  ferry_bench sink --port P [--max-seconds S]
      Baseline forward receiver on 127.0.0.1:P: frames requests, answers `chunk` with
      {"ack": chunk}, discards everything else. Stops on SIGTERM/SIGINT.
  ferry_bench load --port P --mode {message,forward,packed,packed-gzip} [--events N]
                   [--batch B] [--ack] [--window W] [--connections C] [--pid PID]
                   [--timeout S] [--pool-mib M]
      Sends N events (B per request; Message mode is always 1) to 127.0.0.1:P, at most W
      requests awaiting acks per connection with --ack; without --ack only each
      connection's last request asks for one. Prints one JSON line; with --pid it includes
      that process's CPU seconds during the run.
  ferry_bench free-port
      Prints a currently free TCP port on 127.0.0.1.
)";

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "sink") return runSink(parseArgs(argc, argv, {"port", "max-seconds"}, {}));
  if (cmd == "load")
    return runLoad(parseArgs(
        argc, argv,
        {"port", "mode", "events", "batch", "window", "connections", "pid", "timeout", "pool-mib"},
        {"ack"}));
  if (cmd == "free-port") return runFreePort();
  std::fputs(kUsage, cmd == "-h" || cmd == "--help" ? stdout : stderr);
  return cmd == "-h" || cmd == "--help" ? 0 : 2;
}
