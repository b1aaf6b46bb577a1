// Circular-buffer placement; see cb_placement.hpp.
#include "cb_placement.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {

namespace {

CoreRange resolve(const CoreRange& range, const ArchSpec& spec) {
  return range.count == 0 ? CoreRange{0, spec.num_worker_cores()} : range;
}

}  // namespace

std::string core_range_text(const CoreRange& in, const ArchSpec& spec) {
  const CoreRange range = resolve(in, spec);
  const std::uint32_t last = range.first + range.count - 1;
  return fmt::format("[(x={},y={}) - (x={},y={})]", range.first % spec.worker_grid_x,
                     range.first / spec.worker_grid_x, last % spec.worker_grid_x, last / spec.worker_grid_x);
}

std::vector<PlannedCircularBuffer> plan_circular_buffers(const ProgramConfig& config, const ArchSpec& spec) {
  std::vector<DeviceAddr> end_of_core(spec.num_worker_cores(), spec.l1_unreserved_base);
  std::vector<PlannedCircularBuffer> out;
  for (std::uint32_t i = 0; i < config.circular_buffers.size(); ++i) {
    const CircularBufferConfig& cb = config.circular_buffers[i];
    const CoreRange range = resolve(cb.cores, spec);
    if (cb.size == 0) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("circular buffer {} of program {} has size 0", i, config.name));
    }
    if (range.first + range.count > spec.num_worker_cores()) {
      throw Error(ErrorCode::invalid_argument,
                  fmt::format("core range of {} cores from core {} is outside the {} worker cores",
                              range.count, range.first, spec.num_worker_cores()));
    }
    auto cores_begin = end_of_core.begin() + range.first;
    auto cores_end = cores_begin + range.count;
    // Same address on every core of the range: above whatever any of them already holds.
    const DeviceAddr top = *std::max_element(cores_begin, cores_end);
    const DeviceAddr address = (top + spec.l1_alignment - 1) / spec.l1_alignment * spec.l1_alignment;
    std::fill(cores_begin, cores_end, address + cb.size);
    out.push_back({i, address, cb.size, range});
  }
  return out;
}

void validate_circular_buffers(const std::vector<PlannedCircularBuffer>& cbs, const ProgramConfig& /*config*/,
                               ProgramId program, const ArchSpec& spec, DeviceAddr l1_top,
                               std::optional<DeviceAddr> lowest_l1_buffer) {
  for (const PlannedCircularBuffer& cb : cbs) {
    // The region of a core range ends at the highest end of any CB sharing one of its cores.
    DeviceAddr region_end = 0;
    for (const PlannedCircularBuffer& other : cbs) {
      const bool overlap = other.cores.first < cb.cores.first + cb.cores.count &&
                           cb.cores.first < other.cores.first + other.cores.count;
      if (overlap) region_end = std::max(region_end, other.address + other.size);
    }
    if (region_end > l1_top) {
      throw Error(
          ErrorCode::cb_clash,
          fmt::format("Statically allocated circular buffers on core range {} grow to {} B which is beyond "
                      "max L1 size of {} B",
                      core_range_text(cb.cores, spec), region_end, l1_top));
    }
    if (lowest_l1_buffer && *lowest_l1_buffer < region_end) {
      throw Error(
          ErrorCode::cb_clash,
          fmt::format("Statically allocated circular buffers in program {} clash with L1 buffers on core "
                      "range {}. L1 buffer allocated at {} and static circular buffer region ends at {}",
                      program.value, core_range_text(cb.cores, spec), *lowest_l1_buffer, region_end));
    }
  }
}

}  // namespace ttmem::emu
