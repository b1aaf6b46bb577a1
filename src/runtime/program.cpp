// Programs, their circular buffers, and the per-device program cache; see ttmem/runtime/program.hpp.
#include "ttmem/runtime/program.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "cb_placement.hpp"
#include "ttmem/runtime/buffer.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/runtime/graph_tracker.hpp"

namespace ttmem::emu {

namespace {

AllocationEvent make_cb_event(const CircularBufferAllocation& cb, MeshId mesh, std::string_view site) {
  AllocationEvent e;
  e.scope = EventScope::device;
  e.device = cb.device;
  e.mesh = mesh;
  e.type = BufferType::L1;
  e.kind = AllocKind::circular_buffer;
  e.id = cb.id;
  e.size = cb.size;
  e.address = cb.address;
  e.page_size = cb.size;
  e.num_banks = static_cast<std::uint32_t>(cb.cores.num_cores());
  e.size_per_bank = cb.size;  // a CB region grows by exactly its size (mark_address); the next CB aligns
  e.site = site;
  e.internal = false;
  e.op = cb.op;
  e.timestamp_ns = cb.created_ns;
  return e;
}

}  // namespace

Program::Program(ProgramId id, ProgramConfig config, std::weak_ptr<MeshDevice> mesh)
    : id_(id), config_(std::move(config)), mesh_(std::move(mesh)), mesh_raw_(mesh_.lock().get()) {}

Program::~Program() {
  release();
}

ProgramState Program::state() const {
  auto mesh = mesh_.lock();
  std::unique_lock<std::recursive_mutex> lock;
  if (mesh) lock = std::unique_lock(mesh->mutex());
  if (released_) return ProgramState::released;
  return cbs_.empty() ? ProgramState::created : ProgramState::compiled;
}

std::vector<CircularBufferAllocation> Program::circular_buffers() const {
  auto mesh = mesh_.lock();
  if (!mesh) return {};
  std::lock_guard lock(mesh->mutex());
  return cbs_;
}

AllocationEvent Program::cb_event(const CircularBufferAllocation& cb, std::string_view site) const {
  return make_cb_event(cb, mesh_raw_->id(), site);
}

std::string Program::cb_site(std::uint32_t index) const {
  return fmt::format("program {}/cb{}", config_.name, index);
}

bool Program::has_circular_buffers_on(DeviceId device) const {
  return std::any_of(cbs_.begin(), cbs_.end(),
                     [&](const CircularBufferAllocation& cb) { return cb.device == device; });
}

void Program::add_circular_buffers(std::vector<CircularBufferAllocation> cbs) {
  for (CircularBufferAllocation& cb : cbs) {
    cb.created_ns = monotonic_ns();
    cb.op = GraphTracker::instance().op_tag();
    cbs_.push_back(cb);
    if (cb.globally_allocated) continue;         // its bytes are its buffer's, reported with the buffer
    const std::string site = cb_site(cb.index);  // the event only views it
    GraphTracker::instance().track_allocate(cb_event(cb, site));
  }
}

void Program::release_circular_buffers_on(DeviceId device, ReleaseReason reason) {
  auto keep = std::stable_partition(cbs_.begin(), cbs_.end(),
                                    [&](const CircularBufferAllocation& cb) { return cb.device != device; });
  for (auto it = keep; it != cbs_.end(); ++it) {  // each CB released on its own, never "all CBs"
    if (it->globally_allocated) continue;
    const std::string site = cb_site(it->index);
    AllocationEvent e = cb_event(*it, site);
    e.reason = reason;
    GraphTracker::instance().track_deallocate(e);
  }
  cbs_.erase(keep, cbs_.end());
}

std::unique_lock<std::recursive_mutex> Program::lock_for_update(MeshDevice* mesh, std::uint32_t index) const {
  std::unique_lock<std::recursive_mutex> lock;
  if (mesh) lock = std::unique_lock(mesh->mutex());
  if (released_) throw Error(ErrorCode::invalid_state, fmt::format("program {} was released", config_.name));
  if (index >= config_.circular_buffers.size()) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("No circular buffer with id {} exists in Program {}", index, id_.value));
  }
  return lock;
}

