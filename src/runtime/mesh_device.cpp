// MeshDevice: open (device ids, allocators, device init), programs, and TT-Metal's close sequence.
#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstdlib>
#include <set>
#include <vector>

#include "cb_placement.hpp"
#include "chip_lock.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

constexpr std::uint64_t kControlBufferSize = 4096;
constexpr std::uint32_t kMaxChips = 1024;  // the emulated machine: chip numbers 0..1023
constexpr int kNumControlBuffers = 3;

/// Physical chips held by open meshes of this process: refused twice within a process (TT-Metal throws
/// when a device is opened again), held across processes by a ChipLock per chip.
class DeviceIdRegistry {
 public:
  std::vector<std::unique_ptr<ChipLock>> claim(const std::vector<std::uint32_t>& chips) {
    {
      std::lock_guard lock(mutex_);
      for (std::uint32_t c : chips) {
        if (in_use_.contains(c)) {
          throw Error(ErrorCode::device_busy,
                      fmt::format("device {} is already open in this process; close its mesh first", c));
        }
      }
      in_use_.insert(chips.begin(), chips.end());
    }
    // Waiting for another process's chip happens outside the registry's mutex: closing a mesh on another
    // thread of this process must not wait for it.
    std::vector<std::unique_ptr<ChipLock>> locks;
    try {
      for (std::uint32_t c : chips) locks.push_back(std::make_unique<ChipLock>(c));
    } catch (...) {
      locks.clear();
      release(chips);
      throw;
    }
    return locks;
  }
  void release(const std::vector<std::uint32_t>& chips) {
    std::lock_guard lock(mutex_);
    for (std::uint32_t c : chips) in_use_.erase(c);
  }

 private:
  std::mutex mutex_;
  std::set<std::uint32_t> in_use_;
};

DeviceIdRegistry& device_ids() {
  static DeviceIdRegistry registry;
  return registry;
}

/// TT_VISIBLE_DEVICES: the physical chips this process may open, in the order it numbers them; nullopt
/// when unset (every chip, numbered as it is).
std::optional<std::vector<std::uint32_t>> visible_chips() {
  const char* env = std::getenv("TT_VISIBLE_DEVICES");
  if (!env || !*env) return std::nullopt;
  std::vector<std::uint32_t> out;
  std::string_view text(env);
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    std::uint32_t v = 0;
    const auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
    if (ec != std::errc{} || end != part.data() + part.size() || v >= kMaxChips) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("TT_VISIBLE_DEVICES='{}': '{}' is not a chip number (0..{}); give chip numbers "
                              "joined by ',', e.g. 0,2",
                              env, part, kMaxChips - 1));
    }
    if (std::find(out.begin(), out.end(), v) != out.end()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("TT_VISIBLE_DEVICES='{}' names chip {} twice", env, v));
    }
    out.push_back(v);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

/// The physical chips of a mesh: `ids` (the process's device numbers, as TT-Metal's physical_device_ids)
/// or 0..n-1, through TT_VISIBLE_DEVICES.
std::vector<std::uint32_t> chips_of(const std::vector<std::uint32_t>& ids, std::uint32_t n) {
  std::vector<std::uint32_t> logical = ids;
  if (logical.empty()) {
    for (std::uint32_t i = 0; i < n; ++i) logical.push_back(i);
  } else if (logical.size() != n) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("the mesh has {} devices but {} device ids were given", n, logical.size()));
  }
  for (std::size_t i = 0; i < logical.size(); ++i) {
    if (std::find(logical.begin(), logical.begin() + static_cast<std::ptrdiff_t>(i), logical[i]) !=
        logical.begin() + static_cast<std::ptrdiff_t>(i)) {
      throw Error(ErrorCode::invalid_argument, fmt::format("device id {} is given twice", logical[i]));
    }
  }
  const auto visible = visible_chips();
  std::vector<std::uint32_t> chips;
  for (std::uint32_t d : logical) {
    if (visible) {
      if (d >= visible->size()) {
        throw Error(
            ErrorCode::invalid_argument,
            fmt::format("device {} is not visible: TT_VISIBLE_DEVICES='{}' makes {} device{} visible", d,
                        std::getenv("TT_VISIBLE_DEVICES"), visible->size(), visible->size() == 1 ? "" : "s"));
      }
      chips.push_back((*visible)[d]);
    } else {
      if (d >= kMaxChips) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("device id {} is beyond the emulated machine's {} chips", d, kMaxChips));
      }
      chips.push_back(d);
    }
  }
  return chips;
}

