// Why an allocation failed, end to end: the emulated runtime (in this process) reports to a real ttmemd,
// the records and maps come back through a real query connection, and each figure is checked against the
// emulator's own allocator — its statistics, its block table and the numbers in its error message.
#include <gtest/gtest.h>

#include <algorithm>
#include <regex>

#include "tracked_emulator.hpp"
#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem/runtime/device.hpp"
#include "ttmem/runtime/error.hpp"
#include "ttmem/runtime/server_tracking.hpp"
#include "ttmem/units.hpp"

namespace ttmem::test {
namespace {

using emu::BufferConfig;
using emu::MeshDevice;

constexpr std::uint64_t kMiB = 1 << 20;

BufferConfig buffer(BufferType type, std::uint64_t size, std::uint64_t page_size, std::string site = {}) {
  BufferConfig c;
  c.type = type;
  c.size = size;
  c.page_size = page_size;
  c.site = std::move(site);
  return c;
}
BufferConfig dram(std::uint64_t size, std::string site = {}) {
  return buffer(BufferType::DRAM, size, 2048, std::move(site));
}

emu::ProgramConfig program(std::string name, std::vector<emu::CircularBufferConfig> cbs) {
  emu::ProgramConfig p;
  p.name = std::move(name);
  p.circular_buffers = std::move(cbs);
  return p;
}

/// Allocates and expects the runtime to refuse; returns its message.
std::string refused(MeshDevice& mesh, const BufferConfig& config) {
  try {
    mesh.create_buffer(config);
  } catch (const emu::Error& e) {
    EXPECT_EQ(e.code(), emu::ErrorCode::out_of_memory) << e.what();
    return e.what();
  }
  ADD_FAILURE() << "the allocation of " << config.size << " B was not refused";
  return {};
}

/// The "free: N B, largest free block: M B" of TT-Metal's message (per bank, from the allocator itself).
std::pair<std::uint64_t, std::uint64_t> message_figures(const std::string& message) {
  std::smatch m;
  EXPECT_TRUE(std::regex_search(message, m, std::regex(R"(free: (\d+) B, largest free block: (\d+) B)")))
      << message;
  return {std::stoull(m[1]), std::stoull(m[2])};
}

TEST(Forensics, ASixGibRequestOnAHalfFullDeviceStatesThePerBankShortfall) {
  // The case that started this: 6 GiB asked of a 12 GiB device that shows 6 GiB used. Page rounding and a
  // program's kernel binary make it not fit.
  Tracked t;
  auto mesh = n150();
  auto held = mesh->create_buffer(dram(6ull << 30, "model.py:10"));
  mesh->run(mesh->create_program(program("matmul", {{16 << 10, {}}})));
  const std::string message = refused(*mesh, dram(6ull << 30, "model.py:11"));
  t.flush();

  const views::OomList list = t.tool().oom();
  ASSERT_EQ(list.records.size(), 1u);
  const views::OomRecord& r = list.records[0];
  EXPECT_EQ(r.pid, getpid());
  EXPECT_EQ(r.device, 0);
  EXPECT_EQ(r.type, BufferType::DRAM);
  EXPECT_EQ(r.size, 6ull << 30);
  EXPECT_EQ(r.num_banks, 12u);
  EXPECT_EQ(r.needed_per_bank, 536'870'912u);
  EXPECT_EQ(r.site, "model.py:11");
  EXPECT_EQ(r.message, message);
  // ttmemd's map of the device agrees with the allocator's own figures, byte for byte.
  const auto [free, largest] = message_figures(message);
  ASSERT_TRUE(r.space);
  EXPECT_EQ(r.space->free_per_bank, free);
  EXPECT_EQ(r.space->largest_free_block, largest);
  EXPECT_LT(free, r.needed_per_bank);
  EXPECT_EQ(r.verdict, OomVerdict::exhausted);
  EXPECT_NE(r.summary.find("needs 536,870,912 B per bank"), std::string::npos) << r.summary;
  EXPECT_NE(r.summary.find(exact_bytes(free) + " are free per bank (" + exact_bytes(536'870'912u - free) +
                           " short)"),
            std::string::npos)
      << r.summary;
  // The holders: this process, its 6 GiB among the largest buffers, the kernel binary as the runtime's.
  ASSERT_FALSE(r.holders.empty());
  EXPECT_EQ(r.holders[0].pid, getpid());
  EXPECT_EQ(r.holders[0].per_bank, 536'870'912u);
  EXPECT_GT(r.holders[0].internal_per_bank, 0u);
  ASSERT_FALSE(r.largest.empty());
  EXPECT_EQ(r.largest[0].size, 6ull << 30);
  EXPECT_EQ(r.largest[0].site, "model.py:10");

  // The run then closes its mesh: what the close sweeps is left by a failed run, not leaked.
  mesh->close();
  t.flush();
  const views::Leaks leaks = t.tool().leaks();
  ASSERT_FALSE(leaks.leaks.empty());
  for (const auto& l : leaks.leaks) EXPECT_EQ(l.after_oom, r.id) << l.site;
  EXPECT_EQ(t.tool().info().oom_records, 1u);
}

TEST(Forensics, FreeSpaceInPiecesNoneLargeEnoughIsFragmented) {
  Tracked t;
  auto mesh = n150();
  // Nine buffers of 100 MiB per bank, every other one freed: 400 MiB free in holes plus the tail.
  std::vector<std::shared_ptr<emu::MeshBuffer>> buffers;
  for (int i = 0; i < 9; ++i)
    buffers.push_back(mesh->create_buffer(dram(1200 * kMiB, "layer.py:" + std::to_string(i))));
  for (int i = 1; i < 9; i += 2) buffers[static_cast<std::size_t>(i)]->deallocate();
  const std::string message = refused(*mesh, dram(2400 * kMiB, "big.py:1"));
  t.flush();
  const views::OomRecord r = t.tool().oom().records.at(0);
  const auto [free, largest] = message_figures(message);
  ASSERT_TRUE(r.space);
  EXPECT_EQ(r.space->free_per_bank, free);
  EXPECT_EQ(r.space->largest_free_block, largest);
  EXPECT_EQ(r.space->free_blocks, 5u);  // four holes and the tail
  EXPECT_GE(free, r.needed_per_bank);
  EXPECT_LT(largest, r.needed_per_bank);
  EXPECT_EQ(r.verdict, OomVerdict::fragmented) << r.summary;
  EXPECT_NE(r.summary.find("in 5 blocks"), std::string::npos) << r.summary;
  EXPECT_EQ(r.free_blocks.size(), 5u);
  for (const auto& b : r.free_blocks) EXPECT_LT(b.size, r.needed_per_bank);
}

TEST(Forensics, AnotherProcessHoldingTheDifferenceIsReserved) {
  // Another process (a script in the emulator tool) holds most of device 0's DRAM; this process, a runtime
  // of its own that reports through libttmem (a TT-Metal build without UMD's chip lock), is refused 6 GiB
  // there and says so.
  Tracked t;
  Child other({bin_dir() + "/ttmem-emu", "--step", "-q"}, {{"TTMEM_SOCKET", t.server.socket()}});
  for (const char* line : {"mesh n150", "alloc weights DRAM 9000M site=serve.py:7", "flush"})
    ASSERT_EQ(other.command(line), "ok") << line;

  auto mesh = n150(1);  // only for the chip's geometry, as its allocator reports it (chip 0 is the other's)
  const emu::DeviceInfo info = mesh->device(0).info();
  client::Client& c = client::Client::instance();
  const auto dram = index(BufferType::DRAM);
  const std::uint64_t bank = info.total_bytes[dram] / info.num_banks[dram];
  client::AllocationFailureReport f;
  f.device = 0;
  f.type = BufferType::DRAM;
  f.size = 6ull << 30;
  f.page_size = 2048;
  f.num_banks = info.num_banks[dram];
  f.size_per_bank = 512 * kMiB;
  f.site = "train.py:3";
  f.message = "Out of Memory: Not enough space to allocate 6442450944 B DRAM buffer across 12 banks";
  c.report_alloc_failure(f);
  t.flush();

  const views::OomRecord r = t.tool().oom().records.at(0);
  ASSERT_TRUE(r.space);
  EXPECT_EQ(r.space->free_per_bank, bank - 750 * kMiB);  // 9000 MiB over 12 banks
  EXPECT_EQ(r.verdict, OomVerdict::reserved) << r.summary;
  EXPECT_NE(r.summary.find("pid " + std::to_string(other.pid())), std::string::npos) << r.summary;
  // This process holds nothing on chip 0 (its own mesh is on chip 1): the other is the only holder.
  ASSERT_EQ(r.holders.size(), 1u);
  EXPECT_EQ(r.holders[0].pid, other.pid());
  EXPECT_EQ(r.holders[0].per_bank, 750 * kMiB);
  // Processes are named by what they run, not only by the kernel's 15-character name.
  EXPECT_NE(r.holders[0].command.find("ttmem-emu --step -q"), std::string::npos) << r.holders[0].command;
  EXPECT_NE(r.summary.find("ttmem-emu --step -q"), std::string::npos) << r.summary;
}

void expect_map_is_block_table(const views::AddressMap& map, const std::vector<emu::MemoryBlock>& table) {
  ASSERT_EQ(map.blocks.size(), table.size());
  for (std::size_t i = 0; i < table.size(); ++i) {
    SCOPED_TRACE("block " + std::to_string(i));
    EXPECT_EQ(map.blocks[i].address, table[i].address);
    EXPECT_EQ(map.blocks[i].size, table[i].size);
    EXPECT_EQ(map.blocks[i].use, table[i].allocated ? BlockUse::buffer : BlockUse::free);
  }
}

TEST(Forensics, TheMapIsTheEmulatorsBlockTableBlockByBlock) {
  Tracked t;
  auto mesh = n150();
  std::vector<std::shared_ptr<emu::MeshBuffer>> l1, drams;
  for (int i = 0; i < 12; ++i) {
    l1.push_back(mesh->create_buffer(
        buffer(BufferType::L1, static_cast<std::uint64_t>(4 + i) << 10, 1024, "l1.py:" + std::to_string(i))));
    drams.push_back(mesh->create_buffer(dram(static_cast<std::uint64_t>(1 + i) << 20)));
  }
  for (std::size_t i : {1, 4, 5, 9}) {
    l1[i]->deallocate();
    drams[i]->deallocate();
  }
  auto conv = mesh->create_program(program("conv", {{8 << 10, {}},
                                                    {4 << 10, emu::CoreRangeSet{{{{0, 0}, {7, 0}}}}},
                                                    {2 << 10, emu::CoreRangeSet{{{{0, 1}, {7, 1}}}}}}));
  mesh->run(conv);
  t.flush();

  const emu::Allocator& a = mesh->device(0).allocator();
  const views::AddressMap l1_map = t.tool().map(0, BufferType::L1);
  expect_map_is_block_table(l1_map, a.memory_blocks(BufferType::L1));
  EXPECT_EQ(l1_map.space.free_per_bank, a.statistics(BufferType::L1).total_free_bytes);
  EXPECT_EQ(l1_map.space.largest_free_block, a.statistics(BufferType::L1).largest_free_block_bytes);
  EXPECT_EQ(l1_map.space.unplaced_buffers, 0u);
  // The buffers of the map are this process's, with their sites.
  for (const auto& b : l1_map.blocks) {
    if (b.use != BlockUse::buffer || b.internal) continue;
    EXPECT_EQ(b.pid, getpid());
    EXPECT_EQ(b.site.rfind("l1.py:", 0), 0u) << b.site;
  }
  // Every circular buffer of the program, at the address the program placed it.
  auto cbs = conv->circular_buffers();  // the map lists them by address (then size)
  std::sort(cbs.begin(), cbs.end(), [](const auto& x, const auto& y) {
    return x.address != y.address ? x.address < y.address : x.size < y.size;
  });
  ASSERT_EQ(l1_map.circular_buffers.size(), cbs.size());
  for (std::size_t i = 0; i < cbs.size(); ++i) {
    EXPECT_EQ(l1_map.circular_buffers[i].address, cbs[i].address);
    EXPECT_EQ(l1_map.circular_buffers[i].size, cbs[i].size);
    EXPECT_EQ(l1_map.circular_buffers[i].use, BlockUse::circular_buffer);
  }
  expect_map_is_block_table(t.tool().map(0, BufferType::DRAM), a.memory_blocks(BufferType::DRAM));
}

TEST(Forensics, AMapOfADeviceNobodyAnnouncedIsRefusedWithTheReason) {
  Tracked t;
  try {
    t.tool().map(7, BufferType::L1);
    ADD_FAILURE() << "a map of an unknown device was answered";
  } catch (const query::QueryError& e) {
    EXPECT_NE(std::string(e.what()).find("device 7 did not announce its L1 banks"), std::string::npos)
        << e.what();
  }
}

TEST(Forensics, ARecordThatIsNotThereIsNamedInTheError) {
  Tracked t;
  try {
    t.tool().oom(3);
    ADD_FAILURE() << "record 3 was answered";
  } catch (const query::QueryError& e) {
    EXPECT_NE(std::string(e.what()).find("there is no out-of-memory record 3"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace ttmem::test
