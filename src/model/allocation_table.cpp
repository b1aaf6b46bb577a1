// Compact allocation registry; see allocation_table.hpp.
#include "allocation_table.hpp"

#include <sys/random.h>

#include <algorithm>
#include <chrono>
#include <cstring>

namespace ttmem::model {

namespace {

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

AllocationTable::AllocationTable(std::uint64_t seed) {
  std::uint64_t state = seed ? seed : system_random();
  for (auto& s : seed_) s = splitmix(state);
  seed_[3] |= 1;  // a multiplier: odd, so the second round loses no bits
}

AllocationTable::~AllocationTable() = default;

std::size_t AllocationTable::locate(const Index& index, const AllocationKey& key, const Cells** in) const {
  const std::uint32_t hb = bits(hash(key));
  std::size_t i = probe(index.cells, key, hb);
  *in = &index.cells;
  if (index.cells[i] != kEmpty) return i;
  *in = nullptr;
  if (index.old.empty()) return i;
  i = probe(index.old, key, hb);
  if (index.old[i] != kEmpty) *in = &index.old;
  return i;
}

const AllocationRecord* AllocationTable::find(Group g, const AllocationKey& key) const {
  const Cells* in = nullptr;
  const std::size_t i = locate(groups_[g].index, key, &in);
  return in ? &record(slot_of((*in)[i])) : nullptr;
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

std::size_t AllocationTable::clear_group(Group g) {
  GroupState& s = groups_[g];
  const std::size_t n = s.live;
  group_records_visited_ += n;
  for (std::uint32_t c : s.chunks) {
    chunk_meta_[c] = ChunkMeta{};
    spare_chunks_.push_back(c);
    // Keep a bounded reserve of chunk memory; the rest returns to the allocator.
    if (spare_chunks_.size() > kSpareChunkMemory && chunk_data_[c]) {
      chunk_data_[c].reset();
      --chunks_with_memory_;
    }
  }
  s.chunks.clear();
  s.partial.clear();
  s.index = Index{};
  s.live = 0;
  size_ -= n;
  return n;
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
  while (!s.partial.empty()) {
    const std::uint32_t top = s.partial.back();
    if (chunk_meta_[top].group == g && chunk_meta_[top].free_mask != 0) break;
    s.partial.pop_back();  // full again, or given back since it was pushed
  }
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
    s.chunks.push_back(c);
    s.partial.push_back(c);
  }
  const std::uint32_t c = s.partial.back();
  ChunkMeta& m = chunk_meta_[c];
  const int bit = std::countr_zero(m.free_mask);
  m.free_mask &= m.free_mask - 1;
  *slot = static_cast<std::uint32_t>(c * kChunkRecords + static_cast<std::uint32_t>(bit));
  return true;
}

void AllocationTable::give_back_slot(std::uint32_t slot) {
  const std::uint32_t c = slot / kChunkRecords;
  ChunkMeta& m = chunk_meta_[c];
  GroupState& s = groups_[m.group];
  if (m.free_mask == 0) s.partial.push_back(c);  // was full: it has room again
  m.free_mask |= std::uint64_t{1} << (slot % kChunkRecords);
  --s.live;
  if (m.free_mask == kAllFree && s.chunks.size() > 1) {
    // An empty chunk beyond the group's last goes back to the spare list (a group that shrinks from a
    // million records to a few does not keep a million slots); its `partial` entry goes stale.
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

void AllocationTable::put(Cells& index, Cell c) {
  const std::size_t mask = index.size() - 1;
  std::size_t i = bits_of(c) & mask;
  while (index[i] != kEmpty) i = (i + 1) & mask;
  index[i] = c;
}

void AllocationTable::start_resize(Index& x, std::size_t cells) {
  x.old = std::move(x.cells);  // callers start a move only when none is under way
  x.cells = Cells(cells);
  // Begin just after an empty cell (there is one: the load is at most 1/2), so runs are moved whole.
  std::size_t start = 0;
  while (x.old[start] != kEmpty) ++start;
  x.migrate_pos = (start + 1) & (x.old.size() - 1);
  x.migrate_left = x.old.size();
  x.migrate_at_boundary = true;
  migrate(x, kMigrateCells);
}

void AllocationTable::migrate(Index& x, std::size_t cells) {
  const std::size_t mask = x.old.size() - 1;
  std::size_t looked = 0;
  for (; x.migrate_left > 0; ++looked) {
    // Stop only on a run's boundary (the cell last looked at was empty), so no run is left half moved.
    if (looked >= cells && x.migrate_at_boundary) break;
    const Cell c = x.old[x.migrate_pos];
    x.migrate_at_boundary = c == kEmpty;
    if (c != kEmpty) {
      put(x.cells, c);
      x.old[x.migrate_pos] = kEmpty;
    }
    x.migrate_pos = (x.migrate_pos + 1) & mask;
    --x.migrate_left;
  }
  if (cells < x.old.size()) most_moved_ = std::max(most_moved_, looked);  // not the finishing call
  if (x.migrate_left == 0) x.old = Cells();
}

AllocationTable::Insert AllocationTable::emplace(Group g, const AllocationKey& key, AllocationRecord** out) {
  if (key.process == 0) return Insert::duplicate;  // slot 0 marks free records
  GroupState& group = groups_[g];
  Index& x = group.index;
  const std::uint32_t hb = bits(hash(key));
  if (!x.old.empty()) [[unlikely]]
    migrate(x, kMigrateCells);
  // Counting what is still in the old index: it all moves into this one.
  if (overloaded(group.live + 1, x.cells.size()) && x.old.empty()) [[unlikely]]
    start_resize(x, x.cells.size() * 2);
  const std::size_t i = probe(x.cells, key, hb);
  if (x.cells[i] != kEmpty) return Insert::duplicate;
  if (!x.old.empty() && x.old[probe(x.old, key, hb)] != kEmpty) return Insert::duplicate;
  std::uint32_t slot = 0;
  if (!take_slot(g, &slot)) return Insert::full;
  AllocationRecord& r = record(slot);
  r.id = key.id;
  r.process = key.process;
  r.device = key.device;
  x.cells[i] = cell(hb, slot);
  ++group.live;
  ++size_;
  *out = &r;
  return Insert::inserted;
}

void AllocationTable::unindex(Cells& index, std::size_t i) {
  // Backward-shift deletion: pull later members of the run into the hole so lookups never need tombstones.
  const std::size_t mask = index.size() - 1;
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask; index[j] != kEmpty; j = (j + 1) & mask) {
    const std::size_t home = bits_of(index[j]) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!home_after_hole) {
      index[hole] = index[j];
      hole = j;
    }
  }
  index[hole] = kEmpty;
}

bool AllocationTable::erase(Group g, const AllocationKey& key, AllocationRecord* removed) {
  Index& x = groups_[g].index;
  if (!x.old.empty()) migrate(x, kMigrateCells);
  const Cells* in = nullptr;
  const std::size_t i = locate(x, key, &in);
  if (!in) return false;
  Cells& index = in == &x.cells ? x.cells : x.old;
  const std::uint32_t slot = slot_of(index[i]);
  AllocationRecord& r = record(slot);
  if (removed) *removed = r;
  unindex(index, i);
  r.process = 0;  // free
  give_back_slot(slot);
  --size_;
  // Shrink once at most 1/8 is used (grown again past 3/8 or 1/2: no thrashing in between).
  if (groups_[g].live * 8 < x.cells.size() && x.cells.size() > kMinIndexCells && x.old.empty())
    start_resize(x, x.cells.size() / 2);
  return true;
}

std::size_t AllocationTable::memory_bytes() const {
  std::size_t groups = groups_.capacity() * sizeof(GroupState);
  for (const auto& g : groups_) {
    groups += (g.chunks.capacity() + g.partial.capacity()) * sizeof(std::uint32_t) +
              (g.index.cells.size() + g.index.old.size()) * sizeof(Cell);
  }
  return chunks_with_memory_ * kChunkRecords * sizeof(AllocationRecord) +
         chunk_data_.capacity() * sizeof(void*) + chunk_meta_.capacity() * sizeof(ChunkMeta) +
         spare_chunks_.capacity() * sizeof(std::uint32_t) + groups;
}

}  // namespace ttmem::model
