// In-process figures with Google Benchmark: the emulated allocator, the server's registry and table,
// the protocol codec.
#include <benchmark/benchmark.h>

#include <deque>

#include "allocation_table.hpp"
#include "registry.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/runtime/device.hpp"

namespace {

using namespace ttmem;

/// Alloc + free pair on one device allocator holding 10,000 live buffers (the figure).
void BM_AllocatorAllocFreePair(benchmark::State& state) {
  emu::Allocator alloc(emu::Arch::wormhole_b0, {});
  std::lock_guard lock(alloc.mutex());
  const emu::ReservationRequest r{emu::BufferType::DRAM, 12 * 2048, 2048, std::nullopt,
                                  emu::Placement::bottom_up};
  for (int i = 0; i < state.range(0); ++i) alloc.reserve(r);
  for (auto _ : state) {
    const auto got = alloc.reserve(r);
    alloc.release(emu::BufferType::DRAM, got.address);
    benchmark::DoNotOptimize(got);
  }
}
BENCHMARK(BM_AllocatorAllocFreePair)->Arg(10'000);

/// The same through the whole Buffer path (shared_ptr, registry, tracker with no processors).
void BM_BufferCreateDeallocate(benchmark::State& state) {
  emu::MeshDeviceConfig c;
  auto mesh = emu::MeshDevice::open(c);
  std::vector<std::shared_ptr<emu::Buffer>> live;
  emu::BufferConfig b;
  b.type = emu::BufferType::DRAM;
  b.size = 12 * 2048;
  b.page_size = 2048;
  for (int i = 0; i < state.range(0); ++i) live.push_back(mesh->device(0).create_buffer(b));
  for (auto _ : state) {
    auto buf = mesh->device(0).create_buffer(b);
    buf->deallocate();
  }
}
BENCHMARK(BM_BufferCreateDeallocate)->Arg(10'000);

/// Registry apply rate, single-threaded: an alloc and a free per iteration on a table of 1,000 live.
void BM_RegistryApplyPair(benchmark::State& state) {
  model::Registry registry;
  registry.set_batch_time(ttmem::realtime_ns());  // as ttmemd does once per received batch
  auto& p = registry.process(1, 1, 0, "bench");
  proto::EventRecord a;
  a.op = proto::EventOp::alloc;
  a.size = 4096;
  proto::EventRecord f;
  f.op = proto::EventOp::free;
  std::uint64_t id = 0;
  for (; id < 1000; ++id) {
    a.id = id;
    registry.event(p, a);
  }
  for (auto _ : state) {
    a.id = id;
    registry.event(p, a);
    f.id = id - 1000;
    registry.event(p, f);
    ++id;
  }
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_RegistryApplyPair);

/// Encoding and validating a full EVENTS frame, per record.
void BM_ProtocolEventRoundTrip(benchmark::State& state) {
  std::vector<proto::EventRecord> events(4096);
  for (std::size_t i = 0; i < events.size(); ++i) events[i].id = i;
  std::vector<std::uint8_t> out;
  for (auto _ : state) {
    out.clear();
    proto::encode(out, std::span<const proto::EventRecord>(events));
    std::span<const std::uint8_t> payload(out.data() + proto::kFrameHeaderSize,
                                          out.size() - proto::kFrameHeaderSize);
    benchmark::DoNotOptimize(proto::validate_events(payload));
    std::uint64_t sum = 0;
    for (std::size_t i = 0; i < events.size(); ++i) sum += proto::event_at(payload, i).id;
    benchmark::DoNotOptimize(sum);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(events.size()));
}
BENCHMARK(BM_ProtocolEventRoundTrip);

}  // namespace

BENCHMARK_MAIN();
