// Who is on the other end of a connection: the peer's credentials and a pidfd taken when it connected,
// and what /proc says of a process. Identity is bound at accept, so a connection handed to another
// process, or a pid reused by someone else, cannot borrow a live process's records.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ttmem::server {

struct ProcessInfo {
  std::string name;              ///< /proc/PID/comm
  std::string command;           ///< /proc/PID/cmdline, arguments joined by spaces (at most 1 KiB)
  std::uint64_t start_time = 0;  ///< /proc/PID/stat field 22 (clock ticks since boot)
  uid_t euid = 0;                ///< /proc/PID/status Uid, effective
  bool exited = false;           ///< a zombie (Z) or dead (X): gone, though not yet reaped
};

/// nullopt when there is no such process in this pid namespace.
std::optional<ProcessInfo> read_process_info(pid_t pid);

/// A pidfd for pid (readable once it exits), or -1 (errno set: ENOSYS on kernels < 5.3, ESRCH, EMFILE).
int open_pidfd(pid_t pid);
/// Whether the process behind a pidfd has exited.
bool pidfd_exited(int pidfd);

struct PeerIdentity {
  pid_t pid = 0;  ///< from SO_PEERCRED; 0 when the peer is in a pid namespace this server cannot see
  uid_t uid = 0;  ///< effective uid at connect
  gid_t gid = 0;
  int pidfd = -1;                ///< of the process that connected, or -1 (no pidfd support, or no fd left)
  std::uint64_t start_time = 0;  ///< of that process, read while it was alive
  std::string name;              ///< from /proc; empty when unknown
  std::string command;           ///< the command line, from /proc; empty when unknown
  bool alive = false;            ///< verified alive, and /proc matched it, at accept
  bool short_of_descriptors = false;  ///< no descriptor was left to look (not alive, yet not known dead)
};

/// Reads the identity of a connected Unix socket's peer. Never throws; an unknown peer has alive=false.
PeerIdentity identify_peer(int fd);

}  // namespace ttmem::server
