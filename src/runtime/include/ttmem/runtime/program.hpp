// Programs and their circular buffers (TT-Metal's tt_metal/impl/program/). A program's CBs are placed
// when it first runs: one CB allocator per distinct core range, bottom-up from the L1 unreserved base, the
// same address on every core of a CB's ranges; they must stay below the lowest L1 buffer. Programs that ran
// are held by the program cache with their kernel binaries; clear_program_cache() or release() frees the CBs,
// each one reported.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "ttmem/core_range.hpp"
#include "ttmem/runtime/graph_tracker.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

class Device;
class MeshDevice;
class MeshBuffer;

using ttmem::CoreCoord;
using ttmem::CoreRange;
using ttmem::CoreRangeSet;

struct CircularBufferConfig {
  CircularBufferConfig() = default;
  CircularBufferConfig(std::uint64_t size_per_core, CoreRangeSet on = {}, std::weak_ptr<MeshBuffer> in = {})
      : size(size_per_core), cores(std::move(on)), buffer(std::move(in)) {}

  std::uint64_t size = 0;  ///< Bytes on each core of the range.
  CoreRangeSet cores;      ///< Rectangles of worker cores (merged as TT-Metal merges them); empty: all.
  /// Globally allocated (TT-Metal's CircularBufferConfig with a buffer): the CB lives inside this L1
  /// buffer, at its address; it is not placed by the CB allocators and holds no bytes of its own (not
  /// reported, as the bridge does not report TT-Metal's). Not owned: the buffer must be alive when the
  /// program runs.
  std::weak_ptr<MeshBuffer> buffer;
  /// Given a buffer (alive or not): a weak pointer that was never set is owner-equivalent to an empty one.
  bool globally_allocated() const {
    const std::weak_ptr<MeshBuffer> none;
    return buffer.owner_before(none) || none.owner_before(buffer);
  }
};

struct ProgramConfig {
  std::string name;
  std::vector<CircularBufferConfig> circular_buffers;
  std::uint64_t kernel_binary_size = 4096;  ///< DRAM held by the program cache for this program's kernels.
};

/// A circular buffer placed on one device.
struct CircularBufferAllocation {
  BufferId id{};
  DeviceId device{};
  std::uint32_t index = 0;  ///< CB index in the program.
  DeviceAddr address = 0;
  std::uint64_t size = 0;
  CoreRangeSet cores;               ///< The merged ranges it occupies (never empty once placed).
  bool globally_allocated = false;  ///< inside a buffer (CircularBufferConfig::buffer): not reported
  std::uint64_t created_ns = 0;     ///< CLOCK_MONOTONIC when placed
  std::uint32_t op = 0;             ///< GraphTracker::op_tag when placed
};

enum class ProgramState : std::uint8_t {
  created,   ///< Not run yet (or its cache entry was cleared): no circular buffers.
  compiled,  ///< Ran: circular buffers placed, held by the program cache.
  released,  ///< Destroyed by release(); cannot run again.
};

class Program {
 public:
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  ~Program();

  ProgramId id() const { return id_; }
  const std::string& name() const { return config_.name; }
  const ProgramConfig& config() const { return config_; }
  ProgramState state() const;
  /// Circular buffers currently placed, on every device.
  std::vector<CircularBufferAllocation> circular_buffers() const;

  /// TT-Metal's UpdateCircularBufferTotalSize: CB `index` gets a new size per core. Its placement is
  /// invalidated: the CBs placed now are released (each reported) and the next run places every CB again,
  /// so those after it move (TensixTestValidUpdateCircularBufferSize). Throws Error(invalid_argument) for
  /// an unknown index or a size of 0, Error(invalid_state) once released.
  void update_circular_buffer_total_size(std::uint32_t index, std::uint64_t size);

  /// TT-Metal's UpdateDynamicCircularBufferAddress: CB `index` moves into `buffer` (an L1 buffer of this
  /// mesh), at its address, now and on later runs; the other CBs stay where they are. A CB that was placed
  /// by the CB allocators is released (reported) first. Throws Error(invalid_argument) for an unknown
  /// index or a buffer that is not an allocated L1 buffer.
  void update_dynamic_circular_buffer_address(std::uint32_t index, const std::shared_ptr<MeshBuffer>& buffer);

  /// Destroys the program: every CB is released (and reported) and the program leaves the program caches
  /// (its kernel binary stays cached). Idempotent; safe after the mesh closed.
  void release();

  // Runtime-internal (caller holds the mesh lock) -------------------------------------------------------
  Program(ProgramId id, ProgramConfig config, std::weak_ptr<MeshDevice> mesh);
  const MeshDevice* mesh() const { return mesh_raw_; }
  bool has_circular_buffers_on(DeviceId device) const;
  void add_circular_buffers(std::vector<CircularBufferAllocation> cbs);
  void release_circular_buffers_on(DeviceId device, ReleaseReason reason);
  std::string cb_site(std::uint32_t index) const;
  /// The tracker's view of a placed CB (caller holds the mesh lock).
  AllocationEvent cb_event(const CircularBufferAllocation& cb, std::string_view site) const;
  const std::vector<CircularBufferAllocation>& circular_buffers_locked() const { return cbs_; }

 private:
  /// The mesh's lock (when the mesh lives), once the program may still change and CB `index` exists.
  std::unique_lock<std::recursive_mutex> lock_for_update(MeshDevice* mesh, std::uint32_t index) const;

  ProgramId id_;
  ProgramConfig config_;
  std::weak_ptr<MeshDevice> mesh_;
  const MeshDevice* mesh_raw_;
  bool released_ = false;
  std::vector<CircularBufferAllocation> cbs_;
};

/// A device's program cache: kernel binaries (owning DRAM buffers, top-down) keyed by program name, and
/// the programs that ran on the device.
class ProgramCache {
 public:
  std::size_t num_kernel_binaries() const { return kernel_binaries_.size(); }
  std::size_t num_programs() const { return programs_.size(); }
  /// Runtime-internal (caller holds the mesh lock): what the cache holds, for resync snapshots.
  const std::vector<std::shared_ptr<Program>>& programs() const { return programs_; }
  /// The kernel binary cached for the program of this name, if any (caller holds the mesh lock).
  const class Buffer* kernel_binary(std::string_view name) const;

  // Runtime-internal (caller holds the mesh lock).
  void add(Device& device, const std::shared_ptr<Program>& program);
  void forget(const Program* program);
  /// Frees kernel binaries and the CBs of cached programs on `device`, reporting them with `reason`.
  void clear(Device& device, ReleaseReason reason);

 private:
  std::vector<std::pair<std::string, std::shared_ptr<class Buffer>>> kernel_binaries_;
  std::vector<std::shared_ptr<Program>> programs_;
};

}  // namespace ttmem::emu
