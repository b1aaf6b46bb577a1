// Mesh devices: presets, device ids, the lockstep mesh allocator and the once-per-device rule.
#include <gtest/gtest.h>

#include <set>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

std::shared_ptr<MeshDevice> open(const std::string& preset) {
  MeshDeviceConfig config;
  config.preset = preset;
  return MeshDevice::open(config);
}

BufferConfig dram(std::uint64_t size) {
  BufferConfig c;
  c.type = BufferType::DRAM;
  c.size = size;
  c.page_size = 2048;
  return c;
}

TEST(Mesh, PresetsHaveTheirShapeAndArchitecture) {
  const std::vector<std::tuple<std::string, std::uint32_t, std::uint32_t, Arch>> expected = {
      {"n150", 1, 1, Arch::wormhole_b0},  {"n300", 1, 2, Arch::wormhole_b0},
      {"t3000", 2, 4, Arch::wormhole_b0}, {"galaxy", 8, 4, Arch::wormhole_b0},
      {"p150", 1, 1, Arch::blackhole},    {"p300", 1, 2, Arch::blackhole}};
  for (const auto& [name, rows, cols, arch] : expected) {
    auto mesh = open(name);
    EXPECT_EQ(mesh->rows(), rows) << name;
    EXPECT_EQ(mesh->cols(), cols) << name;
    EXPECT_EQ(mesh->num_devices(), rows * cols) << name;
    EXPECT_EQ(mesh->arch(), arch) << name;
  }
}

TEST(Mesh, UnknownPresetNamesTheKnownOnes) {
  try {
    open("n999");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::unknown_preset);
    EXPECT_NE(std::string(e.what()).find("n150, n300, t3000, galaxy, p100, p150, p300"), std::string::npos);
  }
}

TEST(Mesh, DeviceIdsAreZeroToNMinusOneAndNeverTheMeshId) {
  test::ScopedRecorder rec;
  auto mesh = open("t3000");
  ASSERT_EQ(rec->opened.size(), 8u);
  for (std::uint32_t i = 0; i < 8; ++i) {
    EXPECT_EQ(mesh->device(i).id().value, i);
    EXPECT_EQ(rec->opened[i].device.value, i);
    EXPECT_EQ(rec->opened[i].mesh, mesh->id());
  }
  auto b = mesh->create_buffer(dram(4096));
  int mesh_scope = 0;
  for (const auto& r : rec->events()) {
    if (r.event.scope == EventScope::mesh) {
      ++mesh_scope;
      EXPECT_EQ(r.event.mesh, mesh->id());
    } else {
      EXPECT_LT(r.event.device.value, 8u);
    }
  }
  EXPECT_EQ(mesh_scope, 1);
}

TEST(Mesh, DevicesOfAnOpenMeshCannotBeOpenedTwice) {
  auto mesh = open("n300");
  try {
    open("n150");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::device_busy);
  }
  mesh->close();
  EXPECT_NO_THROW(open("t3000"));
}

TEST(Mesh, AReplicatedBufferHasOneAddressOnEveryDevice) {
  auto mesh = open("t3000");
  auto first = mesh->create_buffer(dram(1 << 20));
  auto second = mesh->create_buffer(dram(1 << 20));
  ASSERT_EQ(second->num_devices(), 8u);
  for (std::size_t d = 0; d < 8; ++d) {
    EXPECT_EQ(second->device_buffer(d)->address(), second->address());
    EXPECT_FALSE(second->device_buffer(d)->owns_data());
    EXPECT_EQ(second->device_buffer(d)->device_id().value, d);
  }
  EXPECT_TRUE(second->backing().owns_data());
  EXPECT_EQ(second->address(), first->address() + first->device_buffer(0)->size_per_bank());
}

// The rule: physical memory is counted per device, by the device-scope events of each device's buffer;
// the mesh allocator's backing buffer is a mesh-scope event and never physical memory of its own.
TEST(Mesh, PhysicalMemoryIsReportedOncePerDevice) {
  test::ScopedRecorder rec;
  auto mesh = open("t3000");
  auto b = mesh->create_buffer(dram(12 * 2048 * 4));
  for (std::uint32_t d = 0; d < 8; ++d) {
    EXPECT_EQ(rec->live_bytes(d, BufferType::DRAM), b->size()) << d;
    // and each device's allocator holds the reservation exactly once
    EXPECT_EQ(mesh->device(d).allocator().statistics(BufferType::DRAM).total_allocated_bytes,
              b->device_buffer(d)->size_per_bank());
  }
  const auto counts = rec->counts();
  EXPECT_EQ((counts.at({EventScope::mesh, 0, BufferType::DRAM}).first), 1);
  for (std::uint32_t d = 0; d < 8; ++d)
    EXPECT_EQ((counts.at({EventScope::device, d, BufferType::DRAM}).first), 1);
}

