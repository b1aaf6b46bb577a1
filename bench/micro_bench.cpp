// In-process figures with Google Benchmark: the emulated allocator, the server's registry and table,
// the protocol codec.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <deque>
#include <random>

#include "allocation_table.hpp"
#include "free_space.hpp"
#include "oom_record.hpp"
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

/// What ttmemd does with the EVENTS frames of four tracked processes, each holding 1,024 live buffers
/// and churning: validate a frame, read its records, apply them. Per event; the socket is not in it.
void BM_IngestFrames(benchmark::State& state) {
  constexpr std::uint64_t kPerFrame = 512;  // allocs (and as many frees) per frame
  constexpr std::uint64_t kFrames = 64;     // frames in a cycle; ids wrap after it, so the state repeats
  constexpr std::uint64_t kWindow = kPerFrame * kFrames;
  model::Registry registry;
  std::vector<model::ProcessState*> processes;
  for (int i = 1; i <= 4; ++i) processes.push_back(&registry.process(i, 1, 0, "bench"));
  proto::EventRecord a;
  a.op = proto::EventOp::alloc;
  a.type = BufferType::DRAM;
  a.size = 4096;
  proto::EventRecord f;
  f.op = proto::EventOp::free;
  for (auto* p : processes) {  // what frames -2 and -1 allocated
    for (std::uint64_t id = kWindow - 2 * kPerFrame; id < kWindow; ++id) {
      a.id = id;
      registry.event(*p, a);
    }
  }
  std::vector<std::vector<std::uint8_t>> frames(kFrames);
  for (std::uint64_t n = 0; n < kFrames; ++n) {
    std::vector<proto::EventRecord> events;
    for (std::uint64_t k = 0; k < kPerFrame; ++k) {
      a.id = n * kPerFrame + k;
      f.id = (a.id + kWindow - 2 * kPerFrame) % kWindow;
      events.push_back(a);
      events.push_back(f);
    }
    proto::encode(frames[n], std::span<const proto::EventRecord>(events));
  }
  std::uint64_t n = 0;
  for (auto _ : state) {
    const auto& frame = frames[n++ % kFrames];
    const std::span<const std::uint8_t> payload(frame.data() + proto::kFrameHeaderSize,
                                                frame.size() - proto::kFrameHeaderSize);
    for (auto* p : processes) {
      if (proto::validate_events(payload)) state.SkipWithError("invalid frame");
      registry.set_batch_time(ttmem::realtime_ns());
      for (std::size_t i = 0; i < 2 * kPerFrame; ++i) registry.event(*p, proto::event_at(payload, i));
    }
  }
  if (registry.anomalies().free_unknown_id != 0) state.SkipWithError("a free of an id not live");
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(processes.size() * 2 * kPerFrame));
}
BENCHMARK(BM_IngestFrames);

/// A registry with `n` live DRAM buffers on an announced Wormhole device (12 banks of 1 GiB), placed in
/// lockstep with a gap after every tenth: what the free-space map and OOM records are built from. They are
/// reported in a shuffled order, as after churn, so the table does not hold them by address.
model::ProcessState& device_with_buffers(model::Registry& registry, std::int64_t n) {
  auto& p = registry.process(1, 1, 0, "bench");
  proto::DeviceOpen open;
  open.total_bytes[index(BufferType::DRAM)] = 12ull << 30;
  open.num_banks[index(BufferType::DRAM)] = 12;
  registry.device_open(p, open);
  proto::EventRecord a;
  a.op = proto::EventOp::alloc;
  a.size = 12 * 2048;
  a.size_per_bank = 2048;
  a.num_banks = 12;
  std::vector<std::uint64_t> addresses;
  std::uint64_t address = 0;
  for (std::int64_t i = 0; i < n; ++i) {
    addresses.push_back(address);
    address += i % 10 == 9 ? 4096 : 2048;
  }
  std::shuffle(addresses.begin(), addresses.end(), std::mt19937_64(42));
  for (std::int64_t i = 0; i < n; ++i) {
    a.id = static_cast<std::uint64_t>(i);
    a.address = addresses[static_cast<std::size_t>(i)];
    registry.event(p, a);
  }
  return p;
}

/// The out-of-memory record of a device with 100k live buffers: holders, largest buffers, free map, verdict.
void BM_OomRecord(benchmark::State& state) {
  model::Registry registry;
  auto& p = device_with_buffers(registry, state.range(0));
  proto::AllocFailure f;
  f.type = BufferType::DRAM;
  f.size = 12ull << 30;
  f.num_banks = 12;
  f.size_per_bank = 1ull << 30;
  std::uint64_t id = 0;
  for (auto _ : state) benchmark::DoNotOptimize(model::build_oom_record(registry, p, f, ++id));
}
BENCHMARK(BM_OomRecord)->Arg(100'000)->Unit(benchmark::kMillisecond);

/// Free, largest free block and block count of that device, computed afresh (a stats answer after change).
void BM_FreeSpaceFigures(benchmark::State& state) {
  model::Registry registry;
  device_with_buffers(registry, state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(model::free_space(registry, 0, BufferType::DRAM));
}
BENCHMARK(BM_FreeSpaceFigures)->Arg(100'000)->Unit(benchmark::kMillisecond);

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
