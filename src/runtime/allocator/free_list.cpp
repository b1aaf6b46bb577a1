// First-fit free list; see free_list.hpp for the contract.
#include "allocator/free_list.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cassert>

#include "ttmem/runtime/error.hpp"
#include "ttmem/units.hpp"

namespace ttmem::emu {

FreeList::FreeList(DeviceAddr base, std::uint64_t size_bytes, std::uint32_t alignment)
    : base_(base), size_(size_bytes), alignment_(alignment) {
  assert(alignment_ > 0 && base_ % alignment_ == 0 && size_ % alignment_ == 0);
  clear();
}

std::uint64_t FreeList::aligned_size(std::uint64_t size_bytes) const {
  return saturating_align_up(std::max<std::uint64_t>(size_bytes, alignment_), alignment_);
}

void FreeList::clear() {
  size_ += shrunk_;
  shrunk_ = 0;
  free_.clear();
  allocated_.clear();
  allocated_bytes_ = 0;
  if (size_ > 0) free_.emplace(base_, size_);
}

void FreeList::shrink(std::uint64_t bytes, bool bottom_up) {
  if (bytes == 0) return;
  if (!bottom_up)
    throw Error(ErrorCode::invalid_argument, "Shrinking from the top is currently not supported");
  if (bytes > size_) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("Shrink size {} must be smaller than max size {}", bytes, size_));
  }
  // TT-Metal reports the shrunk address relative to the allocator's offset.
  const DeviceAddr new_base = base() + bytes;
  for (const auto& [start, size] : allocated_) {
    if (start < new_base) {
      throw Error(ErrorCode::invalid_state,
                  fmt::format("Shrink size {} cuts into allocated block at address {}", new_base - base_,
                              start - base_));
    }
  }
  // Nothing is allocated below new_base, so the first free block starts at base() and reaches past it.
  auto first = free_.begin();
  const std::uint64_t left = first->second - bytes;
  free_.erase(first);
  if (left > 0) free_.emplace(new_base, left);
  size_ -= bytes;
  shrunk_ += bytes;
}

void FreeList::reset_size() {
  if (shrunk_ == 0) return;
  DeviceAddr start = base_;
  std::uint64_t size = shrunk_;
  auto next = free_.find(base_ + shrunk_);
  if (next != free_.end()) {
    size += next->second;
    free_.erase(next);
  }
  free_.emplace(start, size);
  size_ += shrunk_;
  shrunk_ = 0;
}

void FreeList::take(std::map<DeviceAddr, std::uint64_t>::iterator block, DeviceAddr start,
                    std::uint64_t size) {
  const DeviceAddr block_start = block->first;
  const DeviceAddr block_end = block_start + block->second;
  free_.erase(block);
  // What is left of the block on either side of [start, start + size) stays free.
  if (start > block_start) free_.emplace(block_start, start - block_start);
  if (start + size < block_end) free_.emplace(start + size, block_end - (start + size));
  allocated_.emplace(start, size);
  allocated_bytes_ += size;
}

std::optional<DeviceAddr> FreeList::allocate(std::uint64_t size_bytes, Placement placement,
                                             DeviceAddr address_limit) {
  const std::uint64_t size = aligned_size(size_bytes);
  if (placement == Placement::bottom_up) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second < size) continue;
      if (it->first < address_limit) return std::nullopt;
      const DeviceAddr start = it->first;
      take(it, start, size);
      return start;
    }
    return std::nullopt;
  }
  for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
    if (it->second < size) continue;
    const DeviceAddr start = it->first + it->second - size;
    if (start < address_limit) return std::nullopt;
    take(std::prev(it.base()), start, size);
    return start;
  }
  return std::nullopt;
}

std::optional<DeviceAddr> FreeList::allocate_at(DeviceAddr address, std::uint64_t size_bytes) {
  const std::uint64_t size = aligned_size(size_bytes);
  if (address % alignment_ != 0) return std::nullopt;
  auto it = free_.upper_bound(address);
  if (it == free_.begin()) return std::nullopt;
  --it;
  // Inside this free block, and not past its end (written so that address + size cannot wrap).
  const DeviceAddr block_end = it->first + it->second;
  if (address >= block_end || size > block_end - address) return std::nullopt;
  take(it, address, size);
  return address;
}

bool FreeList::deallocate(DeviceAddr address) {
  auto found = allocated_.find(address);
  if (found == allocated_.end()) return false;
  DeviceAddr start = address;
  std::uint64_t size = found->second;
  allocated_bytes_ -= size;
  allocated_.erase(found);

  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + size) {
    size += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      size += prev->second;
      free_.erase(prev);
    }
  }
  free_.emplace(start, size);
  return true;
}

Statistics FreeList::statistics() const {
  Statistics s;
  s.total_allocatable_bytes = size_;
  s.total_allocated_bytes = allocated_bytes_;
  s.total_free_bytes = size_ - allocated_bytes_;
  for (const auto& [start, size] : free_) {
    if (size > s.largest_free_block_bytes) {
      s.largest_free_block_bytes = size;
      s.largest_free_block_addrs.clear();
    }
    if (size == s.largest_free_block_bytes) s.largest_free_block_addrs.push_back(start);
  }
  return s;
}

std::optional<DeviceAddr> FreeList::lowest_occupied_address() const {
  if (allocated_.empty()) return std::nullopt;
  // The space is partitioned into free and allocated blocks, so the first allocated byte is either the
  // base or the end of the first free block.
  if (free_.empty() || free_.begin()->first != base()) return base();
  return free_.begin()->first + free_.begin()->second;
}

std::vector<AddressRange> FreeList::free_ranges() const {
  std::vector<AddressRange> out;
  out.reserve(free_.size());
  for (const auto& [start, size] : free_) out.push_back({start, start + size});
  return out;
}

std::vector<MemoryBlock> FreeList::blocks() const {
  std::vector<MemoryBlock> out;
  out.reserve(free_.size() + allocated_.size());
  for (const auto& [start, size] : free_) out.push_back({start, size, false});
  for (const auto& [start, size] : allocated_) out.push_back({start, size, true});
  std::sort(out.begin(), out.end(),
            [](const MemoryBlock& a, const MemoryBlock& b) { return a.address < b.address; });
  return out;
}

std::optional<std::uint64_t> FreeList::allocated_size(DeviceAddr address) const {
  auto it = allocated_.find(address);
  if (it == allocated_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ttmem::emu
