// msgpack-c packer bound to a std::string.
#include "src/msgpack_writer.h"

namespace ferry::mp {
namespace {
int appendToString(void* data, const char* buf, size_t len) {
  static_cast<std::string*>(data)->append(buf, len);
  return 0;
}
}  // namespace

Writer::Writer(std::string& out) : out_(out) {
  msgpack_packer_init(&pk_, &out_, appendToString);
}

void Writer::nil() {
  msgpack_pack_nil(&pk_);
}
void Writer::boolean(bool b) {
  b ? msgpack_pack_true(&pk_) : msgpack_pack_false(&pk_);
}
void Writer::integer(int64_t v) {
  msgpack_pack_int64(&pk_, v);
}
void Writer::uinteger(uint64_t v) {
  msgpack_pack_uint64(&pk_, v);
}
void Writer::float64(double v) {
  msgpack_pack_double(&pk_, v);
}
void Writer::str(std::string_view s) {
  msgpack_pack_str(&pk_, s.size());
  msgpack_pack_str_body(&pk_, s.data(), s.size());
}
void Writer::bin(std::string_view s) {
  msgpack_pack_bin(&pk_, s.size());
  msgpack_pack_bin_body(&pk_, s.data(), s.size());
}
void Writer::ext(int8_t type, std::string_view data) {
  msgpack_pack_ext(&pk_, data.size(), type);
  msgpack_pack_ext_body(&pk_, data.data(), data.size());
}
void Writer::arrayHeader(uint32_t n) {
  msgpack_pack_array(&pk_, n);
}
void Writer::mapHeader(uint32_t n) {
  msgpack_pack_map(&pk_, n);
}
void Writer::eventTime(uint32_t sec, uint32_t nsec) {
  const char body[8] = {
      static_cast<char>(sec >> 24), static_cast<char>(sec >> 16),  static_cast<char>(sec >> 8),
      static_cast<char>(sec),       static_cast<char>(nsec >> 24), static_cast<char>(nsec >> 16),
      static_cast<char>(nsec >> 8), static_cast<char>(nsec),
  };
  ext(0, std::string_view(body, 8));
}

}  // namespace ferry::mp
