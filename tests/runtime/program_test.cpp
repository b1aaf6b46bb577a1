// Programs: circular-buffer placement and the clash check, release, program cache.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <set>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

std::shared_ptr<MeshDevice> open(const std::string& preset = "n150") {
  MeshDeviceConfig config;
  config.preset = preset;
  return MeshDevice::open(config);
}

ProgramConfig program(const std::string& name, std::vector<std::uint64_t> sizes, CoreRangeSet cores = {}) {
  ProgramConfig p;
  p.name = name;
  for (auto s : sizes) p.circular_buffers.push_back({s, cores});
  return p;
}

std::vector<DeviceAddr> addresses_on_device0(const Program& p) {
  std::vector<DeviceAddr> out;
  for (const auto& cb : p.circular_buffers()) {
    if (cb.device.value == 0) out.push_back(cb.address);
  }
  return out;
}

TEST(Program, CircularBuffersArePlacedBottomUpFromTheL1UnreservedBase) {
  auto mesh = open();
  auto add = mesh->create_program(program("add", {4096, 4096, 4096}));
  EXPECT_EQ(add->state(), ProgramState::created);
  EXPECT_TRUE(add->circular_buffers().empty());
  mesh->run(add);
  EXPECT_EQ(add->state(), ProgramState::compiled);
  // The seed's three "leaked" ids were exactly these addresses.
  EXPECT_EQ(addresses_on_device0(*add), (std::vector<DeviceAddr>{101'152, 105'248, 109'344}));
}

TEST(Program, EveryProgramPlacesItsCircularBuffersFromTheBaseSoAddressesRepeat) {
  auto mesh = open();
  auto a = mesh->create_program(program("a", {1000}));
  auto b = mesh->create_program(program("b", {1000}));
  mesh->run(a);
  mesh->run(b);
  EXPECT_EQ(addresses_on_device0(*a), addresses_on_device0(*b));
  EXPECT_NE(a->circular_buffers()[0].id, b->circular_buffers()[0].id);  // ids, never addresses
}

CoreRangeSet rows(std::uint32_t first, std::uint32_t last) {
  return CoreRangeSet{{{{0, first}, {7, last}}}};
}

std::vector<DeviceAddr> place(std::vector<CircularBufferConfig> cbs) {
  auto mesh = open();
  ProgramConfig p;
  p.name = "ranges";
  p.circular_buffers = std::move(cbs);
  auto prog = mesh->create_program(p);
  mesh->run(prog);
  return addresses_on_device0(*prog);
}

TEST(Program, CircularBufferAddressesAreAlignedToTheDramAlignment) {
  // ProgramImpl::allocate_circular_buffers aligns each address to the DRAM alignment: 32 B on Wormhole.
  EXPECT_EQ(place({{100, {}}, {100, {}}}), (std::vector<DeviceAddr>{101'152, 101'280}));
}

TEST(Program, EachDistinctCoreRangeHasItsOwnCircularBufferAllocator) {
  // Row 0, then row 1, then rows 0-1: the rows-0-1 allocator was marked by the row-0 CB (it was empty),
  // so the third CB goes above it, aligned.
  EXPECT_EQ(place({{100, rows(0, 0)}, {100, rows(1, 1)}, {100, rows(0, 1)}}),
            (std::vector<DeviceAddr>{101'152, 101'152, 101'280}));
  // TT-Metal's rule, followed as it is: an allocator of another range already marked past the address is
  // not marked again. Row 1's 1000-B CB does not reach the rows-0-1 allocator (the row-0 CB marked it
  // first), so a CB on rows 0-1 lands at 101280, inside row 1's CB -- where TT-Metal puts it; a per-core
  // maximum would say 102176.
  EXPECT_EQ(place({{100, rows(0, 0)}, {1000, rows(1, 1)}, {100, rows(0, 1)}}),
            (std::vector<DeviceAddr>{101'152, 101'152, 101'280}));
  // A CB on a range equal to an allocator's goes at that allocator's end.
  EXPECT_EQ(place({{1000, rows(1, 1)}, {100, rows(1, 1)}}), (std::vector<DeviceAddr>{101'152, 102'176}));
}

CoreRangeSet core(std::uint32_t x, std::uint32_t y) {
  return CoreRangeSet{{{{x, y}, {x, y}}}};
}

// TT-Metal's test_CircularBuffer_allocation.cpp, TensixTestCircularBuffersSequentiallyPlaced: 2048-B CBs
// on one core follow each other from the base.
TEST(Program, TtMetalCircularBuffersSequentiallyPlaced) {
  std::vector<CircularBufferConfig> cbs(32, {2048, core(0, 0)});
  std::vector<DeviceAddr> expected;
  for (DeviceAddr i = 0; i < 32; ++i) expected.push_back(101'152 + i * 2048);
  EXPECT_EQ(place(cbs), expected);
}

// TensixTestCircularBufferSequentialAcrossAllCores: 3 CBs on (0,0), none on (0,1), 5 on (0,2), then one on
// [(0,0) - (0,2)] lands above the most CBs any of its cores has: base + 5 x 2048.
TEST(Program, TtMetalCircularBufferSequentialAcrossAllCores) {
  std::vector<CircularBufferConfig> cbs(3, {2048, core(0, 0)});
  cbs.insert(cbs.end(), 5, {2048, core(0, 2)});
  cbs.push_back({2048, CoreRangeSet{{{{0, 0}, {0, 2}}}}});
  const auto got = place(cbs);
  ASSERT_EQ(got.size(), 9u);
  for (DeviceAddr i = 0; i < 3; ++i) EXPECT_EQ(got[i], 101'152 + i * 2048);
  for (DeviceAddr i = 0; i < 5; ++i) EXPECT_EQ(got[3 + i], 101'152 + i * 2048);
  EXPECT_EQ(got[8], 101'152u + 5 * 2048);
}

/// TT-Metal's update tests start so: two 2048-B CBs on core (0,0), placed one after the other.
std::shared_ptr<Program> two_cbs_on_core_0(MeshDevice& mesh, const std::string& name) {
  ProgramConfig p;
  p.name = name;
  p.circular_buffers = {{2048, core(0, 0)}, {2048, core(0, 0)}};
  auto prog = mesh.create_program(p);
  mesh.run(prog);
  EXPECT_EQ(addresses_on_device0(*prog), (std::vector<DeviceAddr>{101'152, 101'152 + 2048}));
  return prog;
}

struct CbEvents {
  int allocs = 0;
  int frees = 0;
};
CbEvents cb_events(test::ScopedRecorder& rec) {
  CbEvents n;
  for (const auto& r : rec->events())
    if (r.event.kind == AllocKind::circular_buffer) (r.allocate ? n.allocs : n.frees)++;
  return n;
}

// TensixTestValidUpdateCircularBufferSize: two 2048-B CBs on (0,0); the first grows to 4096 and the second
// moves to base + 4096 at the next run. The old placement is released, each CB reported.
TEST(Program, TtMetalValidUpdateCircularBufferSize) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto prog = two_cbs_on_core_0(*mesh, "update");
  prog->update_circular_buffer_total_size(0, 4096);
  EXPECT_TRUE(prog->circular_buffers().empty());
  mesh->run(prog);
  EXPECT_EQ(addresses_on_device0(*prog), (std::vector<DeviceAddr>{101'152, 101'152 + 4096}));
  EXPECT_EQ(prog->circular_buffers().front().size, 4096u);
  EXPECT_EQ(cb_events(rec).allocs, 4);
  EXPECT_EQ(cb_events(rec).frees, 2);
  EXPECT_THROW(prog->update_circular_buffer_total_size(2, 4096), Error);
  EXPECT_THROW(prog->update_circular_buffer_total_size(0, 0), Error);
}

BufferConfig l1_buffer(std::uint64_t size) {
  BufferConfig c;
  c.type = BufferType::L1;
  c.size = size;
  c.page_size = size;
  return c;
}

// TensixTestValidCircularBufferAddress: a CB given an L1 buffer sits at the buffer's address on every core
// of its range, and holds no bytes of its own (not reported: the buffer's are).
TEST(Program, TtMetalValidCircularBufferAddress) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto buffer = mesh->create_buffer(l1_buffer(2048));
  ProgramConfig p;
  p.name = "global";
  p.circular_buffers = {{2048, CoreRangeSet{{{{0, 0}, {0, 2}}}}, buffer}, {2048, core(0, 0)}};
  auto prog = mesh->create_program(p);
  mesh->run(prog);
  const auto got = addresses_on_device0(*prog);
  EXPECT_EQ(got, (std::vector<DeviceAddr>{buffer->address(), 101'152}));  // the local one starts at the base
  EXPECT_EQ(cb_events(rec).allocs, 1);                                    // only the local CB
  prog->release();
  // A DRAM buffer cannot hold a CB.
  BufferConfig dram;
  dram.size = 2048;
  dram.page_size = 2048;
  auto in_dram = mesh->create_buffer(dram);
  p.circular_buffers = {{2048, {}, in_dram}};
  try {
    mesh->create_program(p);
    FAIL();
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "Only L1 buffers can have an associated circular buffer!");
  }
}

// TensixTestUpdateCircularBufferAddress: two local CBs on (0,0); the first moves into an L1 buffer, the
// second stays where it was.
TEST(Program, TtMetalUpdateCircularBufferAddress) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto buffer = mesh->create_buffer(l1_buffer(2048));
  auto prog = two_cbs_on_core_0(*mesh, "move");
  prog->update_dynamic_circular_buffer_address(0, buffer);
  EXPECT_EQ(addresses_on_device0(*prog), (std::vector<DeviceAddr>{buffer->address(), 101'152 + 2048}));
  mesh->run(prog);  // placed already: nothing moves
  EXPECT_EQ(addresses_on_device0(*prog), (std::vector<DeviceAddr>{buffer->address(), 101'152 + 2048}));
  EXPECT_EQ(cb_events(rec).allocs, 2);
  EXPECT_EQ(cb_events(rec).frees, 1);  // the first CB's own region was given up
  prog->release();
  EXPECT_EQ(cb_events(rec).frees, 2);  // release reports only the CB that still has bytes of its own
}

TEST(Program, CoreRangesAreMergedAsTtMetalMergesThem) {
  // {[0-0 - 7-0], [0-1 - 7-1]} is one rectangle: its CB shares the rows-0-1 allocator.
  CoreRangeSet two_rows{{{{0, 0}, {7, 0}}, {{0, 1}, {7, 1}}}};
  EXPECT_EQ(place({{1000, two_rows}, {100, rows(0, 1)}}), (std::vector<DeviceAddr>{101'152, 102'176}));
  EXPECT_EQ(two_rows.merged(), rows(0, 1));
}

TEST(Program, CircularBuffersThatReachTheLowestL1BufferClash) {
  test::ScopedRecorder rec;
  auto mesh = open();
  BufferConfig l1;
  l1.type = BufferType::L1;
  l1.size = 64 * 1'300'000;
  l1.page_size = 1'300'000;
  auto big = mesh->create_buffer(l1);  // one 1,300,000-B page per core, top-down
  const auto events_before = rec->events().size();
  auto prog = mesh->create_program(program("matmul", {200'000}));
  try {
    mesh->run(prog);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cb_clash);
    EXPECT_EQ(std::string(e.what()),
              fmt::format(
                  "Statically allocated circular buffers in program {} clash with L1 buffers on core range "
                  "[(x=0,y=0) - (x=7,y=7)]. L1 buffer allocated at {} and static circular buffer region ends "
                  "at {}",
                  prog->id().value, big->address(), 101'152 + 200'000));
  }
  EXPECT_EQ(rec->events().size(), events_before);  // a failed run allocates nothing
  EXPECT_EQ(prog->state(), ProgramState::created);
  big->deallocate();
  EXPECT_NO_THROW(mesh->run(prog));
}

TEST(Program, CircularBuffersBeyondL1AreRefused) {
  auto mesh = open();
  auto prog = mesh->create_program(program("huge", {1'400'000}));
  try {
    mesh->run(prog);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::cb_clash);
    EXPECT_NE(std::string(e.what()).find("beyond max L1 size of 1499136 B"), std::string::npos) << e.what();
  }
}

TEST(Program, InvalidProgramsAreRefusedAtCreation) {
  auto mesh = open();
  EXPECT_THROW(mesh->create_program(program("", {1})), Error);
  EXPECT_THROW(mesh->create_program(program("zero", {0})), Error);
  EXPECT_THROW(mesh->create_program(program("cores", {16}, rows(8, 8))), Error);  // the grid has rows 0..7
}

TEST(Program, ReleaseReportsEachCircularBufferOnItsOwn) {
  test::ScopedRecorder rec;
  auto mesh = open("n300");
  auto prog = mesh->create_program(program("eltwise", {4096, 4096, 4096}));
  mesh->run(prog);
  prog->release();
  EXPECT_EQ(prog->state(), ProgramState::released);
  int cb_allocs = 0, cb_frees = 0;
  std::set<std::uint64_t> freed;
  for (const auto& r : rec->events()) {
    if (r.event.kind != AllocKind::circular_buffer) continue;
    (r.allocate ? cb_allocs : cb_frees)++;
    if (!r.allocate) {
      freed.insert(r.event.id.value);
      EXPECT_EQ(r.event.reason, ReleaseReason::explicit_free);
      EXPECT_EQ(r.event.type, BufferType::L1);
    }
  }
  EXPECT_EQ(cb_allocs, 6);  // 3 CBs x 2 devices
  EXPECT_EQ(cb_frees, 6);
  EXPECT_EQ(freed.size(), 6u);
  EXPECT_THROW(mesh->run(prog), Error);
}

TEST(Program, TheProgramCacheHoldsOneKernelBinaryPerProgramAndDevice) {
  test::ScopedRecorder rec;
  auto mesh = open("n300");
  auto prog = mesh->create_program(program("matmul", {4096}));
  mesh->run(prog);
  mesh->run(prog);
  EXPECT_EQ(mesh->device(0).program_cache().num_kernel_binaries(), 1u);
  EXPECT_EQ(mesh->device(1).program_cache().num_kernel_binaries(), 1u);
  int binaries = 0;
  for (const auto& r : rec->events()) {
    if (r.allocate && r.event.kind == AllocKind::kernel_binary) {
      ++binaries;
      EXPECT_EQ(r.site, "program_cache/kernel_bin matmul");
      EXPECT_EQ(r.event.type, BufferType::DRAM);
    }
  }
  EXPECT_EQ(binaries, 2);
}

TEST(Program, ClearingTheProgramCacheFreesBinariesAndCachedProgramsCircularBuffers) {
  test::ScopedRecorder rec;
  auto mesh = open("n300");
  auto prog = mesh->create_program(program("add", {4096, 4096}));
  mesh->run(prog);
  mesh->clear_program_cache();
  EXPECT_TRUE(rec->outstanding().size() == 3u * 1);  // only the three control buffers remain
  EXPECT_EQ(prog->state(), ProgramState::created);
  EXPECT_EQ(mesh->device(0).program_cache().num_kernel_binaries(), 0u);
  // Running again places the CBs and caches the binary again.
  mesh->run(prog);
  EXPECT_EQ(prog->circular_buffers().size(), 4u);
}

TEST(Program, ReleasedProgramLeavesTheCacheButItsBinaryStays) {
  auto mesh = open();
  auto prog = mesh->create_program(program("add", {4096}));
  mesh->run(prog);
  EXPECT_EQ(mesh->device(0).program_cache().num_programs(), 1u);
  prog->release();
  EXPECT_EQ(mesh->device(0).program_cache().num_programs(), 0u);
  EXPECT_EQ(mesh->device(0).program_cache().num_kernel_binaries(), 1u);
}

}  // namespace
}  // namespace ttmem::emu
