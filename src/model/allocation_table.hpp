// The server's registry of live allocations, keyed by (process, device, unique id) — never by address.
//
// Built for millions of entries and for clients that choose their own ids:
// * Records live in chunks of 64 owned by a *group* (one group per process x device), and each group has
//   its own index: closing a device or reclaiming a process visits that group's records once and drops
//   its index and chunks whole — no per-record erase, and nothing another process holds is touched. A
//   group's index is as large as the group, so a process with a thousand live buffers probes an index
//   that stays in cache however many millions others hold.
// * An index is open addressing with linear probing over 8-byte cells: a record slot and 32 bits of the
//   key's hash. Probes compare the hash bits first, and moving or deleting cells recomputes no hash, so
//   the index is walked without reading a record that is not the one sought. It grows and shrinks a few
//   runs per operation (old and new searched meanwhile): no insert ever rehashes a whole index.
// * The hash is keyed by a per-table random seed: ids are client-chosen, and an unkeyed hash lets a
//   client pick ids that all land in one probe run (hash flooding).
// About 65 bytes per live allocation in all (docs/benchmarks.md).
#pragma once

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <utility>
#include <vector>

#include "ttmem/protocol.hpp"

namespace ttmem::model {

struct AllocationKey {
  std::uint32_t process = 0;
  std::uint16_t device = 0;
  std::uint64_t id = 0;
  bool operator==(const AllocationKey&) const = default;
};

struct AllocationRecord {
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::uint64_t size_per_bank = 0;  ///< its extent in each bank: [address, address + size_per_bank)
  std::uint32_t time_ms = 0;        ///< CLOCK_MONOTONIC in ms, modulo 2^32: ages are exact up to 49 days
  std::uint32_t process = 0;        ///< registry slot of the owner; 0 marks a free record (slots start at 1)
  std::uint32_t label = 0;          ///< where it was made: its site and op scope (ProcessState::labels)
  std::uint16_t device = 0;
  std::uint8_t type = 0;       ///< proto::BufferType
  std::uint8_t kind_bits = 0;  ///< proto::AllocKind in the low bits, the runtime-internal flag in the top bit

  /// The live record of an allocation event. Its size per bank is kept (free space and the address map
  /// are rebuilt from it); the bank count and mesh are not: they would make the record 8 bytes larger, and
  /// it is most of the server's memory (they stay in the event history and the stream).
  static AllocationRecord of(const proto::EventRecord& e, std::uint32_t process_slot, std::uint32_t label) {
    AllocationRecord r;
    r.id = e.id;
    r.process = process_slot;
    r.device = e.device;
    r.describe_from(e, label);
    return r;
  }
  /// Everything but the key, from the allocation event.
  void describe_from(const proto::EventRecord& e, std::uint32_t where) {
    size = e.size;
    address = e.address;
    size_per_bank = e.size_per_bank;
    set_time(e.timestamp_ns);
    label = where;
    type = static_cast<std::uint8_t>(e.type);
    set_kind(e.kind, (e.flags & proto::kFlagInternal) != 0);
  }
  /// Fills in what a free event does not carry (it names only the id): what was freed (its site and scope
  /// come from the label, which only the process's table reads).
  void describe(proto::EventRecord& e) const {
    e.size = size;
    e.address = address;
    e.size_per_bank = size_per_bank;
    e.type = static_cast<proto::BufferType>(type);
    e.kind = kind();
    e.flags = internal() ? proto::kFlagInternal : 0;
  }

