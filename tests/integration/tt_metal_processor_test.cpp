// The live TT-Metal processor (integrations/tt-metal) compiled against a mock of TT-Metal's API and driven
// as TT-Metal's GraphTracker would drive it, into a real ttmemd: mesh buffers on every chip, buffers from
// another thread through the process-wide observer, CBs released by "deallocate all", the op stack, the
// ttnn capture switch left off, and leaks at close. What TT-Metal itself does cannot run here.
#include <gtest/gtest.h>

#include <thread>

#include "raw_client.hpp"
#include "subprocess.hpp"
#include "tt-metalium/graph_tracking.hpp"
#include "tt-metalium/mesh_device.hpp"
#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem_tt_metal.h"

namespace ttmem::test {
namespace {

namespace tm = ::tt::tt_metal;

struct Machine {
  tm::IDevice chip0{0, tt::ARCH::BLACKHOLE};
  tm::IDevice chip1{1, tt::ARCH::BLACKHOLE};
  tm::distributed::MeshDevice mesh{2, tt::ARCH::BLACKHOLE, {&chip0, &chip1}};
  Machine() {
    for (tm::IDevice* d : {&chip0, &chip1, static_cast<tm::IDevice*>(&mesh)}) {
      d->allocator()->banks = {8, 110, 0, 110, 8};
      d->allocator()->bank_size = {4ull << 30, 1'400'000, 0, 0, 0};
    }
  }
};

tm::Buffer buffer(tm::IDevice* device, std::size_t id, tm::BufferType type, std::uint64_t size) {
  tm::Buffer b;
  b.device_ = device;
  b.unique_id_ = id;
  b.address_ = 1552384;
  b.size_ = size;
  b.page_size_ = 2048;
  b.per_bank_ = size / 100;
  b.type_ = type;
  return b;
}

std::vector<std::string> rows(query::QueryClient& tool, pid_t pid) {
  std::vector<std::string> out;
  for (const auto& b : tool.buffers().buffers)
    if (b.pid == pid)
      out.push_back(std::string(to_string(b.kind)) + " " + std::to_string(b.size) + " dev" +
                    std::to_string(b.device) + " " + b.scope);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(TtMetalProcessor, ReportsWhatGraphTrackerHandsIt) {
  ServerProcess server;
  ASSERT_TRUE(client::Client::instance().set_socket_path(server.socket(), std::chrono::seconds(5)));
  ASSERT_EQ(ttmem_tt_metal_enable(), 0);
  ASSERT_EQ(ttmem_tt_metal_enable(), 0);  // idempotent
  auto& tracker = tm::GraphTracker::instance();
  EXPECT_FALSE(tracker.is_enabled());  // ttnn must not switch into capture behaviour
  EXPECT_EQ(tracker.background.size(), 1u);

  Machine m;
  tracker.track_function_start("ttnn.matmul");
  tracker.track_function_start("MatmulDeviceOperation");
  tm::Buffer output = buffer(&m.mesh, 7, tm::BufferType::L1, 2097152);
  tracker.track_allocate(&output);
  tracker.track_deallocate_cb(&m.chip0);
  tracker.track_allocate_cb(tm::CoreRangeSet(std::vector<tm::CoreRange>{{{0, 0}, {1, 1}}}), 111616, 131072,
                            false, &m.chip0);
  tracker.track_allocate_cb(tm::CoreRangeSet(std::vector<tm::CoreRange>{{{0, 0}, {1, 1}}}), 242688, 32768,
                            true, &m.chip0);
  tracker.track_function_end();
  tracker.track_function_end();
  // A buffer allocated on a thread that never pushed a processor: the background observer sees it.
  tm::Buffer weights = buffer(&m.chip1, 9, tm::BufferType::DRAM, 1 << 20);
  std::thread([&] { tracker.track_allocate(&weights); }).join();
  tm::Buffer shard = buffer(&m.chip0, 12, tm::BufferType::L1, 65536);
  shard.layout_ = tm::TensorMemoryLayout::HEIGHT_SHARDED;
  shard.cores_ = 16;
  shard.shard_ =
      tm::ShardSpecBuffer{tm::ShardSpec{tm::CoreRangeSet(std::vector<tm::CoreRange>{{{0, 0}, {3, 3}}})}};
  tracker.track_allocate(&shard);
  tm::Buffer before = buffer(&m.chip0, 3, tm::BufferType::DRAM, 4096);
  tracker.track_deallocate(&before);  // allocated before tracking began
  ASSERT_TRUE(client::Client::instance().flush());

  query::QueryClient tool(server.socket());
  const auto pid = static_cast<pid_t>(client::Client::instance().server_seen_pid());
  EXPECT_EQ(rows(tool, pid),
            (std::vector<std::string>{
                "cb 131072 dev0 ttnn.matmul/MatmulDeviceOperation", "owning 1048576 dev1 ",
                "owning 2097152 dev0 ttnn.matmul/MatmulDeviceOperation",
                "owning 2097152 dev1 ttnn.matmul/MatmulDeviceOperation", "owning 65536 dev0 "}));
  EXPECT_EQ(ttmem_tt_metal_untracked_releases(), 1u);
  const auto devices = tool.devices().devices;
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[1].arch, Arch::blackhole);
  EXPECT_EQ(devices[1].total[static_cast<std::size_t>(Slot::L1)], 110ull * 1'400'000);

  // The next program on chip 0 releases the last one's CBs.
  tracker.track_deallocate_cb(&m.chip0);
  tracker.track_deallocate(&output);
  tracker.track_deallocate(&shard);
  ttmem_tt_metal_close_device(2);  // the mesh: both chips; chip 1's weights were never released
  const auto leaks = tool.leaks().leaks;
  ASSERT_EQ(leaks.size(), 1u);
  EXPECT_EQ(leaks[0].device, 1u);
  EXPECT_EQ(leaks[0].size, 1u << 20);
  EXPECT_TRUE(rows(tool, pid).empty());
}

}  // namespace
}  // namespace ttmem::test
