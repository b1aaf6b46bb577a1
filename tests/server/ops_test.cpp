// Ops: the op scope a thread is in (libttmem's push_op / OpScope) travels with each allocation it makes,
// to every view that names a buffer — buffers (and its --site/--op filters), leaks, events, the address
// map — end to end through a real ttmemd.
#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "tracked_emulator.hpp"
#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem/runtime/device.hpp"
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
