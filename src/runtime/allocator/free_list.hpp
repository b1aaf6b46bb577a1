// First-fit free list over one bank's address space (TT-Metal's algorithms/free_list_opt semantics):
// sizes rounded up to the alignment, bottom-up takes the lowest block that fits, top-down carves from
// the end of the highest block that fits, frees coalesce with both neighbours, unknown frees are ignored.
// Not thread-safe: the owning Allocator serialises access.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "ttmem/runtime/statistics.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

/// Half-open address range [begin, end).
struct AddressRange {
  DeviceAddr begin = 0;
  DeviceAddr end = 0;
  std::uint64_t size() const { return end - begin; }
  bool operator==(const AddressRange&) const = default;
};

class FreeList {
 public:
  /// Manages [base, base + size_bytes); base and size must be multiples of alignment.
  FreeList(DeviceAddr base, std::uint64_t size_bytes, std::uint32_t alignment);

  /// Size actually reserved for a request: rounded up to the alignment, at least one alignment unit.
  std::uint64_t aligned_size(std::uint64_t size_bytes) const;

  /// First-fit allocation; nullopt when no free block is large enough. With address_limit, a result
  /// below it is refused (TT-Metal's interleaved L1 limit).
  std::optional<DeviceAddr> allocate(std::uint64_t size_bytes, Placement placement,
                                     DeviceAddr address_limit = 0);
  /// Reserves exactly [address, address + aligned size) if that range is wholly free.
  std::optional<DeviceAddr> allocate_at(DeviceAddr address, std::uint64_t size_bytes);
  /// Frees the block that starts at address; returns false (and changes nothing) for an unknown address.
  bool deallocate(DeviceAddr address);
  /// Back to one free block (undoing any shrink).
  void clear();
  /// TT-Metal's FreeListOpt::shrink_size: the lowest `bytes` of what is left become unusable (bottom-up
  /// only). Throws Error(invalid_state) with TT-Metal's text when that cuts into an allocated block, and
  /// Error(invalid_argument) for a size beyond the managed space or a top-down shrink.
  void shrink(std::uint64_t bytes, bool bottom_up = true);
  /// TT-Metal's reset_size: gives back everything shrink took.
  void reset_size();
  std::uint64_t shrunk_bytes() const { return shrunk_; }

  Statistics statistics() const;
  std::optional<DeviceAddr> lowest_occupied_address() const;
  std::vector<AddressRange> free_ranges() const;  ///< Sorted by address.
  std::vector<MemoryBlock> blocks() const;        ///< Every block, free and allocated, by address.
  /// TT-Metal's FreeListOpt::get_memory_block_table: a row per block in block-id order, each with
  /// blockID, address (relative to the managed space's start, as TT-Metal keeps it), size, prevID, nextID
  /// (-1: none) and allocated ("yes"/"no"). Block ids are handed out and reused as FreeListOpt's meta blocks
  /// are: a split gives the left then the right free piece a new id (the last freed one first), a merge
  /// frees the absorbed block's id.
  std::vector<std::map<std::string, std::string>> block_table() const;
  std::size_t num_allocated_blocks() const { return allocated_.size(); }
  std::optional<std::uint64_t> allocated_size(DeviceAddr address) const;

  DeviceAddr base() const { return base_ + shrunk_; }
  DeviceAddr end() const { return base_ + shrunk_ + size_; }
  std::uint64_t size() const { return size_; }
  std::uint32_t alignment() const { return alignment_; }

 private:
  /// A block's size and TT-Metal's id for it, kept with the block so the id costs no lookup of its own.
  struct Block {
    std::uint64_t size = 0;
    std::uint32_t id = 0;
  };
  void take(std::map<DeviceAddr, Block>::iterator block, DeviceAddr start, std::uint64_t size);
  std::uint32_t new_block_id();
  void free_block_id(std::uint32_t id) { free_ids_.push_back(id); }

  DeviceAddr base_;
  std::uint64_t size_;
  std::uint32_t alignment_;
  std::map<DeviceAddr, Block> free_;                 // by start, never adjacent (coalesced)
  std::unordered_map<DeviceAddr, Block> allocated_;  // by start
  std::uint64_t allocated_bytes_ = 0;
  std::uint64_t shrunk_ = 0;             // bytes at the bottom taken away by shrink(); size_ excludes them
  std::vector<std::uint32_t> free_ids_;  // ids of merged-away blocks, reused last first
  std::uint32_t next_id_ = 0;
};

}  // namespace ttmem::emu
