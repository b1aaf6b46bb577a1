// The bridge from TT-Metal's GraphTracker to ttmem. TT-Metal hands its graph processors buffers, circular
// buffers, dataflow buffers, scratchpads and function start/end; the bridge takes the same facts in
// TT-Metal's terms (without TT-Metal's types, so it is built and tested here) and turns them into ttmem's
// allocations on physical chips, handed to a Sink: libttmem for a live process (ClientSink), or an
// analysis of a recorded capture. A live processor (integrations/tt-metal) and `ttmem replay` go through
// this one code, so the capture tests are the processor's tests.
//
// What it settles that GraphTracker leaves to its processors:
// - A buffer on a MeshDevice is its backing buffer: one allocation per chip of the mesh, at the same
//   address (TT-Metal's per-chip buffers of a mesh buffer do not own their data and are never reported).
// - Program-scope L1 (CBs, dataflow buffers, scratchpads) has no release event: TT-Metal only says
//   "everything of this device's previous program is gone" (track_deallocate_cb). The bridge keeps its
//   own records with ids of its making and releases each.
// - A CB or dataflow buffer backed by a tensor (globally allocated, borrows memory) holds no bytes of its
//   own: it is handed on marked so, and counted apart.
// - A release of a buffer whose allocation it never saw (allocated before tracking began) is counted and
//   its bytes summed, not passed on.
// - Device ids: a chip's and a MeshDevice's come from one counter in TT-Metal; events name either.
//
// Thread-safe: one bridge per process, shared by the processors of every thread; the op stack is per
// thread. The sink is called with the bridge's lock held, so a sink that lists the live picture under
// the same lock (snapshot) sees every event either in the list or after it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "ttmem/bridge/core_range.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::bridge {

/// A TT-Metal device id: a chip's (IDevice::id) or a MeshDevice's.
using TtDeviceId = std::uint32_t;

/// What track_allocate / track_deallocate see of a tt_metal::Buffer.
struct BufferInfo {
  TtDeviceId device = 0;  ///< buffer->device()->id(): a MeshDevice (backing buffer) or a chip
  std::uint64_t unique_id = 0;
  std::uint64_t address = 0;
  std::uint64_t size = 0;  ///< the whole buffer, all banks
  std::uint64_t page_size = 0;
  std::uint64_t max_size_per_bank = 0;  ///< aligned_size_per_bank(): what each bank (core) holds
  BufferType type = BufferType::DRAM;
  BufferLayout layout = BufferLayout::interleaved;
  std::uint32_t num_cores = 0;  ///< sharded: the cores of its shards; 0: interleaved
  /// The shard grid, where known (a capture prints it in the tensor's memory config).
  std::optional<CoreRangeSet> shard_grid;
  bool owns_data = true;           ///< false: a view at another buffer's address (not memory of its own)
  std::uint64_t timestamp_ns = 0;  ///< 0: when it is reported
};

/// Program-scope L1, on every core of a core range set.
enum class ProgramBufferKind : std::uint8_t { circular_buffer, dataflow_buffer, scratchpad };
std::string_view to_string(ProgramBufferKind kind);

struct ProgramBufferInfo {
  ProgramBufferKind kind = ProgramBufferKind::circular_buffer;
  TtDeviceId device = 0;
  CoreRangeSet cores;
  std::uint64_t address = 0;
  std::uint64_t size = 0;  ///< per core
  /// globally_allocated (CB) or borrows_memory (dataflow buffer): its bytes are a tensor's.
  bool tensor_backed = false;
  std::uint64_t timestamp_ns = 0;
};

/// A chip as the sink learns of it. Geometry (totals, banks, bases by BufferType value) is optional: a
/// live processor reads it from the device's allocator; a replay from the architecture.
struct ChipInfo {
  TtDeviceId id = 0;
  TtDeviceId mesh = 0;  ///< the MeshDevice it belongs to; 0: none known
  Arch arch = Arch::wormhole_b0;
  bool has_geometry = false;
  std::array<std::uint64_t, kBufferTypes> total_bytes{};
  std::array<std::uint32_t, kBufferTypes> num_banks{};
  std::array<std::uint64_t, kBufferTypes> base_address{};
};

/// One allocation on one chip, as the sink gets it.
struct Allocation {
  std::uint16_t chip = 0;
  TtDeviceId mesh = 0;  ///< the MeshDevice it was made on (0: a chip's own buffer)
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;    ///< the buffer's unique id, or one of the bridge's own for program-scope L1
  std::uint64_t size = 0;  ///< whole buffer; per core for program-scope L1
  std::uint64_t address = 0;
  std::uint64_t page_size = 0;
  std::uint32_t num_banks = 0;  ///< banks or cores it spans
  std::uint64_t size_per_bank = 0;
  BufferLayout layout = BufferLayout::interleaved;
  std::optional<ProgramBufferKind> program;  ///< set for program-scope L1
  /// The cores it is on: a program buffer's range set, a sharded buffer's grid where known; null: every
  /// bank of its type (interleaved) or unknown cores (sharded, grid not given).
  std::shared_ptr<const CoreRangeSet> cores;
  bool tensor_backed = false;  ///< holds no bytes of its own (counted apart, never as memory)
  std::string_view site;       ///< innermost function ("" outside any)
  std::string_view op;         ///< the function stack, "outer/inner" ("" outside any)
  std::uint64_t timestamp_ns = 0;
};

