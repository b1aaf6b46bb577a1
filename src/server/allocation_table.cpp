// Compact allocation registry; see allocation_table.hpp.
#include "allocation_table.hpp"

#include <cstring>

namespace ttmem::server {

AllocationTable::AllocationTable() : index_(1024, kEmpty) {}
AllocationTable::~AllocationTable() = default;

std::uint64_t AllocationTable::hash(const AllocationKey& key) {
  // Multiplicative (Fibonacci) hashing, high bits folded down: ids are mostly sequential per process,
  // which this spreads evenly, for one multiply per lookup.
  const std::uint64_t x = key.id ^ (static_cast<std::uint64_t>(key.process) << 40) ^
                          (static_cast<std::uint64_t>(key.device) << 28);
  const std::uint64_t h = x * 0x9e3779b97f4a7c15ull;
  return h ^ (h >> 29);
}

std::size_t AllocationTable::probe(const AllocationKey& key) const {
  const std::size_t mask = index_.size() - 1;
  std::size_t i = hash(key) & mask;
  while (index_[i] != kEmpty && !(record(index_[i]).key() == key)) i = (i + 1) & mask;
  return i;
}

const AllocationRecord* AllocationTable::find(const AllocationKey& key) const {
  const std::size_t i = probe(key);
  return index_[i] == kEmpty ? nullptr : &record(index_[i]);
}

std::uint32_t AllocationTable::new_slot() {
  if (!free_slots_.empty()) {
    const std::uint32_t s = free_slots_.back();
    free_slots_.pop_back();
    return s;
  }
  if (used_in_last_ == kChunkRecords) {
    chunks_.push_back(std::make_unique<AllocationRecord[]>(kChunkRecords));
    used_in_last_ = 0;
  }
  return static_cast<std::uint32_t>((chunks_.size() - 1) * kChunkRecords + used_in_last_++);
}

void AllocationTable::grow_index() {
  std::vector<std::uint32_t> old(index_.size() * 2, kEmpty);
  old.swap(index_);
  const std::size_t mask = index_.size() - 1;
  for (std::uint32_t slot : old) {
    if (slot == kEmpty) continue;
    std::size_t i = hash(record(slot).key()) & mask;
    while (index_[i] != kEmpty) i = (i + 1) & mask;
    index_[i] = slot;
  }
}

bool AllocationTable::insert(const AllocationRecord& r) {
  if (r.process == 0) return false;  // slot 0 marks free records
  // Keep the load factor at or under 1/2 so probe runs stay short.
  if ((size_ + 1) * 2 > index_.size()) grow_index();
  const std::size_t i = probe(r.key());
  if (index_[i] != kEmpty) return false;
  const std::uint32_t slot = new_slot();
  AllocationRecord& dst = record(slot);
  dst = r;
  index_[i] = slot;
  ++size_;
  return true;
}

bool AllocationTable::erase(const AllocationKey& key, AllocationRecord* removed) {
  std::size_t i = probe(key);
  if (index_[i] == kEmpty) return false;
  const std::uint32_t slot = index_[i];
  if (removed) *removed = record(slot);
  record(slot).process = 0;  // free
  free_slots_.push_back(slot);
  --size_;
  // Backward-shift deletion: pull later members of the run into the hole so lookups never need tombstones.
  const std::size_t mask = index_.size() - 1;
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; index_[j] != kEmpty; j = (j + 1) & mask) {
    const std::size_t home = hash(record(index_[j]).key()) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_after_hole) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kEmpty;
  return true;
}

std::size_t AllocationTable::memory_bytes() const {
  return chunks_.size() * kChunkRecords * sizeof(AllocationRecord) +
         index_.capacity() * sizeof(std::uint32_t) + free_slots_.capacity() * sizeof(std::uint32_t);
}

}  // namespace ttmem::server
