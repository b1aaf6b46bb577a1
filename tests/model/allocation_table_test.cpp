// The server's compact allocation table against std::map.
#include "allocation_table.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <map>
#include <unordered_map>

namespace ttmem::model {
namespace {

AllocationRecord rec(std::uint32_t process, std::uint16_t device, std::uint64_t id, std::uint64_t size = 1) {
  AllocationRecord r;
  r.process = process;
  r.device = device;
  r.id = id;
  r.size = size;
  return r;
}

using Insert = AllocationTable::Insert;

TEST(AllocationTable, KeysAreProcessDeviceAndIdNeverAddress) {
  AllocationTable t;
  const auto g = t.new_group();
  AllocationRecord a = rec(1, 0, 7);
  a.address = 4096;
  AllocationRecord b = rec(1, 1, 7);  // same id and address on another device: a different allocation
  b.address = 4096;
  AllocationRecord c = rec(2, 0, 7);  // same id in another process
  EXPECT_EQ(t.insert(g, a), Insert::inserted);
  EXPECT_EQ(t.insert(g, b), Insert::inserted);
  EXPECT_EQ(t.insert(g, c), Insert::inserted);
  EXPECT_EQ(t.insert(g, a), Insert::duplicate);
  EXPECT_EQ(t.size(), 3u);
  AllocationRecord out;
  EXPECT_TRUE(t.erase(g, {1, 1, 7}, &out));
  EXPECT_EQ(out.device, 1);
  EXPECT_NE(t.find(g, {1, 0, 7}), nullptr);
  EXPECT_EQ(t.find(g, {1, 1, 7}), nullptr);
}

TEST(AllocationTable, EraseGroupRemovesItsRecordsOnlyAndVisitsNoOther) {
  AllocationTable t;
  const AllocationTable::Group groups[3] = {t.new_group(), t.new_group(), t.new_group()};
  for (std::uint64_t i = 0; i < 1000; ++i) {
    const auto p = static_cast<std::uint32_t>(i % 3 + 1);
    ASSERT_EQ(t.insert(groups[p - 1], rec(p, 0, i, i)), Insert::inserted);
  }
  std::uint64_t removed_bytes = 0;
  const auto n = t.erase_group(groups[1], [&](const AllocationRecord& r) { removed_bytes += r.size; });
  EXPECT_EQ(n, 333u);
  EXPECT_EQ(t.size(), 667u);
  EXPECT_EQ(t.group_records_visited(), 333u);  // the other 667 were never looked at
  EXPECT_EQ(t.group_size(groups[1]), 0u);
  std::uint64_t expected = 0;
  for (std::uint64_t i = 1; i < 1000; i += 3) expected += i;
  EXPECT_EQ(removed_bytes, expected);
  t.for_each([](const AllocationRecord& r) { EXPECT_NE(r.process, 2u); });
  EXPECT_EQ(t.insert(groups[0], rec(0, 0, 5000)), Insert::duplicate);  // slot 0 marks free records
  // The emptied group is usable again, and its id can be given back and reused.
  EXPECT_EQ(t.insert(groups[1], rec(2, 0, 1)), Insert::inserted);
  EXPECT_EQ(t.erase_group(groups[1], [](const AllocationRecord&) {}), 1u);
  t.release_group(groups[1]);
  const auto again = t.new_group();
  EXPECT_EQ(t.group_size(again), 0u);
  EXPECT_EQ(t.insert(again, rec(5, 0, 1)), Insert::inserted);
  EXPECT_EQ(t.size(), 668u);
}

TEST(AllocationTable, ChosenIdsCannotFloodOneProbeRun) {
  // Ids that differ only in their high bits all shared one probe run under the unkeyed multiplicative hash
  // the table used first (100,000 of them took 9.9 s to insert). A single keyed multiply still left runs of
  // 922 cells for sequential ids and 1052 for ids in steps of 2^32 under some keys. Fixed keys keep the test
  // deterministic; random ids reach about 60 cells at this load.
  constexpr std::uint64_t kIds = 100'000;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    for (int shift : {0, 16, 32, 44}) {
      AllocationTable t(seed * 0x9e3779b97f4a7c15ull);
      const auto g = t.new_group();
      for (std::uint64_t i = 1; i <= kIds; ++i)
        ASSERT_EQ(t.insert(g, rec(1, 0, i << shift)), Insert::inserted);
      EXPECT_LT(t.max_probe(), 96u) << "seed " << seed << ", ids in steps of 2^" << shift;
      for (std::uint64_t i = 1; i <= kIds; ++i) ASSERT_TRUE(t.erase(g, {1, 0, i << shift}));
      EXPECT_EQ(t.size(), 0u);
      EXPECT_LT(t.max_probe(), 96u) << "seed " << seed << ", ids in steps of 2^" << shift;
    }
  }
}

TEST(AllocationTable, GrowingAndShrinkingTheIndexNeverCostsOneOperationTheWholeTable) {
  // Doubling a million-entry index at once took 60 ms in one insert; it moves a few runs per operation.
  AllocationTable t(42);
  const auto g = t.new_group();
  std::unordered_map<std::uint64_t, std::uint64_t> model;
  std::uint64_t next = 0;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 300'000; ++i) {
      ++next;
      ASSERT_EQ(t.insert(g, rec(1, 0, next, next)), Insert::inserted);
      model[next] = next;
    }
    for (std::uint64_t id = next; id > next - 280'000; --id) {  // shrink again, through the moves
      ASSERT_TRUE(t.erase(g, {1, 0, id}));
      model.erase(id);
    }
    for (const auto& [id, size] : model) {
      const auto* r = t.find(g, {1, 0, id});
      ASSERT_NE(r, nullptr) << id;
      ASSERT_EQ(r->size, size);
    }
  }
  EXPECT_EQ(t.size(), model.size());
  EXPECT_LT(t.most_cells_moved_at_once(), 1024u);
}

