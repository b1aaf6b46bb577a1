// The bridge on its own, one GraphTracker call kind and trap at a time: mesh buffers become one allocation
// per chip, program-scope L1 is released by "deallocate all", tensor-backed CBs hold nothing, releases
// of buffers it never saw are counted, the op stack is per thread, and a close releases what the
// program cache held and forgets what the chip held.
#include "ttmem/bridge/bridge.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "recording_sink.hpp"

namespace ttmem::bridge {
namespace {

using test::RecordingSink;

BufferInfo l1_interleaved(std::uint64_t id, TtDeviceId device, std::uint64_t address = 1552384) {
  BufferInfo b;
  b.device = device;
  b.unique_id = id;
  b.address = address;
  b.size = 2097152;
  b.page_size = 2048;
  b.max_size_per_bank = 20480;
  b.type = BufferType::L1;
  return b;
}

ProgramBufferInfo cb(TtDeviceId device, std::uint64_t size, std::string_view cores = "{[0-0 - 1-1]}",
                     bool tensor_backed = false) {
  ProgramBufferInfo p;
  p.device = device;
  p.size = size;
  p.address = 111616;
  p.cores = *parse_core_range_set(cores);
  p.tensor_backed = tensor_backed;
  return p;
}

ChipInfo chip_with_banks(TtDeviceId id, std::uint32_t l1_banks) {
  ChipInfo c;
  c.id = id;
  c.has_geometry = true;
  c.num_banks[static_cast<std::size_t>(BufferType::L1)] = l1_banks;
  c.total_bytes[static_cast<std::size_t>(BufferType::L1)] = std::uint64_t{l1_banks} << 20;
  return c;
}

TEST(Bridge, AMeshBufferIsOneAllocationPerChipAtTheSameAddress) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_mesh(8, {0, 1, 2, 3});
  bridge.allocate(l1_interleaved(7, 8));
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(allocs[i].allocation.chip, i);
    EXPECT_EQ(allocs[i].allocation.id, 7u);
    EXPECT_EQ(allocs[i].allocation.address, 1552384u);
    EXPECT_EQ(allocs[i].allocation.mesh, 8u);
    EXPECT_EQ(allocs[i].allocation.size_per_bank, 20480u);
  }
  bridge.deallocate(l1_interleaved(7, 8));
  EXPECT_EQ(sink.of("free").size(), 4u);
  EXPECT_EQ(bridge.stats().buffers_released, 1u);
  // The chips were never added: each is counted as learnt from an event.
  EXPECT_EQ(bridge.stats().implicit_chips, 4u);
}

TEST(Bridge, ABufferOnAChipIsThatChipsOwn) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_mesh(1, {0});
  bridge.allocate(l1_interleaved(3, 0));  // NORMAL mode names the chip, not the mesh
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 1u);
  EXPECT_EQ(allocs[0].allocation.chip, 0u);
  EXPECT_EQ(allocs[0].allocation.mesh, 0u);
}

TEST(Bridge, InterleavedBanksComeFromTheChipElseTheFewestThatHoldIt) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_chip(chip_with_banks(0, 110));
  bridge.allocate(l1_interleaved(1, 0));
  bridge.allocate(l1_interleaved(2, 5));  // chip 5 has no geometry
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 2u);
  EXPECT_EQ(allocs[0].allocation.num_banks, 110u);
  EXPECT_EQ(allocs[1].allocation.num_banks, 103u);  // ceil(2097152 / 20480)
  // A sharded buffer spans its cores.
  BufferInfo sharded = l1_interleaved(3, 0);
  sharded.layout = BufferLayout::height_sharded;
  sharded.num_cores = 64;
  sharded.max_size_per_bank = 32768;
  sharded.shard_grid = parse_core_range_set("{[0-0 - 7-7]}");
  bridge.allocate(sharded);
  const auto s = sink.of("alloc").back().allocation;
  EXPECT_EQ(s.num_banks, 64u);
  EXPECT_EQ(s.size_per_bank, 32768u);
  ASSERT_TRUE(s.cores);
  EXPECT_EQ(s.cores->num_cores(), 64u);
}

