// Single-producer single-consumer ring of event slots: one per reporting thread, drained by the sender.
// The producer and consumer indices live on separate cache lines; the producer caches the consumer's index
// so the common case touches no shared line it does not own.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "ttmem/protocol.hpp"

namespace ttmem::client {

struct Slot {
  proto::EventRecord record;
  std::uint32_t epoch = 0;  ///< fences issued before this record was written
  std::uint32_t fence = 0;  ///< non-zero: this slot is fence number `fence` (a device open/close)
};

struct Ring {
  explicit Ring(std::size_t capacity) : mask(capacity - 1), slots(new Slot[capacity]) {}

  alignas(64) std::atomic<std::uint64_t> head{0};  // next slot the producer writes
  std::uint64_t cached_tail = 0;                   // producer's copy of `tail`
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next slot the consumer reads
  alignas(64) std::atomic<bool> abandoned{false};  // the producing thread exited
  std::atomic<bool> waiting{false};                // the producer sleeps until the sender makes room
  const std::uint64_t mask;
  const std::unique_ptr<Slot[]> slots;

  std::uint64_t capacity() const { return mask + 1; }
};

}  // namespace ttmem::client
