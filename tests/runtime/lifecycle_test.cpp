// The seed's scenario at runtime level, on every preset: every tracked allocation gets exactly one
// release, the close sweep reports the user's leaks, and handles that outlive close are safe.
#include <gtest/gtest.h>

#include "recording_processor.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"

namespace ttmem::emu {
namespace {

BufferConfig tensor(BufferType type, std::uint64_t size, const std::string& site) {
  BufferConfig c;
  c.type = type;
  c.size = size;
  c.page_size = 2048;
  c.site = site;
  return c;
}

ProgramConfig program(const std::string& name, std::vector<std::uint64_t> sizes) {
  ProgramConfig p;
  p.name = name;
  for (auto s : sizes) p.circular_buffers.push_back({s, {}});
  return p;
}

void expect_balanced(const test::RecordingProcessor& rec) {
  for (const auto& [key, c] : rec.counts()) {
    EXPECT_EQ(c.first, c.second) << "scope " << int(std::get<0>(key)) << " device " << std::get<1>(key)
                                 << " type " << to_string(std::get<2>(key));
  }
  EXPECT_TRUE(rec.outstanding().empty());
}

class SeedScenario : public ::testing::TestWithParam<std::string> {
 protected:
  std::shared_ptr<MeshDevice> open() {
    MeshDeviceConfig config;
    config.preset = GetParam();
    return MeshDevice::open(config);
  }
};

TEST_P(SeedScenario, EveryAllocationIsReleasedAndNothingLeaks) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto a = mesh->create_buffer(tensor(BufferType::DRAM, 4 << 20, "tensor_a"));
  auto b = mesh->create_buffer(tensor(BufferType::DRAM, 4 << 20, "tensor_b"));
  auto act = mesh->create_buffer(tensor(BufferType::L1, 64 << 10, "activation"));
  auto add = mesh->create_program(program("add", {4096, 4096, 4096}));
  auto matmul = mesh->create_program(program("matmul", {32768, 32768, 65536}));
  mesh->run(add);
  mesh->run(matmul);
  a->deallocate();
  b->deallocate();
  act->deallocate();
  mesh->clear_program_cache();
  mesh->close();

  expect_balanced(*rec);
  EXPECT_TRUE(rec->releases_with(ReleaseReason::close_leak).empty());
  // The control buffers (the seed's three L1 buffers) are released by the close sweep, as runtime-internal.
  const auto internal = rec->releases_with(ReleaseReason::close_internal);
  ASSERT_EQ(internal.size(), 3u);
  for (const auto& r : internal) {
    EXPECT_EQ(r.event.device.value, 0u);
    EXPECT_EQ(r.event.type, BufferType::L1);
    EXPECT_EQ(r.event.size, 4096u);
    EXPECT_EQ(r.site, "dispatch/control");
  }
  for (std::size_t d = 0; d < mesh->num_devices(); ++d) {
    EXPECT_FALSE(mesh->device(d).is_initialized());
    for (BufferType t : kManagedTypes) {
      EXPECT_EQ(rec->live_bytes(static_cast<std::uint32_t>(d), t, true), 0u);
    }
  }
  // Close begins for every device before the sweeps, and ends once per device.
  EXPECT_EQ(rec->closes.size(), 2 * mesh->num_devices());
}

TEST_P(SeedScenario, ABufferKeptPastCloseIsSweptAndReportedAsALeakWithItsSite) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto kept = mesh->create_buffer(tensor(BufferType::DRAM, 4 << 20, "test_mesh_allocation.py:42"));
  auto freed = mesh->create_buffer(tensor(BufferType::L1, 8192, "freed"));
  freed->deallocate();
  mesh->close();

  expect_balanced(*rec);
  const auto leaks = rec->releases_with(ReleaseReason::close_leak);
  // One per device, plus the mesh allocator's backing buffer.
  ASSERT_EQ(leaks.size(), mesh->num_devices() + 1);
  std::set<std::uint32_t> devices;
  for (const auto& r : leaks) {
    EXPECT_EQ(r.site, "test_mesh_allocation.py:42");
    EXPECT_EQ(r.event.size, 4u << 20);
    if (r.event.scope == EventScope::device) devices.insert(r.event.device.value);
  }
  EXPECT_EQ(devices.size(), mesh->num_devices());
  EXPECT_EQ(kept->status(), BufferStatus::deallocated);

  // Python frees tensors after close: nothing happens, no second release.
  const auto before = rec->events().size();
  kept->deallocate();
  kept.reset();
  EXPECT_EQ(rec->events().size(), before);
}

TEST_P(SeedScenario, AProgramNeverReleasedIsCleanedUpByTheProgramCacheAtClose) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto add = mesh->create_program(program("add", {4096, 4096}));
  mesh->run(add);
  mesh->close();
  expect_balanced(*rec);
  EXPECT_TRUE(rec->releases_with(ReleaseReason::close_leak).empty());
  int cb_internal = 0;
  for (const auto& r : rec->releases_with(ReleaseReason::close_internal)) {
    if (r.event.kind == AllocKind::circular_buffer) ++cb_internal;
  }
  EXPECT_EQ(cb_internal, static_cast<int>(2 * mesh->num_devices()));
  // Releasing it after close changes nothing.
  const auto before = rec->events().size();
  add->release();
  EXPECT_EQ(rec->events().size(), before);
}

