// Allocator statistics and block tables, per bank manager (i.e. per memory type), as TT-Metal reports them.
#pragma once

#include <cstdint>
#include <vector>

#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

/// Figures for one bank (all banks of a manager are in lockstep, so one bank stands for all).
struct Statistics {
  std::uint64_t total_allocatable_bytes = 0;
  std::uint64_t total_allocated_bytes = 0;
  std::uint64_t total_free_bytes = 0;
  std::uint64_t largest_free_block_bytes = 0;
  std::vector<DeviceAddr> largest_free_block_addrs;  ///< Every free block of the largest size.
  std::uint32_t num_banks = 0;
};

/// One row of `dump_memory_blocks`: a block of the free list in one bank's address space.
struct MemoryBlock {
  DeviceAddr address = 0;
  std::uint64_t size = 0;
  bool allocated = false;
};

}  // namespace ttmem::emu
