// Where the free space of a device's memory type is, rebuilt from the live allocations' addresses and
// per-bank sizes. TT-Metal allocates an interleaved type in lockstep — one address valid in every bank —
// so one bank's address map stands for all of them; sharded buffers take the same range of the lockstep
// space too. Pre-allocated (non-owning) buffers take nothing from the allocator and are left out. Circular
// buffers are not the allocator's: they are left out of the free figures (as TT-Metal's allocator leaves them
// out) and shown apart in the map.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "registry.hpp"

namespace ttmem::model {

/// One block of the address map of a bank: free, one buffer, or several overlapping ones (two processes
/// that each think they own the device).
struct SpaceBlock {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  BlockUse use = BlockUse::free;
  /// The buffer (buffer, circular_buffer); valid until the registry changes.
  const AllocationRecord* record = nullptr;
  std::uint32_t buffers = 0;  ///< buffers over this block (overlap: 2 or more)
};

struct FreeSpaceFigures {
  bool known =
      false;  ///< the device announced this type's banks (DEVICE_OPEN); nothing else is set otherwise
  std::uint64_t base = 0;
  std::uint64_t bank_size = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t free_per_bank = 0;
  std::uint64_t largest_free_block = 0;  ///< per bank
  std::uint64_t free_blocks = 0;
  std::uint64_t unplaced_buffers = 0;   ///< live buffers that carried no per-bank size (placed nowhere)
  std::uint64_t outside_buffers = 0;    ///< buffers whose range is not inside [base, base + bank_size)
  std::uint64_t overlapping_bytes = 0;  ///< per bank, held by more than one buffer at once
  /// 1 - largest / free: 0 when the free space is one block (or none), toward 1 when it is in crumbs.
  double fragmentation() const {
    return free_per_bank == 0
               ? 0.0
               : 1.0 - static_cast<double>(largest_free_block) / static_cast<double>(free_per_bank);
  }
};

struct FreeSpaceMap {
  FreeSpaceFigures figures;
  std::vector<SpaceBlock> blocks;  ///< by address, covering [base, base + bank_size) when known
  /// L1 only, when asked for: every circular buffer, by address. Programs' CBs may share addresses (only
  /// one program runs at a time), so they are not part of the blocks above.
  std::vector<SpaceBlock> circular_buffers;
};

/// Whether a live record takes space from the allocator of its memory type (pre-allocated buffers and
/// circular buffers do not): what free space, holders and the map count.
inline bool takes_allocator_space(const AllocationRecord& r) {
  return r.kind() != AllocKind::preallocated && r.kind() != AllocKind::circular_buffer;
}

/// The free space of `type` on `device` (a radix sort of the device's live buffers of that type), and its
/// free blocks by address when `gaps` is given.
FreeSpaceFigures free_space(const Registry& registry, std::uint16_t device, BufferType type,
                            std::vector<views::FreeBlock>* gaps = nullptr);
/// free_space() answers kept until the device's type changes (its change count moves): a stats query over
/// an idle device costs no scan.
class FreeSpaceCache {
 public:
  const FreeSpaceFigures& get(const Registry& registry, std::uint16_t device, BufferType type);

 private:
  struct Entry {
    std::uint64_t changes = 0;
    FreeSpaceFigures figures;
  };
  std::map<std::uint32_t, Entry> entries_;  // by device << 8 | type
};

/// The same, with the blocks of the map; `with_cbs` lists the circular buffers too (L1 only).
FreeSpaceMap free_space_map(const Registry& registry, std::uint16_t device, BufferType type, bool with_cbs);

}  // namespace ttmem::model
