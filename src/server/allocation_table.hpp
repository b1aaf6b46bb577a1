// The server's registry of live allocations, keyed by (process, device, unique id) — never by address.
//
// Built for millions of entries and for clients that choose their own ids:
// * Records live in chunks of 64 owned by a *group* (one group per process x device), so closing a
//   device or reclaiming a process visits that group's records only, never the whole table.
// * The index is open addressing with linear probing over 4-byte cells (a 26-bit record slot and a
//   6-bit fingerprint of the hash), so a probe rarely has to read a record that is not the one sought.
// * The hash is keyed by a per-table random seed: ids are client-chosen, and an unkeyed hash lets a
//   client pick ids that all land in one probe run (hash flooding).
// About 50 bytes per live allocation in all (docs/benchmarks.md).
#pragma once

#include <bit>
#include <cstdint>
#include <memory>
#include <vector>

#include "ttmem/protocol.hpp"

namespace ttmem::server {

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
  std::uint32_t time_ms = 0;  ///< CLOCK_MONOTONIC in ms, modulo 2^32: ages are exact up to 49 days
  std::uint32_t process = 0;  ///< registry slot of the owner; 0 marks a free record (slots start at 1)
  std::uint32_t site = 0;
  std::uint16_t device = 0;
  std::uint8_t type = 0;       ///< proto::BufferType
  std::uint8_t kind_bits = 0;  ///< proto::AllocKind in the low bits, the runtime-internal flag in the top bit

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
static_assert(sizeof(AllocationRecord) == 40,
              "keep the record at 40 bytes: it is most of the server's memory");

class AllocationTable {
 public:
  using Group = std::uint32_t;
  static constexpr Group kNoGroup = 0xffffffffu;
  enum class Insert : std::uint8_t { inserted, duplicate, full };
  /// Records a table can hold at once: 2^26 slots (the index cell's slot field), one kept unused.
  static constexpr std::size_t kChunkRecords = 64;
  static constexpr std::size_t kMaxChunks = (std::size_t{1} << 20) - 1;

  /// `seed` keys the hash; 0 draws one from the system's random source.
  explicit AllocationTable(std::uint64_t seed = 0);
  ~AllocationTable();
  AllocationTable(const AllocationTable&) = delete;
  AllocationTable& operator=(const AllocationTable&) = delete;

  /// A new, empty group; its records are found by key like any other and visited apart.
  Group new_group();
  /// Gives back an empty group's id (erase_group first).
  void release_group(Group g);

  /// nullptr when absent.
  const AllocationRecord* find(const AllocationKey& key) const;
  /// Inserts into group g. `duplicate`: the key is present (nothing changes); `full`: the table holds its
  /// maximum; a record with process 0 is refused as a duplicate (slot 0 marks free records).
  Insert insert(Group g, const AllocationRecord& record);
  /// Removes and copies out the record; false when absent.
  bool erase(const AllocationKey& key, AllocationRecord* removed = nullptr);
  /// Removes every record of group g, calling removed(record) for each first; the group stays usable.
  template <typename Removed>
  std::size_t erase_group(Group g, Removed&& removed);

  std::size_t size() const { return size_; }
  std::size_t group_size(Group g) const { return groups_[g].live; }
  /// Bytes held by the table's own structures (records, index, chunk and group bookkeeping).
  std::size_t memory_bytes() const;
  /// The longest probe run any lookup or insert has walked (a hash-flooding gauge).
  std::size_t max_probe() const { return max_probe_; }
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
  static constexpr unsigned kSlotBits = 26;
  static constexpr std::uint32_t kSlotMask = (1u << kSlotBits) - 1;
  static constexpr std::uint32_t kEmpty = 0xffffffffu;  // fingerprint 63 with slot 2^26-1, never used
  static constexpr std::uint64_t kAllFree = ~std::uint64_t{0};
  static constexpr std::size_t kMinIndexCells = 1024;
  static constexpr std::size_t kSpareChunkMemory = 1024;  // spare chunks that keep their memory (2.5 MiB)

  struct ChunkMeta {
    std::uint64_t free_mask = kAllFree;  // bit i set: record i is free
    Group group = kNoGroup;              // owner; kNoGroup: the chunk is spare
    std::uint32_t pos_in_group = 0;      // index in the group's `chunks`
    std::uint32_t pos_in_partial = kNone;
    static constexpr std::uint32_t kNone = 0xffffffffu;
  };
  struct GroupState {
    std::vector<std::uint32_t> chunks;   // every chunk the group owns
    std::vector<std::uint32_t> partial;  // those with a free record
    std::size_t live = 0;
    bool in_use = false;
  };

  std::uint64_t hash(const AllocationKey& key) const;
  static std::uint32_t cell(std::uint64_t h, std::uint32_t slot) {
    return static_cast<std::uint32_t>(h >> 58) << kSlotBits | slot;
  }
  AllocationRecord& record(std::uint32_t slot) const {
    return chunk_data_[slot / kChunkRecords][slot % kChunkRecords];
  }
  /// Index position of key, or of the empty cell ending its run.
  std::size_t probe(const AllocationKey& key, std::uint64_t h) const;
  void resize_index(std::size_t cells);
  /// A free record slot in group g; false when the table is full.
  bool take_slot(Group g, std::uint32_t* slot);
  void give_back_slot(std::uint32_t slot);
  void remove_from_partial(std::uint32_t chunk);
  void unindex(std::size_t position);
  template <typename F>
  void visit_chunk(std::uint32_t c, F& f) const {
    std::uint64_t used = ~chunk_meta_[c].free_mask;
    const AllocationRecord* data = chunk_data_[c].get();
    while (used) {
      f(data[std::countr_zero(used)]);
      used &= used - 1;
    }
  }

  std::uint64_t seed_[3] = {};
  std::vector<std::unique_ptr<AllocationRecord[]>> chunk_data_;
  std::vector<ChunkMeta> chunk_meta_;
  std::vector<std::uint32_t> spare_chunks_;  // owned by no group; memory kept for reuse
  std::size_t chunks_with_memory_ = 0;
  std::vector<GroupState> groups_;
  std::vector<Group> free_groups_;
  std::vector<std::uint32_t> index_;
  std::size_t size_ = 0;
  mutable std::size_t max_probe_ = 0;
  std::uint64_t group_records_visited_ = 0;
};

template <typename Removed>
std::size_t AllocationTable::erase_group(Group g, Removed&& removed) {
  std::vector<AllocationKey> keys;
  keys.reserve(groups_[g].live);
  for_each_in_group(g, [&](const AllocationRecord& r) { keys.push_back(r.key()); });
  group_records_visited_ += keys.size();
  for (const AllocationKey& k : keys) {
    AllocationRecord r;
    erase(k, &r);
    removed(r);
  }
  return keys.size();
}

}  // namespace ttmem::server
