// Devices and mesh devices (TT-Metal's tt_metal/distributed/). A MeshDevice opens N physical devices
// (ids 0..N-1 in the process), each with its own allocator and program cache, plus a mesh-level
// allocator. Opening initialises the devices (three pre-allocated dispatch control buffers on the first
// one); closing follows TT-Metal's order and leaves no tracked allocation behind.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "ttmem/runtime/allocator.hpp"
#include "ttmem/runtime/arch.hpp"
#include "ttmem/runtime/buffer.hpp"
#include "ttmem/runtime/graph_tracker.hpp"
#include "ttmem/runtime/program.hpp"
#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

class Error;
class MeshBuffer;
class ChipLock;

class Device {
 public:
  Device(DeviceId id, MeshId mesh, Arch arch, const DeviceOptions& options,
         std::shared_ptr<std::recursive_mutex> mutex);
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  DeviceId id() const { return id_; }
  MeshId mesh_id() const { return mesh_; }
  Arch arch() const { return allocator_->arch(); }
  const ArchSpec& spec() const { return allocator_->spec(); }
  Allocator& allocator() { return *allocator_; }
  const Allocator& allocator() const { return *allocator_; }
  std::shared_ptr<Allocator> allocator_ptr() const { return allocator_; }
  ProgramCache& program_cache() { return program_cache_; }
  bool is_initialized() const { return initialized_.load(); }
  DeviceInfo info() const;

  /// Device-local owning buffer.
  std::shared_ptr<Buffer> create_buffer(const BufferConfig& config) { return Buffer::create(*this, config); }
  /// Device-local pre-allocated buffer at `address`.
  std::shared_ptr<Buffer> create_buffer_at(DeviceAddr address, const BufferConfig& config) {
    return Buffer::create_at(*this, address, config);
  }

  /// Runtime-internal, caller holds the mesh lock: clears the program cache, sweeps the allocator
  /// (owning and pre-allocated buffers), marks the device uninitialized.
  void close_locked();

 private:
  DeviceId id_;
  MeshId mesh_;
  std::shared_ptr<Allocator> allocator_;
  ProgramCache program_cache_;
  std::atomic<bool> initialized_{true};
};

struct MeshDeviceConfig {
  std::string preset = "n150";  ///< n150, n300, t3000, galaxy, p150, p300.
  std::optional<Arch> arch;     ///< Overrides the preset's architecture.
  DeviceOptions options;
  /// The process's device numbers the mesh opens, one per device (TT-Metal's physical_device_ids);
  /// empty: 0..N-1. Through TT_VISIBLE_DEVICES they name physical chips; events carry the chip's number.
  std::vector<std::uint32_t> device_ids;
  /// Holds its chips on the emulated machine (TT-Metal's open: another process waits, this process may
  /// not open them twice). False for a private model of a chip -- an analysis such as the replay's
  /// address check -- that is nobody's device.
  bool hold_chips = true;
};

class MeshDevice : public std::enable_shared_from_this<MeshDevice> {
 public:
  /// Opens a mesh. Throws Error(unknown_preset | invalid_argument | device_busy).
  static std::shared_ptr<MeshDevice> open(const MeshDeviceConfig& config);
  MeshDevice(const MeshDevice&) = delete;
  MeshDevice& operator=(const MeshDevice&) = delete;
  ~MeshDevice();  ///< Closes the mesh if it is still open.

  MeshId id() const { return id_; }
  const std::string& preset() const { return preset_; }
  std::uint32_t rows() const { return rows_; }
  std::uint32_t cols() const { return cols_; }
  Arch arch() const { return arch_; }
  const DeviceOptions& options() const { return options_; }
  std::size_t num_devices() const { return devices_.size(); }
  Device& device(std::size_t index) { return *devices_.at(index); }
  const Device& device(std::size_t index) const { return *devices_.at(index); }
  MeshAllocator& allocator() { return *allocator_; }
  bool is_open() const { return open_.load(); }
  std::recursive_mutex& mutex() const { return *mutex_; }
  /// The dispatch control buffers device init placed on the first device (empty after close).
  std::vector<std::shared_ptr<Buffer>> control_buffers() const;
  /// Calls f with every mesh of this process (open, or still opening) while no new mesh can register:
  /// a tracker locks them all inside f to take a snapshot no event can slip past.
  static void with_meshes(const std::function<void(const std::vector<std::shared_ptr<MeshDevice>>&)>& f);

  /// A buffer replicated on every device: a backing buffer on the mesh allocator plus one non-owning
  /// buffer per device at the same address.
  std::shared_ptr<MeshBuffer> create_buffer(const BufferConfig& config);
  std::shared_ptr<Program> create_program(const ProgramConfig& config);
  /// Runs a program on every device: caches its kernel binary, places its circular buffers on first run
  /// (Error(cb_clash) if they would run into an L1 buffer). The program cache then holds the program.
  void run(const std::shared_ptr<Program>& program);
  /// Frees every kernel binary and the circular buffers of every cached program.
  void clear_program_cache();
  /// TT-Metal's close order: mesh command queues, mesh allocator, then per device: program cache,
  /// allocator sweep, uninitialized. Buffers the application still held are swept and reported as
  /// close_leak; runtime-internal ones as close_internal. Idempotent.
  void close();

  MeshDevice(MeshId id, const std::string& preset, std::uint32_t rows, std::uint32_t cols, Arch arch,
             const DeviceOptions& options);  // use open()

 private:
  /// Reports a mesh buffer's out-of-memory failure (called with the mesh locked).
  void report_mesh_failure(const BufferConfig& config, const Error& error) const;
  void require_open() const;
  void initialize_devices();

  MeshId id_;
  std::string preset_;
  std::uint32_t rows_;
  std::uint32_t cols_;
  Arch arch_;
  DeviceOptions options_;
  std::shared_ptr<std::recursive_mutex> mutex_;
  std::vector<std::unique_ptr<Device>> devices_;
  std::vector<std::uint32_t> chips_;  // physical chip of each device, in order
  std::vector<std::unique_ptr<ChipLock>> chip_locks_;
  bool holds_chips_ = true;  // held while open (other processes wait)
  std::shared_ptr<MeshAllocator> allocator_;
  std::vector<std::shared_ptr<Buffer>> control_buffers_;
  std::atomic<bool> open_{false};
};

class MeshBuffer {
 public:
  MeshBuffer(const MeshBuffer&) = delete;
  MeshBuffer& operator=(const MeshBuffer&) = delete;
  ~MeshBuffer();

  DeviceAddr address() const { return backing_->address(); }
  std::uint64_t size() const { return backing_->size(); }
  std::uint64_t page_size() const { return backing_->page_size(); }
  BufferType type() const { return backing_->type(); }
  AllocKind kind() const { return backing_->kind(); }
  const std::string& site() const { return backing_->site(); }
  BufferStatus status() const { return backing_->status(); }
  bool is_allocated() const { return status() == BufferStatus::allocated; }
  const Buffer& backing() const { return *backing_; }
  std::size_t num_devices() const { return device_buffers_.size(); }
  const std::shared_ptr<Buffer>& device_buffer(std::size_t index) const { return device_buffers_.at(index); }

  /// Releases every device's buffer, then the backing buffer. Idempotent; safe after the mesh closed.
  void deallocate();

  MeshBuffer(std::shared_ptr<Buffer> backing, std::vector<std::shared_ptr<Buffer>> device_buffers);

 private:
  std::shared_ptr<Buffer> backing_;
  std::vector<std::shared_ptr<Buffer>> device_buffers_;
};

}  // namespace ttmem::emu
