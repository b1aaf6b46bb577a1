// The ledger on its own, no sockets: events in, figures, views, records and sink calls out. Totals, peaks,
// leaks at device close, orphans, snapshots, anomalies.
#include "registry.hpp"

#include <gtest/gtest.h>

#include "ledger_views.hpp"
#include "raw_client.hpp"

namespace ttmem::model {
namespace {

using proto::AllocKind;
using proto::BufferType;
using proto::ClosePhase;
using proto::EventOp;
using proto::ReleaseReason;

using test::alloc_event;
using test::free_event;

proto::DeviceOpen open_device(std::uint16_t device) {
  proto::DeviceOpen d;
  d.device = device;
  d.total_bytes = {12ull << 30, 64ull * 1'397'984, 0, 0, 0};
  return d;
}

const Figures& device_figures(const Registry& r, std::uint16_t device, Slot slot) {
  return r.devices().at(device).usage[static_cast<std::size_t>(slot)];
}

/// A sink that keeps what it is told.
struct Recorder : Sink {
  bool events = false;
  std::vector<proto::EventRecord> applied;
  std::vector<LeakRecord> leaks;
  std::vector<OrphanRecord> deaths;
  std::vector<std::string> devices;  // "open 0", "begin 0", "end 0"
  bool wants_events() const override { return events; }
  void on_event(const AppliedEvent& a) override { applied.push_back(a.event); }
  void on_leak(const LeakRecord& l) override { leaks.push_back(l); }
  void on_process_died(const OrphanRecord& o) override { deaths.push_back(o); }
  void on_device_open(const ProcessState&, const proto::DeviceOpen& d) override {
    devices.push_back("open " + std::to_string(d.device));
  }
  void on_device_close(const ProcessState&, const proto::DeviceClose& d) override {
    devices.push_back(std::string(to_string(d.phase)) + " " + std::to_string(d.device));
  }
};

TEST(Registry, TotalsAndPeaksPerDeviceAndProcess) {
  Registry r;
  ProcessState& a = r.process(100, 1, 0, "a");
  ProcessState& b = r.process(200, 1, 0, "b");
  r.device_open(a, open_device(0));
  r.event(a, alloc_event(0, 1, 4096));
  r.event(a, alloc_event(0, 2, 8192));
  r.event(b, alloc_event(0, 1, 1000, BufferType::L1));  // same id in another process: its own allocation
  r.event(b, alloc_event(0, 2, 500, BufferType::L1, AllocKind::circular_buffer));
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 12288u);
  EXPECT_EQ(device_figures(r, 0, Slot::L1).bytes, 1000u);
  EXPECT_EQ(device_figures(r, 0, Slot::CB).bytes, 500u);  // CBs are apart from L1
  r.event(a, free_event(0, 2));
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 4096u);
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).peak_bytes, 12288u);
  EXPECT_EQ(a.devices.at(0).usage[0].buffers, 1u);
  EXPECT_EQ(a.usage[0].peak_bytes, 12288u);
  EXPECT_EQ(r.allocations().size(), 3u);
  const views::Stats stats = stats_view(r);
  EXPECT_EQ(stats.active_allocations, 3u);
  ASSERT_EQ(stats.devices.size(), 1u);
  EXPECT_EQ(stats.devices[0].memory[index(Slot::DRAM)].total, 12ull << 30);
  EXPECT_EQ(stats.devices[0].memory[index(Slot::DRAM)].used, 4096u);
  EXPECT_EQ(stats.devices[0].memory[index(Slot::DRAM)].peak, 12288u);
  EXPECT_EQ(stats.devices[0].processes, 2u);
  ASSERT_EQ(stats.processes.size(), 2u);
  EXPECT_EQ(stats.processes[1].pid, 200);
  EXPECT_EQ(stats.processes[1].bytes[index(Slot::CB)], 500u);
  EXPECT_EQ(stats.processes[1].buffers, 2u);
}