  AllocationKey key() const { return {process, device, id}; }
  bool live() const { return process != 0; }
  proto::AllocKind kind() const { return static_cast<proto::AllocKind>(kind_bits & 0x7f); }
  bool internal() const { return (kind_bits & 0x80) != 0; }
  void set_kind(proto::AllocKind kind, bool internal) {
    kind_bits = static_cast<std::uint8_t>(static_cast<std::uint8_t>(kind) | (internal ? 0x80 : 0));
  }
  void set_time(std::uint64_t monotonic_ns) {
    time_ms = static_cast<std::uint32_t>(monotonic_ns / 1'000'000);
  }
  std::uint64_t age_ms(std::uint64_t now_monotonic_ns) const {
    const std::uint32_t age = static_cast<std::uint32_t>(now_monotonic_ns / 1'000'000) - time_ms;
    return age > 0x80000000u ? 0 : age;  // stamped a little in our future by the client: no age yet
  }
};
static_assert(sizeof(AllocationRecord) == 48,
              "keep the record at 48 bytes: it is most of the server's memory");

class AllocationTable {
 public:
  using Group = std::uint32_t;
  static constexpr Group kNoGroup = 0xffffffffu;
  enum class Insert : std::uint8_t { inserted, duplicate, full };
  /// Records a table can hold at once: 64 x (2^26 - 1) (slots fit in 32 bits, all ones kept for "empty").
  static constexpr std::size_t kChunkRecords = 64;
  static constexpr std::size_t kMaxChunks = (std::size_t{1} << 26) - 1;

  /// `seed` keys the hash; 0 draws one from the system's random source.
  explicit AllocationTable(std::uint64_t seed = 0);
  ~AllocationTable();
  AllocationTable(const AllocationTable&) = delete;
  AllocationTable& operator=(const AllocationTable&) = delete;

  /// A new, empty group; its records are found by key like any other and visited apart.
  Group new_group();
  /// Gives back an empty group's id (erase_group first).
  void release_group(Group g);

  /// The record of `key` in group g; nullptr when absent.
  const AllocationRecord* find(Group g, const AllocationKey& key) const;
  /// Inserts into group g. `duplicate`: the key is present (nothing changes); `full`: the table holds its
  /// maximum; a record with process 0 is refused as a duplicate (slot 0 marks free records).
  Insert insert(Group g, const AllocationRecord& record) {
    AllocationRecord* r = nullptr;
    const Insert result = emplace(g, record.key(), &r);
    if (result == Insert::inserted) *r = record;
    return result;
  }
  /// insert() in place: when `inserted`, *out is the new record with its key filled in, the rest for the
  /// caller to write before the table is used again (ttmemd writes it straight from the event).
  Insert emplace(Group g, const AllocationKey& key, AllocationRecord** out);
  /// Removes `key` from group g and copies out its record; false when absent.
  bool erase(Group g, const AllocationKey& key, AllocationRecord* removed = nullptr);
  /// Removes every record of group g, calling removed(record) for each first (one pass over its chunks;
  /// its index is dropped whole); the group stays usable.
  template <typename Removed>
  std::size_t erase_group(Group g, Removed&& removed) {
    for_each_in_group(g, removed);
    return clear_group(g);
  }

  std::size_t size() const { return size_; }
  std::size_t group_size(Group g) const { return groups_[g].live; }
  /// Bytes held by the table's own structures (records, index, chunk and group bookkeeping).
  std::size_t memory_bytes() const;
  /// The longest probe run any lookup or insert has walked (a hash-flooding gauge).
  std::size_t max_probe() const { return max_probe_; }
  /// The most index cells one insert or erase has looked at while the index grew or shrank (tests: no
  /// insert costs O(table), not even the one that doubles the index).
  std::size_t most_cells_moved_at_once() const { return most_moved_; }
  /// Records visited by erase_group since construction (tests: no frame costs O(table)).
  std::uint64_t group_records_visited() const { return group_records_visited_; }

  /// Calls f(const AllocationRecord&) for every live record of group g.
  template <typename F>
  void for_each_in_group(Group g, F&& f) const {
    for (std::uint32_t c : groups_[g].chunks) visit_chunk(c, f);
  }
  /// Calls f(const AllocationRecord&) for every live record.
  template <typename F>
  void for_each(F&& f) const {
    for_each_in_chunks(0, chunk_count(), f);
  }
  /// Chunk positions for sliced visits: for_each_in_chunks(a, b, f) visits the live records of chunks
  /// [a, b); records inserted or erased between two slices may or may not be seen.
  std::size_t chunk_count() const { return chunk_meta_.size(); }
  template <typename F>
  void for_each_in_chunks(std::size_t begin, std::size_t end, F&& f) const {
    for (std::size_t c = begin; c < end && c < chunk_meta_.size(); ++c) {
      if (chunk_meta_[c].group != kNoGroup) visit_chunk(static_cast<std::uint32_t>(c), f);
    }
  }

