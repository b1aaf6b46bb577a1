// The first-fit free list, against TT-Metal's semantics and against a naive bitmap model.
#include "allocator/free_list.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <vector>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

TEST(FreeList, BottomUpTakesTheLowestBlockThatFits) {
  FreeList fl(0, 1024, 16);
  EXPECT_EQ(fl.allocate(64, Placement::bottom_up), 0u);
  EXPECT_EQ(fl.allocate(64, Placement::bottom_up), 64u);
  EXPECT_EQ(fl.allocate(64, Placement::bottom_up), 128u);
  ASSERT_TRUE(fl.deallocate(0));
  // The hole at 0 is 64 B: a 32-B request fits there, a 128-B one goes above.
  EXPECT_EQ(fl.allocate(128, Placement::bottom_up), 192u);
  EXPECT_EQ(fl.allocate(32, Placement::bottom_up), 0u);
}

// TT-Metal's FreeListOpt::shrink_size / reset_size (test_free_list_opt_allocator.cpp's shrink cases).
TEST(FreeList, ShrinkTakesTheBottomAwayAndResetGivesItBack) {
  constexpr std::uint64_t KiB = 1024;
  FreeList fl(0, 1024 * KiB, KiB);
  fl.shrink(KiB);
  EXPECT_EQ(fl.base(), KiB);
  EXPECT_EQ(fl.statistics().total_allocatable_bytes, 1023 * KiB);
  EXPECT_EQ(fl.allocate(KiB, Placement::bottom_up), KiB);  // above what the shrink took
  const auto b = fl.allocate(KiB, Placement::bottom_up);
  EXPECT_EQ(b, 2 * KiB);
  // A shrink that reaches an allocated block is refused and changes nothing.
  try {
    fl.shrink(KiB);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_state);
    EXPECT_STREQ(e.what(), "Shrink size 2048 cuts into allocated block at address 1024");
  }
  EXPECT_EQ(fl.base(), KiB);
  EXPECT_THROW(fl.shrink(KiB, false), Error);  // top-down: not supported
  EXPECT_THROW(fl.shrink(2048 * KiB), Error);  // more than there is
  fl.reset_size();
  EXPECT_EQ(fl.base(), 0u);
  EXPECT_EQ(fl.statistics().total_allocatable_bytes, 1024 * KiB);
  EXPECT_EQ(fl.allocate(KiB, Placement::bottom_up), 0u);  // the bottom is back
  ASSERT_TRUE(fl.deallocate(0));
  ASSERT_TRUE(fl.deallocate(KiB));
  ASSERT_TRUE(fl.deallocate(2 * KiB));
  EXPECT_EQ(fl.free_ranges().size(), 1u);  // it coalesced with what reset gave back
  fl.shrink(3 * KiB);
  fl.clear();  // TT-Metal's init(): a clear undoes the shrink
  EXPECT_EQ(fl.base(), 0u);
  EXPECT_EQ(fl.statistics().total_allocatable_bytes, 1024 * KiB);
}

// Block ids as FreeListOpt hands them out (get_memory_block_table): a split gives new ids to the free
// pieces, a merge frees the absorbed ids, the last freed is reused first.
// TT-Metal's free-list test of allocate_at_address (1024 B, 32-B minimum and alignment).
TEST(FreeList, TtMetalAllocateAtAddress) {
  FreeList fl(0, 1024, 32);
  EXPECT_EQ(fl.allocate(32, Placement::bottom_up), 0u);
  EXPECT_EQ(fl.allocate_at(64, 32), 64u);
  EXPECT_EQ(fl.allocate(48, Placement::bottom_up), 96u);  // 64 B: the 32-B hole at 32 is too small
  EXPECT_EQ(fl.allocate(16, Placement::bottom_up), 32u);  // 32 B: fits the hole
  EXPECT_EQ(fl.allocate_at(512, 128), 512u);
  ASSERT_TRUE(fl.deallocate(96));            // coalesces with the free block after it
  EXPECT_EQ(fl.allocate_at(128, 64), 128u);  // inside what was freed and merged
}

