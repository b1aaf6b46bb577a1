// Buffer lifecycle and page mapping; see ttmem/runtime/buffer.hpp.
#include "ttmem/runtime/buffer.hpp"

#include <fmt/format.h>

#include "allocator/bank_manager.hpp"
#include "ttmem/runtime/allocator.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

Placement default_placement(BufferType type) {
  return (type == BufferType::L1 || type == BufferType::L1_SMALL) ? Placement::top_down
                                                                  : Placement::bottom_up;
}

void require_open(const BufferHome& home, const Buffer::Placing& placing) {
  if (home.is_open()) return;
  if (placing.scope == EventScope::mesh) {
    throw Error(ErrorCode::device_closed, fmt::format("mesh {} is closed", placing.mesh.value));
  }
  throw Error(ErrorCode::device_closed, fmt::format("device {} is closed", placing.device.value));
}

}  // namespace

std::shared_ptr<Buffer> Buffer::create_locked(std::shared_ptr<BufferHome> home, const Placing& placing,
                                              const BufferConfig& config) {
  require_open(*home, placing);
  if (config.type == BufferType::SYSTEM_MEMORY) {
    throw Error(ErrorCode::invalid_argument, "SYSTEM_MEMORY buffers live on the host and are not emulated");
  }
  std::shared_ptr<Buffer> b(new Buffer());
  b->home_ = std::move(home);
  b->id_ = next_buffer_id();
  b->scope_ = placing.scope;
  b->device_ = placing.device;
  b->mesh_ = placing.mesh;
  b->size_ = config.size;
  b->page_size_ = config.page_size ? config.page_size : config.size;
  b->type_ = config.type;
  b->owns_data_ = !placing.at.has_value();
  b->kind_ = config.kind.value_or(config.type == BufferType::TRACE ? AllocKind::trace
                                  : b->owns_data_                  ? AllocKind::owning
                                                                   : AllocKind::preallocated);
  b->sharded_ = config.shard_cores.has_value();
  b->internal_ = config.internal;
  b->site_ = config.site;
  b->created_ns_ = monotonic_ns();
  b->op_ = GraphTracker::instance().op_tag();

  if (config.size == 0) {  // TT-Metal: a zero-size buffer allocates nothing
    b->status_ = BufferStatus::allocated;
    return b;
  }

  const BankManager& bank = b->home_->bank_manager(config.type);
  const BankLayout layout = bank.layout(config.size, b->page_size_, config.shard_cores);
  b->num_banks_ = layout.num_banks;
  b->aligned_page_size_ = layout.aligned_page_size;
  b->size_per_bank_ = layout.size_per_bank;
  b->reserved_per_bank_ = layout.reserved_per_bank;

  if (placing.at) {
    b->address_ = *placing.at;
  } else if (GraphTracker::instance().hook_allocate(b->event())) {
    b->hooked_ = true;
  } else {
    try {
      const Reservation r =
          b->home_->reserve(ReservationRequest{config.type, config.size, b->page_size_, config.shard_cores,
                                               config.placement.value_or(default_placement(config.type))});
      b->address_ = r.address;
    } catch (const Error& e) {
      // A mesh buffer's failure is reported by the mesh, which knows which of its devices ran out.
      if (e.code() == ErrorCode::out_of_memory && placing.scope == EventScope::device) {
        GraphTracker::instance().track_allocate_failed(
            failure_of(b->event(), FailureReason::out_of_memory, e.what()));
      }
      throw;
    }
  }
  b->home_->attach(b.get(), b->owns_data_);
  b->status_ = BufferStatus::allocated;
  b->tracked_ = true;
  GraphTracker::instance().track_allocate(b->event());
  return b;
}

std::shared_ptr<Buffer> Buffer::create(Device& device, const BufferConfig& config) {
  std::lock_guard lock(device.allocator().mutex());
  return create_locked(device.allocator_ptr(),
                       {EventScope::device, device.id(), device.mesh_id(), std::nullopt}, config);
}

std::shared_ptr<Buffer> Buffer::create_at(Device& device, DeviceAddr address, const BufferConfig& config) {
  std::lock_guard lock(device.allocator().mutex());
  return create_locked(device.allocator_ptr(), {EventScope::device, device.id(), device.mesh_id(), address},
                       config);
}

