// Lockstep bank policy; see bank_manager.hpp.
#include "allocator/bank_manager.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>

#include "ttmem/runtime/error.hpp"
#include "ttmem/units.hpp"

namespace ttmem::emu {

bool is_supported_bank_count(std::uint32_t num_banks) {
  // validate_num_banks (bank_manager.cpp, docs/runtime.md names the version read).
  static constexpr std::array<std::uint32_t, 18> kWithModulo = {7,  12,  20,  48,  56,  63,  70,  72,  80,
                                                                94, 108, 110, 117, 120, 124, 126, 130, 140};
  const bool pow2 = num_banks != 0 && (num_banks & (num_banks - 1)) == 0;
  return pow2 || std::find(kWithModulo.begin(), kWithModulo.end(), num_banks) != kWithModulo.end();
}

std::uint64_t size_per_bank(std::uint64_t size, std::uint64_t page_size, std::uint32_t num_banks,
                            std::uint32_t alignment) {
  if (page_size == 0 || num_banks == 0) return 0;
  const std::uint64_t num_pages = size / page_size;
  const std::uint64_t pages_per_bank = num_pages == 0 ? 0 : 1 + (num_pages - 1) / num_banks;
  return saturating_mul(pages_per_bank, saturating_align_up(page_size, alignment));
}

BankManager::BankManager(BufferType type, std::vector<std::int64_t> bank_offsets, DeviceAddr base,
                         std::uint64_t size_bytes, Alignments alignments, bool interleaved_allowed)
    : type_(type),
      bank_offsets_(std::move(bank_offsets)),
      page_alignment_(alignments.page),
      interleaved_allowed_(interleaved_allowed),
      free_list_(base, size_bytes, alignments.allocation) {
  if (interleaved_allowed_ && !is_supported_bank_count(num_banks())) {
    throw Error(
        ErrorCode::invalid_bank_count,
        fmt::format("Invalid number of memory banks {} for {}. Num banks must be power of 2 or have a "
                    "dedicated modulo implementation",
                    num_banks(), to_string(type_)));
  }
}

BankLayout BankManager::layout(std::uint64_t size, std::uint64_t page_size,
                               std::optional<std::uint32_t> num_shards) const {
  if (page_size == 0) throw Error(ErrorCode::invalid_argument, "page size must be greater than 0");
  if (size % page_size != 0) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("buffer size {} B is not a multiple of the page size {} B", size, page_size));
  }
  std::uint32_t banks = num_banks();
  if (num_shards) {
    if (*num_shards == 0 || *num_shards > num_banks()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("Expected number of shards {} to be between 1 and the number of {} banks {}",
                              *num_shards, to_string(type_), num_banks()));
    }
    banks = *num_shards;
  } else if (!interleaved_allowed_) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} buffers must be sharded (give shard cores)", to_string(type_)));
  }
  BankLayout out;
  out.num_banks = banks;
  out.page_size = page_size;
  out.aligned_page_size = saturating_align_up(page_size, alignment());
  out.size_per_bank = emu::size_per_bank(size, page_size, banks, alignment());
  out.reserved_per_bank = free_list_.aligned_size(out.size_per_bank);
  return out;
}

std::string BankManager::out_of_memory_message(std::uint64_t size, const BankLayout& layout) const {
  const Statistics s = free_list_.statistics();
  return fmt::format(
      "Out of Memory: Not enough space to allocate {} B {} buffer across {} banks, where each bank needs to "
      "store {} B, but bank size is {} B (allocated: {} B, free: {} B, largest free block: {} B)",
      size, to_string(type_), layout.num_banks, layout.size_per_bank, bank_size(), s.total_allocated_bytes,
      s.total_free_bytes, s.largest_free_block_bytes);
}

DeviceAddr BankManager::allocate(std::uint64_t size, const BankLayout& layout, Placement placement) {
  auto address = free_list_.allocate(layout.size_per_bank, placement);
  if (!address) {
    const Statistics s = free_list_.statistics();
    throw Error(out_of_memory_message(size, layout), {size, layout.num_banks, layout.size_per_bank,
                                                      s.total_free_bytes, s.largest_free_block_bytes});
  }
  return *address;
}

bool BankManager::allocate_at(DeviceAddr address, std::uint64_t per_bank) {
  return free_list_.allocate_at(address, per_bank).has_value();
}

bool BankManager::deallocate(DeviceAddr address) {
  return free_list_.deallocate(address);
}

void BankManager::deallocate_all() {
  free_list_.clear();
}

Statistics BankManager::statistics() const {
  Statistics s = free_list_.statistics();
  s.num_banks = num_banks();
  return s;
}

}  // namespace ttmem::emu
