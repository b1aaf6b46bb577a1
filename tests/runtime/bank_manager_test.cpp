// Lockstep bank policy: the size_per_bank rule, the bank-count rule, sharding and the OOM message.
#include "allocator/bank_manager.hpp"

#include <gtest/gtest.h>

#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

TEST(BankManager, SizePerBankIsPagesPerBankTimesTheAlignedPage) {
  EXPECT_EQ(size_per_bank(4096, 2048, 64, 16), 2048u);  // 2 pages over 64 banks: 1 page each
  EXPECT_EQ(size_per_bank(13 * 1000, 1000, 12, 32),
            2 * 1024u);                                       // 13 pages over 12 banks: 2 pages, 1000 -> 1024
  EXPECT_EQ(size_per_bank(24 * 100, 100, 12, 64), 2 * 128u);  // Blackhole-style 64-B alignment
  EXPECT_EQ(size_per_bank(0, 2048, 12, 32), 0u);
}

TEST(BankManager, AnImpossibleSizeIsOutOfMemoryNeverAWrap) {
  // 2^64 - 1 B in one page: rounding the page up to the alignment would wrap to 0 (it "fitted" at 32).
  constexpr std::uint64_t kMax = ~std::uint64_t{0};
  EXPECT_EQ(size_per_bank(kMax, kMax, 12, 32), kMax);
  EXPECT_EQ(size_per_bank(kMax - kMax % 1000, 1000, 1, 1024), kMax);  // pages x aligned page would wrap
  BankManager bank(BufferType::DRAM, std::vector<std::int64_t>(12, 0), 32, 1 << 30, {32, 32}, true);
  const BankLayout layout = bank.layout(kMax, kMax, std::nullopt);
  EXPECT_EQ(layout.size_per_bank, kMax);
  try {
    bank.allocate(kMax, layout, Placement::bottom_up);
    FAIL() << "a 2^64 - 1 B buffer was placed";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::out_of_memory);
    EXPECT_NE(
        std::string(e.what()).find("Out of Memory: Not enough space to allocate 18446744073709551615 B DRAM"),
        std::string::npos)
        << e.what();
  }
  // Nothing was taken: an ordinary buffer still lands at the base.
  EXPECT_EQ(bank.allocate(4096, bank.layout(4096, 2048, std::nullopt), Placement::bottom_up), 32u);
}

TEST(BankManager, BankCountMustBeAPowerOfTwoOrHaveADedicatedModulo) {
  for (std::uint32_t n : {1u, 2u, 8u, 64u, 7u, 12u, 56u, 63u, 70u, 80u, 94u, 110u, 120u, 124u, 130u, 140u}) {
    EXPECT_TRUE(is_supported_bank_count(n)) << n;
  }
  for (std::uint32_t n : {0u, 3u, 24u, 100u, 129u}) EXPECT_FALSE(is_supported_bank_count(n)) << n;
  try {
    BankManager(BufferType::L1, std::vector<std::int64_t>(24, 0), 1024, 4096, {16, 16}, true);
    FAIL() << "24 interleaved banks must be refused";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_bank_count);
    EXPECT_STREQ(e.what(),
                 "Invalid number of memory banks 24 for L1. Num banks must be power of 2 or have a "
                 "dedicated modulo implementation");
  }
  // L1_SMALL only holds sharded buffers, so any bank count is fine.
  EXPECT_NO_THROW(
      BankManager(BufferType::L1_SMALL, std::vector<std::int64_t>(24, 0), 1024, 4096, {16, 16}, false));
}

TEST(BankManager, ShardedBuffersSpreadOverTheirShardCores) {
  BankManager bank(BufferType::L1, std::vector<std::int64_t>(64, 0), 1024, 1 << 20, {16, 16}, true);
  const BankLayout layout = bank.layout(16 * 2048, 2048, 8);
  EXPECT_EQ(layout.num_banks, 8u);
  EXPECT_EQ(layout.size_per_bank, 2u * 2048);
  EXPECT_THROW(bank.layout(2048, 2048, 65), Error);
  EXPECT_THROW(bank.layout(2048, 2048, 0), Error);
}

TEST(BankManager, L1SmallRefusesInterleavedBuffers) {
  BankManager bank(BufferType::L1_SMALL, std::vector<std::int64_t>(64, 0), 1024, 4096, {16, 16}, false);
  try {
    bank.layout(2048, 2048, std::nullopt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("must be sharded"), std::string::npos);
  }
}

TEST(BankManager, SizeMustBeAWholeNumberOfPages) {
  BankManager bank(BufferType::DRAM, std::vector<std::int64_t>(12, 0), 32, 1 << 20, {32, 32}, true);
  EXPECT_THROW(bank.layout(3000, 2048, std::nullopt), Error);
  EXPECT_THROW(bank.layout(2048, 0, std::nullopt), Error);
}

TEST(BankManager, OutOfMemoryUsesTtMetalsMessageWithFreeFigures) {
  BankManager bank(BufferType::DRAM, std::vector<std::int64_t>(12, 0), 32, 12 * 1024, {32, 32}, true);
  const BankLayout small = bank.layout(12 * 1024, 1024, std::nullopt);
  bank.allocate(12 * 1024, small, Placement::bottom_up);
  const BankLayout big = bank.layout(12 * 12 * 1024, 1024, std::nullopt);
  try {
    bank.allocate(12 * 12 * 1024, big, Placement::bottom_up);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::out_of_memory);
    EXPECT_STREQ(
        e.what(),
        "Out of Memory: Not enough space to allocate 147456 B DRAM buffer across 12 banks, where each bank "
        "needs to store 12288 B, but bank size is 12288 B (allocated: 1024 B, free: 11264 B, largest free "
        "block: 11264 B)");
  }
}

}  // namespace
}  // namespace ttmem::emu
