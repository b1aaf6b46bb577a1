// Bank policy on top of the free list: N banks of one memory type allocated in lockstep. A buffer gets ONE
// address valid in every bank it spans; the free list works in a single address space standing for all
// banks and reserves `size_per_bank` there.
//
//   bank 0        bank 1        ...  bank N-1
//   +---------+   +---------+        +---------+  <- address + size_per_bank
//   | page 0  |   | page 1  |        | page N-1|
//   | page N  |   | page N+1|        |   ...   |
//   +---------+   +---------+        +---------+  <- address (+ bank offset)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "allocator/free_list.hpp"
#include "ttmem/runtime/statistics.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

/// How a buffer is spread over banks.
struct BankLayout {
  std::uint32_t num_banks = 0;  ///< Banks the buffer spans (all banks, or its shard cores).
  std::uint64_t page_size = 0;
  std::uint64_t aligned_page_size = 0;
  std::uint64_t size_per_bank = 0;      ///< TT-Metal's size_per_bank: pages per bank x aligned page.
  std::uint64_t reserved_per_bank = 0;  ///< What the free list takes in every bank (size_per_bank rounded).
};

/// True when interleaved buffers can use this many banks: a power of two or one of TT-Metal's
/// banks with a dedicated modulo implementation.
bool is_supported_bank_count(std::uint32_t num_banks);

/// ceil(num_pages / num_banks) * round_up(page_size, alignment): TT-Metal's size_per_bank rule.
std::uint64_t size_per_bank(std::uint64_t size, std::uint64_t page_size, std::uint32_t num_banks,
                            std::uint32_t alignment);

class BankManager {
 public:
  /// Pages are aligned to the memory type's alignment; the free list hands out multiples of the
  /// allocation granule (TT-Metal builds every bank manager's free list with the DRAM alignment).
  struct Alignments {
    std::uint32_t page = 0;
    std::uint32_t allocation = 0;
  };
  /// Banks of `type` whose managed address space is [base, base + size_bytes) in every bank.
  /// Throws Error(invalid_bank_count) when interleaved buffers are allowed and the count is unsupported.
  BankManager(BufferType type, std::vector<std::int64_t> bank_offsets, DeviceAddr base,
              std::uint64_t size_bytes, Alignments alignments, bool interleaved_allowed);

  /// Layout of a buffer: interleaved over every bank, or sharded over `num_shards` banks.
  /// Throws Error(invalid_argument) for a size that is not a whole number of pages, too many shards, or an
  /// interleaved buffer where only sharded ones are allowed.
  BankLayout layout(std::uint64_t size, std::uint64_t page_size,
                    std::optional<std::uint32_t> num_shards) const;

  /// Reserves layout.size_per_bank; throws Error(out_of_memory) with TT-Metal's message plus free figures.
  DeviceAddr allocate(std::uint64_t size, const BankLayout& layout, Placement placement);
  /// Reserves exactly [address, address + size_per_bank); false if any of it is taken.
  bool allocate_at(DeviceAddr address, std::uint64_t size_per_bank);
  bool deallocate(DeviceAddr address);
  void deallocate_all();
  /// TT-Metal's shrink_size / reset_size (see FreeList::shrink).
  void shrink_size(std::uint64_t bytes, bool bottom_up) { free_list_.shrink(bytes, bottom_up); }
  void reset_size() { free_list_.reset_size(); }

  BufferType type() const { return type_; }
  std::uint32_t num_banks() const { return static_cast<std::uint32_t>(bank_offsets_.size()); }
  std::uint64_t bank_size() const { return free_list_.size(); }
  std::int64_t bank_offset(std::uint32_t bank_id) const { return bank_offsets_.at(bank_id); }
  /// The memory type's page alignment (TT-Metal's allocator->get_alignment(type)).
  std::uint32_t alignment() const { return page_alignment_; }
  const FreeList& free_list() const { return free_list_; }
  Statistics statistics() const;

  /// TT-Metal's out-of-memory message for a request that did not fit.
  std::string out_of_memory_message(std::uint64_t size, const BankLayout& layout) const;

 private:
  BufferType type_;
  std::vector<std::int64_t> bank_offsets_;
  std::uint32_t page_alignment_;
  bool interleaved_allowed_;
  FreeList free_list_;
};

}  // namespace ttmem::emu