 private:
  using Cell = std::uint64_t;  // hash bits << 32 | (record slot + 1); 0 is empty
  static constexpr Cell kEmpty = 0;
  /// The index's cells, from calloc: a fresh large block comes zeroed (empty) from the kernel page by page,
  /// so making a new index costs nothing until its cells are used (a vector would fill it at once).
  class Cells {
   public:
    Cells() = default;
    explicit Cells(std::size_t n) : data_(static_cast<Cell*>(std::calloc(n, sizeof(Cell)))), size_(n) {
      if (!data_) throw std::bad_alloc();
    }
    Cells(Cells&& o) noexcept : data_(o.data_), size_(o.size_) { o.data_ = nullptr, o.size_ = 0; }
    Cells& operator=(Cells&& o) noexcept {
      std::swap(data_, o.data_);
      std::swap(size_, o.size_);
      return *this;
    }
    ~Cells() { std::free(data_); }
    Cell& operator[](std::size_t i) { return data_[i]; }
    Cell operator[](std::size_t i) const { return data_[i]; }
    std::size_t size() const { return size_; }
    bool empty() const { return size_ == 0; }

   private:
    Cell* data_ = nullptr;
    std::size_t size_ = 0;
  };
  static constexpr std::uint64_t kAllFree = ~std::uint64_t{0};
  static constexpr std::size_t kMinIndexCells = 16;       // per group: a process x device with few buffers
  static constexpr std::size_t kMigrateCells = 64;        // old index cells looked at per insert or erase
  static constexpr std::size_t kSparseIndexCells = 4096;  // 32 KiB
  static constexpr std::size_t kSpareChunkMemory = 1024;  // spare chunks that keep their memory (2.5 MiB)

  struct ChunkMeta {
    std::uint64_t free_mask = kAllFree;  // bit i set: record i is free
    Group group = kNoGroup;              // owner; kNoGroup: the chunk is spare
    std::uint32_t pos_in_group = 0;      // index in the group's `chunks`
  };
  /// One group's index, with its incremental move to a larger or smaller one.
  struct Index {
    Cells cells{kMinIndexCells};
    Cells old;                        // being moved into `cells` (empty when no move is under way)
    std::size_t migrate_pos = 0;      // next old cell to look at
    std::size_t migrate_left = 0;     // old cells still to look at
    bool migrate_at_boundary = true;  // the old cell looked at last was empty
  };
  struct GroupState {
    Index index;
    std::vector<std::uint32_t> chunks;  // every chunk the group owns
    // Chunks that had a free record when pushed. Kept lazily: an entry whose chunk is full again, or no
    // longer the group's, is dropped when it reaches the top.
    std::vector<std::uint32_t> partial;
    std::size_t live = 0;
    bool in_use = false;
  };

