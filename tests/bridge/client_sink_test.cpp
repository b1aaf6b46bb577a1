// The bridge into a real ttmemd through libttmem: what a live TT-Metal processor would report arrives with
// its sites, ops and chips; tensor-backed CBs are not counted twice; a ttmemd restart gets the exact
// picture back from the bridge's own records; closing a chip turns what it still held into leaks.
#include "ttmem/bridge/client_sink.hpp"

#include <gtest/gtest.h>

#include "raw_client.hpp"
#include "subprocess.hpp"
#include "ttmem/query.hpp"

namespace ttmem::bridge {
namespace {

using test::eventually;
using test::ServerProcess;

struct Live {
  ServerProcess server;
  client::Client client;
  ClientSink sink;
  Bridge bridge;

  static client::Options options(const std::string& socket) {
    client::Options o;
    o.socket_path = socket;
    o.warn_without_server = false;
    return o;
  }
  Live() : client(options(server.socket())), sink(client), bridge(sink) {
    sink.attach(bridge);
    EXPECT_TRUE(client.wait_for_first_attempt(std::chrono::seconds(5)));
  }
  query::QueryClient tool() const { return query::QueryClient(server.socket()); }
};

ChipInfo blackhole_chip(TtDeviceId id, TtDeviceId mesh) {
  ChipInfo c;
  c.id = id;
  c.mesh = mesh;
  c.arch = Arch::blackhole;
  c.has_geometry = true;
  const auto l1 = static_cast<std::size_t>(BufferType::L1);
  const auto dram = static_cast<std::size_t>(BufferType::DRAM);
  c.num_banks[l1] = 110;
  c.total_bytes[l1] = 110ull * 1'400'000;
  c.num_banks[dram] = 8;
  c.total_bytes[dram] = 8ull << 30;
  return c;
}

BufferInfo buffer(std::uint64_t id, TtDeviceId device, BufferType type, std::uint64_t size,
                  std::uint64_t address) {
  BufferInfo b;
  b.device = device;
  b.unique_id = id;
  b.type = type;
  b.size = size;
  b.address = address;
  b.page_size = 2048;
  b.max_size_per_bank = size / 8;
  return b;
}

ProgramBufferInfo circular(TtDeviceId device, std::uint64_t size, bool tensor_backed = false) {
  ProgramBufferInfo p;
  p.device = device;
  p.size = size;
  p.address = 111616;
  p.cores = *parse_core_range_set("{[0-0 - 1-1]}");
  p.tensor_backed = tensor_backed;
  return p;
}

/// The live rows of this process, "TYPE KIND SIZE SITE | OP", sorted.
std::vector<std::string> rows(query::QueryClient& tool, pid_t pid) {
  std::vector<std::string> out;
  for (const auto& b : tool.buffers().buffers) {
    if (b.pid != pid) continue;
    out.push_back(std::string(to_string(b.type)) + " " + std::string(to_string(b.kind)) + " " +
                  std::to_string(b.size) + " dev" + std::to_string(b.device) + " " + b.site + " | " +
                  b.scope);
  }
  std::sort(out.begin(), out.end());
  return out;
}

const std::vector<std::string> kExpected = {
    "DRAM owning 22528 dev0 MatmulDeviceOperation | ttnn.matmul/MatmulDeviceOperation",
    "DRAM owning 22528 dev1 MatmulDeviceOperation | ttnn.matmul/MatmulDeviceOperation",
    "L1 cb 131072 dev0 MatmulDeviceOperation | ttnn.matmul/MatmulDeviceOperation",
    "L1 owning 2097152 dev0 create_device_tensor | ttnn.matmul/MatmulDeviceOperation/create_device_tensor",
    "L1 owning 2097152 dev1 create_device_tensor | ttnn.matmul/MatmulDeviceOperation/create_device_tensor",
};

/// A matmul on a two-chip mesh (id 2), as a live processor sees it.
void run_matmul(Bridge& bridge) {
  bridge.add_mesh(2, {0, 1});
  bridge.add_chip(blackhole_chip(0, 2));
  bridge.add_chip(blackhole_chip(1, 2));
  bridge.function_start("ttnn.matmul");
  bridge.function_start("MatmulDeviceOperation");
  bridge.function_start("create_device_tensor");
  bridge.allocate(buffer(10, 2, BufferType::L1, 2097152, 1552384));
  bridge.function_end();
  bridge.deallocate_program_buffers(2);
  bridge.allocate_program_buffer(circular(0, 131072));
  bridge.allocate_program_buffer(circular(0, 32768, true));  // a tensor's shard: not counted again
  bridge.allocate(buffer(11, 2, BufferType::DRAM, 22528, 4278185984));
  bridge.function_end();
  bridge.function_end();
  bridge.deallocate(buffer(3, 2, BufferType::DRAM, 2097152, 5848704));  // allocated before tracking
}

TEST(BridgeIntoTtmemd, WhatTheProcessorSeesIsWhatTtmemdShows) {
  Live live;
  run_matmul(live.bridge);
  ASSERT_TRUE(live.client.flush());
  auto tool = live.tool();
  const auto pid = static_cast<pid_t>(live.client.server_seen_pid());
  EXPECT_EQ(rows(tool, pid), kExpected);
  // The chips were announced with their geometry.
  const auto devices = tool.devices().devices;
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].arch, Arch::blackhole);
  EXPECT_EQ(devices[0].total[static_cast<std::size_t>(Slot::L1)], 110ull * 1'400'000);
  // The CB counts in the CB slot, once: the tensor-backed one is not there.
  for (const auto& p : tool.stats().processes) {
    if (p.pid != pid || p.device != 0) continue;
    EXPECT_EQ(p.bytes[static_cast<std::size_t>(Slot::CB)], 131072u);
    EXPECT_EQ(p.bytes[static_cast<std::size_t>(Slot::L1)], 2097152u);
  }
  // ttmemd saw no release of an unknown id: the bridge kept it.
  EXPECT_EQ(live.bridge.stats().untracked_releases, 1u);
}

