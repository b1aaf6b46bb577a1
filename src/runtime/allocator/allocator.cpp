// Device allocator and buffer registries; see ttmem/runtime/allocator.hpp.
#include "ttmem/runtime/allocator.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ostream>
#include <utility>

#include "allocator/bank_manager.hpp"
#include "ttmem/runtime/buffer.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/units.hpp"

namespace ttmem::emu {

namespace {

std::size_t index_of(BufferType type) {
  return static_cast<std::size_t>(type);
}

void require_aligned(const char* what, std::uint64_t value, std::uint32_t alignment) {
  if (value % alignment != 0) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("{} = {} B is not a multiple of the {} B alignment", what, value, alignment));
  }
}

}  // namespace

// BufferHome ---------------------------------------------------------------------------------------------

BufferHome::BufferHome(std::shared_ptr<std::recursive_mutex> mutex)
    : mutex_(mutex ? std::move(mutex) : std::make_shared<std::recursive_mutex>()) {}

void BufferHome::attach(Buffer* buffer, bool owning) {
  (owning ? owned_ : preallocated_).insert(buffer);
}

void BufferHome::detach(Buffer* buffer) {
  owned_.erase(buffer);
  preallocated_.erase(buffer);
}

std::vector<Buffer*> BufferHome::attached_buffers() const {
  auto by_id = [](const Buffer* a, const Buffer* b) { return a->unique_id() < b->unique_id(); };
  std::vector<Buffer*> owned(owned_.begin(), owned_.end());
  std::vector<Buffer*> pre(preallocated_.begin(), preallocated_.end());
  std::sort(owned.begin(), owned.end(), by_id);
  std::sort(pre.begin(), pre.end(), by_id);
  owned.insert(owned.end(), pre.begin(), pre.end());
  return owned;
}

// Allocator ----------------------------------------------------------------------------------------------

Allocator::Allocator(Arch arch, const DeviceOptions& options, std::shared_ptr<std::recursive_mutex> mutex)
    : BufferHome(std::move(mutex)), arch_(arch), options_(options), spec_(device_spec(arch, options)) {
  const ArchSpec& spec = spec_;
  const ArchSpec& build = arch_spec(arch);
  if (spec.worker_grid_x * spec.worker_grid_y == 0 || spec.worker_grid_x > 64 || spec.worker_grid_y > 64) {
    throw Error(ErrorCode::invalid_argument, fmt::format("a worker grid of {}x{} cores is not one a chip has",
                                                         spec.worker_grid_x, spec.worker_grid_y));
  }
  const std::uint32_t granule = spec.allocation_alignment;
  if (granule < spec.l1_alignment || (granule & (granule - 1)) != 0 || granule > 4096) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("allocation_alignment = {} B must be a power of two from {} to 4096 B", granule,
                            spec.l1_alignment));
  }
  // The whole L1 stays the allocator's top (TT-Metal's soc descriptor worker_l1_size); worker_l1_size only
  // moves the unreserved base (device_spec).
  worker_l1_size_ = spec.l1_size_per_core;
  if (options.worker_l1_size) {
    if (options.l1_unreserved_base) {
      throw Error(
          ErrorCode::invalid_argument,
          "give worker_l1_size or l1_unreserved_base, not both: each sets where L1 buffers may start");
    }
    if (options.worker_l1_size > spec.l1_size_per_core - build.l1_unreserved_base) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("worker_l1_size = {} B is more than the {} B above the firmware's reserved L1 "
                              "({} B of {} B per core on {})",
                              options.worker_l1_size, spec.l1_size_per_core - build.l1_unreserved_base,
                              build.l1_unreserved_base, spec.l1_size_per_core, to_string(arch)));
    }
  }
  require_aligned("l1_unreserved_base", spec.l1_unreserved_base, granule);
  // L1BankingAllocator::generate_config rounds both reservations up instead of refusing them.
  const std::uint64_t l1_small = saturating_align_up(options.l1_small_size, spec.dram_alignment);
  const std::uint64_t trace_granule = std::uint64_t{spec.dram_alignment} * spec.num_dram_banks;
  const std::uint64_t trace_region = saturating_align_up(options.trace_region_size, trace_granule);
  if (spec.l1_unreserved_base >= worker_l1_size_ || l1_small >= worker_l1_size_ - spec.l1_unreserved_base) {
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("Reserved size must be less than bank size: l1_small_size = {} B (rounded to {} B) "
                    "does not fit in the {} B of L1 above the unreserved base {} B",
                    options.l1_small_size, l1_small,
                    worker_l1_size_ > spec.l1_unreserved_base ? worker_l1_size_ - spec.l1_unreserved_base : 0,
                    spec.l1_unreserved_base));
  }
  if (trace_region >= spec.dram_bank_size - spec.dram_unreserved_base) {
    throw Error(ErrorCode::invalid_argument,
                fmt::format("trace_region_size = {} B (rounded to {} B) does not fit in a {} B DRAM bank",
                            options.trace_region_size, trace_region, spec.dram_bank_size));
  }
  l1_small_size_ = l1_small;
  trace_region_size_ = trace_region;

  std::vector<std::int64_t> dram_offsets(spec.num_dram_banks);
  for (std::uint32_t b = 0; b < spec.num_dram_banks; ++b) dram_offsets[b] = spec.dram_bank_offset(b);
  const std::vector<std::int64_t> l1_offsets(spec.num_worker_cores(), 0);

  // DRAM bank: unreserved | DRAM buffers | TRACE region (top trace_region bytes of the same bank).
  const std::uint64_t dram_top = spec.dram_bank_size - trace_region;
  const std::uint64_t dram_size = (dram_top - spec.dram_unreserved_base) / granule * granule;
  banks_[index_of(BufferType::DRAM)] =
      std::make_unique<BankManager>(BufferType::DRAM, dram_offsets, spec.dram_unreserved_base, dram_size,
                                    BankManager::Alignments{spec.dram_alignment, granule}, true);
  banks_[index_of(BufferType::TRACE)] =
      std::make_unique<BankManager>(BufferType::TRACE, dram_offsets, dram_top, trace_region,
                                    BankManager::Alignments{spec.dram_alignment, granule}, true);
  // L1 per core: reserved | L1 buffers [unreserved base, top - l1_small) | L1_SMALL (sharded only).
  const std::uint64_t l1_small_base = worker_l1_size_ - l1_small;
  banks_[index_of(BufferType::L1)] = std::make_unique<BankManager>(
      BufferType::L1, l1_offsets, spec.l1_unreserved_base, l1_small_base - spec.l1_unreserved_base,
      BankManager::Alignments{spec.l1_alignment, granule}, true);
  banks_[index_of(BufferType::L1_SMALL)] =
      std::make_unique<BankManager>(BufferType::L1_SMALL, l1_offsets, l1_small_base, l1_small,
                                    BankManager::Alignments{spec.l1_alignment, granule}, false);
}

