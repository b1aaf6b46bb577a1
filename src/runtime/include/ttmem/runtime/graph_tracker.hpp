// GraphTracker-style observer registry (TT-Metal's tt_metal/graph/graph_tracking.hpp): processors see EVERY
// allocation and release of the runtime — owning, pre-allocated and mesh buffers, circular buffers, kernel
// binaries, trace buffers — and at most one hook may intercept allocations so the allocator is skipped.
// This is the seam where ttmem's client library (or any other tracker) plugs in.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string_view>
#include <vector>

#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

/// Device scope: memory on one physical device (counted). Mesh scope: a mesh allocator's backing
/// reservation, which is never physical memory of its own (each device reports its part).
enum class EventScope : std::uint8_t { device, mesh };

/// One allocation or release as processors see it.
struct AllocationEvent {
  EventScope scope = EventScope::device;
  DeviceId device{};  ///< Physical device (device scope only).
  MeshId mesh{};      ///< Mesh the device belongs to, or the mesh itself (mesh scope).
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  BufferId id{};           ///< Process-unique; never an address.
  std::uint64_t size = 0;  ///< Bytes the owner asked for (per core for circular buffers).
  DeviceAddr address = 0;
  std::uint64_t page_size = 0;
  std::uint32_t num_banks = 0;      ///< Banks (or cores) it spans.
  std::uint64_t size_per_bank = 0;  ///< Bytes reserved in each of those banks.
  std::string_view site;  ///< Who created it ("dispatch/control", "program add/cb0", "script.ttm:4").
  bool internal = false;  ///< Runtime-owned (control buffers, program cache contents).
  /// The op it was made in, as the tracking layer tags it (GraphTracker::op_tag); 0: none.
  std::uint32_t op = 0;
  std::uint64_t timestamp_ns = 0;                       ///< CLOCK_MONOTONIC when the allocation was made.
  ReleaseReason reason = ReleaseReason::explicit_free;  ///< Releases only.
};

/// An allocation the runtime refused, seen before the error is thrown to the caller. TT-Metal's
/// GraphTracker has no such callback (its processors never hear of a failure); the emulator adds one so
/// that ttmem's out-of-memory records can be tested end to end.
struct AllocationFailure {
  DeviceId device{};  ///< the device whose allocator refused (the first device of a mesh)
  MeshId mesh{};
  BufferType type = BufferType::DRAM;
  FailureReason reason = FailureReason::out_of_memory;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t size_per_bank = 0;  ///< what each bank needed to hold
  std::string_view site;
  std::string_view message;  ///< the error text the caller gets
  std::uint64_t timestamp_ns = 0;
};

/// The failure of the allocation `request` describes (its device, type, size and layout).
AllocationFailure failure_of(const AllocationEvent& request, FailureReason reason, std::string_view message);

/// What a device is, announced when it opens.
struct DeviceInfo {
  DeviceId device{};
  MeshId mesh{};
  Arch arch = Arch::wormhole_b0;
  /// Allocatable bytes per managed memory type over all banks, indexed by BufferType value.
  std::array<std::uint64_t, kBufferTypes> total_bytes{};
  std::array<std::uint32_t, kBufferTypes> num_banks{};
  /// Where each type's managed range starts in every bank.
  std::array<std::uint64_t, kBufferTypes> base_address{};
};

/// Observer interface. Callbacks run synchronously on the allocating thread while the allocator's lock is
/// held, so they see events of one device in order; they must not call back into the runtime.
class Processor {
 public:
  virtual ~Processor() = default;
  virtual void track_allocate(const AllocationEvent& event) = 0;
  virtual void track_deallocate(const AllocationEvent& event) = 0;
  virtual void track_allocate_failed(const AllocationFailure& /*failure*/) {}
  virtual void track_device_open(const DeviceInfo& /*info*/) {}
  virtual void track_device_close(DeviceId /*device*/, ClosePhase /*phase*/) {}
};

/// A hook may take over an allocation: when hook_allocate returns true, the buffer gets address 0 and the
/// allocator is not touched (TT-Metal uses this for graph capture without dispatch).
class Hook {
 public:
  virtual ~Hook() = default;
  virtual bool hook_allocate(const AllocationEvent& request) = 0;
};

class GraphTracker {
 public:
  static GraphTracker& instance();

  void push_processor(std::shared_ptr<Processor> processor);
  void pop_processor();
  void remove_processor(const std::shared_ptr<Processor>& processor);
  void clear_processors();
  bool has_processors() const;

  /// Installs the hook; throws Error(invalid_state) if one is already installed.
  void add_hook(std::shared_ptr<Hook> hook);
  void remove_hook();

  // Called by the runtime.
  void track_allocate(const AllocationEvent& event) const;
  void track_deallocate(const AllocationEvent& event) const;
  void track_allocate_failed(const AllocationFailure& failure) const;
  void track_device_open(const DeviceInfo& info) const;
  void track_device_close(DeviceId device, ClosePhase phase) const;
  bool hook_allocate(const AllocationEvent& request) const;

  /// The op tag of the calling thread, stamped on each allocation when it is made (so that an event
  /// rebuilt later, as a resync snapshot does, still names it). The tracking layer supplies the source;
  /// without one every tag is 0.
  using OpTagSource = std::uint32_t (*)();
  void set_op_tag_source(OpTagSource source) { op_tag_source_.store(source, std::memory_order_release); }
  std::uint32_t op_tag() const {
    const OpTagSource source = op_tag_source_.load(std::memory_order_acquire);
    return source ? source() : 0;
  }

 private:
  GraphTracker() = default;
  mutable std::shared_mutex mutex_;
  std::vector<std::shared_ptr<Processor>> processors_;
  std::shared_ptr<Hook> hook_;
  std::atomic<OpTagSource> op_tag_source_{nullptr};
};

}  // namespace ttmem::emu
