// The out-of-memory verdict rule on its own: which figures make which verdict, and that the sentence
// carries the numbers a person acts on.
#include <gtest/gtest.h>

#include "oom_record.hpp"

namespace ttmem::model {
namespace {

views::OomRecord failure(std::uint64_t need, std::uint64_t free, std::uint64_t largest,
                         std::uint64_t blocks) {
  views::OomRecord r;
  r.pid = 10;
  r.name = "train.py";
  r.type = BufferType::DRAM;
  r.size = need * 12;
  r.num_banks = 12;
  r.needed_per_bank = need;
  views::FreeSpace f;
  f.free_per_bank = free;
  f.free = free * 12;
  f.largest_free_block = largest;
  f.free_blocks = blocks;
  f.num_banks = 12;
  f.bank_size = 1 << 30;
  r.space = f;
  r.holders.push_back({10, "train.py", "python3 train.py", {}, 3, 700, 40});
  return r;
}

TEST(OomVerdict, LessFreeThanNeededWithNobodyElseToBlameIsExhausted) {
  auto r = failure(1000, 900, 900, 1);
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::exhausted);
  EXPECT_NE(r.summary.find("needs 1,000 B per bank"), std::string::npos) << r.summary;
  EXPECT_NE(r.summary.find("900 B are free per bank (100 B short)"), std::string::npos) << r.summary;
  EXPECT_NE(r.summary.find("this process holds 700 B per bank"), std::string::npos) << r.summary;
}

TEST(OomVerdict, EnoughFreeInPiecesTooSmallIsFragmented) {
  auto r = failure(1000, 1500, 600, 3);
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::fragmented);
  EXPECT_NE(r.summary.find("in 3 blocks, the largest 600 B"), std::string::npos) << r.summary;
}

TEST(OomVerdict, AnotherProcessHoldingTheShortfallIsReservedAndNamed) {
  auto r = failure(1000, 900, 900, 1);
  r.holders.push_back({77, "python3", "python3 serve.py", {}, 1, 150, 0});
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::reserved);
  EXPECT_NE(r.summary.find("pid 77 (python3 serve.py) with 150 B"), std::string::npos) << r.summary;
}

TEST(OomVerdict, TheRuntimesOwnBuffersHoldingTheShortfallIsReserved) {
  auto r = failure(1000, 980, 980, 1);  // 20 B short; the runtime holds 40 B per bank
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::reserved);
  EXPECT_NE(r.summary.find("runtime's own buffers"), std::string::npos) << r.summary;
}

TEST(OomVerdict, RoomOnTheMapMeansTheRuntimeKnowsMoreThanTtmemd) {
  auto r = failure(1000, 2000, 2000, 1);
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::unknown);
  EXPECT_NE(r.summary.find("should fit"), std::string::npos) << r.summary;
}

TEST(OomVerdict, ADeviceWithoutAMapHasNoVerdict) {
  auto r = failure(1000, 0, 0, 0);
  r.space.reset();
  judge(r);
  EXPECT_EQ(r.verdict, OomVerdict::unknown);
  EXPECT_NE(r.summary.find("did not announce"), std::string::npos) << r.summary;
}

}  // namespace
}  // namespace ttmem::model
