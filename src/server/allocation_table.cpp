// Compact allocation registry; see allocation_table.hpp.
#include "allocation_table.hpp"

#include <sys/random.h>

#include <chrono>
#include <cstring>

namespace ttmem::server {

namespace {

/// 64 x 64 -> 128-bit multiply folded to 64 bits: the mixing step of wyhash-style hashes.
__extension__ using u128 = unsigned __int128;  // GCC and Clang; one MUL instruction on x86-64
inline std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  const u128 p = static_cast<u128>(a) * b;
  return static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
}

std::uint64_t splitmix(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

std::uint64_t system_random() {
  std::uint64_t v = 0;
  if (getrandom(&v, sizeof v, 0) == static_cast<ssize_t>(sizeof v) && v != 0) return v;
  // No entropy source: still differ per run and per table.
  static std::uint64_t counter = 0;
  return static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         (++counter * 0x9e3779b97f4a7c15ull) ^ reinterpret_cast<std::uintptr_t>(&v);
}

}  // namespace

AllocationTable::AllocationTable(std::uint64_t seed) : index_(kMinIndexCells, kEmpty) {
  std::uint64_t state = seed ? seed : system_random();
  for (auto& s : seed_) s = splitmix(state) | 1;  // odd: a multiplier never zero
}

AllocationTable::~AllocationTable() = default;

std::uint64_t AllocationTable::hash(const AllocationKey& key) const {
  const std::uint64_t owner = static_cast<std::uint64_t>(key.process) << 16 | key.device;
  return mix(mix(key.id ^ seed_[0], owner ^ seed_[1]), seed_[2]);
}

std::size_t AllocationTable::probe(const AllocationKey& key, std::uint64_t h) const {
  const std::size_t mask = index_.size() - 1;
  const std::uint32_t fingerprint = cell(h, 0);
  std::size_t i = h & mask;
  std::size_t steps = 0;
  for (std::uint32_t c = index_[i]; c != kEmpty; c = index_[i]) {
    if ((c & ~kSlotMask) == fingerprint && record(c & kSlotMask).key() == key) break;
    i = (i + 1) & mask;
    ++steps;
  }
  if (steps > max_probe_) max_probe_ = steps;
  return i;
}

const AllocationRecord* AllocationTable::find(const AllocationKey& key) const {
  const std::size_t i = probe(key, hash(key));
  return index_[i] == kEmpty ? nullptr : &record(index_[i] & kSlotMask);
}

AllocationTable::Group AllocationTable::new_group() {
  Group g;
  if (!free_groups_.empty()) {
    g = free_groups_.back();
    free_groups_.pop_back();
  } else {
    g = static_cast<Group>(groups_.size());
    groups_.emplace_back();
  }
  groups_[g].in_use = true;
  return g;
}

void AllocationTable::release_group(Group g) {
  GroupState& s = groups_[g];
  // Only empty groups come back, so their chunks are all free: hand them to the spare list.
  for (std::uint32_t c : s.chunks) {
    chunk_meta_[c] = ChunkMeta{};
    spare_chunks_.push_back(c);
  }
  s = GroupState{};
  free_groups_.push_back(g);
}

bool AllocationTable::take_slot(Group g, std::uint32_t* slot) {
  GroupState& s = groups_[g];
  if (s.partial.empty()) {
    std::uint32_t c;
    if (!spare_chunks_.empty()) {
      c = spare_chunks_.back();
      spare_chunks_.pop_back();
    } else {
      if (chunk_meta_.size() >= kMaxChunks) return false;
      c = static_cast<std::uint32_t>(chunk_meta_.size());
      chunk_meta_.emplace_back();
      chunk_data_.push_back(nullptr);
    }
    if (!chunk_data_[c]) {
      chunk_data_[c] = std::make_unique<AllocationRecord[]>(kChunkRecords);
      ++chunks_with_memory_;
    }
    ChunkMeta& m = chunk_meta_[c];
    m.free_mask = kAllFree;
    m.group = g;
    m.pos_in_group = static_cast<std::uint32_t>(s.chunks.size());
    m.pos_in_partial = static_cast<std::uint32_t>(s.partial.size());
    s.chunks.push_back(c);
    s.partial.push_back(c);
  }
  const std::uint32_t c = s.partial.back();
  ChunkMeta& m = chunk_meta_[c];
  const int bit = std::countr_zero(m.free_mask);
  m.free_mask &= m.free_mask - 1;
  if (m.free_mask == 0) remove_from_partial(c);
  *slot = static_cast<std::uint32_t>(c * kChunkRecords + static_cast<std::uint32_t>(bit));
  return true;
}

void AllocationTable::remove_from_partial(std::uint32_t c) {
  ChunkMeta& m = chunk_meta_[c];
  auto& partial = groups_[m.group].partial;
  const std::uint32_t last = partial.back();
  partial[m.pos_in_partial] = last;
  chunk_meta_[last].pos_in_partial = m.pos_in_partial;
  partial.pop_back();
  m.pos_in_partial = ChunkMeta::kNone;
}

void AllocationTable::give_back_slot(std::uint32_t slot) {
  const std::uint32_t c = slot / kChunkRecords;
  ChunkMeta& m = chunk_meta_[c];
  GroupState& s = groups_[m.group];
  const bool was_full = m.free_mask == 0;
  m.free_mask |= std::uint64_t{1} << (slot % kChunkRecords);
  --s.live;
  if (was_full) {
    m.pos_in_partial = static_cast<std::uint32_t>(s.partial.size());
    s.partial.push_back(c);
  }
  if (m.free_mask == kAllFree && s.chunks.size() > 1) {
    // An empty chunk beyond the group's last goes back to the spare list (a group that shrinks from a
    // million records to a few does not keep a million slots).
    remove_from_partial(c);
    const std::uint32_t last = s.chunks.back();
    s.chunks[m.pos_in_group] = last;
    chunk_meta_[last].pos_in_group = m.pos_in_group;
    s.chunks.pop_back();
    m = ChunkMeta{};
    spare_chunks_.push_back(c);
    // Keep a bounded reserve of chunk memory; the rest returns to the allocator.
    if (spare_chunks_.size() > kSpareChunkMemory) {
      chunk_data_[c].reset();
      --chunks_with_memory_;
    }
  }
}

void AllocationTable::resize_index(std::size_t cells) {
  std::vector<std::uint32_t> old(cells, kEmpty);
  old.swap(index_);
  const std::size_t mask = index_.size() - 1;
  for (std::uint32_t c : old) {
    if (c == kEmpty) continue;
    const std::uint64_t h = hash(record(c & kSlotMask).key());
    std::size_t i = h & mask;
    while (index_[i] != kEmpty) i = (i + 1) & mask;
    index_[i] = cell(h, c & kSlotMask);
  }
}

AllocationTable::Insert AllocationTable::insert(Group g, const AllocationRecord& r) {
  if (r.process == 0) return Insert::duplicate;  // slot 0 marks free records
  // Keep the load factor at or under 1/2 so probe runs stay short.
  if ((size_ + 1) * 2 > index_.size()) resize_index(index_.size() * 2);
  const std::uint64_t h = hash(r.key());
  const std::size_t i = probe(r.key(), h);
  if (index_[i] != kEmpty) return Insert::duplicate;
  std::uint32_t slot = 0;
  if (!take_slot(g, &slot)) return Insert::full;
  record(slot) = r;
  index_[i] = cell(h, slot);
  ++groups_[g].live;
  ++size_;
  return Insert::inserted;
}

void AllocationTable::unindex(std::size_t i) {
  // Backward-shift deletion: pull later members of the run into the hole so lookups never need tombstones.
  const std::size_t mask = index_.size() - 1;
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; index_[j] != kEmpty; j = (j + 1) & mask) {
    const std::size_t home = hash(record(index_[j] & kSlotMask).key()) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_after_hole) {
      index_[hole] = index_[j];
      hole = j;
    }
  }
  index_[hole] = kEmpty;
}