void Program::update_circular_buffer_total_size(std::uint32_t index, std::uint64_t size) {
  auto mesh = mesh_.lock();
  const auto lock = lock_for_update(mesh.get(), index);
  if (size == 0)
    throw Error(ErrorCode::invalid_argument, "a circular buffer's total size must be more than 0");
  config_.circular_buffers[index].size = size;
  if (!mesh) return;
  for (std::size_t d = 0; d < mesh->num_devices(); ++d)
    release_circular_buffers_on(mesh->device(d).id(), ReleaseReason::explicit_free);
}

void Program::update_dynamic_circular_buffer_address(std::uint32_t index,
                                                     const std::shared_ptr<MeshBuffer>& buffer) {
  auto mesh = mesh_.lock();
  const auto lock = lock_for_update(mesh.get(), index);
  CircularBufferConfig updated = config_.circular_buffers[index];
  updated.buffer = buffer;
  const DeviceAddr address = global_buffer_of(updated, index)->address();
  config_.circular_buffers[index] = updated;
  for (CircularBufferAllocation& cb : cbs_) {
    if (cb.index != index) continue;
    if (!cb.globally_allocated) {  // its allocator-placed region is given up
      const std::string site = cb_site(cb.index);
      AllocationEvent e = cb_event(cb, site);
      e.reason = ReleaseReason::explicit_free;
      GraphTracker::instance().track_deallocate(e);
    }
    cb.address = address;
    cb.globally_allocated = true;
  }
}

void Program::release() {
  auto mesh = mesh_.lock();
  if (!mesh) {  // the mesh is gone; its close already released every CB
    released_ = true;
    return;
  }
  std::lock_guard lock(mesh->mutex());
  if (released_) return;
  released_ = true;
  for (std::size_t d = 0; d < mesh->num_devices(); ++d) {
    Device& device = mesh->device(d);
    release_circular_buffers_on(device.id(), ReleaseReason::explicit_free);
    device.program_cache().forget(this);
  }
}

// ProgramCache -------------------------------------------------------------------------------------------

namespace {
constexpr std::uint64_t kProgramPageSize = 2048;
}  // namespace

void ProgramCache::add(Device& device, const std::shared_ptr<Program>& program) {
  const bool cached = std::any_of(kernel_binaries_.begin(), kernel_binaries_.end(),
                                  [&](const auto& entry) { return entry.first == program->name(); });
  if (!cached) {
    BufferConfig config;
    // TT-Metal's mesh_workload.cpp: an interleaved DRAM buffer of HostMemDeviceCommand::PROGRAM_PAGE_SIZE
    // (2048-B) pages, top-down (bottom_up = false). A real Blackhole capture shows one: 22528 B, 4096 B
    // per bank, at the top of the bank minus 2 pages.
    config.size = program->config().kernel_binary_size;
    config.page_size = kProgramPageSize;
    config.type = BufferType::DRAM;
    config.placement = Placement::top_down;  // binaries sit at the top so they do not fragment tensors
    config.kind = AllocKind::kernel_binary;
    config.site = fmt::format("program_cache/kernel_bin {}", program->name());
    config.internal = true;
    kernel_binaries_.emplace_back(
        program->name(),
        Buffer::create_locked(device.allocator_ptr(),
                              {EventScope::device, device.id(), device.mesh_id(), std::nullopt}, config));
  }
  if (std::find(programs_.begin(), programs_.end(), program) == programs_.end()) programs_.push_back(program);
}

const Buffer* ProgramCache::kernel_binary(std::string_view name) const {
  for (const auto& [program, buffer] : kernel_binaries_)
    if (program == name) return buffer.get();
  return nullptr;
}

void ProgramCache::forget(const Program* program) {
  std::erase_if(programs_, [&](const std::shared_ptr<Program>& p) { return p.get() == program; });
}

void ProgramCache::clear(Device& device, ReleaseReason reason) {
  // Move the entries out first: dropping the last reference to a program runs its destructor, which
  // calls back into forget().
  auto programs = std::move(programs_);
  programs_.clear();
  for (const auto& program : programs) program->release_circular_buffers_on(device.id(), reason);
  auto binaries = std::move(kernel_binaries_);
  kernel_binaries_.clear();
  for (const auto& [name, buffer] : binaries) buffer->release_locked(reason);
}

}  // namespace ttmem::emu
