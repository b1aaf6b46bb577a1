// Circular-buffer placement (TT-Metal's Program::allocate_circular_buffers and
// validate_circular_buffer_region): each CB goes at the highest current end of the cores it spans, bottom-up
// from the L1 unreserved base.
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
  CoreRange cores;
};

/// Addresses of a program's CBs. Throws Error(invalid_argument) for an empty CB or a core range outside
/// the worker grid.
std::vector<PlannedCircularBuffer> plan_circular_buffers(const ProgramConfig& config, const ArchSpec& spec);

/// Throws Error(cb_clash) when a CB region ends above `l1_top` or above the lowest L1 buffer.
void validate_circular_buffers(const std::vector<PlannedCircularBuffer>& cbs, const ProgramConfig& config,
                               ProgramId program, const ArchSpec& spec, DeviceAddr l1_top,
                               std::optional<DeviceAddr> lowest_l1_buffer);

/// TT-Metal's core range text, e.g. "[(x=0,y=0) - (x=7,y=7)]".
std::string core_range_text(const CoreRange& range, const ArchSpec& spec);

}  // namespace ttmem::emu
