// Small libuv helpers shared by the inputs' connection code.
#pragma once

#include <sys/ioctl.h>

#include <uv.h>

namespace ferry {

// True when the kernel still holds bytes the peer sent that we have not read (FIONREAD).
// A graceful stop reads until this is false: "what clients already sent".
inline bool hasUnreadBytes(uv_tcp_t* tcp) {
  uv_os_fd_t fd;
  int pending = 0;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(tcp), &fd) != 0) return false;
  if (ioctl(fd, FIONREAD, &pending) != 0) return false;
  return pending > 0;
}

}  // namespace ferry