TEST(Registry, DeviceCloseRecordsTheLeaksWithTheirSiteAndSweepsTheRest) {
  Registry r;
  Recorder logged;
  r.add_sink(logged);
  ProcessState& p = r.process(100, 1, 0, "python");
  r.sites(p, {{1, "test_mesh_allocation.py:42"}, {2, "dispatch/control"}});
  r.device_open(p, open_device(0));
  r.event(p, alloc_event(0, 10, 4096, BufferType::DRAM, AllocKind::owning, 1));
  r.event(p, alloc_event(0, 11, 4096, BufferType::L1, AllocKind::preallocated, 2));
  r.event(p, alloc_event(0, 12, 2048, BufferType::L1, AllocKind::circular_buffer));
  r.device_close(p, {0, ClosePhase::begin});
  r.event(p, free_event(0, 11, ReleaseReason::close_internal));  // the runtime's own: not a leak
  r.event(p, free_event(0, 10, ReleaseReason::close_leak));      // the application's: a leak
  r.device_close(p, {0, ClosePhase::end});                       // CB 12 never released: a lifecycle gap
  ASSERT_EQ(r.leaks().size(), 2u);
  EXPECT_EQ(r.leaks()[0].id, 12u);  // newest first
  EXPECT_FALSE(r.leaks()[0].swept_by_close);
  EXPECT_EQ(r.leaks()[1].site, "test_mesh_allocation.py:42");
  EXPECT_TRUE(r.leaks()[1].swept_by_close);
  EXPECT_EQ(logged.leaks.size(), 2u);
  EXPECT_EQ(r.allocations().size(), 0u);
  EXPECT_EQ(device_figures(r, 0, Slot::L1).bytes, 0u);
  // Events for the closed device are anomalies, not state.
  r.event(p, alloc_event(0, 13, 1));
  EXPECT_EQ(r.allocations().size(), 0u);
  EXPECT_EQ(r.anomalies().events_after_close, 1u);
  // Re-opening makes it usable again.
  r.device_open(p, open_device(0));
  r.event(p, alloc_event(0, 14, 1));
  EXPECT_EQ(r.allocations().size(), 1u);
}

TEST(Registry, ADeadProcessLeavesAnOrphanRecordSayingWhatItHeld) {
  Registry r;
  ProcessState& p = r.process(141211, 1, 0, "python");
  for (std::uint64_t id = 1; id <= 3; ++id) r.event(p, alloc_event(0, id, 4096, BufferType::L1));
  r.event(p, alloc_event(1, 4, 1 << 20));
  const OrphanRecord o = r.process_died(p);
  EXPECT_EQ(o.total_bytes, 12288u + (1u << 20));
  EXPECT_EQ(o.total_buffers, 4u);
  const auto lines = o.lines();
  EXPECT_NE(std::find(lines.begin(), lines.end(),
                      "pid 141211 (python) died holding 12288 bytes of L1 on device 0 in 3 buffers"),
            lines.end());
  EXPECT_EQ(r.allocations().size(), 0u);
  EXPECT_EQ(r.processes().size(), 0u);
  EXPECT_EQ(r.orphans().size(), 1u);
  EXPECT_EQ(device_figures(r, 0, Slot::L1).bytes, 0u);
}

TEST(Registry, AReusedPidIsANewProcessAndTheOldOneIsReclaimed) {
  Registry r;
  ProcessState& old = r.process(300, 1000, 0, "old");
  r.event(old, alloc_event(0, 1, 4096));
  ProcessState& fresh = r.process(300, 2000, 0, "new");
  EXPECT_EQ(fresh.name, "new");
  EXPECT_EQ(r.allocations().size(), 0u);
  EXPECT_EQ(r.orphans().size(), 1u);
}

TEST(Registry, AStrayFreeIsCountedAtOnceAndNeverCancelsALaterAllocation) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.event(p, alloc_event(0, 8, 100));
  r.event(p, free_event(0, 8));
  r.event(p, free_event(0, 8));  // a double free
  EXPECT_EQ(r.anomalies().free_unknown_id, 1u);
  r.event(p, alloc_event(0, 8, 100));  // the id again: a live buffer, counted
  EXPECT_EQ(r.allocations().size(), 1u);
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 100u);
  // Unknown frees of one id on two devices are two anomalies.
  r.event(p, free_event(1, 99));
  r.event(p, free_event(2, 99));
  EXPECT_EQ(r.anomalies().free_unknown_id, 3u);
}

