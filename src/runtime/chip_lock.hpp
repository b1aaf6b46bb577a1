// The emulated machine's chips are held like TT-Metal's: UMD takes a CHIP_IN_USE_<id>_PCIe inter-process
// lock per chip when it opens it (tt-umd lock_manager.cpp, robust_mutex.cpp), so a second process that
// opens a chip in use logs "Waiting for lock 'CHIP_IN_USE_0_PCIe' which is currently held by thread TID:
// .., PID: .." and waits until the first lets go -- or dies: the lock does not outlive its holder.
//
// Here the lock is an flock() on a file per chip in the emulated machine's directory (TTMEM_EMU_CHIP_DIR,
// /dev/shm by default), released by the kernel when the holder exits however it exits.
#pragma once

#include <cstdint>
#include <string>

namespace ttmem::emu {

class ChipLock {
 public:
  /// Takes chip `chip`'s lock. Held by another process: prints TT-Metal's waiting line to stderr and waits
  /// (TTMEM_EMU_CHIP_WAIT=0: throws Error(device_busy) naming the holder instead). Throws
  /// Error(device_busy) when the lock file cannot be made, with the path and the reason.
  explicit ChipLock(std::uint32_t chip);
  ChipLock(const ChipLock&) = delete;
  ChipLock& operator=(const ChipLock&) = delete;
  ~ChipLock();

  /// TT-Metal's name of the lock ("CHIP_IN_USE_3_PCIe").
  static std::string lock_name(std::uint32_t chip);
  /// Where the emulated machine keeps its chip locks.
  static std::string directory();

 private:
  int fd_ = -1;
};

}  // namespace ttmem::emu
