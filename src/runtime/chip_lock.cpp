// Inter-process chip locks; see chip_lock.hpp.
#include "chip_lock.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string_view>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

bool waiting_allowed() {
  const char* v = std::getenv("TTMEM_EMU_CHIP_WAIT");
  return !v || (std::string_view(v) != "0" && std::string_view(v) != "no");
}

/// "TID: 12, PID: 34" as the holder wrote it, or what is known when it wrote nothing yet.
std::string holder_of(int fd) {
  char text[64] = {};
  const ssize_t n = pread(fd, text, sizeof text - 1, 0);
  unsigned long tid = 0, pid = 0;
  if (n > 0 && std::sscanf(text, "%lu %lu", &tid, &pid) == 2)
    return fmt::format("TID: {}, PID: {}", tid, pid);
  return "TID: 0, PID: 0";
}

}  // namespace

std::string ChipLock::lock_name(std::uint32_t chip) {
  return fmt::format("CHIP_IN_USE_{}_PCIe", chip);
}

std::string ChipLock::directory() {
  const char* dir = std::getenv("TTMEM_EMU_CHIP_DIR");
  return dir && *dir ? dir : "/dev/shm";
}

ChipLock::ChipLock(std::uint32_t chip) {
  const std::string path = fmt::format("{}/ttmem-emu.{}", directory(), lock_name(chip));
  // Every user's processes share the machine's chips, as UMD's lock files do (created 0666).
  const mode_t old_umask = umask(0);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  umask(old_umask);
  if (fd_ < 0) {
    throw Error(
        ErrorCode::device_busy,
        fmt::format("cannot open chip {}'s lock {}: {} (set TTMEM_EMU_CHIP_DIR to a writable directory)",
                    chip, path, std::strerror(errno)));
  }
  if (flock(fd_, LOCK_EX | LOCK_NB) != 0) {
    const std::string holder = holder_of(fd_);
    if (!waiting_allowed()) {
      ::close(fd_);
      fd_ = -1;
      throw Error(
          ErrorCode::device_busy,
          fmt::format("chip {} is in use: lock '{}' is held by thread {} (TT-Metal would wait for it; "
                      "TTMEM_EMU_CHIP_WAIT=0 refuses instead)",
                      chip, lock_name(chip), holder));
    }
    // tt-umd's RobustMutex::lock: one line, then wait as long as it takes.
    std::cerr << fmt::format("UMD | Waiting for lock '{}' which is currently held by thread {}\n",
                             lock_name(chip), holder)
              << std::flush;
    int rc;
    do {
      rc = flock(fd_, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
      const int err = errno;
      ::close(fd_);
      fd_ = -1;
      throw Error(ErrorCode::device_busy,
                  fmt::format("waiting for chip {}'s lock failed: {}", chip, std::strerror(err)));
    }
  }
  const std::string me =
      fmt::format("{} {}\n", static_cast<long>(syscall(SYS_gettid)), static_cast<long>(getpid()));
  if (ftruncate(fd_, 0) == 0) {
    [[maybe_unused]] const ssize_t w = pwrite(fd_, me.data(), me.size(), 0);
  }
}

ChipLock::~ChipLock() {
  if (fd_ < 0) return;
  if (ftruncate(fd_, 0) != 0) {
    // Nothing to do: the next holder overwrites the owner line anyway.
  }
  flock(fd_, LOCK_UN);
  ::close(fd_);
}

}  // namespace ttmem::emu
