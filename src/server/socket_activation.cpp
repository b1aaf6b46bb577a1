// See socket_activation.hpp.
#include "socket_activation.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

namespace ttmem::server {

std::optional<ActivatedSocket> take_activated_socket() {
  constexpr int kFirstFd = 3;  // SD_LISTEN_FDS_START
  const char* pid = std::getenv("LISTEN_PID");
  const char* fds = std::getenv("LISTEN_FDS");
  if (!pid || !fds || std::strtol(pid, nullptr, 10) != getpid()) return std::nullopt;
  const long count = std::strtol(fds, nullptr, 10);
  unsetenv("LISTEN_PID");
  unsetenv("LISTEN_FDS");
  unsetenv("LISTEN_FDNAMES");
  if (count != 1)
    throw std::runtime_error(
        "systemd passed " + std::string(fds) +
        " sockets (LISTEN_FDS); ttmemd serves one: give its .socket unit one ListenStream=");
  int type = 0, listening = 0;
  socklen_t len = sizeof type;
  sockaddr_un addr{};
  socklen_t addr_len = sizeof addr;
  const bool stream = getsockopt(kFirstFd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
  len = sizeof listening;
  const bool accepting = getsockopt(kFirstFd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening;
  const bool unix_socket = getsockname(kFirstFd, reinterpret_cast<sockaddr*>(&addr), &addr_len) == 0 &&
                           addr.sun_family == AF_UNIX && addr.sun_path[0] != '\0';
  if (!stream || !accepting || !unix_socket)
    throw std::runtime_error(
        "the socket systemd passed (descriptor 3) is not a listening Unix stream socket with a path: use "
        "ListenStream=/run/ttmem/ttmemd.sock in ttmemd.socket");
  const int flags = fcntl(kFirstFd, F_GETFL);
  fcntl(kFirstFd, F_SETFL, flags | O_NONBLOCK);
  fcntl(kFirstFd, F_SETFD, FD_CLOEXEC);
  return ActivatedSocket{kFirstFd, std::string(addr.sun_path)};
}

}  // namespace ttmem::server