MeshId next_mesh_id() {
  static std::atomic<std::uint32_t> next{1};
  return MeshId{next.fetch_add(1)};
}

ProgramId next_program_id() {
  static std::atomic<std::uint64_t> next{1};
  return ProgramId{next.fetch_add(1)};
}

/// Open meshes, so a tracker can enumerate what is live. Weak: the registry never keeps a mesh alive.
struct OpenMeshes {
  std::mutex mutex;
  std::vector<std::weak_ptr<MeshDevice>> meshes;
};

OpenMeshes& open_mesh_registry() {
  static OpenMeshes registry;
  return registry;
}

std::string known_presets() {
  std::string out;
  for (const MeshPreset& p : mesh_presets()) out += (out.empty() ? "" : ", ") + std::string(p.name);
  return out;
}

}  // namespace

std::shared_ptr<MeshDevice> MeshDevice::open(const MeshDeviceConfig& config) {
  const auto preset = find_mesh_preset(config.preset);
  if (!preset) {
    throw Error(ErrorCode::unknown_preset,
                fmt::format("unknown mesh preset '{}' (known: {})", config.preset, known_presets()));
  }
  DeviceOptions options = config.options;
  if (preset->worker_grid_x && !options.worker_grid_x && !options.worker_grid_y) {
    options.worker_grid_x = preset->worker_grid_x;
    options.worker_grid_y = preset->worker_grid_y;
  }
  auto mesh = std::make_shared<MeshDevice>(next_mesh_id(), std::string(preset->name), preset->rows,
                                           preset->cols, config.arch.value_or(preset->arch), options);
  mesh->chips_ = chips_of(config.device_ids, preset->rows * preset->cols);
  mesh->holds_chips_ = config.hold_chips;
  {
    // Registered before it reports anything, so a snapshot taken at any time either sees it or precedes
    // all of its events.
    auto& registry = open_mesh_registry();
    std::lock_guard lock(registry.mutex);
    std::erase_if(registry.meshes, [](const std::weak_ptr<MeshDevice>& m) { return m.expired(); });
    registry.meshes.push_back(mesh);
  }
  mesh->initialize_devices();
  return mesh;
}

void MeshDevice::with_meshes(const std::function<void(const std::vector<std::shared_ptr<MeshDevice>>&)>& f) {
  auto& registry = open_mesh_registry();
  std::lock_guard lock(registry.mutex);
  std::vector<std::shared_ptr<MeshDevice>> meshes;
  for (const auto& weak : registry.meshes) {
    if (auto m = weak.lock()) meshes.push_back(std::move(m));
  }
  f(meshes);
}

MeshDevice::MeshDevice(MeshId id, const std::string& preset, std::uint32_t rows, std::uint32_t cols,
                       Arch arch, const DeviceOptions& options)
    : id_(id),
      preset_(preset),
      rows_(rows),
      cols_(cols),
      arch_(arch),
      options_(options),
      mutex_(std::make_shared<std::recursive_mutex>()) {}