std::shared_ptr<Buffer> Buffer::view(const std::shared_ptr<Buffer>& root_in, std::uint64_t offset,
                                     std::uint64_t size) {
  if (!root_in) throw Error(ErrorCode::invalid_argument, "cannot view a null buffer");
  const std::shared_ptr<Buffer>& root = root_in->root_ ? root_in->root_ : root_in;
  const std::uint64_t base = root_in->address_ - root->address_;
  if (root->page_size_ != 0 && offset % root->page_size_ != 0) {
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("view offset {} is not a multiple of the page size {}", offset, root->page_size_));
  }
  if (offset + size > root_in->size_) {
    throw Error(ErrorCode::invalid_argument, fmt::format("view [{}, {}) is outside the {} B buffer", offset,
                                                         offset + size, root_in->size_));
  }
  std::shared_ptr<Buffer> v(new Buffer());
  v->root_ = root;
  v->id_ = next_buffer_id();
  v->scope_ = root->scope_;
  v->device_ = root->device_;
  v->mesh_ = root->mesh_;
  v->address_ = root->address_ + base + offset;
  v->size_ = size;
  v->page_size_ = root->page_size_;
  v->aligned_page_size_ = root->aligned_page_size_;
  v->size_per_bank_ = root->size_per_bank_;
  v->reserved_per_bank_ = root->reserved_per_bank_;
  v->num_banks_ = root->num_banks_;
  v->type_ = root->type_;
  v->kind_ = root->kind_;
  v->sharded_ = root->sharded_;
  v->site_ = root->site_;
  v->op_ = root->op_;
  v->status_ = BufferStatus::allocated;
  return v;
}

Buffer::~Buffer() {
  deallocate();
}

BufferStatus Buffer::status() const {
  return root_ ? root_->status() : status_.load();
}

void Buffer::deallocate() {
  if (root_ || !home_) return;  // a view owns nothing; dropping it is enough
  // Once released, a buffer stays released: no need to take the lock (or touch a closed device).
  if (status_.load() != BufferStatus::allocated) return;
  std::lock_guard lock(home_->mutex());
  release_locked(ReleaseReason::explicit_free);
}

void Buffer::release_locked(ReleaseReason reason) {
  if (status_ != BufferStatus::allocated) return;
  status_ = BufferStatus::deallocated;
  if (!tracked_) return;
  if (owns_data_ && !hooked_) home_->release(type_, address_);
  home_->detach(this);
  AllocationEvent e = event();
  e.reason = reason;
  GraphTracker::instance().track_deallocate(e);
}

AllocationEvent Buffer::event() const {
  AllocationEvent e;
  e.scope = scope_;
  e.device = device_;
  e.mesh = mesh_;
  e.type = type_;
  e.kind = kind_;
  e.id = id_;
  e.size = size_;
  e.address = address_;
  e.page_size = page_size_;
  e.num_banks = num_banks_;
  e.size_per_bank = reserved_per_bank_;
  e.site = site_;
  e.internal = internal_;
  e.op = op_;
  e.timestamp_ns = created_ns_;
  return e;
}

PageLocation Buffer::page_location(std::uint64_t page_index) const {
  if (page_index >= num_pages()) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("page {} is outside the buffer's {} pages", page_index, num_pages()));
  }
  const Buffer& root = root_ ? *root_ : *this;
  const BankManager& bank = root.home_->bank_manager(type_);
  // A view's pages are counted from its own start, which lies inside the root's first pages.
  const std::uint64_t first_page = root_ ? (address_ - root.address_) / page_size_ : 0;
  const std::uint64_t page = first_page + page_index;
  std::uint32_t bank_id;
  std::uint64_t row;
  if (sharded_) {
    const std::uint64_t pages_per_shard = size_per_bank_ / aligned_page_size_;
    bank_id = static_cast<std::uint32_t>(page / pages_per_shard);
    row = page % pages_per_shard;
  } else {
    bank_id = static_cast<std::uint32_t>(page % num_banks_);
    row = page / num_banks_;
  }
  return {bank_id,
          static_cast<DeviceAddr>(static_cast<std::int64_t>(root.address_) + bank.bank_offset(bank_id)) +
              row * aligned_page_size_};
}

}  // namespace ttmem::emu
