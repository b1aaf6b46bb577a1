// Circular-buffer placement; see cb_placement.hpp.
#include "cb_placement.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/units.hpp"

namespace ttmem::emu {

CoreRangeSet resolve_cores(const CoreRangeSet& cores, const ArchSpec& spec) {
  if (cores.ranges.empty()) return CoreRangeSet{{{{0, 0}, {spec.worker_grid_x - 1, spec.worker_grid_y - 1}}}};
  return cores.merged();
}

std::shared_ptr<MeshBuffer> global_buffer_of(const CircularBufferConfig& cb, std::uint32_t index) {
  auto buffer = cb.buffer.lock();
  if (!buffer || !buffer->is_allocated()) {
    throw Error(
        ErrorCode::invalid_argument,
        fmt::format("circular buffer {} is globally allocated in a buffer that is gone or deallocated",
                    index));
  }
  if (buffer->type() != BufferType::L1) {
    throw Error(ErrorCode::invalid_argument, "Only L1 buffers can have an associated circular buffer!");
  }
  return buffer;
}

namespace {

// CircularBufferAllocator::mark_address: a CB appends to the last region or opens a higher one.
void mark(CircularBufferRegion& a, DeviceAddr address, std::uint64_t size, DeviceAddr base) {
  if (a.regions.empty()) a.regions.emplace_back(base, base);
  auto& last = a.regions.back();
  if (address < last.second) {
    throw Error(
        ErrorCode::invalid_state,
        fmt::format("Local buffer address {} has to append to last L1 region [{}, {}) or be at a higher "
                    "address",
                    address, last.first, last.second));
  }
  if (address == last.second) {
    last.second = saturating_add(last.second, size);
  } else {
    a.regions.emplace_back(address, saturating_add(address, size));
  }
}

}  // namespace

CircularBufferPlan plan_circular_buffers(const ProgramConfig& config, const ArchSpec& spec) {
  CircularBufferPlan plan;
  std::vector<CoreRangeSet> sets;
  for (std::uint32_t i = 0; i < config.circular_buffers.size(); ++i) {
    const CircularBufferConfig& cb = config.circular_buffers[i];
    if (cb.size == 0) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("circular buffer {} of program {} has size 0", i, config.name));
    }
    CoreRangeSet set = resolve_cores(cb.cores, spec);
    for (const CoreRange& r : set.ranges) {
      if (r.end.x >= spec.worker_grid_x || r.end.y >= spec.worker_grid_y) {
        throw Error(ErrorCode::invalid_argument,
                    fmt::format("core range {} of circular buffer {} is outside the {}x{} worker grid",
                                r.str(), i, spec.worker_grid_x, spec.worker_grid_y));
      }
      // add_circular_buffer_: one allocator per distinct core range, made when first seen.
      const bool known = std::any_of(plan.allocators.begin(), plan.allocators.end(),
                                     [&](const CircularBufferRegion& a) { return a.range == r; });
      if (!known) plan.allocators.push_back({r, {}});
    }
    sets.push_back(std::move(set));
  }

  const DeviceAddr base = spec.l1_unreserved_base;
  for (std::uint32_t i = 0; i < config.circular_buffers.size(); ++i) {
    const CoreRangeSet& set = sets[i];
    if (config.circular_buffers[i].globally_allocated()) {
      // allocate_circular_buffers skips globally allocated CBs: their address is their buffer's.
      const auto buffer = global_buffer_of(config.circular_buffers[i], i);
      plan.cbs.push_back({i, buffer->address(), config.circular_buffers[i].size, set, true});
      continue;
    }
    DeviceAddr address = base;
    for (const CoreRange& r : set.ranges) {
      for (const CircularBufferRegion& a : plan.allocators) {
        if (a.range == r) {
          address = std::max(address, a.end());
          break;
        }
      }
    }
    address = saturating_align_up(address, spec.allocation_alignment);
    const std::uint64_t size = config.circular_buffers[i].size;
    for (const CoreRange& r : set.ranges) {
      for (CircularBufferRegion& a : plan.allocators) {
        if (!a.range.intersects(r)) continue;
        // Already marked past this address by a CB on another range that also meets this allocator.
        if (a.range != r && address < a.end()) continue;
        mark(a, address, size, base);
      }
    }
    plan.cbs.push_back({i, address, size, set});
  }
  return plan;
}

void validate_circular_buffers(const CircularBufferPlan& plan, ProgramId program, DeviceAddr l1_top,
                               std::optional<DeviceAddr> lowest_l1_buffer) {
  for (const CircularBufferRegion& a : plan.allocators) {
    if (a.regions.empty()) continue;
    const DeviceAddr region_end = a.end();
    if (region_end > l1_top) {
      throw Error(
          ErrorCode::cb_clash,
          fmt::format("Statically allocated circular buffers on core range {} grow to {} B which is beyond "
                      "max L1 size of {} B",
                      a.range.str(), region_end, l1_top));
    }
    if (lowest_l1_buffer && *lowest_l1_buffer < region_end) {
      throw Error(
          ErrorCode::cb_clash,
          fmt::format("Statically allocated circular buffers in program {} clash with L1 buffers on core "
                      "range {}. L1 buffer allocated at {} and static circular buffer region ends at {}",
                      program.value, a.range.str(), *lowest_l1_buffer, region_end));
    }
  }
}

}  // namespace ttmem::emu
