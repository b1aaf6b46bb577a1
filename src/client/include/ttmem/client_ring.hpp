// libttmem's per-thread rings, in the public header because the hot path is inlined into the caller: a
// report is a handful of stores into the calling thread's ring and one release store of its head. Not an
// interface: the layout may change with any release (C callers use ttmem.h, whose ABI stays).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "ttmem/protocol.hpp"

namespace ttmem::client::detail {

/// One event in a ring, on a cache line of its own (a record never straddles two lines).
struct alignas(64) RingRecord : proto::EventRecord {};
static_assert(sizeof(RingRecord) == 64);

/// Marks a ring record that stands for a fence (a device open/close, a failure record), never sent as an
/// event: its fence number is the epoch beside it.
inline constexpr std::uint16_t kFenceRecord = 0x8000;

/// Single-producer single-consumer ring: one per reporting thread, drained by the sender. The epoch of each
/// record (fences issued before it was written) lives in an array beside the records, so a record stays one
/// cache line. Producer and consumer indices live on separate lines.
struct Ring {
  explicit Ring(std::size_t capacity)
      : mask(capacity - 1),
        records(std::make_unique<RingRecord[]>(capacity)),
        epochs(std::make_unique<std::uint32_t[]>(capacity)) {}

  alignas(64) std::atomic<std::uint64_t> head{0};  // next record the producer writes
  alignas(64) std::atomic<std::uint64_t> tail{0};  // next record the consumer reads
  alignas(64) std::atomic<bool> abandoned{false};  // the producing thread exited
  const std::uint64_t mask;
  const std::unique_ptr<RingRecord[]> records;
  const std::unique_ptr<std::uint32_t[]> epochs;

  std::uint64_t capacity() const { return mask + 1; }
};

/// What the calling thread's hot path reads: plain data, zero-initialised, with initial-exec TLS, so
/// reaching it is one %fs-relative access (no TLS guard, no __tls_get_addr). The ring itself is kept alive
/// by a binding the library holds per thread.
struct ThreadRing {
  std::uint64_t client_id;  // the client `ring` belongs to; 0: none yet
  std::uint64_t head;       // the producer's copy of ring->head
  std::uint64_t limit;      // the fast path writes while head < limit (room, short of the half-full nudge)
  std::uint64_t mask;
  RingRecord* records;
  std::uint32_t* epochs;
  Ring* ring;
  std::uint64_t op_client_id;  // the thread's op scope (push_op), and the client it was pushed on
  std::uint32_t op_id;
};

extern __thread ThreadRing t_ring __attribute__((tls_model("initial-exec")));

}  // namespace ttmem::client::detail
