// gzip decompression (zlib) with a hard output limit checked while inflating, so a
// gzip bomb costs at most `limit` bytes. Several concatenated members are one stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace ferry {

enum class GunzipResult { Ok, TooLarge, Corrupt };

// Appends the decompressed bytes of `in` (one or more gzip members) to `out`.
GunzipResult gunzip(std::string_view in, size_t limit, std::string& out);
// gzip-compresses `in` as one member (tests and, later, ForwardOutput).
std::string gzipCompress(std::string_view in, int level = 6);

}  // namespace ferry
