// The live TT-Metal processor: TT-Metal's GraphTracker calls, converted to the bridge's terms and handed
// to it; the bridge and libttmem do the rest (ttmem/bridge/bridge.hpp). Nothing else happens here: no
// allocation, no lock of TT-Metal's, no call back into TT-Metal beyond reading the buffer and device
// passed in.
//
// Built only against a TT-Metal tree (CMake: -DTTMEM_TT_METAL_ROOT=...), which also says what that
// version has (CMakeLists.txt greps its headers):
//   TTMEM_TT_METAL_CAPTURE_FLAG        IGraphProcessor::is_capture_processor()
//   TTMEM_TT_METAL_TRACKED_ARGUMENT    track_function_start takes std::span<TrackedArgument> (else std::any)
//   TTMEM_TT_METAL_PROGRAM_L1          track_allocate_dataflow_buffer / track_allocate_scratchpad
//   TTMEM_TT_METAL_BACKGROUND          internal::register_background_processor_once
#include "ttmem_tt_metal.h"

#include <tt-metalium/allocator.hpp>
#include <tt-metalium/buffer.hpp>
#include <tt-metalium/device.hpp>
#include <tt-metalium/graph_tracking.hpp>
#include <tt-metalium/mesh_device.hpp>
#ifdef TTMEM_TT_METAL_BACKGROUND
#include <tt-metalium/internal/graph_tracking.hpp>
#endif

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <unordered_set>

#include "ttmem/bridge/client_sink.hpp"

namespace ttmem::tt_metal_integration {

namespace {

namespace tm = ::tt::tt_metal;

/// The process's one bridge, shared by the processors of every thread. Never destroyed: TT-Metal may
/// report releases from static destructors after ours would have run.
struct Shared {
  bridge::ClientSink sink{client::Client::instance()};
  bridge::Bridge bridge{sink};
  std::mutex devices_mutex;
  std::unordered_set<const tm::IDevice*> known;
  std::atomic<std::uint64_t> errors{0};
  Shared() { sink.attach(bridge); }
};

Shared& shared() {
  static Shared* s = new Shared();
  return *s;
}

// TT-Metal's BufferType and TensorMemoryLayout have ttmem's numbers (ttmem/vocab.hpp says so).
BufferType type_of(tm::BufferType t) {
  return static_cast<BufferType>(static_cast<int>(t));
}
BufferLayout layout_of(tm::TensorMemoryLayout l) {
  return static_cast<BufferLayout>(static_cast<int>(l));
}

bridge::CoreRangeSet cores_of(const tm::CoreRangeSet& set) {
  bridge::CoreRangeSet out;
  for (const tm::CoreRange& r : set.ranges()) {
    out.ranges.push_back(
        {{static_cast<std::uint32_t>(r.start_coord.x), static_cast<std::uint32_t>(r.start_coord.y)},
         {static_cast<std::uint32_t>(r.end_coord.x), static_cast<std::uint32_t>(r.end_coord.y)}});
  }
  return out;
}

bridge::ChipInfo chip_of(const tm::IDevice* device, bridge::TtDeviceId mesh) {
  bridge::ChipInfo chip;
  chip.id = static_cast<bridge::TtDeviceId>(device->id());
  chip.mesh = mesh;
  chip.arch = device->arch() == tt::ARCH::BLACKHOLE ? Arch::blackhole : Arch::wormhole_b0;
  chip.has_geometry = true;
  const auto& allocator = device->allocator();
  for (tm::BufferType t :
       {tm::BufferType::DRAM, tm::BufferType::L1, tm::BufferType::L1_SMALL, tm::BufferType::TRACE}) {
    const auto i = static_cast<std::size_t>(t);
    chip.num_banks[i] = allocator->get_num_banks(t);
    chip.total_bytes[i] = std::uint64_t{allocator->get_bank_size(t)} * chip.num_banks[i];
  }
  return chip;
}

/// A device seen for the first time: its chips (a MeshDevice's, or itself) are announced.
void learn(const tm::IDevice* device) {
  Shared& s = shared();
  {
    std::lock_guard lock(s.devices_mutex);
    if (!s.known.insert(device).second) return;
  }
  if (const auto* mesh = dynamic_cast<const tm::distributed::MeshDevice*>(device)) {
    std::vector<bridge::TtDeviceId> chips;
    const auto mesh_id = static_cast<bridge::TtDeviceId>(mesh->id());
    for (const tm::IDevice* chip : mesh->get_devices()) {
      chips.push_back(static_cast<bridge::TtDeviceId>(chip->id()));
      {
        std::lock_guard lock(s.devices_mutex);
        if (!s.known.insert(chip).second) continue;
      }
      s.bridge.add_chip(chip_of(chip, mesh_id));
    }
    s.bridge.add_mesh(mesh_id, std::move(chips));
    return;
  }
  s.bridge.add_chip(chip_of(device, 0));
}

bridge::BufferInfo info_of(const tm::Buffer* b) {
  bridge::BufferInfo info;
  info.device = static_cast<bridge::TtDeviceId>(b->device()->id());
  info.unique_id = b->unique_id();
  info.address = b->address();
  info.size = b->size();
  info.page_size = b->page_size();
  info.max_size_per_bank = b->aligned_size_per_bank();
  info.type = type_of(b->buffer_type());
  info.layout = layout_of(b->buffer_layout());
  info.num_cores = b->num_cores().value_or(0);
  if (b->has_shard_spec()) info.shard_grid = cores_of(b->shard_spec().tensor_shard_spec.grid);
  // GraphTracker reports only buffers that own their memory: a mesh buffer's per-chip views never come.
  info.owns_data = true;
  return info;
}

/// Runs `f`, never letting an exception into TT-Metal (a tracking failure must not fail the program).
template <typename F>
void guarded(F&& f) noexcept {
  try {
    f();
  } catch (...) {
    shared().errors.fetch_add(1, std::memory_order_relaxed);
  }
}

class Processor final : public tm::IGraphProcessor {
 public:
  /// buffers: also track_allocate / track_deallocate (false when the background observer has them).
  explicit Processor(bool buffers) : buffers_(buffers) {}

#ifdef TTMEM_TT_METAL_CAPTURE_FLAG
  // Always registered: must not make GraphTracker::is_enabled() switch ttnn into capture behaviour.
  bool is_capture_processor() const override {
    return false;
  }
#endif

