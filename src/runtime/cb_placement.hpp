// Circular-buffer placement, as TT-Metal's ProgramImpl::allocate_circular_buffers and
// validate_circular_buffer_region do it: one CB allocator per distinct core range of the program; a CB goes
// at the highest end among the allocators whose range equals one of its ranges, aligned to the allocation
// granule, and is marked in every allocator whose range intersects its ranges -- except an allocator of a
// different range already marked past that address.
#pragma once

#include <optional>
#include <vector>

#include "ttmem/runtime/arch.hpp"
#include "ttmem/runtime/program.hpp"

namespace ttmem::emu {

struct PlannedCircularBuffer {
  std::uint32_t index = 0;
  DeviceAddr address = 0;
  std::uint64_t size = 0;
  CoreRangeSet cores;               ///< merged, inside the worker grid
  bool globally_allocated = false;  ///< at its buffer's address, outside the CB allocators
};

/// A CB allocator of TT-Metal: the L1 regions [start, end) CBs take on the cores of one core range.
struct CircularBufferRegion {
  CoreRange range;
  std::vector<std::pair<DeviceAddr, DeviceAddr>> regions;
  DeviceAddr end() const { return regions.empty() ? 0 : regions.back().second; }
};

struct CircularBufferPlan {
  std::vector<PlannedCircularBuffer> cbs;
  std::vector<CircularBufferRegion> allocators;  ///< in the order TT-Metal creates them
};

/// Addresses of a program's CBs. Throws Error(invalid_argument) for an empty CB, a core range outside
/// the worker grid, or a globally allocated CB whose buffer is not an allocated L1 buffer.
CircularBufferPlan plan_circular_buffers(const ProgramConfig& config, const ArchSpec& spec);

/// Throws Error(cb_clash) when an allocator's region ends above `l1_top` (the whole L1 per core) or above
/// the lowest L1 buffer, with TT-Metal's messages.
void validate_circular_buffers(const CircularBufferPlan& plan, ProgramId program, DeviceAddr l1_top,
                               std::optional<DeviceAddr> lowest_l1_buffer);

/// A globally allocated CB's buffer, checked: alive, allocated, L1 (TT-Metal: "Only L1 buffers can have
/// an associated circular buffer!").
std::shared_ptr<MeshBuffer> global_buffer_of(const CircularBufferConfig& cb, std::uint32_t index);

/// The ranges a CB config stands for on this grid: its own, merged, or the whole grid when it gives none.
CoreRangeSet resolve_cores(const CoreRangeSet& cores, const ArchSpec& spec);

}  // namespace ttmem::emu