void MeshDevice::initialize_devices() {
  if (holds_chips_) chip_locks_ = device_ids().claim(chips_);
  try {
    std::vector<std::shared_ptr<Allocator>> allocators;
    for (std::uint32_t chip : chips_) {
      // Events name the physical chip, so processes on one machine agree on which chip is which.
      devices_.push_back(std::make_unique<Device>(DeviceId{chip}, id_, arch_, options_, mutex_));
      allocators.push_back(devices_.back()->allocator_ptr());
    }
    allocator_ = std::make_shared<MeshAllocator>(std::move(allocators), mutex_);
  } catch (...) {
    chip_locks_.clear();
    if (holds_chips_) device_ids().release(chips_);
    throw;
  }
  std::lock_guard lock(*mutex_);
  open_ = true;
  for (const auto& device : devices_) GraphTracker::instance().track_device_open(device->info());

  // Device init: dispatch coordination buffers at fixed addresses in the reserved L1 region of the first
  // device, created through the pre-allocated path (as TT-Metal's command queue setup does).
  Device& first = *devices_.front();
  const ArchSpec& spec = first.spec();
  for (int k = 0; k < kNumControlBuffers; ++k) {
    BufferConfig config;
    config.size = kControlBufferSize;
    config.page_size = kControlBufferSize;
    config.type = BufferType::L1;
    config.site = "dispatch/control";
    config.internal = true;
    control_buffers_.push_back(Buffer::create_locked(
        first.allocator_ptr(),
        {EventScope::device, first.id(), id_, spec.control_buffer_base + k * kControlBufferSize}, config));
  }
}

MeshDevice::~MeshDevice() {
  close();
}

void MeshDevice::require_open() const {
  if (!open_)
    throw Error(ErrorCode::device_closed, fmt::format("mesh {} ({}) is closed", id_.value, preset_));
}

std::vector<std::shared_ptr<Buffer>> MeshDevice::control_buffers() const {
  std::lock_guard lock(*mutex_);
  return control_buffers_;
}

std::shared_ptr<MeshBuffer> MeshDevice::create_buffer(const BufferConfig& config) {
  std::lock_guard lock(*mutex_);
  require_open();
  if (config.type == BufferType::TRACE && options_.trace_region_size == 0) {
    throw Error(ErrorCode::invalid_argument,
                "TRACE buffers need a trace region: open the mesh with trace_region_size > 0");
  }
  if (config.type == BufferType::L1_SMALL && options_.l1_small_size == 0) {
    throw Error(ErrorCode::invalid_argument,
                "L1_SMALL buffers need l1_small_size > 0 when the mesh is opened");
  }
  std::shared_ptr<Buffer> backing;
  try {
    backing = Buffer::create_locked(allocator_, {EventScope::mesh, DeviceId{}, id_, std::nullopt}, config);
  } catch (const Error& e) {
    if (e.code() == ErrorCode::out_of_memory) report_mesh_failure(config, e);
    throw;
  }
  BufferConfig per_device = config;
  per_device.kind = backing->kind();
  std::vector<std::shared_ptr<Buffer>> device_buffers;
  for (const auto& device : devices_) {
    device_buffers.push_back(Buffer::create_locked(
        device->allocator_ptr(), {EventScope::device, device->id(), id_, backing->address()}, per_device));
  }
  return std::make_shared<MeshBuffer>(std::move(backing), std::move(device_buffers));
}

void MeshDevice::report_mesh_failure(const BufferConfig& config, const Error& error) const {
  // Charged to the device with the smallest largest free block: the one that could least take it.
  const Device* tightest = nullptr;
  std::uint64_t least = 0;
  for (const auto& device : devices_) {
    const std::uint64_t largest = device->allocator().statistics(config.type).largest_free_block_bytes;
    if (!tightest || largest < least) tightest = device.get(), least = largest;
  }
  if (!tightest) return;
  AllocationEvent request;
  request.device = tightest->id();
  request.mesh = id_;
  request.type = config.type;
  request.size = config.size;
  request.page_size = config.page_size ? config.page_size : config.size;
  if (const auto& f = error.figures()) {  // the layout the mesh allocator worked out
    request.num_banks = f->num_banks;
    request.size_per_bank = f->needed_per_bank;
  }
  request.site = config.site;
  GraphTracker::instance().track_allocate_failed(
      failure_of(request, FailureReason::out_of_memory, error.what()));
}

std::shared_ptr<Program> MeshDevice::create_program(const ProgramConfig& config) {
  std::lock_guard lock(*mutex_);
  require_open();
  if (config.name.empty()) throw Error(ErrorCode::invalid_argument, "a program needs a name");
  plan_circular_buffers(config, devices_.front()->spec());  // validates sizes and core ranges now
  return std::make_shared<Program>(next_program_id(), config, weak_from_this());
}