TEST(FreeList, TheBlockTableHasTtMetalsBlockIds) {
  FreeList fl(4096, 1024, 16);
  ASSERT_EQ(fl.allocate(64, Placement::bottom_up), 4096u);       // block 0; the rest is block 1
  ASSERT_EQ(fl.allocate(64, Placement::bottom_up), 4096u + 64);  // block 1; the rest is block 2
  ASSERT_TRUE(fl.deallocate(4096));                              // no free neighbour: still block 0
  ASSERT_TRUE(fl.deallocate(4096 + 64));                         // absorbed by 0 (frees 1), absorbs 2
  ASSERT_EQ(fl.allocate(32, Placement::top_down), 4096u + 992);  // block 0 at the top; below it id 2
  using Row = std::map<std::string, std::string>;
  EXPECT_EQ(fl.block_table(), (std::vector<Row>{
                                  {{"blockID", "0"},
                                   {"address", "992"},
                                   {"size", "32"},
                                   {"prevID", "2"},
                                   {"nextID", "-1"},
                                   {"allocated", "yes"}},
                                  {{"blockID", "2"},
                                   {"address", "0"},
                                   {"size", "992"},
                                   {"prevID", "-1"},
                                   {"nextID", "0"},
                                   {"allocated", "no"}},
                              }));
}

TEST(FreeList, SizesThatWouldWrapFitNowhere) {
  FreeList fl(0, 1024, 16);
  EXPECT_FALSE(fl.allocate(~std::uint64_t{0}, Placement::bottom_up));
  EXPECT_FALSE(fl.allocate(~std::uint64_t{0} - 3, Placement::top_down));
  EXPECT_FALSE(fl.allocate_at(512, ~std::uint64_t{0} - 256));  // 512 + size would wrap past the block
  EXPECT_EQ(fl.allocate(1024, Placement::bottom_up), 0u);      // and nothing was taken
}

TEST(FreeList, TopDownCarvesFromTheEndOfTheHighestBlockThatFits) {
  FreeList fl(1000 * 16, 100 * 16, 16);  // [16000, 17600)
  EXPECT_EQ(fl.allocate(32, Placement::top_down), 17600u - 32);
  EXPECT_EQ(fl.allocate(32, Placement::top_down), 17600u - 64);
}

TEST(FreeList, SizesAreRoundedUpToTheAlignmentWithTheAlignmentAsMinimum) {
  FreeList fl(0, 1024, 32);
  EXPECT_EQ(fl.aligned_size(0), 32u);
  EXPECT_EQ(fl.aligned_size(1), 32u);
  EXPECT_EQ(fl.aligned_size(33), 64u);
  ASSERT_EQ(fl.allocate(1, Placement::bottom_up), 0u);
  EXPECT_EQ(fl.allocate(1, Placement::bottom_up), 32u);
  EXPECT_EQ(fl.statistics().total_allocated_bytes, 64u);
}

TEST(FreeList, FreeingCoalescesWithBothNeighbours) {
  FreeList fl(0, 1024, 16);
  const auto a = *fl.allocate(256, Placement::bottom_up);
  const auto b = *fl.allocate(256, Placement::bottom_up);
  const auto c = *fl.allocate(256, Placement::bottom_up);
  ASSERT_TRUE(fl.deallocate(a));
  ASSERT_TRUE(fl.deallocate(c));
  EXPECT_EQ(fl.free_ranges().size(), 2u);
  ASSERT_TRUE(fl.deallocate(b));
  ASSERT_EQ(fl.free_ranges().size(), 1u);
  EXPECT_EQ(fl.free_ranges()[0], (AddressRange{0, 1024}));
}

TEST(FreeList, FreeingAnUnknownAddressIsIgnored) {
  FreeList fl(0, 1024, 16);
  const auto a = *fl.allocate(64, Placement::bottom_up);
  EXPECT_FALSE(fl.deallocate(a + 16));
  EXPECT_FALSE(fl.deallocate(512));
  EXPECT_EQ(fl.statistics().total_allocated_bytes, 64u);
  EXPECT_TRUE(fl.deallocate(a));
  EXPECT_FALSE(fl.deallocate(a));  // second free of the same address
}

TEST(FreeList, AllocateAtReservesExactlyThatRangeOrNothing) {
  FreeList fl(0, 1024, 16);
  EXPECT_EQ(fl.allocate_at(512, 64), 512u);
  EXPECT_FALSE(fl.allocate_at(544, 64));   // overlaps
  EXPECT_FALSE(fl.allocate_at(8, 16));     // misaligned
  EXPECT_FALSE(fl.allocate_at(1008, 32));  // runs past the end
  EXPECT_EQ(fl.allocate(1024 - 64, Placement::bottom_up), std::nullopt);
  EXPECT_EQ(fl.allocate(512, Placement::bottom_up), 0u);
}

TEST(FreeList, LowestOccupiedAddressFollowsAllocations) {
  FreeList fl(1600, 1600, 16);
  EXPECT_EQ(fl.lowest_occupied_address(), std::nullopt);
  const auto top = *fl.allocate(160, Placement::top_down);
  EXPECT_EQ(fl.lowest_occupied_address(), top);
  const auto low = *fl.allocate(16, Placement::bottom_up);
  EXPECT_EQ(fl.lowest_occupied_address(), low);
  fl.deallocate(low);
  EXPECT_EQ(fl.lowest_occupied_address(), top);
}

