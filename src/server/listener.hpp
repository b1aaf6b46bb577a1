// ttmemd's listening socket: made safely on its path, and accepting without ever spinning.
//
// * The file is created with its final mode (umask at bind), its group set through a descriptor of the
//   very inode bound (never by path, so a swapped-in symlink changes nothing), and at exit it is unlinked
//   only if the path still names that inode (a second server that took the path over keeps it).
// * A stale socket is replaced; a live server or a non-socket is never clobbered; the default directory
//   (/run/ttmem) is made root-owned and refused if someone else could write it.
// * When the process runs out of descriptors, a spare one is given up to accept and refuse the waiting
//   connection with an error, so the listener never stays readable with nobody served (no busy loop).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ttmem::server {

class Listener {
 public:
  /// Binds and listens. Throws std::runtime_error with a message that says what to do. With
  /// `activated_fd` (a socket systemd made and passed), serves that one: its file is systemd's, left as is.
  Listener(const std::string& path, std::optional<gid_t> group, int activated_fd = -1);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  int fd() const { return fd_; }
  const std::string& path() const { return path_; }

  enum class Outcome : std::uint8_t {
    accepted,   ///< *fd is a new connection
    none,       ///< nobody waiting
    refused,    ///< one connection was refused for want of descriptors
    exhausted,  ///< no descriptor at all: stop accepting for a while
  };
  Outcome accept(int* fd);
  /// Sends `frame` (an ERROR) on a connection that will not be served, then closes it.
  static void refuse(int fd, const std::vector<std::uint8_t>& frame);

 private:
  std::string path_;
  int fd_ = -1;
  int spare_fd_ = -1;
  dev_t dev_ = 0;
  ino_t ino_ = 0;
};

}  // namespace ttmem::server