TEST(Mesh, LockstepPlacementSkipsRangesTakenOnAnyDevice) {
  auto mesh = open("n300");
  // A device-local buffer on device 1 only, at the bottom of DRAM.
  auto local = mesh->device(1).create_buffer(dram(12 * 2048));
  EXPECT_EQ(local->address(), 32u);
  auto replicated = mesh->create_buffer(dram(12 * 2048));
  EXPECT_EQ(replicated->address(), 32u + 2048);  // free on device 0 at 32, but not on device 1
  const Statistics lockstep = mesh->allocator().statistics(BufferType::DRAM);
  EXPECT_EQ(lockstep.total_allocated_bytes, 2u * 2048);
  EXPECT_EQ(mesh->device(0).allocator().statistics(BufferType::DRAM).total_allocated_bytes, 2048u);
  EXPECT_EQ(mesh->device(1).allocator().statistics(BufferType::DRAM).total_allocated_bytes, 2u * 2048);
  local->deallocate();
  EXPECT_EQ(mesh->create_buffer(dram(12 * 2048))->address(), 32u);
}

TEST(Mesh, OutOfMemoryOnAMeshIsTtMetalsMessageWithTheLockstepFiguresApart) {
  auto mesh = open("n300");
  BufferConfig big = dram(12ull << 30);
  big.page_size = 1 << 20;
  try {
    mesh->create_buffer(big);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::out_of_memory);
    // TT-Metal's mesh allocator throws the plain bank-manager message; the lockstep figures are the
    // emulator's and stay out of it.
    EXPECT_EQ(std::string(e.what()).find("lockstep"), std::string::npos) << e.what();
    EXPECT_EQ(
        std::string(e.what()).rfind("Out of Memory: Not enough space to allocate 12884901888 B DRAM", 0), 0u);
    EXPECT_NE(e.detail().find("lockstep over 2 devices"), std::string::npos) << e.detail();
  }
}

TEST(Mesh, ControlBuffersArePreallocatedOnTheFirstDeviceInTheReservedRegion) {
  test::ScopedRecorder rec;
  auto mesh = open("t3000");
  const auto control = mesh->control_buffers();
  ASSERT_EQ(control.size(), 3u);
  const ArchSpec& spec = arch_spec(Arch::wormhole_b0);
  for (std::size_t k = 0; k < 3; ++k) {
    EXPECT_FALSE(control[k]->owns_data());
    EXPECT_EQ(control[k]->kind(), AllocKind::preallocated);
    EXPECT_EQ(control[k]->size(), 4096u);
    EXPECT_EQ(control[k]->device_id().value, 0u);
    EXPECT_LT(control[k]->address(), spec.l1_unreserved_base);
    EXPECT_EQ(control[k]->site(), "dispatch/control");
  }
  // They never touch the allocator...
  EXPECT_EQ(mesh->device(0).allocator().statistics(BufferType::L1).total_allocated_bytes, 0u);
  // ...but they are registered with it, so the close sweep can release them.
  EXPECT_EQ(mesh->device(0).allocator().num_preallocated_buffers(), 3u);
  EXPECT_EQ(rec->live_bytes(0, BufferType::L1), 3u * 4096);
}

}  // namespace
}  // namespace ttmem::emu

namespace ttmem::emu {
namespace {

TEST(Mesh, DeviceIdsChooseTheChipsAndEventsNameThem) {
  test::ScopedRecorder rec;
  MeshDeviceConfig config;
  config.preset = "n300";
  config.device_ids = {5, 2};
  auto mesh = MeshDevice::open(config);
  EXPECT_EQ(mesh->device(0).id().value, 5u);
  EXPECT_EQ(mesh->device(1).id().value, 2u);
  BufferConfig two_k;
  two_k.size = 2048;
  two_k.page_size = 2048;
  auto b = mesh->create_buffer(two_k);
  std::set<std::uint32_t> devices;
  for (const auto& r : rec->events())
    if (r.allocate && r.event.scope == EventScope::device && r.event.id == b->device_buffer(0)->unique_id())
      devices.insert(r.event.device.value);
  EXPECT_EQ(devices, (std::set<std::uint32_t>{5}));
  // Another mesh of this process on other chips opens; on one of these it is refused.
  MeshDeviceConfig other;
  other.preset = "n150";
  other.device_ids = {0};
  EXPECT_NO_THROW(MeshDevice::open(other));
  other.device_ids = {2};
  try {
    MeshDevice::open(other);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::device_busy);
  }
}

TEST(Mesh, AP100HasElevenByTenWorkerCores) {
  // P100: 120 Tensix cores, one column for dispatch -- as the p150b of the real capture also shows.
  auto mesh = open("p100");
  EXPECT_EQ(mesh->device(0).spec().num_worker_cores(), 110u);
  EXPECT_EQ(mesh->device(0).allocator().num_banks(BufferType::L1), 110u);
}

TEST(Mesh, DeviceIdsMustNameEachDeviceOnce) {
  MeshDeviceConfig config;
  config.preset = "n300";
  config.device_ids = {1, 1};
  EXPECT_THROW(MeshDevice::open(config), Error);
  config.device_ids = {1};
  EXPECT_THROW(MeshDevice::open(config), Error);
  config.device_ids = {0, 5000};
  EXPECT_THROW(MeshDevice::open(config), Error);
  config.device_ids = {0, 1};
  EXPECT_NO_THROW(MeshDevice::open(config));  // nothing was left held by the refusals
}

}  // namespace
}  // namespace ttmem::emu