TEST(FreeList, StatisticsReportFreeAndLargestFreeBlock) {
  FreeList fl(0, 1024, 16);
  fl.allocate(256, Placement::bottom_up);
  const auto mid = *fl.allocate(256, Placement::bottom_up);
  fl.allocate(256, Placement::bottom_up);
  fl.deallocate(mid);
  const Statistics s = fl.statistics();
  EXPECT_EQ(s.total_allocatable_bytes, 1024u);
  EXPECT_EQ(s.total_allocated_bytes, 512u);
  EXPECT_EQ(s.total_free_bytes, 512u);
  EXPECT_EQ(s.largest_free_block_bytes, 256u);
  EXPECT_EQ(s.largest_free_block_addrs, (std::vector<DeviceAddr>{256, 768}));
}

TEST(FreeList, EmptyFreeListRefusesEverything) {
  FreeList fl(4096, 0, 16);
  EXPECT_EQ(fl.allocate(16, Placement::bottom_up), std::nullopt);
  EXPECT_EQ(fl.statistics().total_free_bytes, 0u);
}

/// Naive model: one flag per alignment unit, first fit by scanning.
class BitmapModel {
 public:
  BitmapModel(std::size_t units, std::uint32_t alignment) : used_(units, false), alignment_(alignment) {}
  std::optional<DeviceAddr> allocate(std::uint64_t size, Placement p) {
    const std::size_t n = std::max<std::uint64_t>(1, (size + alignment_ - 1) / alignment_);
    std::optional<std::size_t> found;
    // Scan free runs; bottom-up wants the first run that fits, top-down the last one (carved at its end).
    for (std::size_t i = 0; i < used_.size();) {
      if (used_[i]) {
        ++i;
        continue;
      }
      std::size_t j = i;
      while (j < used_.size() && !used_[j]) ++j;
      if (j - i >= n) {
        found = p == Placement::bottom_up ? i : j - n;
        if (p == Placement::bottom_up) break;
      }
      i = j;
    }
    if (!found) return std::nullopt;
    for (std::size_t k = *found; k < *found + n; ++k) used_[k] = true;
    sizes_[*found] = n;
    return *found * alignment_;
  }
  void deallocate(DeviceAddr address) {
    auto it = sizes_.find(address / alignment_);
    for (std::size_t k = it->first; k < it->first + it->second; ++k) used_[k] = false;
    sizes_.erase(it);
  }
  std::uint64_t allocated_bytes() const {
    std::uint64_t n = 0;
    for (const auto& [start, units] : sizes_) n += units * alignment_;
    return n;
  }

 private:
  std::vector<bool> used_;
  std::map<std::size_t, std::size_t> sizes_;
  std::uint32_t alignment_;
};

RC_GTEST_PROP(FreeListProperty, MatchesANaiveFirstFitModelAndReturnsToPristine, ()) {
  constexpr std::uint32_t kAlign = 16;
  constexpr std::size_t kUnits = 256;
  FreeList fl(0, kUnits * kAlign, kAlign);
  BitmapModel model(kUnits, kAlign);
  std::vector<DeviceAddr> live;
  const int steps = *rc::gen::inRange(1, 200);
  for (int i = 0; i < steps; ++i) {
    if (!live.empty() && *rc::gen::inRange(0, 3) == 0) {
      const std::size_t k = *rc::gen::inRange<std::size_t>(0, live.size());
      RC_ASSERT(fl.deallocate(live[k]));
      model.deallocate(live[k]);
      live.erase(live.begin() + static_cast<std::ptrdiff_t>(k));
    } else {
      const std::uint64_t size = *rc::gen::inRange<std::uint64_t>(0, 40 * kAlign);
      const Placement p = *rc::gen::element(Placement::bottom_up, Placement::top_down);
      const auto got = fl.allocate(size, p);
      RC_ASSERT(got == model.allocate(size, p));
      if (got) live.push_back(*got);
    }
    RC_ASSERT(fl.statistics().total_allocated_bytes == model.allocated_bytes());
  }
  for (DeviceAddr a : live) RC_ASSERT(fl.deallocate(a));
  RC_ASSERT(fl.statistics().total_allocated_bytes == 0u);
  RC_ASSERT(fl.free_ranges() == (std::vector<AddressRange>{{0, kUnits * kAlign}}));
}

}  // namespace
}  // namespace ttmem::emu
