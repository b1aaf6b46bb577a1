// The facts of docs/runtime.md "Geometry" reproduced exactly on the emulated devices.
#include <gtest/gtest.h>

#include <sstream>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

constexpr std::uint64_t kGiB = 1ull << 30;

std::shared_ptr<MeshDevice> open(const std::string& preset, DeviceOptions options = {}) {
  MeshDeviceConfig config;
  config.preset = preset;
  config.options = options;
  return MeshDevice::open(config);
}

BufferConfig buffer(BufferType type, std::uint64_t size, std::uint64_t page) {
  BufferConfig c;
  c.type = type;
  c.size = size;
  c.page_size = page;
  return c;
}

TEST(Geometry, WormholeWorkedExampleLandsAtTheTopOfL1) {
  auto mesh = open("n150");
  // 4096 B in 2048-B pages over 64 L1 banks: 2048 B per bank, carved from the top of 1,499,136 B.
  auto b = mesh->create_buffer(buffer(BufferType::L1, 4096, 2048));
  EXPECT_EQ(b->address(), 1'497'088u);
  EXPECT_EQ(b->device_buffer(0)->size_per_bank(), 2048u);
  EXPECT_EQ(b->device_buffer(0)->num_banks(), 64u);
}

TEST(Geometry, BanksAndSizesPerArchitecture) {
  auto wh = open("n150");
  const Allocator& a = wh->device(0).allocator();
  EXPECT_EQ(a.num_banks(BufferType::DRAM), 12u);
  EXPECT_EQ(a.num_banks(BufferType::L1), 64u);
  EXPECT_EQ(a.base_address(BufferType::DRAM), 32u);
  EXPECT_EQ(a.bank_size(BufferType::DRAM), kGiB - 32);
  EXPECT_EQ(a.base_address(BufferType::L1), 101'152u);
  EXPECT_EQ(a.bank_size(BufferType::L1), 1'499'136u - 101'152u);
  EXPECT_EQ(a.alignment(BufferType::L1), 16u);
  EXPECT_EQ(a.alignment(BufferType::DRAM), 32u);
  wh->close();

  auto bh = open("p150");
  const Allocator& b = bh->device(0).allocator();
  EXPECT_EQ(b.num_banks(BufferType::DRAM), 8u);
  EXPECT_EQ(b.num_banks(BufferType::L1), 130u);
  EXPECT_EQ(b.bank_size(BufferType::L1), 1'572'864u - 102'784u);
  EXPECT_EQ(b.bank_size(BufferType::DRAM), 4'278'190'080u - 64u);
  EXPECT_EQ(b.alignment(BufferType::DRAM), 64u);
  EXPECT_EQ(b.alignment(BufferType::L1), 16u);
}

TEST(Geometry, DramBuffersGrowBottomUpFromTheUnreservedBase) {
  auto wh = open("n150");
  auto first = wh->create_buffer(buffer(BufferType::DRAM, 24 * 2048, 2048));
  auto second = wh->create_buffer(buffer(BufferType::DRAM, 2048, 2048));
  EXPECT_EQ(first->address(), 32u);
  EXPECT_EQ(second->address(), 32u + 2 * 2048);  // 24 pages over 12 banks = 2 pages per bank
  wh->close();
  auto bh = open("p150");
  EXPECT_EQ(bh->create_buffer(buffer(BufferType::DRAM, 2048, 2048))->address(), 64u);
}

TEST(Geometry, BlackholeDramPagesAreAlignedTo64Bytes) {
  auto bh = open("p150");
  auto b = bh->create_buffer(buffer(BufferType::DRAM, 16 * 100, 100));  // 16 pages over 8 banks
  EXPECT_EQ(b->device_buffer(0)->aligned_page_size(), 128u);
  EXPECT_EQ(b->device_buffer(0)->size_per_bank(), 256u);
  auto next = bh->create_buffer(buffer(BufferType::DRAM, 64, 64));
  EXPECT_EQ(next->address(), 64u + 256u);
}

TEST(Geometry, TraceRegionSitsAtTheTopOfEveryDramBank) {
  DeviceOptions o;
  o.trace_region_size = 1 << 20;
  auto mesh = open("n150", o);
  const Allocator& a = mesh->device(0).allocator();
  // generate_config rounds the trace region up to DRAM alignment x DRAM views: 32 x 12 = 384 B.
  const std::uint64_t trace = 2731 * 384;  // 1048704
  EXPECT_EQ(a.trace_region_size(), trace);
  EXPECT_EQ(a.bank_size(BufferType::DRAM), kGiB - 32 - trace);
  EXPECT_EQ(a.base_address(BufferType::TRACE), kGiB - trace);
  EXPECT_EQ(a.bank_size(BufferType::TRACE), trace);
  auto t = mesh->create_buffer(buffer(BufferType::TRACE, 12 * 4096, 4096));
  EXPECT_EQ(t->address(), kGiB - trace);
  EXPECT_EQ(t->kind(), AllocKind::trace);
}

TEST(Geometry, TraceBuffersNeedATraceRegion) {
  auto mesh = open("n150");
  try {
    mesh->create_buffer(buffer(BufferType::TRACE, 4096, 4096));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("trace_region_size"), std::string::npos);
  }
}

TEST(Geometry, L1SmallTakesTheTopOfEveryCoreAndHoldsShardedBuffersOnly) {
  DeviceOptions o;
  o.l1_small_size = 64 * 1024;
  auto mesh = open("n150", o);
  const Allocator& a = mesh->device(0).allocator();
  const std::uint64_t small_base = 1'499'136 - 64 * 1024;
  EXPECT_EQ(a.base_address(BufferType::L1_SMALL), small_base);
  EXPECT_EQ(a.base_address(BufferType::L1) + a.bank_size(BufferType::L1), small_base);
  auto l1 = mesh->create_buffer(buffer(BufferType::L1, 4096, 2048));
  EXPECT_EQ(l1->address(), small_base - 2048);
  BufferConfig sharded = buffer(BufferType::L1_SMALL, 8 * 1024, 1024);
  sharded.shard_cores = 8;
  EXPECT_EQ(mesh->create_buffer(sharded)->address(), 1'499'136u - 1024);
  EXPECT_THROW(mesh->create_buffer(buffer(BufferType::L1_SMALL, 1024, 1024)), Error);
}

TEST(Geometry, KernelBinariesSitJustUnderTheTopOfTheDramBank) {
  auto mesh = open("n150");
  ProgramConfig p;
  p.name = "matmul";
  p.circular_buffers = {{4096, {}}};
  mesh->run(mesh->create_program(p));
  const auto blocks = mesh->device(0).allocator().memory_blocks(BufferType::DRAM);
  ASSERT_TRUE(blocks.back().allocated);
  // 4096 B in TT-Metal's 2048-B program pages over 12 banks: one page, 2048 B, at the top of each bank.
  EXPECT_EQ(blocks.back().address, kGiB - 2048);
  EXPECT_EQ(blocks.back().size, 2048u);
}

TEST(Geometry, InterleavedPagesRotateOverBanksWithWormholeBankOffsets) {
  auto mesh = open("n150");
  auto b = mesh->create_buffer(buffer(BufferType::DRAM, 30 * 2048, 2048));
  const Buffer& d = *b->device_buffer(0);
  EXPECT_EQ(d.page_location(0).bank_id, 0u);
  EXPECT_EQ(d.page_location(0).address, 32u);
  EXPECT_EQ(d.page_location(1).bank_id, 1u);
  EXPECT_EQ(d.page_location(1).address, 32u + kGiB);  // odd views sit at 1 GiB in their channel
  EXPECT_EQ(d.page_location(13).bank_id, 1u);
  EXPECT_EQ(d.page_location(13).address, 32u + kGiB + 2048);
  EXPECT_THROW(d.page_location(30), Error);
}

TEST(Geometry, ShardedPagesFillOneShardAfterAnother) {
  auto mesh = open("n150");
  BufferConfig c = buffer(BufferType::L1, 8 * 1024, 1024);
  c.shard_cores = 4;
  auto b = mesh->create_buffer(c);
  const Buffer& d = *b->device_buffer(0);
  EXPECT_EQ(d.page_location(0).bank_id, 0u);
  EXPECT_EQ(d.page_location(1).bank_id, 0u);
  EXPECT_EQ(d.page_location(1).address, b->address() + 1024);
  EXPECT_EQ(d.page_location(2).bank_id, 1u);
  EXPECT_EQ(d.page_location(7).bank_id, 3u);
}

TEST(Geometry, OutOfMemoryReportsFreeAndLargestFreeBlock) {
  auto mesh = open("n150");
  try {
    mesh->create_buffer(buffer(BufferType::DRAM, 13 * kGiB, 1 << 20));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::out_of_memory);
    const std::string m = e.what();
    EXPECT_NE(m.find("Out of Memory: Not enough space to allocate 13958643712 B DRAM buffer across 12 banks"),
              std::string::npos)
        << m;
    EXPECT_NE(m.find("largest free block: 1073741792 B"), std::string::npos) << m;
  }
}

TEST(Geometry, InvalidOptionsAreRefusedWithTheOptionNamed) {
  DeviceOptions too_big;
  too_big.worker_l1_size = 2 << 20;
  EXPECT_THROW(open("n150", too_big), Error);
  DeviceOptions no_room;
  no_room.l1_small_size = 1'499'136 - 101'152;
  try {
    open("n150", no_room);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("Reserved size must be less than bank size: l1_small_size"),
              std::string::npos)
        << e.what();
  }
  DeviceOptions both;
  both.worker_l1_size = 1 << 20;
  both.l1_unreserved_base = 200'000;
  EXPECT_THROW(open("n150", both), Error);
  DeviceOptions odd_granule;
  odd_granule.allocation_alignment = 24;
  EXPECT_THROW(open("n150", odd_granule), Error);
  // A failed open leaves the devices free.
  EXPECT_NO_THROW(open("n150"));
}

TEST(Geometry, L1SmallAndTraceSizesAreRoundedUpNotRefused) {
  // L1BankingAllocator::generate_config: align(l1_small_size, DRAM alignment), trace region to DRAM
  // alignment x views.
  DeviceOptions o;
  o.l1_small_size = 16'400;
  o.trace_region_size = 1000;
  auto mesh = open("n150", o);
  const Allocator& a = mesh->device(0).allocator();
  EXPECT_EQ(a.l1_small_size(), 16'416u);
  EXPECT_EQ(a.bank_size(BufferType::L1_SMALL), 16'416u);
  EXPECT_EQ(a.base_address(BufferType::L1_SMALL), 1'499'136u - 16'416);
  EXPECT_EQ(a.trace_region_size(), 1152u);
  mesh->close();
  auto bh = open("p150", o);
  EXPECT_EQ(bh->device(0).allocator().l1_small_size(), 16'448u);          // 64-B DRAM alignment
  EXPECT_EQ(bh->device(0).allocator().trace_region_size(), 8u * 64 * 2);  // 64 x 8 banks = 512
}

TEST(Geometry, WorkerL1SizeRaisesTheUnreservedBaseAndTheTopStays) {
  // MetalContext::initialize: unreserved start = align(L1 size - worker_l1_size, 32); the allocator's top
  // is still the whole L1.
  DeviceOptions o;
  o.worker_l1_size = 1 << 20;
  auto mesh = open("n150", o);
  const Allocator& a = mesh->device(0).allocator();
  EXPECT_EQ(a.base_address(BufferType::L1), 1'499'136u - (1u << 20));  // 450560, already 32-aligned
  EXPECT_EQ(mesh->create_buffer(buffer(BufferType::L1, 4096, 2048))->address(), 1'499'136u - 2048);
  ProgramConfig p;
  p.name = "cb";
  p.circular_buffers = {{100, {}}};
  auto prog = mesh->create_program(p);
  mesh->run(prog);
  EXPECT_EQ(prog->circular_buffers().front().address, 450'560u);
}

TEST(Geometry, L1BuffersAreRoundedToTheDramAlignmentAndPagesToTheL1One) {
  // Current bank managers build their free lists with the DRAM alignment; pages stay 16-B aligned.
  auto mesh = open("n150");
  auto a = mesh->create_buffer(buffer(BufferType::L1, 64 * 16, 16));  // one 16-B page per bank
  EXPECT_EQ(a->device_buffer(0)->aligned_page_size(), 16u);
  EXPECT_EQ(a->device_buffer(0)->size_per_bank(), 16u);
  EXPECT_EQ(a->device_buffer(0)->reserved_per_bank(), 32u);
  EXPECT_EQ(a->address(), 1'499'136u - 32);
  EXPECT_EQ(mesh->create_buffer(buffer(BufferType::L1, 64 * 16, 16))->address(), 1'499'136u - 64);
  mesh->close();
  // A build whose L1 bank managers used the L1 alignment: allocation_alignment = 16.
  DeviceOptions old;
  old.allocation_alignment = 16;
  auto legacy = open("n300", old);
  auto b = legacy->create_buffer(buffer(BufferType::L1, 64 * 16, 16));
  EXPECT_EQ(b->address(), 1'499'136u - 16);
}

TEST(Geometry, DumpMemoryBlocksListsEveryBlock) {
  auto mesh = open("n150");
  auto b = mesh->create_buffer(buffer(BufferType::L1, 4096, 2048));
  std::ostringstream out;
  mesh->device(0).allocator().dump_memory_blocks(out);
  EXPECT_NE(out.str().find("L1 (64 banks, 1397984 B per bank, from 101152)"), std::string::npos) << out.str();
  // FreeListOpt's block table: the top-down buffer split block 0, the free piece below it got id 1.
  EXPECT_NE(out.str().find("       Block      Address         Size       PrevID       NextID    Allocated"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("           0      1395936         2048            1         none          yes"),
            std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("           1            0      1395936         none            0           no"),
            std::string::npos)
      << out.str();
}

TEST(Geometry, StatisticsCountReservedBytesPerBank) {
  auto mesh = open("n150");
  auto b = mesh->create_buffer(buffer(BufferType::DRAM, 12 * 2048, 2048));
  const Statistics s = mesh->device(0).allocator().statistics(BufferType::DRAM);
  EXPECT_EQ(s.num_banks, 12u);
  EXPECT_EQ(s.total_allocated_bytes, 2048u);
  EXPECT_EQ(s.total_free_bytes, kGiB - 32 - 2048);
  EXPECT_EQ(s.largest_free_block_bytes, kGiB - 32 - 2048);
  EXPECT_EQ(s.largest_free_block_addrs, (std::vector<DeviceAddr>{32 + 2048}));
}

}  // namespace
}  // namespace ttmem::emu
