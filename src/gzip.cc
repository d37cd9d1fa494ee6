// zlib-backed gzip for CompressedPackedForward.
#include "src/gzip.h"

#include <zlib.h>

namespace ferry {

GunzipResult gunzip(std::string_view in, size_t limit, std::string& out) {
  const size_t base = out.size();
  z_stream zs{};
  // 16 + MAX_WBITS: gzip wrapper only (no raw zlib), as the forward spec says gzip.
  if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK) return GunzipResult::Corrupt;
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  GunzipResult result = GunzipResult::Ok;
  char chunk[64 * 1024];
  for (;;) {
    zs.next_out = reinterpret_cast<Bytef*>(chunk);
    zs.avail_out = sizeof(chunk);
    const int rc = inflate(&zs, Z_NO_FLUSH);
    const size_t produced = sizeof(chunk) - zs.avail_out;
    if (out.size() - base + produced > limit) {
      result = GunzipResult::TooLarge;
      break;
    }
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      // Another member follows (Fluentd writes one per buffer write).
      if (inflateReset(&zs) != Z_OK) {
        result = GunzipResult::Corrupt;
        break;
      }
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_in == 0) {
      result = GunzipResult::Corrupt;  // truncated member
      break;
    }
    result = GunzipResult::Corrupt;
    break;
  }
  inflateEnd(&zs);
  if (result != GunzipResult::Ok) out.resize(base);
  return result;
}

std::string gzipCompress(std::string_view in, int level) {
  z_stream zs{};
  deflateInit2(&zs, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out;
  out.resize(deflateBound(&zs, static_cast<uLong>(in.size())) + 32);
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace ferry
