// systemd socket activation (sd_listen_fds(3)'s protocol, without libsystemd): when systemd made the
// listening socket (deploy/systemd/ttmemd.socket) it passes it as descriptor 3 with LISTEN_PID and
// LISTEN_FDS set, and ttmemd serves that socket instead of binding its own.
#pragma once

#include <optional>
#include <string>

namespace ttmem::server {

struct ActivatedSocket {
  int fd = -1;
  std::string path;  ///< the socket's path, from the socket itself
};

/// The socket systemd passed to this process, if any (the variables are then unset, so children do not
/// take it for theirs). Throws std::runtime_error when the variables are set for this process but what
/// they pass is not one listening Unix stream socket.
std::optional<ActivatedSocket> take_activated_socket();

}  // namespace ttmem::server
