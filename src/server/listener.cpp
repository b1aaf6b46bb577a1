// ttmemd's listening socket; see listener.hpp.
#include "listener.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "ttmem/protocol.hpp"
#include "ttmem/socket_path.hpp"

namespace ttmem::server {

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

/// The system socket's directory: made root-owned 0755 if missing, refused if anyone else could write it.
void prepare_system_directory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0755) < 0 && errno != EEXIST)
    throw std::runtime_error(fmt::format("cannot create {}: {}; pick another --socket", dir, errno_text()));
  struct stat st {};
  if (lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode))
    throw std::runtime_error(fmt::format("{} is not a directory; remove it or pick another --socket", dir));
  if (st.st_uid != geteuid() || (st.st_mode & 022) != 0) {
    throw std::runtime_error(fmt::format(
        "{} is owned by uid {} with mode {:o}: another user could replace the socket; make it owned by "
        "uid {} and not group- or world-writable, or pick another --socket",
        dir, st.st_uid, st.st_mode & 07777, geteuid()));
  }
}

/// A private directory for a user's own server when it has no $XDG_RUNTIME_DIR.
void prepare_private_directory(const std::string& dir) {
  if (mkdir(dir.c_str(), 0700) < 0 && errno != EEXIST)
    throw std::runtime_error(fmt::format("cannot create {}: {}; pick another --socket", dir, errno_text()));
  struct stat st {};
  if (lstat(dir.c_str(), &st) < 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
      (st.st_mode & 077) != 0) {
    throw std::runtime_error(fmt::format(
        "{} exists and is not a private directory of yours (mode 0700); remove it or pick another --socket",
        dir));
  }
}

/// Anyone who can write the socket's directory can replace the socket (and make this server change what
/// they put there, or hijack its clients): refuse such a directory unless it is sticky (as /tmp is).
void check_directory(const std::string& dir) {
  struct stat st {};
  if (stat(dir.c_str(), &st) < 0)
    throw std::runtime_error(fmt::format("cannot use the directory {}: {}", dir, errno_text()));
  if (st.st_uid != geteuid() && st.st_uid != 0) {
    throw std::runtime_error(fmt::format(
        "{} belongs to another user (uid {}), who could replace the socket; pick a directory of yours or "
        "root's for --socket",
        dir, st.st_uid));
  }
  if ((st.st_mode & 022) != 0 && (st.st_mode & S_ISVTX) == 0) {
    throw std::runtime_error(fmt::format(
        "{} is writable by its group or by everyone (mode {:o}), who could replace the socket; remove that "
        "permission, make it sticky (as /tmp is), or pick another --socket",
        dir, st.st_mode & 07777));
  }
}

}  // namespace

Listener::Listener(const std::string& path, std::optional<gid_t> group, int activated_fd) : path_(path) {
  if (activated_fd >= 0) {  // systemd's: bound, with its mode and group (SocketMode=, SocketGroup=)
    fd_ = activated_fd;
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw std::runtime_error(
        fmt::format("socket path '{}' is empty or longer than {} bytes; pick a shorter --socket", path,
                    sizeof addr.sun_path - 1));
  }
  const std::string dir = path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
  if (path == kSystemSocketPath) {
    prepare_system_directory(dir);
  } else if (dir == "/tmp/ttmem-" + std::to_string(geteuid())) {
    prepare_private_directory(dir);
  }
  check_directory(dir.empty() ? std::string(".") : dir);
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw std::runtime_error(
          fmt::format("{} exists and is not a socket; remove it or pick another --socket", path));
    }
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(probe);
    if (live) {
      throw std::runtime_error(fmt::format(
          "a ttmemd is already listening on {} (the file is owned by uid {}); stop it first or pick another "
          "--socket",
          path, st.st_uid));
    }
    spdlog::info("replacing stale socket file {}", path);
    if (unlink(path.c_str()) < 0)
      throw std::runtime_error(fmt::format("cannot remove the stale socket {}: {}", path, errno_text()));
  }
  fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) throw std::runtime_error("socket: " + errno_text());
  // The file is born with mode 0660: no window in which it is open to others, no chmod by path.
  const mode_t old_umask = umask(0117);
  const int bound = bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  const int bind_errno = errno;
  umask(old_umask);
  if (bound < 0) {
    close(fd_);
    throw std::runtime_error(fmt::format("cannot bind {}: {}", path, std::strerror(bind_errno)));
  }
  // Everything after bind goes through a descriptor of the inode just made; a symlink or another file
  // swapped in at the path is seen for what it is and refused.
  const int node = open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC);
  struct stat made {};
  const bool ours =
      node >= 0 && fstat(node, &made) == 0 && S_ISSOCK(made.st_mode) && made.st_uid == geteuid();
  std::string why;
  if (!ours) {
    why = fmt::format("{} was replaced by something else right after it was made", path);
  } else if (group && fchownat(node, "", static_cast<uid_t>(-1), *group, AT_EMPTY_PATH) < 0) {
    why = fmt::format("cannot give {} to group {}: {}", path, *group, errno_text());
  }
  if (node >= 0) close(node);
  if (!why.empty()) {
    close(fd_);
    if (ours) unlink(path.c_str());
    throw std::runtime_error(why);
  }
  dev_ = made.st_dev;
  ino_ = made.st_ino;
  if (listen(fd_, 512) < 0) {
    const std::string e = errno_text();
    close(fd_);
    unlink(path.c_str());
    throw std::runtime_error("listen: " + e);
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

Listener::~Listener() {
  if (fd_ >= 0) close(fd_);
  if (spare_fd_ >= 0) close(spare_fd_);
  struct stat st {};
  // Only the inode this server made: another server may have taken the path over since.
  if (lstat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) unlink(path_.c_str());
}

Listener::Outcome Listener::accept(int* out) {
  for (;;) {
    const int fd = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd >= 0) {
      *out = fd;
      return Outcome::accepted;
    }
    switch (errno) {
      case EINTR:
      case ECONNABORTED:
      case EPROTO:
        continue;
      case EAGAIN:
        return Outcome::none;
      case EMFILE:
      case ENFILE: {
        // Give up the spare descriptor to take the connection off the queue and tell it why.
        if (spare_fd_ < 0) return Outcome::exhausted;
        close(spare_fd_);
        spare_fd_ = -1;
        const int waiting = accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (waiting >= 0) {
          std::vector<std::uint8_t> frame;
          proto::encode(frame, proto::ErrorMessage{proto::ErrorCode::limit_exceeded,
                                                   "ttmemd has no file descriptor left for a new connection "
                                                   "(raise its limit with ulimit -n or LimitNOFILE=); try "
                                                   "again later"});
          refuse(waiting, frame);
        }
        spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
        return waiting >= 0 && spare_fd_ >= 0 ? Outcome::refused : Outcome::exhausted;
      }
      default:  // ENOBUFS, ENOMEM: the kernel is short; back off
        spdlog::warn("accept: {}", errno_text());
        return Outcome::exhausted;
    }
  }
}

void Listener::refuse(int fd, const std::vector<std::uint8_t>& frame) {
  [[maybe_unused]] auto n = ::send(fd, frame.data(), frame.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  close(fd);
}

}  // namespace ttmem::server
