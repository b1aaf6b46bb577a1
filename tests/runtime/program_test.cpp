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

ProgramConfig program(const std::string& name, std::vector<std::uint64_t> sizes, CoreRange cores = {}) {
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

TEST(Program, CircularBuffersAreAlignedAndStackPerCoreRange) {
  auto mesh = open();
  ProgramConfig p;
  p.name = "ranges";
  p.circular_buffers = {{1000, {0, 8}}, {2000, {8, 8}}, {3000, {4, 8}}};
  auto prog = mesh->create_program(p);
  mesh->run(prog);
  const auto got = addresses_on_device0(*prog);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], 101'152u);
  EXPECT_EQ(got[1], 101'152u);         // disjoint cores: same base
  EXPECT_EQ(got[2], 101'152u + 2000);  // cores 4..11 overlap both: above the higher one (aligned)
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
  EXPECT_THROW(mesh->create_program(program("cores", {16}, {60, 8})), Error);
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