TEST_P(SeedScenario, AViewIsNeverTrackedAndItsRootIsReleasedOnce) {
  test::ScopedRecorder rec;
  auto mesh = open();
  auto local = mesh->device(0).create_buffer(tensor(BufferType::DRAM, 8 * 2048, "root"));
  const auto before = rec->events().size();
  auto view = Buffer::view(local, 2048, 4096);
  EXPECT_TRUE(view->is_view());
  EXPECT_EQ(view->address(), local->address() + 2048);
  EXPECT_EQ(view->page_location(0).address, local->page_location(1).address);
  view->deallocate();  // a view owns nothing
  EXPECT_EQ(view->status(), BufferStatus::allocated);
  EXPECT_EQ(rec->events().size(), before);
  local->deallocate();
  EXPECT_EQ(view->status(), BufferStatus::deallocated);
  view.reset();
  mesh->close();
  expect_balanced(*rec);
  EXPECT_TRUE(rec->releases_with(ReleaseReason::close_leak).empty());
}

INSTANTIATE_TEST_SUITE_P(EveryPreset, SeedScenario,
                         ::testing::Values("n150", "n300", "t3000", "galaxy", "p100", "p150", "p300"),
                         [](const auto& p) { return p.param; });

TEST(Lifecycle, AUserPreallocatedBufferIsSweptAsALeak) {
  test::ScopedRecorder rec;
  auto mesh = MeshDevice::open({});
  auto pre = mesh->device(0).create_buffer_at(200'000, tensor(BufferType::L1, 4096, "user/fixed"));
  EXPECT_EQ(pre->kind(), AllocKind::preallocated);
  mesh->close();
  const auto leaks = rec->releases_with(ReleaseReason::close_leak);
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0].site, "user/fixed");
  expect_balanced(*rec);
}

TEST(Lifecycle, HandlesMayOutliveTheMeshDeviceObject) {
  test::ScopedRecorder rec;
  std::shared_ptr<MeshBuffer> buffer;
  std::shared_ptr<Program> prog;
  {
    auto mesh = MeshDevice::open({});
    buffer = mesh->create_buffer(tensor(BufferType::DRAM, 4096, "survivor"));
    prog = mesh->create_program(program("p", {1024}));
    mesh->run(prog);
  }  // the last reference to the mesh goes: it closes itself
  buffer->deallocate();
  prog->release();
  buffer.reset();
  prog.reset();
  expect_balanced(*rec);
  EXPECT_EQ(rec->releases_with(ReleaseReason::close_leak).size(), 2u);  // device + mesh scope
}

TEST(Lifecycle, AClosedMeshRefusesNewWork) {
  auto mesh = MeshDevice::open({});
  mesh->close();
  EXPECT_FALSE(mesh->is_open());
  try {
    mesh->create_buffer(tensor(BufferType::DRAM, 4096, "late"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::device_closed);
  }
  EXPECT_THROW(mesh->create_program(program("p", {16})), Error);
  EXPECT_THROW(mesh->device(0).create_buffer(tensor(BufferType::DRAM, 4096, "late")), Error);
  EXPECT_NO_THROW(mesh->close());  // idempotent
}

TEST(Lifecycle, ZeroSizeBuffersAllocateNothing) {
  test::ScopedRecorder rec;
  auto mesh = MeshDevice::open({});
  const auto before = rec->events().size();
  auto empty = mesh->create_buffer(tensor(BufferType::DRAM, 0, "empty"));
  EXPECT_EQ(empty->status(), BufferStatus::allocated);
  EXPECT_EQ(rec->events().size(), before);
  empty->deallocate();
  EXPECT_EQ(rec->events().size(), before);
}

class InterceptEverything : public Hook {
 public:
  bool hook_allocate(const AllocationEvent&) override { return true; }
};

TEST(Lifecycle, AHookTakesAllocationsAwayFromTheAllocator) {
  test::ScopedRecorder rec;
  auto mesh = MeshDevice::open({});
  GraphTracker::instance().add_hook(std::make_shared<InterceptEverything>());
  EXPECT_THROW(GraphTracker::instance().add_hook(std::make_shared<InterceptEverything>()), Error);
  auto b = mesh->device(0).create_buffer(tensor(BufferType::DRAM, 4096, "hooked"));
  GraphTracker::instance().remove_hook();
  EXPECT_EQ(b->address(), 0u);
  EXPECT_EQ(mesh->device(0).allocator().statistics(BufferType::DRAM).total_allocated_bytes, 0u);
  b->deallocate();
  mesh->close();
  expect_balanced(*rec);
}

}  // namespace
}  // namespace ttmem::emu
