// Lockstep mesh allocator; see ttmem/runtime/allocator.hpp.
#include <fmt/format.h>

#include <algorithm>

#include "allocator/bank_manager.hpp"
#include "ttmem/runtime/allocator.hpp"
#include "ttmem/runtime/buffer.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

/// Intersection of two sorted lists of disjoint ranges.
std::vector<AddressRange> intersect(const std::vector<AddressRange>& a, const std::vector<AddressRange>& b) {
  std::vector<AddressRange> out;
  std::size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    const DeviceAddr begin = std::max(a[i].begin, b[j].begin);
    const DeviceAddr end = std::min(a[i].end, b[j].end);
    if (begin < end) out.push_back({begin, end});
    (a[i].end < b[j].end) ? ++i : ++j;
  }
  return out;
}

}  // namespace

MeshAllocator::MeshAllocator(std::vector<std::shared_ptr<Allocator>> devices,
                             std::shared_ptr<std::recursive_mutex> mutex)
    : BufferHome(std::move(mutex)), devices_(std::move(devices)) {
  if (devices_.empty()) throw Error(ErrorCode::invalid_argument, "a mesh needs at least one device");
}

const BankManager& MeshAllocator::bank_manager(BufferType type) const {
  return devices_.front()->bank_manager(type);
}

namespace {

std::vector<AddressRange> common_free_ranges(const std::vector<std::shared_ptr<Allocator>>& devices,
                                             BufferType type) {
  std::vector<AddressRange> ranges = devices.front()->bank_manager(type).free_list().free_ranges();
  for (std::size_t d = 1; d < devices.size() && !ranges.empty(); ++d) {
    ranges = intersect(ranges, devices[d]->bank_manager(type).free_list().free_ranges());
  }
  return ranges;
}

}  // namespace

Statistics MeshAllocator::statistics(BufferType type) const {
  std::lock_guard lock(mutex());
  const BankManager& bank = bank_manager(type);
  Statistics s;
  s.num_banks = bank.num_banks();
  s.total_allocatable_bytes = bank.bank_size();
  for (const AddressRange& r : common_free_ranges(devices_, type)) {
    s.total_free_bytes += r.size();
    if (r.size() > s.largest_free_block_bytes) {
      s.largest_free_block_bytes = r.size();
      s.largest_free_block_addrs.clear();
    }
    if (r.size() == s.largest_free_block_bytes) s.largest_free_block_addrs.push_back(r.begin);
  }
  s.total_allocated_bytes = s.total_allocatable_bytes - s.total_free_bytes;
  return s;
}

Reservation MeshAllocator::reserve(const ReservationRequest& request) {
  const BankManager& first = bank_manager(request.type);
  const BankLayout layout = first.layout(request.size, request.page_size, request.num_shards);
  const std::uint64_t needed = layout.reserved_per_bank;

  std::optional<DeviceAddr> chosen;
  const std::vector<AddressRange> ranges = common_free_ranges(devices_, request.type);
  if (request.placement == Placement::bottom_up) {
    for (const AddressRange& r : ranges) {
      if (r.size() >= needed) {
        chosen = r.begin;
        break;
      }
    }
  } else {
    for (auto it = ranges.rbegin(); it != ranges.rend(); ++it) {
      if (it->size() >= needed) {
        chosen = it->end - needed;
        break;
      }
    }
  }
  if (!chosen) {
    // TT-Metal's mesh allocator is an ordinary allocator: its message is the bank manager's. What limits
    // a mesh buffer here -- free on every device at once -- goes in the error's detail.
    Statistics common;
    for (const AddressRange& r : ranges) {
      common.total_free_bytes += r.size();
      common.largest_free_block_bytes = std::max(common.largest_free_block_bytes, r.size());
    }
    std::string detail;
    if (devices_.size() > 1) {
      detail = fmt::format("lockstep over {} devices: free on all: {} B, largest block free on all: {} B",
                           devices_.size(), common.total_free_bytes, common.largest_free_block_bytes);
    }
    throw Error(first.out_of_memory_message(request.size, layout),
                {request.size, layout.num_banks, layout.size_per_bank, common.total_free_bytes,
                 common.largest_free_block_bytes},
                std::move(detail));
  }
  for (const auto& device : devices_) {
    if (!device->bank_manager(request.type).allocate_at(*chosen, layout.size_per_bank)) {
      throw Error(ErrorCode::invalid_state, "mesh allocator lost lockstep: a common free range was taken");
    }
  }
  return Reservation{*chosen, layout.num_banks, layout.aligned_page_size, layout.size_per_bank,
                     layout.reserved_per_bank};
}

void MeshAllocator::release(BufferType type, DeviceAddr address) {
  for (const auto& device : devices_) device->bank_manager(type).deallocate(address);
}

void MeshAllocator::sweep() {
  for (Buffer* buffer : attached_buffers()) {
    buffer->release_locked(buffer->internal() ? ReleaseReason::close_internal : ReleaseReason::close_leak);
  }
  owned_.clear();
  preallocated_.clear();
  open_ = false;
}

}  // namespace ttmem::emu
