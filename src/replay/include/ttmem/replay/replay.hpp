// A capture fed through the bridge, node by node, as a live processor would have seen it: the capture's
// meshes and chips are announced first (with a geometry: the report file's, or the architecture's), then
// every function start/end, buffer, CB, dataflow buffer and scratchpad in order.
#pragma once

#include <optional>

#include "ttmem/bridge/bridge.hpp"
#include "ttmem/replay/capture.hpp"

namespace ttmem::replay {

struct ReplayOptions {
  /// The chips' architecture; default: the report file's devices, else Blackhole (the architecture of
  /// TT-Metal's published captures), said so in `ReplaySetup::arch_assumed`.
  std::optional<Arch> arch;
  /// MeshDevice -> chips, beyond what the capture's device_tensors say (a capture that names none).
  std::map<TtDeviceId, std::vector<TtDeviceId>> meshes;
};

/// What the capture holds before it is fed: its chips and the buffers it never saw allocated.
struct ReplaySetup {
  Arch arch = Arch::blackhole;
  bool arch_assumed = false;
  std::vector<TtDeviceId> chips;                         ///< physical chips, ascending
  std::map<TtDeviceId, std::vector<TtDeviceId>> meshes;  ///< as announced
  /// Buffers the capture names (tensors' buffers) but whose allocation it never saw: allocated before the
  /// capture began. Their bytes are real device memory the per-op figures cannot include.
  std::size_t buffers_before_capture = 0;
  std::array<std::uint64_t, kBufferTypes> bytes_before_capture{};
};

/// The chip geometry of an architecture as TT-Metal's allocator sets it up (from the emulator, which
/// follows it; docs/runtime.md), with what a report file's device section says laid over it.
bridge::ChipInfo chip_geometry(Arch arch, TtDeviceId id, TtDeviceId mesh, const CaptureDevice* described);

/// Works out the chips and meshes and announces them to the bridge.
ReplaySetup announce(const Capture& capture, bridge::Bridge& bridge, const ReplayOptions& options = {});
/// Feeds every node to the bridge, in order.
void feed(const Capture& capture, bridge::Bridge& bridge);
/// The same for one node (a driver that does something between nodes).
void feed(const Node& node, bridge::Bridge& bridge);
/// Every node, telling `analysis` (the bridge's sink, or one of its sinks) which node it is at.
void feed(const Capture& capture, bridge::Bridge& bridge, class OpAnalysis& analysis);

}  // namespace ttmem::replay