TEST(Bridge, DeallocateAllReleasesEveryProgramBufferOfTheDeviceAndOnlyThose) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_mesh(1, {0});
  bridge.allocate_program_buffer(cb(0, 131072));
  bridge.allocate_program_buffer(cb(0, 524288));
  bridge.allocate_program_buffer(cb(2, 4096));
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 3u);
  EXPECT_EQ(allocs[0].allocation.kind, AllocKind::circular_buffer);
  EXPECT_EQ(allocs[0].allocation.num_banks, 4u);
  EXPECT_EQ(allocs[0].allocation.size_per_bank, 131072u);
  EXPECT_NE(allocs[0].allocation.id & Bridge::kProgramIdBit, 0u);
  EXPECT_NE(allocs[0].allocation.id, allocs[1].allocation.id);
  // By the mesh's id (as TT-Metal's track_program says it in NO_DISPATCH): chip 0's CBs go, chip 2's stay.
  bridge.deallocate_program_buffers(1);
  const auto frees = sink.of("free");
  ASSERT_EQ(frees.size(), 2u);
  EXPECT_EQ(frees[0].allocation.id, allocs[0].allocation.id);
  EXPECT_EQ(frees[1].allocation.id, allocs[1].allocation.id);
  bridge.deallocate_program_buffers(1);
  EXPECT_EQ(sink.of("free").size(), 2u);
  EXPECT_EQ(bridge.stats().program_buffers_released, 2u);
}

TEST(Bridge, TensorBackedProgramBuffersAreMarkedAndCounted) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.allocate_program_buffer(cb(3, 32768, "{[0-0 - 10-9]}", true));
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 1u);
  EXPECT_TRUE(allocs[0].allocation.tensor_backed);
  EXPECT_EQ(allocs[0].allocation.num_banks, 110u);
  EXPECT_EQ(bridge.stats().tensor_backed, 1u);
  // Dataflow buffers and scratchpads are program-scope L1 too.
  ProgramBufferInfo dfb = cb(3, 8192);
  dfb.kind = ProgramBufferKind::dataflow_buffer;
  bridge.allocate_program_buffer(dfb);
  EXPECT_EQ(sink.of("alloc").back().allocation.program, ProgramBufferKind::dataflow_buffer);
  ProgramBufferInfo scratch = cb(3, 1024);
  scratch.kind = ProgramBufferKind::scratchpad;
  bridge.allocate_program_buffer(scratch);
  EXPECT_EQ(sink.of("alloc").back().allocation.program, ProgramBufferKind::scratchpad);
  EXPECT_EQ(sink.of("alloc").back().allocation.kind, AllocKind::circular_buffer);
  bridge.deallocate_program_buffers(3);
  EXPECT_EQ(sink.of("free").size(), 3u);
}

TEST(Bridge, AReleaseOfABufferAllocatedBeforeTrackingIsCountedNotPassedOn) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.deallocate(l1_interleaved(99, 0));
  bridge.deallocate(l1_interleaved(98, 0));
  EXPECT_TRUE(sink.of("free").empty());
  const BridgeStats s = bridge.stats();
  EXPECT_EQ(s.untracked_releases, 2u);
  EXPECT_EQ(s.untracked_release_bytes, 2u * 2097152);
  EXPECT_EQ(s.buffers_released, 0u);
}

TEST(Bridge, BuffersThatDoNotOwnTheirDataAreNotMemory) {
  RecordingSink sink;
  Bridge bridge(sink);
  BufferInfo view = l1_interleaved(5, 0);
  view.owns_data = false;
  bridge.allocate(view);
  bridge.deallocate(view);
  EXPECT_TRUE(sink.events.empty());
  EXPECT_EQ(bridge.stats().views_skipped, 1u);
  EXPECT_EQ(bridge.stats().untracked_releases, 0u);
}