TEST(BridgeIntoTtmemd, ARestartedTtmemdGetsTheExactPictureFromTheBridge) {
  Live live;
  run_matmul(live.bridge);
  ASSERT_TRUE(live.client.flush());
  live.server.kill9();
  live.server.start();
  ASSERT_TRUE(eventually([&] {
    if (!live.client.flush(std::chrono::milliseconds(200))) return false;
    auto tool = live.tool();
    return rows(tool, static_cast<pid_t>(live.client.server_seen_pid())).size() == kExpected.size();
  })) << live.server.log();
  auto tool = live.tool();
  EXPECT_EQ(rows(tool, static_cast<pid_t>(live.client.server_seen_pid())), kExpected);
}

TEST(BridgeIntoTtmemd, ClosingAChipReportsWhatItStillHeldAsLeaks) {
  Live live;
  run_matmul(live.bridge);
  live.bridge.close_device(0);
  ASSERT_TRUE(live.client.flush());
  auto tool = live.tool();
  const auto pid = static_cast<pid_t>(live.client.server_seen_pid());
  std::vector<std::string> leaked;
  for (const auto& l : tool.leaks().leaks)
    if (l.pid == pid)
      leaked.push_back(std::string(to_string(l.type)) + " " + std::to_string(l.size) + " " + l.scope);
  std::sort(leaked.begin(), leaked.end());
  // The CB went with the program cache (not a leak); the two buffers of chip 0 were never released.
  EXPECT_EQ(leaked,
            (std::vector<std::string>{"DRAM 22528 ttnn.matmul/MatmulDeviceOperation",
                                      "L1 2097152 ttnn.matmul/MatmulDeviceOperation/create_device_tensor"}));
  // Chip 1 still holds its part.
  const auto left = rows(tool, pid);
  EXPECT_EQ(left.size(), 2u);
}

}  // namespace
}  // namespace ttmem::bridge