/// Where the bridge's reports go. Every call is made with the bridge's lock held.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual void chip_added(const ChipInfo& /*chip*/) {}
  virtual void function_started(std::string_view /*name*/, std::string_view /*op*/) {}
  virtual void function_ended(std::string_view /*name*/, std::string_view /*op*/) {}
  virtual void allocated(const Allocation& allocation) = 0;
  virtual void released(const Allocation& allocation, ReleaseReason reason) = 0;
  virtual void chip_closing(std::uint16_t /*chip*/, ClosePhase /*phase*/) {}
};

/// What the bridge saw that did not become an allocation, and totals of what did.
struct BridgeStats {
  std::uint64_t buffers_allocated = 0;
  std::uint64_t buffers_released = 0;
  std::uint64_t untracked_releases = 0;  ///< releases of buffers allocated before tracking began
  std::uint64_t untracked_release_bytes = 0;
  std::uint64_t views_skipped = 0;  ///< buffers that do not own their data
  std::uint64_t program_buffers = 0;
  std::uint64_t program_buffers_released = 0;
  std::uint64_t tensor_backed = 0;          ///< CBs and dataflow buffers on a tensor's memory
  std::uint64_t duplicate_allocations = 0;  ///< a live unique id allocated again (the older one released)
  std::uint64_t unmatched_function_ends = 0;
  std::uint64_t implicit_chips = 0;        ///< device ids seen in an event before being added
  std::uint64_t devices_out_of_range = 0;  ///< chip ids past the wire's 16 bits: their events are left out
};

class Bridge {
 public:
  /// The bridge's own ids (program-scope L1) have this bit set; TT-Metal's unique ids never do.
  static constexpr std::uint64_t kProgramIdBit = std::uint64_t{1} << 63;

  explicit Bridge(Sink& sink) : sink_(sink) {}
  Bridge(const Bridge&) = delete;
  Bridge& operator=(const Bridge&) = delete;

  /// A chip, with its geometry if known. Chips named by an event before this are added without.
  void add_chip(const ChipInfo& chip);
  /// A MeshDevice and its chips (in TT-Metal's order). Its buffers become one allocation per chip.
  void add_mesh(TtDeviceId mesh, std::vector<TtDeviceId> chips);

  // GraphTracker's calls.
  void allocate(const BufferInfo& buffer);
  void deallocate(const BufferInfo& buffer);
  void allocate_program_buffer(const ProgramBufferInfo& buffer);
  /// track_deallocate_cb / circular_buffer_deallocate_all: every program-scope buffer of the device.
  void deallocate_program_buffers(TtDeviceId device);
  void function_start(std::string_view name);
  void function_end();

  /// The device is closing: its program-scope buffers go (the program cache with it), then the sink
  /// hears close begin and end; what is still allocated on it then is the process's leak.
  void close_device(TtDeviceId device);

  /// Lists the chips and every live allocation, under the lock, after calling `begin`.
  void snapshot(const std::function<void()>& begin, const std::function<void(const ChipInfo&)>& chip,
                const std::function<void(const Allocation&)>& allocation) const;

  BridgeStats stats() const;
  /// The physical chips a TT-Metal device id stands for.
  std::vector<std::uint16_t> chips_of(TtDeviceId device);

 private:
  struct Frame {
    std::string_view name;
    std::string_view op;
  };
  struct LiveBuffer {
    Allocation allocation;  ///< chip unset: one per chip in `chips`
    std::vector<std::uint16_t> chips;
  };

  std::string_view intern(std::string_view text);
  std::vector<std::uint16_t> resolve(TtDeviceId device);  // lock held
  const Frame* current_frame() const;
  void stamp(Allocation& a) const;
  void release_program_buffers(std::uint16_t chip, ReleaseReason reason);

  Sink& sink_;
  mutable std::mutex mutex_;
  std::unordered_set<std::string> strings_;
  std::unordered_map<TtDeviceId, ChipInfo> chips_;
  std::unordered_map<TtDeviceId, std::vector<TtDeviceId>> meshes_;
  std::unordered_map<std::uint64_t, LiveBuffer> buffers_;
  std::unordered_map<std::uint16_t, std::vector<Allocation>> program_buffers_;
  std::unordered_map<std::thread::id, std::vector<Frame>> frames_;
  std::uint64_t next_program_id_ = 0;
  BridgeStats stats_;
};

}  // namespace ttmem::bridge
