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
  free_ids_.clear();
  next_id_ = 0;
  if (size_ > 0) free_.emplace(base_, Block{size_, new_block_id()});
}

std::uint32_t FreeList::new_block_id() {
  if (free_ids_.empty()) return next_id_++;
  const std::uint32_t id = free_ids_.back();
  free_ids_.pop_back();
  return id;
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
  for (const auto& [start, block] : allocated_) {
    if (start < new_base) {
      throw Error(ErrorCode::invalid_state,
                  fmt::format("Shrink size {} cuts into allocated block at address {}", new_base - base_,
                              start - base_));
    }
  }
  // Nothing is allocated below new_base, so the first free block starts at base() and reaches past it.
  auto first = free_.begin();
  const Block was = first->second;
  free_.erase(first);
  if (was.size > bytes) {
    free_.emplace(new_base, Block{was.size - bytes, was.id});
  } else {
    free_block_id(was.id);
  }
  size_ -= bytes;
  shrunk_ += bytes;
}

void FreeList::reset_size() {
  if (shrunk_ == 0) return;
  DeviceAddr start = base_;
  std::uint64_t size = shrunk_;
  auto next = free_.find(base_ + shrunk_);
  std::uint32_t id;
  if (next != free_.end()) {  // the lowest block is free: it grows down (keeping its id)
    size += next->second.size;
    id = next->second.id;
    free_.erase(next);
  } else {  // allocated: a new free block below it
    id = new_block_id();
  }
  free_.emplace(start, Block{size, id});
  size_ += shrunk_;
  shrunk_ = 0;
}

void FreeList::take(std::map<DeviceAddr, Block>::iterator block, DeviceAddr start, std::uint64_t size) {
  const DeviceAddr block_start = block->first;
  const DeviceAddr block_end = block_start + block->second.size;
  const std::uint32_t id = block->second.id;
  free_.erase(block);
  // The allocated piece keeps the block's id; what is left on either side stays free with new ids, the
  // left piece's first (FreeListOpt::allocate_in_block).
  if (start > block_start) free_.emplace(block_start, Block{start - block_start, new_block_id()});
  if (start + size < block_end)
    free_.emplace(start + size, Block{block_end - (start + size), new_block_id()});
  allocated_.emplace(start, Block{size, id});
  allocated_bytes_ += size;
}

std::optional<DeviceAddr> FreeList::allocate(std::uint64_t size_bytes, Placement placement,
                                             DeviceAddr address_limit) {
  const std::uint64_t size = aligned_size(size_bytes);
  if (placement == Placement::bottom_up) {
    for (auto it = free_.begin(); it != free_.end(); ++it) {
      if (it->second.size < size) continue;
      if (it->first < address_limit) return std::nullopt;
      const DeviceAddr start = it->first;
      take(it, start, size);
      return start;
    }
    return std::nullopt;
  }
  for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
    if (it->second.size < size) continue;
    const DeviceAddr start = it->first + it->second.size - size;
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
  const DeviceAddr block_end = it->first + it->second.size;
  if (address >= block_end || size > block_end - address) return std::nullopt;
  take(it, address, size);
  return address;
}

bool FreeList::deallocate(DeviceAddr address) {
  auto found = allocated_.find(address);
  if (found == allocated_.end()) return false;
  DeviceAddr start = address;
  std::uint64_t size = found->second.size;
  std::uint32_t id = found->second.id;
  allocated_bytes_ -= size;
  allocated_.erase(found);

  // FreeListOpt::deallocate merges with the previous block first (freeing this block's id), then with
  // the next (freeing the next's id).
  auto next = free_.lower_bound(start);
  const bool merge_next = next != free_.end() && next->first == start + size;
  auto prev = next == free_.begin() ? free_.end() : std::prev(next);
  if (prev != free_.end() && prev->first + prev->second.size == start) {
    free_block_id(id);
    id = prev->second.id;
    start = prev->first;
    size += prev->second.size;
    free_.erase(prev);
  }
  if (merge_next) {
    free_block_id(next->second.id);
    size += next->second.size;
    free_.erase(next);
  }
  free_.emplace(start, Block{size, id});
  return true;
}

Statistics FreeList::statistics() const {
  Statistics s;
  s.total_allocatable_bytes = size_;
  s.total_allocated_bytes = allocated_bytes_;
  s.total_free_bytes = size_ - allocated_bytes_;
  for (const auto& [start, block] : free_) {
    if (block.size > s.largest_free_block_bytes) {
      s.largest_free_block_bytes = block.size;
      s.largest_free_block_addrs.clear();
    }
    if (block.size == s.largest_free_block_bytes) s.largest_free_block_addrs.push_back(start);
  }
  return s;
}

std::optional<DeviceAddr> FreeList::lowest_occupied_address() const {
  if (allocated_.empty()) return std::nullopt;
  // The space is partitioned into free and allocated blocks, so the first allocated byte is either the
  // base or the end of the first free block.
  if (free_.empty() || free_.begin()->first != base()) return base();
  return free_.begin()->first + free_.begin()->second.size;
}

std::vector<AddressRange> FreeList::free_ranges() const {
  std::vector<AddressRange> out;
  out.reserve(free_.size());
  for (const auto& [start, block] : free_) out.push_back({start, start + block.size});
  return out;
}

std::vector<MemoryBlock> FreeList::blocks() const {
  std::vector<MemoryBlock> out;
  out.reserve(free_.size() + allocated_.size());
  for (const auto& [start, block] : free_) out.push_back({start, block.size, false});
  for (const auto& [start, block] : allocated_) out.push_back({start, block.size, true});
  std::sort(out.begin(), out.end(),
            [](const MemoryBlock& a, const MemoryBlock& b) { return a.address < b.address; });
  return out;
}

std::vector<std::map<std::string, std::string>> FreeList::block_table() const {
  const std::vector<MemoryBlock> by_address = blocks();
  std::vector<std::pair<std::uint32_t, std::map<std::string, std::string>>> rows;
  for (std::size_t i = 0; i < by_address.size(); ++i) {
    const MemoryBlock& b = by_address[i];
    auto id_of = [&](const MemoryBlock& m) {
      return m.allocated ? allocated_.at(m.address).id : free_.at(m.address).id;
    };
    auto id_at = [&](std::size_t k) { return std::to_string(id_of(by_address[k])); };
    const std::uint32_t id = id_of(b);
    rows.push_back({id,
                    {{"blockID", std::to_string(id)},
                     {"address", std::to_string(b.address - base_)},
                     {"size", std::to_string(b.size)},
                     {"prevID", i == 0 ? "-1" : id_at(i - 1)},
                     {"nextID", i + 1 == by_address.size() ? "-1" : id_at(i + 1)},
                     {"allocated", b.allocated ? "yes" : "no"}}});
  }
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::map<std::string, std::string>> out;
  for (auto& [id, row] : rows) out.push_back(std::move(row));
  return out;
}

std::optional<std::uint64_t> FreeList::allocated_size(DeviceAddr address) const {
  auto it = allocated_.find(address);
  if (it == allocated_.end()) return std::nullopt;
  return it->second.size;
}

}  // namespace ttmem::emu
