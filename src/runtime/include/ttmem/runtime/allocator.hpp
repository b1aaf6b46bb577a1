// Per-device allocator (four bank managers: DRAM, L1, L1_SMALL, TRACE) and the mesh-level allocator.
// Both keep a registry of the Buffers whose memory they hold, so the close-time sweep can release and
// report every one of them. The device allocator also keeps pre-allocated (non-owning) buffers in a
// registry of their own: they never take memory from it, but they are released by its sweep (the seed's
// fix: before it, they stayed tracked after close).
#pragma once

#include <array>
#include <cstdint>
#include <iosfwd>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "ttmem/runtime/arch.hpp"
#include "ttmem/runtime/statistics.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

class Buffer;
class BankManager;

/// Where a buffer landed and how it is spread over banks.
struct Reservation {
  DeviceAddr address = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t aligned_page_size = 0;
  std::uint64_t size_per_bank = 0;
  std::uint64_t reserved_per_bank = 0;  ///< size_per_bank rounded to the free list's granule
};

/// What a Buffer asks of the allocator that holds its memory.
struct ReservationRequest {
  BufferType type = BufferType::DRAM;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  std::optional<std::uint32_t> num_shards;
  Placement placement = Placement::bottom_up;
};

/// Common face of the device and mesh allocators towards Buffers. All methods other than the const
/// queries require the caller to hold mutex().
class BufferHome {
 public:
  virtual ~BufferHome() = default;
  std::recursive_mutex& mutex() const { return *mutex_; }
  bool is_open() const { return open_; }

  virtual Reservation reserve(const ReservationRequest& request) = 0;
  virtual void release(BufferType type, DeviceAddr address) = 0;
  /// Bank layout (banks, offsets) used to map pages of a buffer of this type.
  virtual const BankManager& bank_manager(BufferType type) const = 0;

  void attach(Buffer* buffer, bool owning);
  void detach(Buffer* buffer);
  /// Every attached buffer, owning first then pre-allocated, each group ordered by buffer id.
  std::vector<Buffer*> attached_buffers() const;
  std::size_t num_owned_buffers() const { return owned_.size(); }
  std::size_t num_preallocated_buffers() const { return preallocated_.size(); }

 protected:
  explicit BufferHome(std::shared_ptr<std::recursive_mutex> mutex);
  std::shared_ptr<std::recursive_mutex> mutex_;
  bool open_ = true;
  std::unordered_set<Buffer*> owned_;         // TT-Metal's allocated_buffers_
  std::unordered_set<Buffer*> preallocated_;  // non-owning buffers placed on this device
};

/// One device's allocator. Thread-safe: public queries lock mutex(), which a MeshDevice shares among all
/// allocators of the mesh.
class Allocator : public BufferHome {
 public:
  /// Throws Error(invalid_argument) when the options do not fit the architecture.
  Allocator(Arch arch, const DeviceOptions& options, std::shared_ptr<std::recursive_mutex> mutex = nullptr);
  ~Allocator() override;

  Arch arch() const { return arch_; }
  const DeviceOptions& options() const { return options_; }
  /// The architecture's geometry with this device's overrides (DeviceOptions).
  const ArchSpec& spec() const { return spec_; }
  /// Top of the L1 the allocator manages: the whole L1 per core.
  std::uint64_t worker_l1_size() const { return worker_l1_size_; }
  /// The L1_SMALL and TRACE reservations as TT-Metal rounds them (DeviceOptions gives the asked sizes).
  std::uint64_t l1_small_size() const { return l1_small_size_; }
  std::uint64_t trace_region_size() const { return trace_region_size_; }

  Statistics statistics(BufferType type) const;
  std::vector<MemoryBlock> memory_blocks(BufferType type) const;
  /// TT-Metal's get_memory_block_table (FreeListOpt's): blockID, address (relative), size, prevID, nextID,
  /// allocated, in block-id order.
  std::vector<std::map<std::string, std::string>> memory_block_table(BufferType type) const;
  /// TT-Metal's dump_memory_blocks: the block table of every bank manager, in FreeListOpt's layout.
  void dump_memory_blocks(std::ostream& out) const;
  std::uint32_t num_banks(BufferType type) const;
  std::uint64_t bank_size(BufferType type) const;
  DeviceAddr base_address(BufferType type) const;
  std::uint32_t alignment(BufferType type) const;
  /// Lowest address held by any L1 buffer (circular buffers must stay below it).
  std::optional<DeviceAddr> lowest_occupied_l1_address() const;
  /// TT-Metal's AllocatorImpl::shrink_allocator_size: the lowest `bytes` of a memory type's managed space
  /// become unusable (bottom-up only; what a sub-device manager does to give L1 to a local allocator).
  /// Throws Error(invalid_state) when that cuts into an allocated buffer.
  void shrink_size(BufferType type, std::uint64_t bytes, bool bottom_up = true);
  /// TT-Metal's reset_allocator_size: undoes every shrink of that type.
  void reset_size(BufferType type);

  // Runtime-internal (caller holds mutex()).
  Reservation reserve(const ReservationRequest& request) override;
  void release(BufferType type, DeviceAddr address) override;
  const BankManager& bank_manager(BufferType type) const override;
  BankManager& bank_manager(BufferType type);
  /// Releases every attached buffer (reporting each), frees all bank managers and closes the allocator.
  void sweep();

 private:
  Arch arch_;
  DeviceOptions options_;
  ArchSpec spec_;
  std::uint64_t worker_l1_size_;
  std::uint64_t l1_small_size_ = 0;
  std::uint64_t trace_region_size_ = 0;
  std::array<std::unique_ptr<BankManager>, kBufferTypes> banks_;  // indexed by BufferType value
};

/// The mesh-level allocator: one address valid on every device of the mesh (lockstep). It searches the
/// intersection of its devices' free lists first-fit and reserves the chosen range on each device, so a
/// device's statistics count each mesh buffer exactly once and nothing can overlap. Thread-safe like
/// Allocator.
class MeshAllocator : public BufferHome {
 public:
  MeshAllocator(std::vector<std::shared_ptr<Allocator>> devices, std::shared_ptr<std::recursive_mutex> mutex);

  /// Lockstep view: free = free on every device, allocated = the rest.
  Statistics statistics(BufferType type) const;

  // Runtime-internal (caller holds mutex()).
  Reservation reserve(const ReservationRequest& request) override;
  void release(BufferType type, DeviceAddr address) override;
  const BankManager& bank_manager(BufferType type) const override;
  /// Releases every live mesh backing buffer (reporting each) and closes the allocator.
  void sweep();

 private:
  std::vector<std::shared_ptr<Allocator>> devices_;
};

}  // namespace ttmem::emu