TEST(AllocationTable, AShrunkGroupGivesItsChunksBack) {
  AllocationTable t;
  const auto g = t.new_group();
  for (std::uint64_t i = 0; i < 400'000; ++i) ASSERT_EQ(t.insert(g, rec(1, 0, i)), Insert::inserted);
  const std::size_t full = t.memory_bytes();
  for (std::uint64_t i = 0; i < 400'000; ++i) {
    if (i % 40'000 != 0) {
      ASSERT_TRUE(t.erase(g, {1, 0, i}));
    }
  }
  EXPECT_EQ(t.size(), 10u);
  // Emptied chunks return to the spare list (a bounded reserve keeps its memory) and the index shrinks:
  // most of the memory is given back.
  EXPECT_LT(t.memory_bytes(), full / 3);
  for (std::uint64_t i = 0; i < 400'000; i += 40'000) EXPECT_NE(t.find(g, {1, 0, i}), nullptr);
}

TEST(AllocationTable, UsesUnderSeventyTwoBytesPerRecordAtAMillion) {
  AllocationTable t;
  constexpr std::uint64_t kN = 1'000'000;
  AllocationTable::Group groups[8];
  for (auto& g : groups) g = t.new_group();
  for (std::uint64_t i = 0; i < kN; ++i)
    t.insert(groups[i % 8], rec(1, static_cast<std::uint16_t>(i % 8), i));
  EXPECT_EQ(t.size(), kN);
  // 48-byte records plus 8-byte index cells at a load of 1/4 to 1/2 (they carry hash bits so the index is
  // walked without reading records): 65 bytes here, under the 72 docs/benchmarks.md promises.
  EXPECT_LT(t.memory_bytes() / kN, 72u);
}

RC_GTEST_PROP(AllocationTableProperty, BehavesLikeAMap, ()) {
  AllocationTable t;
  // One group per (process, device), as the registry uses them.
  std::map<std::pair<std::uint32_t, std::uint16_t>, AllocationTable::Group> groups;
  auto group = [&](std::uint32_t p, std::uint16_t d) {
    auto it = groups.find({p, d});
    return it != groups.end() ? it->second : groups[{p, d}] = t.new_group();
  };
  std::map<std::tuple<std::uint32_t, std::uint16_t, std::uint64_t>, std::uint64_t> model;
  const int steps = *rc::gen::inRange(1, 3000);
  for (int i = 0; i < steps; ++i) {
    // Small key space so inserts collide with existing keys and erases hit.
    const std::uint32_t p = *rc::gen::inRange<std::uint32_t>(1, 4);
    const std::uint16_t d = *rc::gen::inRange<std::uint16_t>(0, 3);
    const std::uint64_t id = *rc::gen::inRange<std::uint64_t>(0, 200);
    const int action = *rc::gen::inRange(0, 20);
    if (action == 0) {
      // Drop a whole group now and then.
      std::size_t expected = 0;
      for (auto it = model.begin(); it != model.end();) {
        if (std::get<0>(it->first) == p && std::get<1>(it->first) == d) {
          it = model.erase(it);
          ++expected;
        } else {
          ++it;
        }
      }
      RC_ASSERT(t.erase_group(group(p, d), [](const AllocationRecord&) {}) == expected);
    } else if (action < 11) {
      const std::uint64_t size = *rc::gen::arbitrary<std::uint64_t>();
      const bool inserted = t.insert(group(p, d), rec(p, d, id, size)) == Insert::inserted;
      RC_ASSERT(inserted == !model.contains({p, d, id}));
      if (inserted) model[{p, d, id}] = size;
    } else {
      AllocationRecord out;
      const bool erased = t.erase(group(p, d), {p, d, id}, &out);
      RC_ASSERT(erased == model.contains({p, d, id}));
      if (erased) {
        RC_ASSERT((out.size == model[{p, d, id}]));
        model.erase({p, d, id});
      }
    }
  }
  RC_ASSERT(t.size() == model.size());
  for (const auto& [key, size] : model) {
    const auto* r = t.find(group(std::get<0>(key), std::get<1>(key)),
                           {std::get<0>(key), std::get<1>(key), std::get<2>(key)});
    RC_ASSERT(r != nullptr);
    RC_ASSERT(r->size == size);
  }
  std::size_t visited = 0;
  t.for_each([&](const AllocationRecord&) { ++visited; });
  RC_ASSERT(visited == model.size());
  std::size_t in_groups = 0;
  for (const auto& [key, g] : groups) {
    const auto [process, device] = key;
    t.for_each_in_group(g, [&, process = process, device = device](const AllocationRecord& r) {
      RC_ASSERT(r.process == process);
      RC_ASSERT(r.device == device);
      ++in_groups;
    });
  }
  RC_ASSERT(in_groups == model.size());
}

}  // namespace
}  // namespace ttmem::model
