// TT-Metal's CoreRangeSet: the cores a circular buffer (or a shard grid) occupies, as rectangles of
// worker-core coordinates. The emulator's programs place CBs on them; the bridge converts TT-Metal's own
// CoreRangeSet; a recorded capture prints it as text, in two spellings ("{[0-0 - 1-1]}" and
// "{[(x=0,y=0) - (x=0,y=7)]}"), read here.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ttmem {

struct CoreCoord {
  std::uint32_t x = 0;
  std::uint32_t y = 0;
  auto operator<=>(const CoreCoord&) const = default;
};

/// The rectangle [start, end], both corners included (TT-Metal's CoreRange).
struct CoreRange {
  CoreCoord start;
  CoreCoord end;
  std::uint64_t num_cores() const {
    return std::uint64_t{end.x - start.x + 1} * std::uint64_t{end.y - start.y + 1};
  }
  bool contains(CoreCoord c) const {
    return c.x >= start.x && c.x <= end.x && c.y >= start.y && c.y <= end.y;
  }
  bool intersects(const CoreRange& o) const {
    return start.x <= o.end.x && o.start.x <= end.x && start.y <= o.end.y && o.start.y <= end.y;
  }
  /// TT-Metal's CoreRange::str() of current sources: "[(x=0,y=0) - (x=7,y=7)]" (its error messages).
  std::string str() const;
  auto operator<=>(const CoreRange&) const = default;
};

struct CoreRangeSet {
  std::vector<CoreRange> ranges;
  /// Cores in the set (TT-Metal's ranges of one set do not overlap; overlapping ones are counted once).
  std::uint64_t num_cores() const;
  bool contains(CoreCoord c) const;
  /// Every core, row by row within each range, each once.
  std::vector<CoreCoord> cores() const;
  /// "{[0-0 - 1-1], [3-0 - 3-7]}", TT-Metal's older spelling (the shortest).
  std::string str() const;
  /// TT-Metal's CoreRangeSet::merge_ranges, as far as rectangles go: ranges that together make a
  /// rectangle (same columns and touching rows, or same rows and touching columns, or one inside the
  /// other) become one, until none do; the result is sorted.
  CoreRangeSet merged() const;
  bool operator==(const CoreRangeSet&) const = default;
};

/// The first `count` cores of a grid `grid_x` wide, row-major, as rectangles: whole rows, then the rest.
CoreRangeSet first_cores(std::uint32_t count, std::uint32_t grid_x);

/// Reads either spelling; nullopt (with `error` saying why) for anything else, or a range whose end is
/// before its start.
std::optional<CoreRangeSet> parse_core_range_set(std::string_view text, std::string* error = nullptr);

}  // namespace ttmem
