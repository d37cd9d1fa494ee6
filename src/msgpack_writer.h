// msgpack encoding into a std::string, on top of msgpack-c's packer (we only wrap it so
// callers append to our own buffers and never see msgpack-c types).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <msgpack.h>

namespace ferry::mp {

class Writer {
 public:
  explicit Writer(std::string& out);

  void nil();
  void boolean(bool b);
  void integer(int64_t v);
  void uinteger(uint64_t v);
  void float64(double v);
  void str(std::string_view s);
  void bin(std::string_view s);
  void ext(int8_t type, std::string_view data);
  void arrayHeader(uint32_t n);
  void mapHeader(uint32_t n);
  // Fluentd EventTime: ext type 0, fixext8, big-endian seconds and nanoseconds.
  void eventTime(uint32_t sec, uint32_t nsec);
  // Appends bytes that already are msgpack.
  void raw(std::string_view bytes) { out_.append(bytes); }

 private:
  std::string& out_;
  msgpack_packer pk_;
};

}  // namespace ferry::mp
