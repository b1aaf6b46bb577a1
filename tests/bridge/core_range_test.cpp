// TT-Metal's CoreRangeSet as captures print it: both spellings, several ranges, and what is refused.
#include "ttmem/bridge/core_range.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace ttmem::bridge {
namespace {

TEST(CoreRangeSet, ReadsTheOlderSpelling) {
  const auto set = parse_core_range_set("{[0-0 - 1-1]}");
  ASSERT_TRUE(set);
  ASSERT_EQ(set->ranges.size(), 1u);
  EXPECT_EQ(set->ranges[0], (CoreRange{{0, 0}, {1, 1}}));
  EXPECT_EQ(set->num_cores(), 4u);
  EXPECT_TRUE(set->contains({1, 0}));
  EXPECT_FALSE(set->contains({2, 0}));
}

TEST(CoreRangeSet, ReadsTheNewerSpellingAndSeveralRanges) {
  const auto set = parse_core_range_set("{[(x=0,y=0) - (x=0,y=7)], [(x=3,y=2) - (x=4,y=2)]}");
  ASSERT_TRUE(set);
  ASSERT_EQ(set->ranges.size(), 2u);
  EXPECT_EQ(set->ranges[0], (CoreRange{{0, 0}, {0, 7}}));
  EXPECT_EQ(set->ranges[1], (CoreRange{{3, 2}, {4, 2}}));
  EXPECT_EQ(set->num_cores(), 10u);
  EXPECT_EQ(set->str(), "{[0-0 - 0-7], [3-2 - 4-2]}");
}

TEST(CoreRangeSet, TheWholeBlackholeGridOfTheShardedAddCapture) {
  const auto set = parse_core_range_set("{[0-0 - 10-9]}");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->num_cores(), 110u);
}

TEST(CoreRangeSet, OverlappingRangesCountACoreOnce) {
  const auto set = parse_core_range_set("{[0-0 - 1-1], [1-1 - 2-2]}");
  ASSERT_TRUE(set);
  EXPECT_EQ(set->num_cores(), 7u);
}

TEST(CoreRangeSet, RefusesWhatIsNotOneAndSaysWhere) {
  for (const char* bad : {"", "[0-0 - 1-1]", "{[0-0 - 1-1]", "{[0-0 1-1]}", "{[1-1 - 0-0]}",
                          "{[0-0 - 1-1]} x", "{[(x=0,y=0) - (x=1)]}", "{[a-0 - 1-1]}"}) {
    std::string error;
    EXPECT_FALSE(parse_core_range_set(bad, &error)) << bad;
    EXPECT_NE(error.find("core range set"), std::string::npos) << error;
    EXPECT_NE(error.find("at character"), std::string::npos) << error;
  }
  EXPECT_TRUE(parse_core_range_set("{}"));
}

RC_GTEST_PROP(CoreRangeSet, WhatItPrintsItReadsBack, ()) {
  CoreRangeSet set;
  const auto n = *rc::gen::inRange(1, 5);
  for (int i = 0; i < n; ++i) {
    const auto x0 = *rc::gen::inRange<std::uint32_t>(0, 20);
    const auto y0 = *rc::gen::inRange<std::uint32_t>(0, 20);
    const auto x1 = x0 + *rc::gen::inRange<std::uint32_t>(0, 20);
    const auto y1 = y0 + *rc::gen::inRange<std::uint32_t>(0, 20);
    set.ranges.push_back({{x0, y0}, {x1, y1}});
  }
  const auto back = parse_core_range_set(set.str());
  RC_ASSERT(back.has_value());
  RC_ASSERT(*back == set);
  // The newer spelling of the same set reads the same.
  std::string newer = "{";
  for (const CoreRange& r : set.ranges) {
    if (newer.size() > 1) newer += ", ";
    newer += "[(x=" + std::to_string(r.start.x) + ",y=" + std::to_string(r.start.y) +
             ") - (x=" + std::to_string(r.end.x) + ",y=" + std::to_string(r.end.y) + ")]";
  }
  const auto again = parse_core_range_set(newer + "}");
  RC_ASSERT(again.has_value());
  RC_ASSERT(*again == set);
}

}  // namespace
}  // namespace ttmem::bridge
