// Geometry of Wormhole B0 and Blackhole and the mesh presets. Figures: docs/runtime.md, "Geometry".
#include "ttmem/runtime/arch.hpp"

#include <algorithm>
#include <array>

#include "ttmem/units.hpp"

namespace ttmem::emu {

namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

constexpr ArchSpec kWormhole{
    .arch = Arch::wormhole_b0,
    .l1_size_per_core = 1'499'136,  // 1464 KiB
    .worker_grid_x = 8,
    .worker_grid_y = 8,
    .num_dram_banks = 12,  // 6 channels x 2 views
    .dram_bank_size = kGiB,
    .dram_views_per_channel = 2,
    .l1_alignment = 16,
    .dram_alignment = 32,
    .dram_unreserved_base = 32,
    .l1_unreserved_base = 101'152,  // 0x18B20, the build the seed's investigation ran on
    .control_buffer_base = 101'152 - 3 * 4096,
};

constexpr ArchSpec kBlackhole{
    .arch = Arch::blackhole,
    .l1_size_per_core = 1'572'864,  // 1536 KiB (newest sources)
    .worker_grid_x = 13,
    .worker_grid_y = 10,
    .num_dram_banks = 8,
    .dram_bank_size = 4'278'190'080,
    .dram_views_per_channel = 1,
    .l1_alignment = 16,
    .dram_alignment = 64,
    .dram_unreserved_base = 64,
    .l1_unreserved_base = 102'784,
    .control_buffer_base = 102'784 - 3 * 4096,
};

constexpr std::array<MeshPreset, 7> kPresets{{
    {"n150", Arch::wormhole_b0, 1, 1},
    {"n300", Arch::wormhole_b0, 1, 2},
    {"t3000", Arch::wormhole_b0, 2, 4},
    {"galaxy", Arch::wormhole_b0, 8, 4},
    {"p100", Arch::blackhole, 1, 1, 11, 10},  // 120 Tensix cores, a column for dispatch: 11x10 L1 banks
    {"p150", Arch::blackhole, 1, 1},
    {"p300", Arch::blackhole, 1, 2},
}};

}  // namespace

std::int64_t ArchSpec::dram_bank_offset(std::uint32_t bank_id) const {
  return static_cast<std::int64_t>((bank_id % dram_views_per_channel) * dram_bank_size);
}

ArchSpec device_spec(Arch arch, const DeviceOptions& options) {
  ArchSpec spec = arch_spec(arch);
  if (options.worker_grid_x) spec.worker_grid_x = options.worker_grid_x;
  if (options.worker_grid_y) spec.worker_grid_y = options.worker_grid_y;
  if (options.l1_unreserved_base) spec.l1_unreserved_base = options.l1_unreserved_base;
  spec.allocation_alignment =
      options.allocation_alignment ? options.allocation_alignment : spec.dram_alignment;
  // MetalContext::initialize: the unreserved start is align(L1 base + L1 size - worker_l1_size, max of
  // the two alignments); the top of L1 does not move.
  if (options.worker_l1_size && options.worker_l1_size <= spec.l1_size_per_core) {
    spec.l1_unreserved_base = saturating_align_up(spec.l1_size_per_core - options.worker_l1_size,
                                                  std::max(spec.l1_alignment, spec.dram_alignment));
  }
  // L1BankingAllocator::generate_config aligns the unreserved base to the DRAM alignment once more.
  spec.l1_unreserved_base = saturating_align_up(spec.l1_unreserved_base, spec.dram_alignment);
  return spec;
}

const ArchSpec& arch_spec(Arch arch) {
  return arch == Arch::blackhole ? kBlackhole : kWormhole;
}

std::span<const MeshPreset> mesh_presets() {
  return kPresets;
}

std::optional<MeshPreset> find_mesh_preset(std::string_view name) {
  for (const MeshPreset& p : kPresets) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

}  // namespace ttmem::emu