Allocator::~Allocator() = default;

const BankManager& Allocator::bank_manager(BufferType type) const {
  const auto& bank = banks_.at(index_of(type));
  if (!bank) throw Error(ErrorCode::invalid_argument, fmt::format("{} has no bank manager", to_string(type)));
  return *bank;
}

BankManager& Allocator::bank_manager(BufferType type) {
  return const_cast<BankManager&>(std::as_const(*this).bank_manager(type));
}

Statistics Allocator::statistics(BufferType type) const {
  std::lock_guard lock(mutex());
  return bank_manager(type).statistics();
}

std::vector<MemoryBlock> Allocator::memory_blocks(BufferType type) const {
  std::lock_guard lock(mutex());
  return bank_manager(type).free_list().blocks();
}

std::vector<std::map<std::string, std::string>> Allocator::memory_block_table(BufferType type) const {
  std::lock_guard lock(mutex());
  return bank_manager(type).free_list().block_table();
}

void Allocator::dump_memory_blocks(std::ostream& out) const {
  std::lock_guard lock(mutex());
  // Per bank manager, FreeListOpt::dump_blocks' block table: 12-wide right-aligned columns, "none" for no
  // neighbour, addresses relative to the start of the managed space.
  auto pad = [](std::string_view text) { return fmt::format("{:>12}", text); };
  for (BufferType type : kManagedTypes) {
    const BankManager& bank = bank_manager(type);
    out << fmt::format("{} ({} banks, {} B per bank, from {})\n", to_string(type), bank.num_banks(),
                       bank.bank_size(), bank.free_list().base());
    out << "Block table:\n";
    for (const char* h : {"Block", "Address", "Size", "PrevID", "NextID", "Allocated"}) out << pad(h) << ' ';
    out << '\n';
    for (const auto& row : bank.free_list().block_table()) {
      for (const char* k : {"blockID", "address", "size", "prevID", "nextID", "allocated"}) {
        const std::string& v = row.at(k);
        out << pad(v == "-1" ? "none" : v) << ' ';
      }
      out << '\n';
    }
  }
}

std::uint32_t Allocator::num_banks(BufferType type) const {
  return bank_manager(type).num_banks();
}
std::uint64_t Allocator::bank_size(BufferType type) const {
  return bank_manager(type).bank_size();
}
DeviceAddr Allocator::base_address(BufferType type) const {
  return bank_manager(type).free_list().base();
}
std::uint32_t Allocator::alignment(BufferType type) const {
  return bank_manager(type).alignment();
}

std::optional<DeviceAddr> Allocator::lowest_occupied_l1_address() const {
  std::lock_guard lock(mutex());
  return bank_manager(BufferType::L1).free_list().lowest_occupied_address();
}

void Allocator::shrink_size(BufferType type, std::uint64_t bytes, bool bottom_up) {
  std::lock_guard lock(mutex());
  bank_manager(type).shrink_size(bytes, bottom_up);
}

void Allocator::reset_size(BufferType type) {
  std::lock_guard lock(mutex());
  bank_manager(type).reset_size();
}

Reservation Allocator::reserve(const ReservationRequest& request) {
  BankManager& bank = bank_manager(request.type);
  const BankLayout layout = bank.layout(request.size, request.page_size, request.num_shards);
  Reservation r{0, layout.num_banks, layout.aligned_page_size, layout.size_per_bank,
                layout.reserved_per_bank};
  r.address = bank.allocate(request.size, layout, request.placement);
  return r;
}

void Allocator::release(BufferType type, DeviceAddr address) {
  bank_manager(type).deallocate(address);
}

void Allocator::sweep() {
  for (Buffer* buffer : attached_buffers()) {
    buffer->release_locked(buffer->internal() ? ReleaseReason::close_internal : ReleaseReason::close_leak);
  }
  owned_.clear();
  preallocated_.clear();
  for (auto& bank : banks_) {
    if (bank) bank->deallocate_all();
  }
  open_ = false;
}

}  // namespace ttmem::emu