void MeshDevice::run(const std::shared_ptr<Program>& program) {
  std::lock_guard lock(*mutex_);
  require_open();
  if (!program || program->mesh() != this) {
    throw Error(ErrorCode::invalid_argument, "the program was not created on this mesh");
  }
  if (program->state() == ProgramState::released) {
    throw Error(ErrorCode::invalid_state, fmt::format("program {} was released", program->name()));
  }
  const ArchSpec& spec = devices_.front()->spec();
  const auto planned = plan_circular_buffers(program->config(), spec);
  // Validate on every device before anything is allocated, so a clash changes nothing.
  for (const auto& device : devices_) {
    if (program->has_circular_buffers_on(device->id())) continue;
    const Allocator& a = device->allocator();
    try {
      // validate_circular_buffer_region: the whole L1 per core (device->l1_size_per_core(), not the top of
      // the L1 bank manager: an L1_SMALL region does not lower it) and the L1 manager's lowest buffer.
      validate_circular_buffers(planned, program->id(), spec.l1_size_per_core,
                                a.lowest_occupied_l1_address());
    } catch (const Error& e) {
      if (e.code() == ErrorCode::cb_clash) {
        // What each core needs: the CB region from the start of L1's free range to the highest CB end.
        const DeviceAddr base = a.base_address(BufferType::L1);
        std::uint64_t per_core = 0;
        for (const PlannedCircularBuffer& p : planned.cbs)
          if (!p.globally_allocated) per_core = std::max(per_core, p.address + p.size - base);
        AllocationFailure f;
        f.device = device->id();
        f.mesh = id_;
        f.type = BufferType::L1;
        f.reason = FailureReason::cb_clash;
        f.size = per_core;
        f.size_per_bank = per_core;
        const std::string site = fmt::format("program {}", program->name());
        f.site = site;
        f.message = e.what();
        f.timestamp_ns = monotonic_ns();
        GraphTracker::instance().track_allocate_failed(f);
      }
      throw;
    }
  }
  for (const auto& device : devices_) device->program_cache().add(*device, program);
  for (const auto& device : devices_) {
    if (program->has_circular_buffers_on(device->id())) continue;
    std::vector<CircularBufferAllocation> cbs;
    for (const PlannedCircularBuffer& p : planned.cbs) {
      cbs.push_back(
          {next_buffer_id(), device->id(), p.index, p.address, p.size, p.cores, p.globally_allocated});
    }
    program->add_circular_buffers(std::move(cbs));
  }
}

void MeshDevice::clear_program_cache() {
  std::lock_guard lock(*mutex_);
  require_open();
  for (const auto& device : devices_) device->program_cache().clear(*device, ReleaseReason::explicit_free);
}

void MeshDevice::close() {
  std::lock_guard lock(*mutex_);
  if (!open_) return;
  for (const auto& device : devices_)
    GraphTracker::instance().track_device_close(device->id(), ClosePhase::begin);
  // 1. Mesh command queues: the emulator runs programs synchronously, so nothing is in flight.
  // 2. Mesh-level allocator torn down: backing buffers of mesh buffers still alive are released.
  allocator_->sweep();
  // 3. Per device: program cache, then the allocator's sweep (owning and pre-allocated), uninitialized.
  for (const auto& device : devices_) device->close_locked();
  control_buffers_.clear();
  open_ = false;
  chip_locks_.clear();
  if (holds_chips_) device_ids().release(chips_);
}

// MeshBuffer ---------------------------------------------------------------------------------------------

MeshBuffer::MeshBuffer(std::shared_ptr<Buffer> backing, std::vector<std::shared_ptr<Buffer>> device_buffers)
    : backing_(std::move(backing)), device_buffers_(std::move(device_buffers)) {}

MeshBuffer::~MeshBuffer() {
  deallocate();
}

void MeshBuffer::deallocate() {
  // Both go through their home's (shared) mesh lock; each is idempotent and a no-op after close.
  for (const auto& b : device_buffers_) b->deallocate();
  backing_->deallocate();
}

}  // namespace ttmem::emu
