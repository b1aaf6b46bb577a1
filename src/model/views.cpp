#include "views.hpp"

namespace ttmem::model {

namespace {

std::uint64_t buffer_count(const SlotFigures& usage) {
  std::uint64_t n = 0;
  for (const auto& f : usage) n += f.buffers;
  return n;
}

bool in_use(const ProcessDevice& pd) {
  return pd.state == ProcessDevice::State::open || pd.state == ProcessDevice::State::closing;
}

std::optional<Arch> arch_of(const DeviceState& d) {
  if (!d.announced) return std::nullopt;
  return enum_from<Arch>(d.arch);
}

}  // namespace

Stats stats_view(const Registry& registry) {
  Stats out;
  for (const auto& [id, d] : registry.devices()) {
    DeviceUsage& u = out.devices.emplace_back();
    u.id = id;
    u.arch = arch_of(d);
    for (std::size_t s = 0; s < kSlots; ++s) {
      u.memory[s] = {d.usage[s].bytes, d.usage[s].peak_bytes, d.usage[s].buffers, d.total_bytes[s]};
    }
    u.buffers = buffer_count(d.usage);
    for (const auto& [slot, p] : registry.processes()) {
      auto it = p.devices.find(id);
      if (it != p.devices.end() && (buffer_count(it->second.usage) > 0 || in_use(it->second))) ++u.processes;
    }
  }
  for (const auto& [slot, p] : registry.processes()) {
    for (const auto& [dev, pd] : p.devices) {
      const std::uint64_t buffers = buffer_count(pd.usage);
      if (buffers == 0 && !in_use(pd)) continue;
      ProcessUsage& row = out.processes.emplace_back();
      row.pid = p.pid;
      row.name = p.name;
      row.device = dev;
      for (std::size_t s = 0; s < kSlots; ++s) row.bytes[s] = pd.usage[s].bytes;
      row.buffers = buffers;
    }
  }
  out.active_allocations = registry.allocations().size();
  return out;
}

std::vector<DeviceInfo> devices_view(const Registry& registry) {
  std::vector<DeviceInfo> out;
  for (const auto& [id, d] : registry.devices()) {
    DeviceInfo& info = out.emplace_back();
    info.id = id;
    info.arch = arch_of(d);
    info.total = d.total_bytes;
    for (const auto& [slot, p] : registry.processes()) {
      auto it = p.devices.find(id);
      if (it == p.devices.end()) continue;
      info.processes.push_back({p.pid, p.name, it->second.state});
    }
  }
  return out;
}

}  // namespace ttmem::model
