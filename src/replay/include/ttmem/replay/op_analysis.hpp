// What a capture says about each op, computed from the bridge's allocations (a Sink): per op invocation
// (function start to end, nested), the peak L1 per core including program-scope L1 (CBs, dataflow
// buffers, scratchpads) on the cores of their core range sets, what that peak is made of, the peak
// DRAM per chip, and the buffers the op allocated that are still alive when it ends.
//
// Per-core model: an interleaved L1 buffer puts max_size_per_bank on every L1 bank (one per worker
// core); a sharded one on the cores of its shard grid when the capture prints it, else on every core (an
// upper bound, marked); program-scope L1 on the cores of its range set; tensor-backed CBs add nothing
// (their bytes are the tensor's). L1_SMALL counts with L1 (it lives in the same cores' L1).
//
// Alongside, the capture-wide figures by TT-Metal's own rules (extract_resource_usage_per_core: sums
// that ignore cores), so the two can be compared; frees of buffers allocated before the capture do not
// underflow them here (the bridge never passes those on).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ttmem/bridge/bridge.hpp"

namespace ttmem::replay {

/// One allocation in a peak: what it puts on the peak core.
struct PeakPart {
  std::uint64_t id = 0;
  BufferType type = BufferType::L1;
  std::optional<bridge::ProgramBufferKind> program;  ///< program-scope L1
  std::uint64_t bytes = 0;                           ///< on the peak core
  std::uint64_t size = 0;                            ///< whole buffer (per core for program-scope L1)
  std::uint64_t address = 0;
  std::string cores;  ///< "all" (interleaved), "all?" (sharded, grid unknown), or the range set
  std::string site;
  std::string op;
  std::size_t node = 0;  ///< the capture node that allocated it
};

/// A buffer an op allocated that is still alive when it ends.
struct Outlived {
  std::uint64_t id = 0;
  BufferType type = BufferType::L1;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string site;
  std::size_t node = 0;
};

/// The L1 peak of a span (an op, or the whole capture).
struct L1Peak {
  std::uint64_t per_core = 0;  ///< the most L1 any core held at one time
  std::uint64_t program = 0;   ///< of which program-scope L1 (CBs, dataflow buffers, scratchpads)
  std::uint16_t chip = 0;
  std::optional<bridge::CoreCoord> core;  ///< the core; none: every core held the same
  bool upper_bound = false;  ///< a sharded buffer of unknown grid is in it (counted on every core)
  std::size_t node = 0;      ///< the node at which it was reached
  std::vector<PeakPart> parts;
};

struct OpFiguresRow {
  std::string name;
  std::string op;  ///< the path, "outer/inner"
  int depth = 0;   ///< 0: outermost
  std::size_t start_node = 0;
  std::size_t end_node = 0;  ///< its function_end (or the last node, when the capture ends inside it)
  bool ended = false;
  L1Peak l1;
  std::uint64_t peak_dram = 0;  ///< on the chip with the most
  std::uint16_t dram_chip = 0;
  std::uint64_t allocations = 0;  ///< buffers and program-scope L1 allocated inside it (and its children)
  std::vector<Outlived> outlived;
};

/// TT-Metal's extract_resource_usage_per_core figures (the largest over chips).
struct TtMetalPeaks {
  std::uint64_t peak_cb = 0;
  std::uint64_t peak_l1 = 0;
  std::uint64_t peak_dataflow_buffer = 0;
  std::uint64_t peak_scratchpad = 0;
  std::uint64_t peak_total = 0;
};

struct CaptureFigures {
  L1Peak l1;
  std::uint64_t peak_dram = 0;
  std::uint16_t dram_chip = 0;
  TtMetalPeaks tt_metal;
  std::vector<OpFiguresRow> ops;  ///< in the order they started
};

class OpAnalysis : public bridge::Sink {
 public:
  /// The capture node being fed (allocations are attributed to it).
  void at_node(std::size_t index) { node_ = index; }
  /// The figures; peaks' parts are worked out here (one sweep over the allocations, whatever the count).
  CaptureFigures finish();

  void function_started(std::string_view name, std::string_view op) override;
  void function_ended(std::string_view name, std::string_view op) override;
  void allocated(const bridge::Allocation& allocation) override;
  void released(const bridge::Allocation& allocation, ReleaseReason reason) override;

 private:
  struct Entry {
    bridge::Allocation allocation;
    std::size_t node = 0;
    std::uint64_t alloc_seq = 0;
    std::uint64_t release_seq = UINT64_MAX;
  };
  /// Worker cores are at most kGrid x kGrid (logical coordinates); a core outside is counted on every core.
  static constexpr std::uint32_t kGrid = 64;
  struct Chip {
    std::uint64_t uniform = 0;  ///< on every core
    std::uint64_t uniform_program = 0;
    std::uint64_t uniform_unknown_grid = 0;  ///< of `uniform`: sharded buffers of unknown grid
    std::vector<std::uint64_t> cores = std::vector<std::uint64_t>(kGrid * kGrid);  ///< on this core only
    std::vector<std::uint64_t> cores_program = std::vector<std::uint64_t>(kGrid * kGrid);
    std::uint32_t width = 0, height = 0;  ///< the cores touched so far lie in [0, width) x [0, height)
    std::uint64_t dram = 0;
    std::int64_t tt_cb = 0, tt_l1 = 0, tt_dfb = 0, tt_scratch = 0;
  };
  struct Open {
    std::size_t row = 0;
    std::size_t first_entry = 0;
  };
  /// A peak whose parts are read at `seq` by finish().
  struct PendingPeak {
    L1Peak* peak;
    std::uint64_t seq;
  };

  /// Counted on every core: no cores given (interleaved, or a shard grid unknown), or some outside kGrid.
  static bool on_every_core(const bridge::Allocation& a);
  void apply(Entry& e, int sign);
  void update_peaks(std::uint16_t chip);
  std::vector<PeakPart> parts_at(const L1Peak& peak, const std::vector<std::size_t>& live) const;

  std::size_t node_ = 0;
  std::uint64_t seq_ = 0;  ///< events applied so far
  std::vector<Entry> entries_;
  std::unordered_map<std::uint64_t, std::size_t> live_;  ///< (chip << 48 ^ id) -> entry
  std::vector<std::pair<std::size_t, bool>> log_;        ///< per seq: entry, allocated (else released)
  std::map<std::uint16_t, Chip> chips_;
  std::vector<Open> open_;
  CaptureFigures figures_;
  std::vector<std::uint64_t> peak_seq_;  ///< per row, the seq of its L1 peak; capture's at the end
  std::uint64_t capture_peak_seq_ = 0;
};

}  // namespace ttmem::replay
