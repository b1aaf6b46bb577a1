// The typed views, filled from the registry; see ledger_views.hpp.
#include "ledger_views.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <tuple>

namespace ttmem::model {

namespace {

bool in_use(const ProcessDevice& pd) {
  return pd.state == ProcessDevice::State::open || pd.state == ProcessDevice::State::closing;
}

std::optional<Arch> arch_of(const DeviceState& d) {
  if (!d.announced) return std::nullopt;
  return enum_from<Arch>(d.arch);
}

}  // namespace

std::optional<views::FreeSpace> free_space_view(const FreeSpaceFigures& f) {
  if (!f.known) return std::nullopt;
  return views::FreeSpace{f.free_per_bank * f.num_banks,
                          f.free_per_bank,
                          f.largest_free_block,
                          f.free_blocks,
                          f.num_banks,
                          f.bank_size,
                          f.unplaced_buffers + f.outside_buffers,
                          f.fragmentation()};
}

views::AddressMap map_view(const Registry& registry, std::uint16_t device, BufferType type) {
  const FreeSpaceMap map = free_space_map(registry, device, type, true);
  views::AddressMap out;
  out.device = device;
  out.type = type;
  out.base = map.figures.base;
  out.space = free_space_view(map.figures).value_or(views::FreeSpace{});
  out.overlapping_bytes = map.figures.overlapping_bytes;
  auto block = [&](const SpaceBlock& b) {
    views::MapBlock v{b.address, b.size, b.use, 0, 0, AllocKind::owning, false, {}, {}, b.buffers};
    if (b.record) {
      const ProcessState* p = registry.process_by_slot(b.record->process);
      v.pid = p ? p->pid : 0;
      v.id = b.record->id;
      v.kind = b.record->kind();
      v.internal = b.record->internal();
      const OriginText where = registry.origin(b.record->process, b.record->label);
      v.site = std::string(where.site);
      v.scope = std::string(where.scope);
    }
    return v;
  };
  out.blocks.reserve(map.blocks.size());
  for (const SpaceBlock& b : map.blocks) out.blocks.push_back(block(b));
  for (const SpaceBlock& b : map.circular_buffers) out.circular_buffers.push_back(block(b));
  return out;
}

views::OpList ops_view(const Registry& registry, const views::OpsQuery& q) {
  views::OpList out;
  for (const auto& entry : registry.processes()) {
    const ProcessState& p = entry.second;  // not a structured binding: the lambda below captures it
    if (q.pid && p.pid != *q.pid) continue;
    p.ops.for_each([&](const OpKey& k, const OpTally& t) {
      if (q.device && k.device != *q.device) return;
      const std::string_view scope = registry.site_text(p, k.scope);
      if (q.scope && scope.find(*q.scope) == std::string_view::npos) return;
      out.ops.push_back({p.pid, p.name, std::string(scope), k.device, k.slot, t.bytes, t.buffers, t.peak});
    });
  }
  out.total = out.ops.size();
  auto order = [](const views::OpUsage& a, const views::OpUsage& b) {
    if (a.peak != b.peak) return a.peak > b.peak;
    return std::tie(a.pid, a.scope, a.device, a.slot) < std::tie(b.pid, b.scope, b.device, b.slot);
  };
  if (out.ops.size() > q.limit) {
    std::partial_sort(out.ops.begin(), out.ops.begin() + static_cast<std::ptrdiff_t>(q.limit), out.ops.end(),
                      order);
    out.ops.resize(q.limit);
  } else {
    std::sort(out.ops.begin(), out.ops.end(), order);
  }
  return out;
}

std::vector<views::DeviceWarning> device_warnings(const views::DeviceUsage& u, std::vector<pid_t> holders) {
  std::vector<views::DeviceWarning> out;
  for (Slot slot : enum_values<Slot>()) {
    if (slot == Slot::CB) continue;  // CBs share L1 with L1 buffers and are counted per core: no total
    const views::SlotUsage& m = u.memory[index(slot)];
    if (m.total > 0 && m.used > m.total) {
      out.push_back(
          {std::string(views::kOverFull),
           fmt::format("{} holds {} B, more than the device's {} B: its reports overlap or a size is "
                       "wrong",
                       to_string(slot), m.used, m.total)});
    }
  }
  if (holders.size() > 1) {
    std::sort(holders.begin(), holders.end());
    std::string pids;
    for (pid_t p : holders) pids += fmt::format("{}{}", pids.empty() ? "" : ", ", p);
    out.push_back(
        {std::string(views::kShared),
         fmt::format("held by {} processes at once (pids {}); TT-Metal holds a chip one process at a "
                     "time, so one of them reports another chip's memory or a dead process's",
                     holders.size(), pids)});
  }
  return out;
}

views::Stats stats_view(const Registry& registry, FreeSpaceCache* cache) {
  views::Stats out;
  for (const auto& [id, d] : registry.devices()) {
    views::DeviceUsage& u = out.devices.emplace_back();
    u.id = id;
    u.arch = arch_of(d);
    for (Slot slot : enum_values<Slot>()) {
      const std::size_t s = index(slot);
      u.memory[s] = {d.usage[s].bytes, d.usage[s].peak_bytes, d.usage[s].buffers, d.total_bytes[s], {}};
      if (slot == Slot::CB) continue;  // CBs are not the allocator's: L1's free space leaves them out
      const BufferType type = memory_of(slot);
      u.memory[s].space =
          free_space_view(cache ? cache->get(registry, id, type) : free_space(registry, id, type));
    }
    u.buffers = buffer_count(d.usage);
    std::vector<pid_t> holders;
    for (const auto& [slot, p] : registry.processes()) {
      auto it = p.devices.find(id);
      if (it != p.devices.end() && (buffer_count(it->second.usage) > 0 || in_use(it->second))) {
        ++u.processes;
        holders.push_back(p.pid);
      }
    }
    u.warnings = device_warnings(u, holders);
  }
  for (const auto& [slot, p] : registry.processes()) {
    for (const auto& [dev, pd] : p.devices) {
      const std::uint64_t buffers = buffer_count(pd.usage);
      if (buffers == 0 && !in_use(pd)) continue;
      views::ProcessUsage& row = out.processes.emplace_back();
      row.pid = p.pid;
      row.name = p.name;
      row.command = p.command;
      row.device = dev;
      for (std::size_t s = 0; s < kSlots; ++s) row.bytes[s] = pd.usage[s].bytes;
      row.buffers = buffers;
    }
  }
  out.active_allocations = registry.allocations().size();
  return out;
}

std::vector<views::DeviceInfo> devices_view(const Registry& registry) {
  std::vector<views::DeviceInfo> out;
  for (const auto& [id, d] : registry.devices()) {
    views::DeviceInfo& info = out.emplace_back();
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

views::Leak leak_view(const LeakRecord& l) {
  return {l.pid,
          l.process_name,
          l.device,
          l.type,
          l.kind,
          l.id,
          l.size,
          l.address,
          l.site,
          l.scope,
          l.age_ns / 1'000'000,
          l.time_ns,
          l.swept_by_close,
          l.after_oom,
          l.seq};
}

views::Orphan orphan_view(const OrphanRecord& o) {
  views::Orphan out{o.pid,           o.process_name, o.time_ns, {},   o.total_bytes,
                    o.total_buffers, o.lines(),      {},        o.seq};
  for (const auto& w : o.origins) out.origins.push_back({w.site, w.scope, w.bytes, w.buffers});
  for (const auto& h : o.held) out.held.push_back({h.device, h.slot, h.bytes, h.buffers});
  return out;
}

namespace {

views::EventRow event_row(const proto::EventRecord& e, pid_t pid, std::string_view name,
                          std::string_view site, std::string_view scope, std::uint64_t time_ns) {
  views::EventRow row;
  row.op = e.op;
  row.pid = pid;
  row.name = name;
  row.device = e.device;
  row.type = e.type;
  row.kind = e.kind;
  row.id = e.id;
  row.size = e.size;
  row.address = e.address;
  row.site = site;
  row.scope = scope;
  row.internal = (e.flags & proto::kFlagInternal) != 0;
  row.num_banks = e.num_banks;
  row.size_per_bank = e.size_per_bank;
  row.mesh = e.mesh;
  row.timestamp_ns = e.timestamp_ns;
  row.time_ns = time_ns;
  if (e.op == EventOp::free) row.reason = e.reason;
  return row;
}

}  // namespace

views::EventRow event_view(const AppliedEvent& a) {
  return event_row(a.event, a.process->pid, a.process->name, a.site, a.scope, realtime_ns());
}

views::EventRow event_view(const Registry& registry, const HistoryEntry& h) {
  return event_row(h.event, h.pid, registry.process_name(h.process_slot),
                   registry.site_text(h.process_slot, h.event.site),
                   registry.site_text(h.process_slot, h.event.scope), h.time_ns);
}

}  // namespace ttmem::model
