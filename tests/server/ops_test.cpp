// Ops: the op scope a thread is in (libttmem's push_op / OpScope) travels with each allocation it makes,
// to every view that names a buffer — buffers (and its --site/--op filters), leaks, events, the address
// map — end to end through a real ttmemd.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "raw_client.hpp"
#include "tracked_emulator.hpp"
#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/runtime/server_tracking.hpp"

namespace ttmem::test {
namespace {

using client::OpScope;
using emu::MeshDevice;

emu::BufferConfig dram(std::uint64_t size, std::string site) {
  emu::BufferConfig c;
  c.type = BufferType::DRAM;
  c.size = size;
  c.page_size = 2048;
  c.site = std::move(site);
  return c;
}

/// The scope of the one live buffer of `size` bytes.
std::string scope_of(const views::BufferList& list, std::uint64_t size) {
  std::string found = "(no buffer of that size)";
  for (const auto& b : list.buffers) {
    if (b.size == size && b.type == BufferType::DRAM) found = b.scope;
  }
  return found;
}

TEST(Ops, EachAllocationCarriesTheOpItsThreadWasIn) {
  Tracked t;
  auto mesh = n150();
  std::vector<std::shared_ptr<emu::MeshBuffer>> keep;
  {
    OpScope forward("forward");
    keep.push_back(mesh->create_buffer(dram(1 << 20, "model.py:1")));
    {
      OpScope matmul("matmul");
      keep.push_back(mesh->create_buffer(dram(2 << 20, "model.py:2")));
    }
    keep.push_back(mesh->create_buffer(dram(3 << 20, "model.py:3")));
  }
  keep.push_back(mesh->create_buffer(dram(4 << 20, "model.py:4")));
  t.flush();
  auto tool = t.tool();
  const views::BufferList all = tool.buffers();
  EXPECT_EQ(scope_of(all, 1 << 20), "forward");
  EXPECT_EQ(scope_of(all, 2 << 20), "forward/matmul");
  EXPECT_EQ(scope_of(all, 3 << 20), "forward");
  EXPECT_EQ(scope_of(all, 4 << 20), "");

  views::BufferQuery by_op;
  by_op.scope = "matmul";
  const views::BufferList matmul = tool.buffers(by_op);
  ASSERT_EQ(matmul.buffers.size(), 1u);
  EXPECT_EQ(matmul.buffers[0].size, 2u << 20);
  EXPECT_EQ(matmul.buffers[0].site, "model.py:2");
  views::BufferQuery by_site;
  by_site.site = "model.py:3";
  by_site.scope = "forward";
  const views::BufferList site = tool.buffers(by_site);
  ASSERT_EQ(site.buffers.size(), 1u);
  EXPECT_EQ(site.buffers[0].size, 3u << 20);

  // The map names each buffer's op as well.
  const views::AddressMap map = tool.map(0, BufferType::DRAM);
  bool seen = false;
  for (const auto& b : map.blocks) {
    if (b.use == BlockUse::buffer && b.site == "model.py:2") {
      EXPECT_EQ(b.scope, "forward/matmul");
      seen = true;
    }
  }
  EXPECT_TRUE(seen);
}

TEST(Ops, FreesAndLeaksNameTheOpOfWhatTheyRelease) {
  Tracked t;
  auto mesh = n150();
  std::shared_ptr<emu::MeshBuffer> freed, leaked;
  {
    OpScope op("decode");
    freed = mesh->create_buffer(dram(5 << 20, "serve.py:7"));
    leaked = mesh->create_buffer(dram(6 << 20, "serve.py:8"));
  }
  freed.reset();  // outside the op: the free still names the op the buffer was made in
  mesh->close();
  t.flush();
  auto tool = t.tool();
  const views::EventList events = tool.events(1000);
  int frees = 0;
  for (const auto& e : events.events) {
    if (e.size == (5u << 20) && e.op == EventOp::free) {
      EXPECT_EQ(e.scope, "decode");
      ++frees;
    }
    if (e.size == (5u << 20) && e.op == EventOp::alloc) {
      EXPECT_EQ(e.scope, "decode");
    }
  }
  EXPECT_GE(frees, 1);
  const views::Leaks leaks = tool.leaks();
  bool found = false;
  for (const auto& l : leaks.leaks) {
    if (l.site == "serve.py:8") {
      EXPECT_EQ(l.scope, "decode");
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(Ops, AFailedAllocationNamesTheOpItWasAskedIn) {
  Tracked t;
  auto mesh = n150();
  {
    OpScope op("attention");
    EXPECT_THROW(mesh->create_buffer(dram(std::uint64_t{1} << 40, "attn.py:3")), emu::Error);
  }
  t.flush();
  const views::OomList list = t.tool().oom();
  ASSERT_EQ(list.records.size(), 1u);
  EXPECT_EQ(list.records[0].site, "attn.py:3");
  EXPECT_EQ(list.records[0].scope, "attention");
}

std::shared_ptr<emu::MeshDevice> t3000() {
  emu::MeshDeviceConfig config;
  config.preset = "t3000";
  return emu::MeshDevice::open(config);
}

TEST(Ops, BuffersGroupedByOpShowAMeshTensorAsOneRowWithItsDevices) {
  Tracked t;
  auto mesh = t3000();
  std::vector<std::shared_ptr<emu::MeshBuffer>> keep;
  {
    OpScope op("prefill");
    keep.push_back(mesh->create_buffer(dram(8 << 20, "model.py:10")));
    keep.push_back(mesh->create_buffer(dram(1 << 20, "model.py:11")));
  }
  t.flush();
  auto tool = t.tool();
  views::BufferQuery q;
  q.by = GroupBy::op;
  q.pid = getpid();
  const views::BufferList by_op = tool.buffers(q);
  EXPECT_TRUE(by_op.buffers.empty());
  const views::BufferGroup* prefill = nullptr;
  std::uint64_t in_groups = 0;
  for (const auto& g : by_op.groups) {
    in_groups += g.buffers;
    if (g.key == "prefill" && g.slot == Slot::DRAM) prefill = &g;
  }
  ASSERT_NE(prefill, nullptr);
  EXPECT_EQ(prefill->buffers, 16u);  // two mesh tensors over 8 devices
  EXPECT_EQ(prefill->devices, 8u);
  EXPECT_EQ(prefill->processes, 1u);
  EXPECT_EQ(prefill->bytes, 8u * ((8u << 20) + (1u << 20)));
  EXPECT_EQ(prefill->largest, 8u << 20);
  EXPECT_EQ(in_groups, by_op.total);  // every matching buffer is in one group
  EXPECT_EQ(by_op.total_groups, by_op.groups.size());
  for (std::size_t i = 1; i < by_op.groups.size(); ++i)
    EXPECT_GE(by_op.groups[i - 1].bytes, by_op.groups[i].bytes);

  q.by = GroupBy::device;
  q.type = BufferType::DRAM;
  q.scope = "prefill";
  const views::BufferList by_device = tool.buffers(q);
  ASSERT_EQ(by_device.groups.size(), 8u);
  for (const auto& g : by_device.groups) {
    EXPECT_EQ(g.buffers, 2u);
    EXPECT_EQ(g.devices, 1u);
    EXPECT_EQ(g.key, std::to_string(g.device));
  }

  q = {};
  q.by = GroupBy::pid;
  q.limit = 1;
  const views::BufferList by_pid = tool.buffers(q);
  ASSERT_EQ(by_pid.groups.size(), 1u);
  EXPECT_EQ(by_pid.groups[0].pid, getpid());
  EXPECT_GE(by_pid.total_groups, 1u);
}

TEST(Ops, AnOpsPeakIsTheMostItHeldAtOnce) {
  Tracked t;
  auto mesh = n150();
  std::shared_ptr<emu::MeshBuffer> kept;
  {
    OpScope op("decode");
    auto a = mesh->create_buffer(dram(1 << 20, "serve.py:1"));
    kept = mesh->create_buffer(dram(2 << 20, "serve.py:2"));
    a.reset();  // held 3 MiB at once, 2 MiB now
    auto c = mesh->create_buffer(dram(512 << 10, "serve.py:3"));
  }  // c is freed: peak stays 3 MiB
  {
    OpScope op("sample");
    auto s = mesh->create_buffer(dram(4 << 20, "serve.py:9"));
  }
  t.flush();
  views::OpsQuery q;
  q.pid = getpid();
  q.device = 0;
  const views::OpList list = t.tool().ops(q);
  const views::OpUsage* decode = nullptr;
  const views::OpUsage* sample = nullptr;
  for (const auto& o : list.ops) {
    if (o.scope == "decode" && o.slot == Slot::DRAM) decode = &o;
    if (o.scope == "sample" && o.slot == Slot::DRAM) sample = &o;
  }
  ASSERT_NE(decode, nullptr);
  EXPECT_EQ(decode->peak, 3u << 20);
  EXPECT_EQ(decode->bytes, 2u << 20);
  EXPECT_EQ(decode->buffers, 1u);
  ASSERT_NE(sample, nullptr);
  EXPECT_EQ(sample->peak, 4u << 20);
  EXPECT_EQ(sample->bytes, 0u);
  ASSERT_GE(list.ops.size(), 2u);
  EXPECT_EQ(list.ops[0].scope, "sample");  // largest peak first

  q.scope = "dec";
  const views::OpList only = t.tool().ops(q);
  ASSERT_EQ(only.ops.size(), 1u);
  EXPECT_EQ(only.ops[0].scope, "decode");
  EXPECT_EQ(only.total, 1u);
}

TEST(Ops, AnOpHoldsWhatTheOpsInsideItHold) {
  Tracked t;
  auto mesh = n150();
  std::shared_ptr<emu::MeshBuffer> weights;
  {
    OpScope forward("forward");
    weights = mesh->create_buffer(dram(1 << 20, "model.py:1"));
    {
      OpScope attn("attn");
      auto scores = mesh->create_buffer(dram(4 << 20, "model.py:2"));  // forward holds 5 MiB here
    }
    {
      OpScope mlp("mlp");
      auto h = mesh->create_buffer(dram(2 << 20, "model.py:3"));  // and 3 MiB here
    }
  }
  t.flush();
  views::OpsQuery q;
  q.pid = getpid();
  q.device = 0;
  auto figures = [&](std::string_view scope) {
    for (const auto& o : t.tool().ops(q).ops)
      if (o.scope == scope && o.slot == Slot::DRAM) return std::pair{o.peak, o.bytes};
    return std::pair<std::uint64_t, std::uint64_t>{0, 0};
  };
  EXPECT_EQ(figures("forward"), (std::pair<std::uint64_t, std::uint64_t>{5u << 20, 1u << 20}));
  EXPECT_EQ(figures("forward/attn"), (std::pair<std::uint64_t, std::uint64_t>{4u << 20, 0}));
  EXPECT_EQ(figures("forward/mlp"), (std::pair<std::uint64_t, std::uint64_t>{2u << 20, 0}));
}

TEST(Ops, AServerRestartKeepsTheOpOfEachBuffer) {
  Tracked t;
  auto mesh = n150();
  std::shared_ptr<emu::MeshBuffer> kept;
  {
    OpScope op("warmup");
    kept = mesh->create_buffer(dram(9 << 20, "warm.py:4"));
  }
  t.flush();
  t.server.kill9();
  t.server.start();
  // The resync snapshot is rebuilt from the runtime's buffers: each still names the op it was made in.
  ASSERT_TRUE(eventually([&] {
    return emu::ServerTracking::flush(std::chrono::milliseconds(200)) &&
           scope_of(t.tool().buffers(), 9 << 20) != "(no buffer of that size)";
  })) << t.server.log();
  EXPECT_EQ(scope_of(t.tool().buffers(), 9 << 20), "warmup");
}

TEST(Ops, AnotherThreadsOpIsNotThisThreads) {
  Tracked t;
  auto mesh = n150();
  std::promise<void> entered, done;
  std::thread other([&] {
    OpScope op("prefill");
    entered.set_value();
    done.get_future().wait();
  });
  entered.get_future().wait();
  auto mine = mesh->create_buffer(dram(7 << 20, "main.py:1"));
  done.set_value();
  other.join();
  t.flush();
  EXPECT_EQ(scope_of(t.tool().buffers(), 7 << 20), "");
}

TEST(Ops, PoppingMoreThanWasPushedIsHarmless) {
  client::Client& c = client::Client::instance();
  const client::SiteId before = c.current_op();
  c.pop_op();
  c.pop_op();
  EXPECT_EQ(c.current_op(), before);
  {
    OpScope a("a");
    const client::SiteId in_a = c.current_op();
    {
      OpScope b("b");
      EXPECT_NE(c.current_op(), in_a);
    }
    EXPECT_EQ(c.current_op(), in_a);
  }
  EXPECT_EQ(c.current_op(), before);
}

}  // namespace
}  // namespace ttmem::test
