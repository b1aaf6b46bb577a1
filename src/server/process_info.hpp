// What /proc says about a peer process, and a pidfd to learn of its death at once.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

namespace ttmem::server {

struct ProcessInfo {
  std::string name;              ///< /proc/PID/comm
  std::uint64_t start_time = 0;  ///< /proc/PID/stat field 22 (clock ticks since boot)
};

/// nullopt when the process does not exist (any more).
std::optional<ProcessInfo> read_process_info(pid_t pid);

/// A pidfd for pid (readable when it exits), or -1 when pidfd_open is unavailable.
int open_pidfd(pid_t pid);

}  // namespace ttmem::server
