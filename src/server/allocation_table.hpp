// The server's registry of live allocations, keyed by (process, device, unique id) — never by address.
// Built for millions of entries: 48-byte records in fixed chunks (no reallocation spikes) and an
// open-addressing index of 4-byte record numbers with linear probing and backward-shift deletion,
// about 50 bytes per live allocation in all (docs/benchmarks.md).
#pragma once

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
  AllocationTable();
  ~AllocationTable();
  AllocationTable(const AllocationTable&) = delete;
  AllocationTable& operator=(const AllocationTable&) = delete;

  /// nullptr when absent.
  const AllocationRecord* find(const AllocationKey& key) const;
  /// Inserts; returns false (and changes nothing) when the key is already present or the process slot is 0.
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
        if (chunk[i].live()) f(chunk[i]);
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