  /// Two rounds of wyhash's mixing step (a 64 x 64 -> 128-bit multiply folded to 64 bits): the key's words,
  /// each mixed with a secret, then the result with two more. One round is linear enough in the id's high
  /// bits that some secrets left probe runs of a thousand cells for ids in regular steps (even 1, 2, 3...).
  std::uint64_t hash(const AllocationKey& key) const {
    __extension__ using u128 = unsigned __int128;
    const std::uint64_t owner = static_cast<std::uint64_t>(key.process) << 16 | key.device;
    const u128 p = static_cast<u128>(key.id ^ seed_[0]) * (owner ^ seed_[1]);
    const std::uint64_t h = static_cast<std::uint64_t>(p) ^ static_cast<std::uint64_t>(p >> 64);
    const u128 q = static_cast<u128>(h ^ seed_[2]) * seed_[3];
    return static_cast<std::uint64_t>(q) ^ static_cast<std::uint64_t>(q >> 64);
  }
  /// The index's position and compare bits come from the hash's upper half (the keyed, well-mixed part).
  static std::uint32_t bits(std::uint64_t h) { return static_cast<std::uint32_t>(h >> 32); }
  static Cell cell(std::uint32_t hash_bits, std::uint32_t slot) {
    return Cell{hash_bits} << 32 | (slot + 1u);
  }
  static std::uint32_t slot_of(Cell c) { return static_cast<std::uint32_t>(c) - 1u; }
  static std::uint32_t bits_of(Cell c) { return static_cast<std::uint32_t>(c >> 32); }
  AllocationRecord& record(std::uint32_t slot) const {
    return chunk_data_[slot / kChunkRecords][slot % kChunkRecords];
  }
  /// Whether `live` records need a larger index than one of `cells` cells. Linear probing's runs grow fast
  /// with the load: an index up to kSparseIndexCells keeps it at or under 3/8 (with 1,000 live, at 1/2 an
  /// alloc+free pair cost 1/8 to 1/4 more), a larger one at or under 1/2: there the index is a large share
  /// of the server's memory (with 1M buffers in 256 groups, 3/8 cost 18 more bytes per buffer).
  static bool overloaded(std::size_t live, std::size_t cells) {
    return cells <= kSparseIndexCells ? live * 8 > cells * 3 : live * 2 > cells;
  }
  /// Position of key in `index`, or of the empty cell ending its run.
  std::size_t probe(const Cells& index, const AllocationKey& key, std::uint32_t hb) const {
    const std::size_t mask = index.size() - 1;
    std::size_t i = hb & mask;
    std::size_t steps = 0;
    for (Cell c = index[i]; c != kEmpty; c = index[i]) {
      if (bits_of(c) == hb && record(slot_of(c)).key() == key) break;
      i = (i + 1) & mask;
      ++steps;
    }
    if (steps > max_probe_) max_probe_ = steps;
    return i;
  }
  /// Starts moving a group's index to one of `cells` cells. The move is incremental (a few runs per insert
  /// or erase, old and new index both searched meanwhile), so growing past a million entries never stalls.
  void start_resize(Index& index, std::size_t cells);
  /// Moves whole runs of the old index (bounded by empty cells, so the runs left stay intact) until
  /// about `cells` old cells were looked at.
  void migrate(Index& index, std::size_t cells);
  /// Position of key in the group's index (`*in` set to the cells holding it), or nullptr in `*in`.
  std::size_t locate(const Index& index, const AllocationKey& key, const Cells** in) const;
  /// Frees every chunk of group g and empties its index; returns how many records it held.
  std::size_t clear_group(Group g);
  static void put(Cells& index, Cell c);
  /// A free record slot in group g; false when the table is full.
  bool take_slot(Group g, std::uint32_t* slot);
  void give_back_slot(std::uint32_t slot);
  static void unindex(Cells& index, std::size_t position);
  template <typename F>
  void visit_chunk(std::uint32_t c, F& f) const {
    std::uint64_t used = ~chunk_meta_[c].free_mask;
    const AllocationRecord* data = chunk_data_[c].get();
    while (used) {
      f(data[std::countr_zero(used)]);
      used &= used - 1;
    }
  }

  std::uint64_t seed_[4] = {};
  std::vector<std::unique_ptr<AllocationRecord[]>> chunk_data_;
  std::vector<ChunkMeta> chunk_meta_;
  std::vector<std::uint32_t> spare_chunks_;  // owned by no group; memory kept for reuse
  std::size_t chunks_with_memory_ = 0;
  std::vector<GroupState> groups_;
  std::vector<Group> free_groups_;
  std::size_t most_moved_ = 0;
  std::size_t size_ = 0;
  mutable std::size_t max_probe_ = 0;
  std::uint64_t group_records_visited_ = 0;
};

}  // namespace ttmem::model