bool AllocationTable::erase(const AllocationKey& key, AllocationRecord* removed) {
  const std::size_t i = probe(key, hash(key));
  if (index_[i] == kEmpty) return false;
  const std::uint32_t slot = index_[i] & kSlotMask;
  AllocationRecord& r = record(slot);
  if (removed) *removed = r;
  unindex(i);
  r.process = 0;  // free
  give_back_slot(slot);
  --size_;
  // Shrink once at most 1/8 is used (grown again past 1/2: no thrashing in between).
  if (size_ * 8 < index_.size() && index_.size() > kMinIndexCells) resize_index(index_.size() / 2);
  return true;
}

std::size_t AllocationTable::memory_bytes() const {
  std::size_t groups = groups_.capacity() * sizeof(GroupState);
  for (const auto& g : groups_)
    groups += (g.chunks.capacity() + g.partial.capacity()) * sizeof(std::uint32_t);
  return chunks_with_memory_ * kChunkRecords * sizeof(AllocationRecord) +
         chunk_data_.capacity() * sizeof(void*) + chunk_meta_.capacity() * sizeof(ChunkMeta) +
         spare_chunks_.capacity() * sizeof(std::uint32_t) + index_.capacity() * sizeof(std::uint32_t) +
         groups;
}

}  // namespace ttmem::server
