// The server's compact allocation table against std::map.
#include "allocation_table.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>

namespace ttmem::server {
namespace {

AllocationRecord rec(std::uint32_t process, std::uint16_t device, std::uint64_t id, std::uint64_t size = 1) {
  AllocationRecord r;
  r.process = process;
  r.device = device;
  r.id = id;
  r.size = size;
  return r;
}

TEST(AllocationTable, KeysAreProcessDeviceAndIdNeverAddress) {
  AllocationTable t;
  AllocationRecord a = rec(1, 0, 7);
  a.address = 4096;
  AllocationRecord b = rec(1, 1, 7);  // same id and address on another device: a different allocation
  b.address = 4096;
  AllocationRecord c = rec(2, 0, 7);  // same id in another process
  EXPECT_TRUE(t.insert(a));
  EXPECT_TRUE(t.insert(b));
  EXPECT_TRUE(t.insert(c));
  EXPECT_FALSE(t.insert(a));  // duplicate
  EXPECT_EQ(t.size(), 3u);
  AllocationRecord out;
  EXPECT_TRUE(t.erase({1, 1, 7}, &out));
  EXPECT_EQ(out.device, 1);
  EXPECT_NE(t.find({1, 0, 7}), nullptr);
  EXPECT_EQ(t.find({1, 1, 7}), nullptr);
}

TEST(AllocationTable, EraseIfRemovesEveryMatchAndReportsIt) {
  AllocationTable t;
  for (std::uint64_t i = 0; i < 1000; ++i) t.insert(rec(static_cast<std::uint32_t>(i % 3 + 1), 0, i, i));
  std::uint64_t removed_bytes = 0;
  const auto n = t.erase_if([](const AllocationRecord& r) { return r.process == 2; },
                            [&](const AllocationRecord& r) { removed_bytes += r.size; });
  EXPECT_EQ(n, 333u);
  EXPECT_EQ(t.size(), 667u);
  std::uint64_t expected = 0;
  for (std::uint64_t i = 1; i < 1000; i += 3) expected += i;
  EXPECT_EQ(removed_bytes, expected);
  t.for_each([](const AllocationRecord& r) { EXPECT_NE(r.process, 2u); });
  EXPECT_FALSE(t.insert(rec(0, 0, 5000)));  // slot 0 marks free records
}

TEST(AllocationTable, UsesUnderSixtyFourBytesPerRecordAtAMillion) {
  AllocationTable t;
  constexpr std::uint64_t kN = 1'000'000;
  for (std::uint64_t i = 0; i < kN; ++i) t.insert(rec(1, static_cast<std::uint16_t>(i % 8), i));
  EXPECT_EQ(t.size(), kN);
  EXPECT_LE(t.memory_bytes() / kN, 56u);
}

RC_GTEST_PROP(AllocationTableProperty, BehavesLikeAMap, ()) {
  AllocationTable t;
  std::map<std::tuple<std::uint32_t, std::uint16_t, std::uint64_t>, std::uint64_t> model;
  const int steps = *rc::gen::inRange(1, 3000);
  for (int i = 0; i < steps; ++i) {
    // Small key space so inserts collide with existing keys and erases hit.
    const std::uint32_t p = *rc::gen::inRange<std::uint32_t>(1, 4);
    const std::uint16_t d = *rc::gen::inRange<std::uint16_t>(0, 3);
    const std::uint64_t id = *rc::gen::inRange<std::uint64_t>(0, 200);
    if (*rc::gen::inRange(0, 2) == 0) {
      const std::uint64_t size = *rc::gen::arbitrary<std::uint64_t>();
      const bool inserted = t.insert(rec(p, d, id, size));
      RC_ASSERT(inserted == !model.contains({p, d, id}));
      if (inserted) model[{p, d, id}] = size;
    } else {
      AllocationRecord out;
      const bool erased = t.erase({p, d, id}, &out);
      RC_ASSERT(erased == model.contains({p, d, id}));
      if (erased) {
        RC_ASSERT((out.size == model[{p, d, id}]));
        model.erase({p, d, id});
      }
    }
  }
  RC_ASSERT(t.size() == model.size());
  for (const auto& [key, size] : model) {
    const auto* r = t.find({std::get<0>(key), std::get<1>(key), std::get<2>(key)});
    RC_ASSERT(r != nullptr);
    RC_ASSERT(r->size == size);
  }
  std::size_t visited = 0;
  t.for_each([&](const AllocationRecord&) { ++visited; });
  RC_ASSERT(visited == model.size());
}

}  // namespace
}  // namespace ttmem::server