TEST(Registry, TotalsNeverWrapAnAllocationThatWouldOverflowIsRefusedAndCounted) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.event(p, alloc_event(0, 1, 1ull << 30));
  r.event(p, alloc_event(0, 2, ~0ull - (1ull << 30) + 1));  // 2^64 - 2^30: the sum would be 2^64
  r.event(p, alloc_event(1, 3, 1ull << 63));
  r.event(p, alloc_event(1, 4, 1ull << 63));  // the device's total would wrap
  r.event(p, alloc_event(2, 5, 1ull << 63));  // each device fine, the process's DRAM total would wrap
  EXPECT_EQ(r.anomalies().size_overflow, 3u);
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 1ull << 30);
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).peak_bytes, 1ull << 30);
  EXPECT_EQ(device_figures(r, 1, Slot::DRAM).bytes, 1ull << 63);
  EXPECT_EQ(p.usage[0].bytes, (1ull << 30) + (1ull << 63));
  EXPECT_EQ(r.allocations().size(), 2u);
}

TEST(Registry, DuplicateIdsAreCountedNotDoubleCounted) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.event(p, alloc_event(0, 5, 100));
  r.event(p, alloc_event(0, 5, 100));
  EXPECT_EQ(r.anomalies().duplicate_id, 1u);
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 100u);
}

TEST(Registry, ASnapshotReplacesTheProcessStateAtOnce) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  ProcessState& other = r.process(2, 1, 0, "other");
  r.event(p, alloc_event(0, 1, 100));
  r.event(p, alloc_event(0, 2, 200));
  r.event(other, alloc_event(0, 1, 7));
  r.snapshot_begin(p, {9});
  r.device_open(p, open_device(0));
  r.event(p, alloc_event(0, 2, 200));
  r.event(p, alloc_event(0, 3, 300));
  // Until the end, the old state stands.
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 307u);
  r.snapshot_end(p, {9, 2});
  EXPECT_EQ(device_figures(r, 0, Slot::DRAM).bytes, 507u);
  EXPECT_EQ(r.allocations().size(), 3u);
  EXPECT_EQ(r.anomalies().snapshot_mismatch, 0u);
  const auto group = p.devices.at(0).group;
  EXPECT_NE(r.allocations().find(group, {p.slot, 0, 3}), nullptr);
  EXPECT_EQ(r.allocations().find(group, {p.slot, 0, 1}), nullptr);
  r.snapshot_begin(p, {10});
  r.snapshot_end(p, {10, 5});
  EXPECT_EQ(r.anomalies().snapshot_mismatch, 1u);
}

TEST(Registry, DeviceIdsOutOfRangeAreRefused) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.event(p, alloc_event(60000, 1, 100));
  proto::DeviceOpen d;
  d.device = 5000;
  r.device_open(p, d);
  r.device_close(p, {5000, ClosePhase::end});
  EXPECT_EQ(r.allocations().size(), 0u);
  EXPECT_TRUE(r.devices().empty());
  EXPECT_EQ(r.anomalies().device_out_of_range, 3u);
}

}  // namespace
}  // namespace ttmem::model

