// Peer identity, /proc and pidfd; see peer.hpp.
#include "peer.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77  // Linux 6.5
#endif

namespace ttmem::server {

namespace {

/// Reads a small /proc file whole (plain syscalls: errno tells a missing process from a descriptor
/// shortage). Empty on failure.
std::string read_small_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[4096];
  std::string out;
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n > 0) {
      out.append(buf, static_cast<std::size_t>(n));
      if (out.size() < 64 * 1024) continue;
    } else if (n < 0 && errno == EINTR) {
      continue;
    }
    break;
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return out;
}

}  // namespace

std::optional<ProcessInfo> read_process_info(pid_t pid) {
  if (pid <= 0) {
    errno = ESRCH;
    return std::nullopt;
  }
  const std::string base = "/proc/" + std::to_string(pid);
  const std::string line = read_small_file(base + "/stat");
  if (line.empty()) return std::nullopt;
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const auto close = line.rfind(')');
  const auto open = line.find('(');
  if (close == std::string::npos || open == std::string::npos || close + 2 > line.size()) {
    errno = EINVAL;
    return std::nullopt;
  }
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  ProcessInfo info;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 3) info.exited = field == "Z" || field == "X" || field == "x";
    if (i == 22) info.start_time = std::strtoull(field.c_str(), nullptr, 10);
  }
  const std::string status = read_small_file(base + "/status");
  if (status.empty()) return std::nullopt;
  std::istringstream lines(status);
  for (std::string key; lines >> key;) {
    if (key == "Uid:") {
      std::uint64_t real = 0, effective = 0;
      lines >> real >> effective;
      info.euid = static_cast<uid_t>(effective);
      break;
    }
    std::string skip;
    std::getline(lines, skip);
  }
  std::string comm = read_small_file(base + "/comm");
  if (!comm.empty() && comm.back() == '\n') comm.pop_back();
  info.name = comm.empty() ? line.substr(open + 1, close - open - 1) : comm;
  // Two Python programs are both "python3" to comm: the command line tells them apart.
  constexpr std::size_t kMaxCommand = 1024;
  std::string cmdline = read_small_file(base + "/cmdline");
  while (!cmdline.empty() && cmdline.back() == '\0') cmdline.pop_back();
  if (cmdline.size() > kMaxCommand) cmdline.resize(kMaxCommand);
  for (char& ch : cmdline) {
    if (ch == '\0' || ch == '\n') ch = ' ';
  }
  info.command = std::move(cmdline);
  return info;
}

int open_pidfd(pid_t pid) {
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return -1;
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(fd);
}

bool pidfd_exited(int pidfd) {
  pollfd p{pidfd, POLLIN, 0};
  return ::poll(&p, 1, 0) > 0;
}

PeerIdentity identify_peer(int fd) {
  PeerIdentity id;
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return id;
  id.pid = cred.pid;
  id.uid = cred.uid;
  id.gid = cred.gid;
  if (id.pid <= 0) return id;  // another pid namespace: nothing here names that process
  // The kernel's own pidfd of the connecting process (no race with pid reuse); pidfd_open by number where
  // the kernel is older, checked below against the credentials.
  int pidfd = -1;
  len = sizeof pidfd;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &len) < 0 || pidfd < 0) {
    pidfd = -1;
    if (errno != ESRCH) pidfd = open_pidfd(id.pid);
  } else {
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
  }
  if (pidfd < 0 && (errno == EMFILE || errno == ENFILE)) id.short_of_descriptors = true;
  id.pidfd = pidfd;
  const auto info = read_process_info(id.pid);
  if (!info && (errno == EMFILE || errno == ENFILE)) id.short_of_descriptors = true;
  // /proc describes the connecting process only if that process is still alive after the read (a pid is
  // not reused before its process is reaped) and its effective uid is the one that connected.
  if (!info || info->exited || info->euid != id.uid) return id;
  if (pidfd >= 0 && pidfd_exited(pidfd)) return id;
  id.start_time = info->start_time;
  id.name = info->name;
  id.command = info->command;
  id.alive = true;
  return id;
}

}  // namespace ttmem::server
