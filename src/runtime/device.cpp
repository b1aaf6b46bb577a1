// Device: allocator, program cache and the per-device part of the close sequence.
#include "ttmem/runtime/device.hpp"

namespace ttmem::emu {

Device::Device(DeviceId id, MeshId mesh, Arch arch, const DeviceOptions& options,
               std::shared_ptr<std::recursive_mutex> mutex)
    : id_(id), mesh_(mesh), allocator_(std::make_shared<Allocator>(arch, options, std::move(mutex))) {}

DeviceInfo Device::info() const {
  DeviceInfo info;
  info.device = id_;
  info.mesh = mesh_;
  info.arch = arch();
  for (BufferType type : kManagedTypes) {
    const auto i = static_cast<std::size_t>(type);
    info.num_banks[i] = allocator_->num_banks(type);
    info.total_bytes[i] = allocator_->bank_size(type) * info.num_banks[i];
    info.base_address[i] = allocator_->base_address(type);
  }
  return info;
}

void Device::close_locked() {
  if (!initialized_) return;
  // TT-Metal: the program cache is cleared first (runtime-internal, not the application's leaks), then
  // the allocator frees what is left, pre-allocated buffers included.
  program_cache_.clear(*this, ReleaseReason::close_internal);
  allocator_->sweep();
  initialized_ = false;
  GraphTracker::instance().track_device_close(id_, ClosePhase::end);
}

}  // namespace ttmem::emu