namespace ttmem::model {
namespace {

TEST(Registry, ASnapshotThatNeverEndsIsBoundedByThePerProcessLimit) {
  RegistryLimits limits;
  limits.max_live_allocations_per_process = 100;
  Registry r(limits);
  ProcessState& p = r.process(1, 1, 0, "p");
  r.snapshot_begin(p, {1});
  for (std::uint64_t id = 1; id <= 10'000; ++id) r.event(p, alloc_event(0, id, 1));
  for (int i = 0; i < 10'000; ++i) r.device_open(p, open_device(0));  // the same device, again and again
  ASSERT_TRUE(p.snapshot.has_value());
  EXPECT_EQ(p.snapshot->allocations.size(), 100u);
  EXPECT_EQ(p.snapshot->devices.size(), 1u);
  EXPECT_EQ(r.anomalies().limit_refused, 9'900u);
  r.snapshot_end(p, {1, 10'000});
  EXPECT_EQ(r.allocations().size(), 100u);
  EXPECT_EQ(r.anomalies().snapshot_mismatch, 0u);  // the count matched what was sent
}

TEST(Registry, TheSiteTableOfAProcessIsBounded) {
  RegistryLimits limits;
  limits.max_sites_per_process = 10;
  limits.max_site_bytes_per_process = 1000;
  Registry r(limits);
  ProcessState& p = r.process(1, 1, 0, "p");
  std::vector<proto::Site> sites;
  for (std::uint32_t id = 1; id <= 20; ++id) sites.push_back({id, std::string(50, 'a')});
  r.sites(p, sites);
  EXPECT_EQ(p.sites.size(), 10u);
  EXPECT_EQ(r.anomalies().site_limit, 10u);
  r.sites(p, {{1, std::string(600, 'b')}});  // replacing a text counts its new length: 550 + 600 > 1000
  EXPECT_EQ(p.site_bytes, 500u);
  r.sites(p, {{1, std::string(540, 'b')}});
  EXPECT_EQ(p.site_bytes, 990u);
  EXPECT_EQ(r.site_text(p, 1), std::string(540, 'b'));
  EXPECT_EQ(r.site_text(p, 15), "?");
}

TEST(Registry, APerProcessLimitBoundsLiveAllocationsAndCountsTheRest) {
  RegistryLimits limits;
  limits.max_live_allocations_per_process = 10;
  Registry r(limits);
  ProcessState& greedy = r.process(1, 1, 0, "greedy");
  ProcessState& modest = r.process(2, 1, 0, "modest");
  for (std::uint64_t id = 1; id <= 15; ++id) r.event(greedy, alloc_event(0, id, 100));
  r.event(modest, alloc_event(0, 1, 100));  // another process is not held back by the greedy one
  EXPECT_EQ(greedy.usage[0].buffers, 10u);
  EXPECT_EQ(modest.usage[0].buffers, 1u);
  EXPECT_EQ(r.anomalies().limit_refused, 5u);
  r.event(greedy, free_event(0, 1));
  r.event(greedy, alloc_event(0, 16, 100));  // room again
  EXPECT_EQ(greedy.usage[0].buffers, 10u);
  EXPECT_EQ(r.anomalies().limit_refused, 5u);
}

}  // namespace
}  // namespace ttmem::model

namespace ttmem::model {
namespace {

TEST(Registry, NoFrameOfOneProcessCostsTheOtherProcessesBuffers) {
  // Closing a device and resynchronising used to scan the whole allocation table (2.2 ms per 12-byte
  // frame at 1M buffers): a client could freeze the server with a stream of tiny frames.
  Registry r;
  ProcessState& big = r.process(1, 1, 0, "big");
  for (std::uint64_t id = 1; id <= 100'000; ++id)
    r.event(big, alloc_event(static_cast<std::uint16_t>(id % 2), id, 1));
  ProcessState& small = r.process(2, 1, 0, "small");
  const std::uint64_t before = r.allocations().group_records_visited();
  for (int i = 0; i < 1000; ++i) {
    r.event(small, alloc_event(0, 1, 64));
    r.device_close(small, {0, ClosePhase::begin});
    r.device_close(small, {0, ClosePhase::end});  // a leak of 1 record each time
    r.device_open(small, open_device(0));
    r.snapshot_begin(small, {static_cast<std::uint64_t>(i)});
    r.snapshot_end(small, {static_cast<std::uint64_t>(i), 0});
  }
  // Only the small process's own records were ever visited: one per close.
  EXPECT_EQ(r.allocations().group_records_visited() - before, 1000u);
  EXPECT_EQ(r.allocations().size(), 100'000u);
  // And the same holds for the big process's device 1 when it closes device 0.
  r.device_close(big, {0, ClosePhase::end});
  EXPECT_EQ(r.allocations().group_records_visited() - before, 1000u + 50'000u);
  EXPECT_EQ(r.allocations().size(), 50'000u);
  EXPECT_EQ(r.process_died(big).total_buffers, 50'000u);
  EXPECT_EQ(r.allocations().size(), 0u);
}

TEST(Registry, SinksHearEveryChangeAndEventsOnlyWhenTheyAskForThem) {
  Registry r;
  Recorder quiet, loud;
  loud.events = true;
  r.add_sink(quiet);
  r.add_sink(loud);
  ProcessState& p = r.process(7, 1, 0, "p");
  r.sites(p, {{1, "model.py:3"}});
  r.device_open(p, open_device(0));
  r.event(p, alloc_event(0, 1, 100, BufferType::L1, AllocKind::owning, 1));
  r.event(p, alloc_event(0, 2, 200));
  r.event(p, free_event(0, 1));
  ASSERT_EQ(loud.applied.size(), 3u);
  EXPECT_TRUE(quiet.applied.empty());
  EXPECT_EQ(loud.applied[2].size, 100u);  // a free is shown with what it freed
  EXPECT_EQ(loud.applied[2].type, BufferType::L1);
  // A sink that starts wanting events says so, and hears the next ones.
  quiet.events = true;
  r.sinks_changed();
  r.event(p, alloc_event(0, 3, 300));
  EXPECT_EQ(quiet.applied.size(), 1u);
  r.device_close(p, {0, ClosePhase::begin});
  r.device_close(p, {0, ClosePhase::end});  // 2 and 3 still held: leaks, heard before the close ends
  EXPECT_EQ(loud.devices, (std::vector<std::string>{"open 0", "begin 0", "end 0"}));
  ASSERT_EQ(loud.leaks.size(), 2u);
  r.event(r.process(8, 1, 0, "q"), alloc_event(1, 9, 4096));
  r.remove_sink(quiet);
  r.process_died(*r.find_process(8));
  r.process_died(*r.find_process(7));  // held nothing: heard too, with nothing held
  ASSERT_EQ(loud.deaths.size(), 2u);
  EXPECT_EQ(loud.deaths[0].pid, 8);
  EXPECT_EQ(loud.deaths[0].total_bytes, 4096u);
  EXPECT_TRUE(loud.deaths[1].held.empty());
  EXPECT_TRUE(quiet.deaths.empty());  // removed before
}

TEST(Registry, TheDevicesViewNamesEachUserAndItsState) {
  Registry r;
  ProcessState& a = r.process(1, 1, 0, "a");
  ProcessState& b = r.process(2, 1, 0, "b");
  proto::DeviceOpen d = open_device(3);
  d.arch = static_cast<std::uint8_t>(Arch::blackhole);
  r.device_open(a, d);
  r.event(b, alloc_event(3, 1, 64));  // never opened it: implicit
  r.device_close(a, {3, ClosePhase::begin});
  const auto devices = devices_view(r);
  ASSERT_EQ(devices.size(), 1u);
  EXPECT_EQ(devices[0].id, 3);
  EXPECT_EQ(devices[0].arch, Arch::blackhole);
  EXPECT_EQ(devices[0].total[index(Slot::DRAM)], 12ull << 30);
  ASSERT_EQ(devices[0].processes.size(), 2u);
  EXPECT_EQ(devices[0].processes[0].state, DeviceUseState::closing);
  EXPECT_EQ(devices[0].processes[1].state, DeviceUseState::implicit);
  EXPECT_EQ(to_string(devices[0].processes[1].state), "implicit");
  EXPECT_FALSE(stats_view(Registry{}).devices.size());
}

TEST(Registry, TheHistoryShowsWhatAFreeFreedAndWhatTheRuntimeSaidOfTheAllocation) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.sites(p, {{7, "model.py:3"}});
  proto::EventRecord a = alloc_event(0, 42, 8192, BufferType::L1, AllocKind::kernel_binary, 7);
  a.flags = proto::kFlagInternal;
  a.num_banks = 64;
  a.size_per_bank = 128;
  a.mesh = 2;
  a.address = 0x4000;
  r.event(p, a);
  r.event(p, free_event(0, 42, ReleaseReason::close_internal));
  const auto history = r.recent_events(10);
  ASSERT_EQ(history.size(), 2u);
  const views::EventRow alloc = event_view(r, history[0]);
  EXPECT_EQ(alloc.op, EventOp::alloc);
  EXPECT_EQ(alloc.num_banks, 64u);
  EXPECT_EQ(alloc.size_per_bank, 128u);
  EXPECT_EQ(alloc.mesh, 2u);
  EXPECT_FALSE(alloc.reason);
  // A free names only its id; the history fills in what was freed from the live record.
  const views::EventRow freed = event_view(r, history[1]);
  EXPECT_EQ(freed.op, EventOp::free);
  EXPECT_EQ(freed.size, 8192u);
  EXPECT_EQ(freed.address, 0x4000u);
  EXPECT_EQ(freed.type, BufferType::L1);
  EXPECT_EQ(freed.kind, AllocKind::kernel_binary);
  EXPECT_TRUE(freed.internal);
  EXPECT_EQ(freed.site, "model.py:3");
  EXPECT_EQ(freed.name, "p");
  EXPECT_EQ(freed.reason, ReleaseReason::close_internal);
}

}  // namespace
}  // namespace ttmem::model
