// /proc and pidfd helpers; see process_info.hpp.
#include "process_info.hpp"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif

namespace ttmem::server {

std::optional<ProcessInfo> read_process_info(pid_t pid) {
  const std::string base = "/proc/" + std::to_string(pid);
  std::ifstream stat(base + "/stat");
  if (!stat) return std::nullopt;
  std::string line;
  std::getline(stat, line);
  // comm may hold spaces and parentheses: fields resume after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  ProcessInfo info;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) info.start_time = std::stoull(field);
  }
  std::ifstream comm(base + "/comm");
  std::getline(comm, info.name);
  if (info.name.empty()) info.name = line.substr(line.find('(') + 1, close - line.find('(') - 1);
  return info;
}

int open_pidfd(pid_t pid) {
  const long fd = syscall(SYS_pidfd_open, pid, 0);
  if (fd < 0) return -1;
  fcntl(static_cast<int>(fd), F_SETFD, FD_CLOEXEC);
  return static_cast<int>(fd);
}

}  // namespace ttmem::server
