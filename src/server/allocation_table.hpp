// The server's registry of live allocations, keyed by (process, device, unique id) — never by address.
// Built for millions of entries: 48-byte records in fixed chunks (no reallocation spikes) and an
// open-addressing index of 4-byte record numbers with linear probing and backward-shift deletion,
// about 57 bytes per live allocation in all (docs/benchmarks.md).
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

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
  std::uint64_t timestamp_ns = 0;  ///< CLOCK_MONOTONIC of the allocation
  std::uint32_t process = 0;       ///< Process slot in the registry
  std::uint32_t site = 0;
  std::uint16_t device = 0;
  std::uint8_t type = 0;   ///< proto::BufferType
  std::uint8_t kind = 0;   ///< proto::AllocKind
  std::uint8_t flags = 0;  ///< proto::kFlagInternal
  std::uint8_t live = 0;   ///< slot in use (internal)
  AllocationKey key() const { return {process, device, id}; }
};
static_assert(sizeof(AllocationRecord) == 48,
              "keep the record at 48 bytes: it is most of the server's memory");

class AllocationTable {
 public:
  AllocationTable();
  ~AllocationTable();
  AllocationTable(const AllocationTable&) = delete;
  AllocationTable& operator=(const AllocationTable&) = delete;

  /// nullptr when absent.
  const AllocationRecord* find(const AllocationKey& key) const;
  /// Inserts; returns false (and changes nothing) when the key is already present.
  bool insert(const AllocationRecord& record);
  /// Removes and copies out the record; false when absent.
  bool erase(const AllocationKey& key, AllocationRecord* removed = nullptr);

  std::size_t size() const { return size_; }
  /// Bytes held by the table's own structures (records, index, free list).
  std::size_t memory_bytes() const;

  /// Calls f(const AllocationRecord&) for every live record.
  template <typename F>
  void for_each(F&& f) const {
    for (std::size_t c = 0; c < chunks_.size(); ++c) {
      const AllocationRecord* chunk = chunks_[c].get();
      const std::size_t n = c + 1 == chunks_.size() ? used_in_last_ : kChunkRecords;
      for (std::size_t i = 0; i < n; ++i) {
        if (chunk[i].live) f(chunk[i]);
      }
    }
  }
  /// Removes every record for which pred(record) is true, calling removed(record) for each first.
  template <typename Pred, typename Removed>
  std::size_t erase_if(Pred&& pred, Removed&& removed) {
    std::vector<AllocationKey> keys;
    for_each([&](const AllocationRecord& r) {
      if (pred(r)) keys.push_back(r.key());
    });
    for (const AllocationKey& k : keys) {
      AllocationRecord r;
      erase(k, &r);
      removed(r);
    }
    return keys.size();
  }

 private:
  static constexpr std::size_t kChunkRecords = 1 << 16;
  static constexpr std::uint32_t kEmpty = 0xffffffffu;

  static std::uint64_t hash(const AllocationKey& key);
  AllocationRecord& record(std::uint32_t slot) const {
    return chunks_[slot / kChunkRecords][slot % kChunkRecords];
  }
  std::uint32_t new_slot();
  std::size_t probe(
      const AllocationKey& key) const;  // index position of key, or of the empty cell ending the run
  void grow_index();

  std::vector<std::unique_ptr<AllocationRecord[]>> chunks_;
  std::size_t used_in_last_ = kChunkRecords;  // records handed out in the last chunk
  std::vector<std::uint32_t> free_slots_;
  std::vector<std::uint32_t> index_;  // record slots; kEmpty for free cells
  std::size_t size_ = 0;
};

}  // namespace ttmem::server
