// See ttmem/replay/replay.hpp.
#include "ttmem/replay/replay.hpp"

#include <algorithm>
#include <mutex>
#include <set>

#include "ttmem/replay/op_analysis.hpp"
#include "ttmem/runtime/allocator.hpp"

namespace ttmem::replay {

bridge::ChipInfo chip_geometry(Arch arch, TtDeviceId id, TtDeviceId mesh, const CaptureDevice* described) {
  bridge::ChipInfo chip;
  chip.id = id;
  chip.mesh = mesh;
  chip.arch = arch;
  chip.has_geometry = true;
  const emu::Allocator allocator(arch, emu::DeviceOptions{}, std::make_shared<std::recursive_mutex>());
  for (BufferType type : kManagedTypes) {
    const auto t = static_cast<std::size_t>(type);
    chip.num_banks[t] = allocator.num_banks(type);
    chip.total_bytes[t] = allocator.bank_size(type) * chip.num_banks[t];
    chip.base_address[t] = allocator.base_address(type);
  }
  if (described && described->l1_num_banks > 0 && described->l1_bank_size > 0) {
    const auto l1 = static_cast<std::size_t>(BufferType::L1);
    chip.num_banks[l1] = static_cast<std::uint32_t>(described->l1_num_banks);
    chip.total_bytes[l1] = described->l1_num_banks * described->l1_bank_size;
  }
  return chip;
}

ReplaySetup announce(const Capture& capture, bridge::Bridge& bridge, const ReplayOptions& options) {
  ReplaySetup setup;
  setup.meshes = capture.meshes;
  for (const auto& [mesh, chips] : options.meshes) setup.meshes[mesh] = chips;

  std::set<TtDeviceId> chips;
  for (const auto& [mesh, list] : setup.meshes) chips.insert(list.begin(), list.end());
  for (const Node& n : capture.nodes) {
    std::optional<TtDeviceId> device;
    switch (n.kind) {
      case NodeKind::buffer_allocate:
      case NodeKind::buffer:
      case NodeKind::buffer_deallocate:
        device = n.buffer.device;
        break;
      case NodeKind::circular_buffer_allocate:
      case NodeKind::dataflow_buffer_allocate:
      case NodeKind::scratchpad_allocate:
      case NodeKind::circular_buffer_deallocate_all:
        device = n.program.device;
        break;
      default:
        break;
    }
    if (device && !setup.meshes.contains(*device)) chips.insert(*device);
  }
  for (const Node* n : capture.buffers_before_capture()) {
    ++setup.buffers_before_capture;
    setup.bytes_before_capture[static_cast<std::size_t>(n->buffer.type)] += n->buffer.size;
  }

  const CaptureDevice* first_described = capture.devices.empty() ? nullptr : &capture.devices.front();
  if (options.arch) {
    setup.arch = *options.arch;
  } else if (first_described && first_described->arch) {
    setup.arch = *first_described->arch;
  } else {
    setup.arch = Arch::blackhole;
    setup.arch_assumed = true;
  }
  for (const auto& [mesh, list] : setup.meshes) bridge.add_mesh(mesh, list);
  for (TtDeviceId id : chips) {
    TtDeviceId mesh = 0;
    for (const auto& [m, list] : setup.meshes)
      if (std::find(list.begin(), list.end(), id) != list.end()) mesh = m;
    const CaptureDevice* described = nullptr;
    for (const CaptureDevice& d : capture.devices)
      if (d.id == id || (mesh != 0 && d.id == mesh)) described = &d;
    bridge.add_chip(chip_geometry(setup.arch, id, mesh, described));
    setup.chips.push_back(id);
  }
  return setup;
}

void feed(const Node& n, bridge::Bridge& bridge) {
  switch (n.kind) {
    case NodeKind::function_start:
      bridge.function_start(n.name);
      break;
    case NodeKind::function_end:
      bridge.function_end();
      break;
    case NodeKind::buffer_allocate:
      bridge.allocate(n.buffer);
      break;
    case NodeKind::buffer_deallocate:
      bridge.deallocate(n.buffer);
      break;
    case NodeKind::circular_buffer_allocate:
    case NodeKind::dataflow_buffer_allocate:
    case NodeKind::scratchpad_allocate:
      bridge.allocate_program_buffer(n.program);
      break;
    case NodeKind::circular_buffer_deallocate_all:
      bridge.deallocate_program_buffers(n.program.device);
      break;
    case NodeKind::capture_start:
    case NodeKind::capture_end:
    case NodeKind::tensor:
    case NodeKind::buffer:
    case NodeKind::unknown:
      break;
  }
}

void feed(const Capture& capture, bridge::Bridge& bridge) {
  for (const Node& n : capture.nodes) feed(n, bridge);
}

void feed(const Capture& capture, bridge::Bridge& bridge, OpAnalysis& analysis) {
  for (const Node& n : capture.nodes) {
    analysis.at_node(n.index);
    feed(n, bridge);
  }
}

}  // namespace ttmem::replay
