// Buffers (TT-Metal's tt_metal/impl/buffers/buffer.cpp): owning buffers take memory from an allocator;
// pre-allocated buffers sit at a given address and never touch it; views share a region of another
// buffer and are never tracked. Every buffer has a process-unique id and a status:
// allocation_requested -> allocated -> deallocated.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "ttmem/runtime/graph_tracker.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

class BufferHome;
class Device;

struct BufferConfig {
  std::uint64_t size = 0;       ///< Bytes; 0 allocates nothing.
  std::uint64_t page_size = 0;  ///< 0: the whole buffer is one page.
  BufferType type = BufferType::DRAM;
  std::optional<std::uint32_t> shard_cores;  ///< Sharded over this many cores instead of interleaved.
  std::optional<Placement> placement;        ///< Default: DRAM/TRACE bottom-up, L1/L1_SMALL top-down.
  std::optional<AllocKind> kind;             ///< Default: trace for TRACE, otherwise owning.
  std::string site;                          ///< Origin shown by trackers.
  bool internal = false;                     ///< Runtime-owned: released by close without being a leak.
};

/// Where one page of a buffer lives.
struct PageLocation {
  std::uint32_t bank_id = 0;
  DeviceAddr address = 0;  ///< Address inside the bank's channel or core, bank offset included.
};

class Buffer {
 public:
  /// Owning buffer on one device. Throws Error(out_of_memory | invalid_argument | device_closed).
  static std::shared_ptr<Buffer> create(Device& device, const BufferConfig& config);
  /// Pre-allocated (non-owning) buffer at `address` on one device: never touches the allocator, but is
  /// registered with it so the close sweep releases and reports it.
  static std::shared_ptr<Buffer> create_at(Device& device, DeviceAddr address, const BufferConfig& config);
  /// View of [offset, offset + size) of `root`: shares its memory, keeps it alive, is never tracked.
  static std::shared_ptr<Buffer> view(const std::shared_ptr<Buffer>& root, std::uint64_t offset,
                                      std::uint64_t size);

  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer();

  /// Frees the memory (owning) and reports the release. Idempotent; after the device closed it does
  /// nothing (the close sweep already released it), so handles may outlive their device.
  void deallocate();

  BufferId unique_id() const { return id_; }
  DeviceAddr address() const { return address_; }
  std::uint64_t size() const { return size_; }
  std::uint64_t page_size() const { return page_size_; }
  std::uint64_t num_pages() const { return page_size_ ? size_ / page_size_ : 0; }
  BufferType type() const { return type_; }
  AllocKind kind() const { return kind_; }
  bool owns_data() const { return owns_data_; }
  bool is_view() const { return root_ != nullptr; }
  bool is_sharded() const { return sharded_; }
  bool internal() const { return internal_; }
  BufferStatus status() const;
  const std::string& site() const { return site_; }
  EventScope scope() const { return scope_; }
  DeviceId device_id() const { return device_; }
  MeshId mesh_id() const { return mesh_; }
  std::uint32_t num_banks() const { return num_banks_; }
  /// TT-Metal's size_per_bank (pages per bank x aligned page): what page locations are computed from.
  std::uint64_t size_per_bank() const { return size_per_bank_; }
  /// What the buffer takes in every bank: size_per_bank rounded to the free list's granule. Reported to
  /// trackers as the event's size_per_bank, so their totals equal the allocator's statistics.
  std::uint64_t reserved_per_bank() const { return reserved_per_bank_; }
  std::uint64_t aligned_page_size() const { return aligned_page_size_; }

  /// Bank and address of a page: interleaved page i is in bank i % banks at
  /// address + bank_offset + (i / banks) * aligned_page_size; sharded pages fill one shard after another.
  PageLocation page_location(std::uint64_t page_index) const;

  // Runtime-internal ---------------------------------------------------------------------------------
  struct Placing {
    EventScope scope = EventScope::device;
    DeviceId device{};
    MeshId mesh{};
    std::optional<DeviceAddr> at;  ///< Pre-allocated at this address (non-owning).
  };
  /// Creates, places, registers and reports a buffer. Caller holds home->mutex().
  static std::shared_ptr<Buffer> create_locked(std::shared_ptr<BufferHome> home, const Placing& placing,
                                               const BufferConfig& config);
  /// Releases (if allocated) and reports with `reason`. Caller holds the home's mutex.
  void release_locked(ReleaseReason reason);
  AllocationEvent event() const;

 private:
  Buffer() = default;

  std::shared_ptr<BufferHome> home_;  // keeps the allocator (and its mutex) alive past device close
  std::shared_ptr<Buffer> root_;      // views only
  BufferId id_{};
  EventScope scope_ = EventScope::device;
  DeviceId device_{};
  MeshId mesh_{};
  DeviceAddr address_ = 0;
  std::uint64_t size_ = 0;
  std::uint64_t page_size_ = 0;
  std::uint64_t aligned_page_size_ = 0;
  std::uint64_t size_per_bank_ = 0;
  std::uint64_t reserved_per_bank_ = 0;
  std::uint32_t num_banks_ = 0;
  BufferType type_ = BufferType::DRAM;
  AllocKind kind_ = AllocKind::owning;
  bool owns_data_ = false;
  bool sharded_ = false;
  bool internal_ = false;
  bool hooked_ = false;   // a GraphTracker hook took the allocation: nothing to give back
  bool tracked_ = false;  // reported an allocation, so must report its release
  std::uint64_t created_ns_ = 0;
  std::uint32_t op_ = 0;  // GraphTracker::op_tag when it was made
  std::atomic<BufferStatus> status_{BufferStatus::allocation_requested};
  std::string site_;
};

}  // namespace ttmem::emu