  void track_allocate(const tm::Buffer* buffer) override {
    if (!buffers_) return;
    guarded([&] {
      learn(buffer->device());
      shared().bridge.allocate(info_of(buffer));
    });
  }
  void track_deallocate(tm::Buffer* buffer) override {
    if (!buffers_) return;
    guarded([&] { shared().bridge.deallocate(info_of(buffer)); });
  }
  void track_allocate_cb(const tm::CoreRangeSet& cores, std::uint64_t addr, std::uint64_t size,
                         bool globally_allocated, const tm::IDevice* device) override {
    program_l1(bridge::ProgramBufferKind::circular_buffer, cores, addr, size, globally_allocated, device);
  }
#ifdef TTMEM_TT_METAL_PROGRAM_L1
  void track_allocate_dataflow_buffer(const tm::CoreRangeSet& cores, std::uint64_t addr, std::uint64_t size,
                                      bool borrows_memory, const tm::IDevice* device) override {
    program_l1(bridge::ProgramBufferKind::dataflow_buffer, cores, addr, size, borrows_memory, device);
  }
  void track_allocate_scratchpad(const tm::CoreRangeSet& cores, std::uint64_t addr, std::uint64_t size,
                                 const tm::IDevice* device) override {
    program_l1(bridge::ProgramBufferKind::scratchpad, cores, addr, size, false, device);
  }
#endif
  void track_deallocate_cb(const tm::IDevice* device) override {
    guarded(
        [&] { shared().bridge.deallocate_program_buffers(static_cast<bridge::TtDeviceId>(device->id())); });
  }
#ifdef TTMEM_TT_METAL_TRACKED_ARGUMENT
  void track_function_start(std::string_view name, std::span<tm::TrackedArgument>) override {
    guarded([&] { shared().bridge.function_start(name); });
  }
#else
  void track_function_start(std::string_view name, std::span<std::any>) override {
    guarded([&] { shared().bridge.function_start(name); });
  }
#endif
  void track_function_end() override {
    guarded([] { shared().bridge.function_end(); });
  }
  void track_function_end(const std::any&) override {
    guarded([] { shared().bridge.function_end(); });
  }

 private:
  void program_l1(bridge::ProgramBufferKind kind, const tm::CoreRangeSet& cores, std::uint64_t addr,
                  std::uint64_t size, bool tensor_backed, const tm::IDevice* device) {
    guarded([&] {
      learn(device);
      bridge::ProgramBufferInfo p;
      p.kind = kind;
      p.device = static_cast<bridge::TtDeviceId>(device->id());
      p.cores = cores_of(cores);
      p.address = addr;
      p.size = size;
      p.tensor_backed = tensor_backed;
      shared().bridge.allocate_program_buffer(p);
    });
  }

  bool buffers_;
};

#ifdef TTMEM_TT_METAL_BACKGROUND
constexpr bool kBackground = true;
#else
constexpr bool kBackground = false;
#endif

}  // namespace

}  // namespace ttmem::tt_metal_integration

using namespace ttmem::tt_metal_integration;

extern "C" int ttmem_tt_metal_enable(void) {
  if (!ttmem::client::Client::instance().enabled()) return -1;
  static std::once_flag once;
  std::call_once(once, [] {
    (void)shared();
    // Releases of buffers allocated before tracking began are counted, never passed on: say so once.
    std::atexit([] {
      const auto s = shared().bridge.stats();
      if (s.untracked_releases > 0 || shared().errors.load() > 0) {
        std::fprintf(stderr,
                     "ttmem: %llu release(s) of buffers allocated before tracking began (%llu B), not in "
                     "ttmemd's figures; %llu tracking error(s)\n",
                     static_cast<unsigned long long>(s.untracked_releases),
                     static_cast<unsigned long long>(s.untracked_release_bytes),
                     static_cast<unsigned long long>(shared().errors.load()));
      }
    });
#ifdef TTMEM_TT_METAL_BACKGROUND
    // Buffers on every thread, from one observer that is never popped.
    ::tt::tt_metal::internal::register_background_processor_once(
        typeid(Processor), [] { return std::make_shared<Processor>(true); });
#endif
  });
  ttmem_tt_metal_track_this_thread();
  return 0;
}

extern "C" void ttmem_tt_metal_track_this_thread(void) {
  thread_local bool pushed = false;
  if (pushed || !ttmem::client::Client::instance().enabled()) return;
  pushed = true;
  // With the background observer, this thread's processor takes only what GraphTracker gives the
  // thread-local list alone: program-scope L1 and the op stack.
  ::tt::tt_metal::GraphTracker::instance().push_processor(std::make_shared<Processor>(!kBackground));
}

extern "C" void ttmem_tt_metal_close_device(unsigned device_id) {
  guarded([&] {
    {
      // A device opened again (perhaps at the same address) is announced again.
      std::lock_guard lock(shared().devices_mutex);
      shared().known.clear();
    }
    shared().bridge.close_device(device_id);
    ttmem::client::Client::instance().flush();
  });
}

extern "C" unsigned long long ttmem_tt_metal_untracked_releases(void) {
  return shared().bridge.stats().untracked_releases;
}
