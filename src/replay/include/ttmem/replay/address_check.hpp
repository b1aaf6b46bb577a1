// The address check of a NORMAL-mode capture: its allocation sequence replayed through the emulator on a
// chip of the capture's geometry, and each buffer's, CB's and kernel binary's address compared with the
// one TT-Metal's allocator chose. Where they differ, the capture is right and the emulator is wrong.
//
// The geometry: the architecture (--arch, or the replay's); the worker grid, inferred from the
// interleaved L1 buffers (the bank count their size, page size and max size per bank allow: a harvested
// chip loses columns) unless given; the L1 unreserved base from the first CB's address unless given.
// What the capture does not say, the emulator's defaults fill in (and the check says so).
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "ttmem/replay/capture.hpp"

namespace ttmem::replay {

struct AddressCheckOptions {
  Arch arch = Arch::blackhole;
  std::optional<std::uint32_t> grid_x, grid_y;  ///< worker cores per row, rows
  std::optional<std::uint64_t> l1_base;
};

struct AddressRow {
  std::size_t node = 0;
  std::string what;  ///< "L1 buffer, 2097152 B, 20480 B/bank", "cb 131072 B on {[0-0 - 1-1]}", ...
  std::uint64_t recorded = 0;
  std::optional<std::uint64_t> emulated;  ///< none: not placed (see note)
  bool match = false;
  std::string note;
};

struct AddressCheck {
  Arch arch = Arch::blackhole;
  std::uint32_t grid_x = 0, grid_y = 0;
  std::string grid_source;  ///< "given", "inferred from N L1 buffers", "the architecture's"
  std::uint64_t l1_base = 0;
  std::string l1_base_source;
  std::vector<AddressRow> rows;
  std::size_t matched = 0;
  std::size_t mismatched = 0;
  std::size_t skipped = 0;  ///< not placed: tensor-backed CBs, L1_SMALL, ...
  /// Buffers allocated before the capture: not in the emulator (bottom-up placements after them may
  /// differ for that reason alone).
  std::size_t buffers_before_capture = 0;
};

/// Throws CaptureError for a NO_DISPATCH capture (every address 0: nothing to compare).
AddressCheck check_addresses(const Capture& capture, const AddressCheckOptions& options);

void write_text(std::ostream& out, const AddressCheck& check);
std::string to_json(const AddressCheck& check);

}  // namespace ttmem::replay
