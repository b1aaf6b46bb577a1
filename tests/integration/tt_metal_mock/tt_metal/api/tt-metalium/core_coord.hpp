// Mock of TT-Metal's public API, only the members ttmem's processor uses, with the signatures of the
// pinned TT-Metal sources (docs/integrating.md): it lets the processor be compiled and driven here, where
// no TT-Metal build exists. Not TT-Metal's code: each declaration is written from its documented shape.
#pragma once

#include <cstddef>
#include <vector>

namespace tt::tt_metal {

struct CoreCoord {
  std::size_t x = 0;
  std::size_t y = 0;
};

struct CoreRange {
  CoreCoord start_coord;
  CoreCoord end_coord;
};

class CoreRangeSet {
 public:
  CoreRangeSet() = default;
  explicit CoreRangeSet(std::vector<CoreRange> ranges) : ranges_(std::move(ranges)) {}
  const std::vector<CoreRange>& ranges() const { return ranges_; }

 private:
  std::vector<CoreRange> ranges_;
};

}  // namespace tt::tt_metal
