// Architecture geometry (Wormhole B0, Blackhole) and mesh presets, from the facts in
// docs/runtime.md (which cites the TT-Metal sources they come from).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "ttmem/runtime/types.hpp"

namespace ttmem::emu {

struct ArchSpec {
  Arch arch;
  std::uint64_t l1_size_per_core;  ///< Bytes of L1 in one Tensix core.
  std::uint32_t worker_grid_x;     ///< Worker cores used for L1 banks (dispatch cores excluded).
  std::uint32_t worker_grid_y;
  std::uint32_t num_dram_banks;          ///< DRAM bank managers ("views").
  std::uint64_t dram_bank_size;          ///< Bytes per DRAM view.
  std::uint32_t dram_views_per_channel;  ///< Wormhole: 2 views per channel at offsets 0 and 1 GiB.
  std::uint32_t l1_alignment;
  std::uint32_t dram_alignment;
  std::uint64_t dram_unreserved_base;
  std::uint64_t l1_unreserved_base;  ///< Below: firmware, mailboxes, kernel-config ring.
  std::uint64_t
      control_buffer_base;  ///< Where device init places its dispatch control buffers (reserved L1).
  /// Granule of every free list and of CB addresses (DeviceOptions::allocation_alignment); 0 in the
  /// architecture tables, set by device_spec.
  std::uint32_t allocation_alignment = 0;

  std::uint32_t num_worker_cores() const { return worker_grid_x * worker_grid_y; }
  /// Offset of a DRAM bank inside its channel (0 or 1 GiB on Wormhole, 0 on Blackhole).
  std::int64_t dram_bank_offset(std::uint32_t bank_id) const;
  /// DRAM channel that holds a bank.
  std::uint32_t dram_channel(std::uint32_t bank_id) const { return bank_id / dram_views_per_channel; }
};

const ArchSpec& arch_spec(Arch arch);

struct MeshPreset {
  std::string_view name;
  Arch arch;
  std::uint32_t rows;
  std::uint32_t cols;
  std::uint32_t worker_grid_x = 0;  ///< the board's worker grid when it is not the architecture's (0: it is)
  std::uint32_t worker_grid_y = 0;
  std::uint32_t num_devices() const { return rows * cols; }
};

std::span<const MeshPreset> mesh_presets();
std::optional<MeshPreset> find_mesh_preset(std::string_view name);

/// Options of a device (and of the mesh allocator), as `open_mesh_device` takes them.
struct DeviceOptions {
  /// Top of every core's L1 reserved for L1_SMALL (sharded only); rounded up to the DRAM alignment.
  std::uint64_t l1_small_size = 0;
  /// Top of every DRAM bank reserved for TRACE buffers; rounded up to DRAM alignment x DRAM banks.
  std::uint64_t trace_region_size = 0;
  /// L1 per core left to the allocator and CBs, counted down from the top of L1: it moves the unreserved
  /// base up to align(L1 size - worker_l1_size); the top stays. 0 keeps the build's base.
  std::uint64_t worker_l1_size = 0;
  /// Granule of every bank manager's free list and of CB addresses. 0 is TT-Metal's current rule: the
  /// DRAM alignment (32 B Wormhole, 64 B Blackhole) for every memory type. Builds whose L1 bank managers
  /// used the L1 alignment (16 B) are reproduced with 16.
  std::uint32_t allocation_alignment = 0;
  // Where a chip differs from its architecture's defaults (a harvested chip, or the chip a recorded
  // capture ran on, whose worker grid and L1 layout came from its own TT-Metal build); 0 keeps each.
  std::uint32_t worker_grid_x = 0;       ///< Worker cores per row (one L1 bank each).
  std::uint32_t worker_grid_y = 0;       ///< Rows of worker cores.
  std::uint64_t l1_unreserved_base = 0;  ///< Where L1 buffers and circular buffers may start.
};

/// The architecture's geometry with a device's overrides applied.
ArchSpec device_spec(Arch arch, const DeviceOptions& options);

}  // namespace ttmem::emu