TEST(Bridge, EveryAllocationCarriesItsThreadsFunctionStack) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.function_start("ttnn.matmul");
  bridge.function_start("MatmulDeviceOperation");
  bridge.allocate_program_buffer(cb(0, 4096));
  std::thread other([&] {
    bridge.function_start("ttnn.add");
    bridge.allocate(l1_interleaved(2, 0));
    bridge.function_end();
  });
  other.join();
  bridge.function_end();
  bridge.allocate(l1_interleaved(3, 0));
  bridge.function_end();
  bridge.allocate(l1_interleaved(4, 0));
  bridge.function_end();  // one too many
  const auto allocs = sink.of("alloc");
  ASSERT_EQ(allocs.size(), 4u);
  EXPECT_EQ(allocs[0].site, "MatmulDeviceOperation");
  EXPECT_EQ(allocs[0].op, "ttnn.matmul/MatmulDeviceOperation");
  EXPECT_EQ(allocs[1].site, "ttnn.add");  // its own thread's stack, not the matmul's
  EXPECT_EQ(allocs[1].op, "ttnn.add");
  EXPECT_EQ(allocs[2].op, "ttnn.matmul");
  EXPECT_EQ(allocs[3].op, "");
  EXPECT_EQ(allocs[3].site, "");
  EXPECT_EQ(bridge.stats().unmatched_function_ends, 1u);
  const auto starts = sink.of("start");
  ASSERT_EQ(starts.size(), 3u);
  EXPECT_EQ(starts[1].op, "ttnn.matmul/MatmulDeviceOperation");
}

TEST(Bridge, AnIdAllocatedAgainReleasesTheOlderFirst) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.allocate(l1_interleaved(4, 0, 1000));
  bridge.allocate(l1_interleaved(4, 0, 2000));
  ASSERT_EQ(sink.events.size(), 3u);
  EXPECT_EQ(sink.events[1].what, "free");
  EXPECT_EQ(sink.events[1].allocation.address, 1000u);
  EXPECT_EQ(sink.events[2].allocation.address, 2000u);
  EXPECT_EQ(bridge.stats().duplicate_allocations, 1u);
}

TEST(Bridge, ClosingAChipReleasesItsProgramBuffersThenForgetsItsBuffers) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_mesh(1, {0, 1});
  bridge.allocate(l1_interleaved(1, 1));  // on both chips
  bridge.allocate_program_buffer(cb(0, 4096));
  bridge.close_device(0);
  std::vector<std::string> order;
  for (const auto& e : sink.events) order.push_back(e.what);
  EXPECT_EQ(order, (std::vector<std::string>{"alloc", "alloc", "alloc", "close-begin", "free", "close-end"}));
  EXPECT_EQ(sink.events[4].reason, ReleaseReason::close_internal);
  // Chip 1 still holds its part of the mesh buffer; chip 0's is gone with the chip.
  std::vector<std::uint16_t> live;
  bridge.snapshot([] {}, [](const ChipInfo&) {}, [&](const Allocation& a) { live.push_back(a.chip); });
  EXPECT_EQ(live, (std::vector<std::uint16_t>{1}));
}

TEST(Bridge, TheSnapshotListsEveryLiveAllocationAfterItsBegin) {
  RecordingSink sink;
  Bridge bridge(sink);
  bridge.add_chip(chip_with_banks(0, 110));
  bridge.function_start("op");
  bridge.allocate(l1_interleaved(1, 0));
  bridge.allocate(l1_interleaved(2, 0));
  bridge.allocate_program_buffer(cb(0, 4096));
  bridge.function_end();
  bridge.deallocate(l1_interleaved(1, 0));
  std::vector<std::string> seen;
  bridge.snapshot(
      [&] { seen.push_back("begin"); },
      [&](const ChipInfo& c) { seen.push_back("chip " + std::to_string(c.id)); },
      [&](const Allocation& a) { seen.push_back(std::string(a.op) + " " + std::to_string(a.size)); });
  EXPECT_EQ(seen, (std::vector<std::string>{"begin", "chip 0", "op 2097152", "op 4096"}));
}

}  // namespace
}  // namespace ttmem::bridge
