// Query answers; see queries.hpp.
#include "queries.hpp"

#include <algorithm>
#include <stdexcept>

namespace ttmem::server {

using nlohmann::json;

std::string_view arch_name(std::uint8_t arch) {
  const auto a = enum_from<Arch>(arch);
  return a ? to_string(*a) : "?";
}

std::string to_wire_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

json slots_json(const SlotFigures& usage, const std::array<std::uint64_t, kSlots>* totals) {
  json out = json::object();
  for (std::size_t s = 0; s < kSlots; ++s) {
    json f = {{"used", usage[s].bytes}, {"peak", usage[s].peak_bytes}, {"buffers", usage[s].buffers}};
    if (totals) f["total"] = (*totals)[s];
    out[std::string(to_string(static_cast<Slot>(s)))] = f;
  }
  return out;
}

std::uint64_t buffer_count(const SlotFigures& usage) {
  std::uint64_t n = 0;
  for (const auto& f : usage) n += f.buffers;
  return n;
}

template <typename T>
std::optional<T> optional_field(const json& q, const char* name) {
  if (!q.contains(name) || q[name].is_null()) return std::nullopt;
  try {
    return q[name].get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument(std::string("field '") + name + "' has the wrong type");
  }
}

}  // namespace

BufferFilter parse_buffer_filter(const json& q) {
  BufferFilter f;
  if (auto d = optional_field<std::int64_t>(q, "device")) {
    if (*d < 0 || *d > 65535) throw std::invalid_argument("field 'device' is out of range");
    f.device = static_cast<std::uint16_t>(*d);
  }
  if (auto p = optional_field<std::int64_t>(q, "pid")) f.pid = static_cast<pid_t>(*p);
  if (auto t = optional_field<std::string>(q, "buffer_type")) {
    f.type = parse_enum<BufferType>(*t);
    if (!f.type)
      throw std::invalid_argument("unknown buffer_type '" + *t + "' (" + names_of(kManagedTypes) + ")");
  }
  if (auto k = optional_field<std::string>(q, "kind")) {
    f.kind = parse_enum<AllocKind>(*k);
    if (!f.kind)
      throw std::invalid_argument("unknown kind '" + *k + "' (" + names_of(enum_values<AllocKind>()) + ")");
  }
  if (auto l = optional_field<std::int64_t>(q, "limit")) {
    if (*l < 0) throw std::invalid_argument("field 'limit' must not be negative");
    f.limit = static_cast<std::size_t>(*l);
  }
  return f;
}

json stats_json(const Registry& registry) {
  json devices = json::array();
  for (const auto& [id, d] : registry.devices()) {
    std::uint64_t processes = 0;
    for (const auto& [slot, p] : registry.processes()) {
      auto it = p.devices.find(id);
      if (it != p.devices.end() &&
          (buffer_count(it->second.usage) > 0 || it->second.state == ProcessDevice::State::open ||
           it->second.state == ProcessDevice::State::closing)) {
        ++processes;
      }
    }
    devices.push_back({{"id", id},
                       {"arch", d.announced ? json(arch_name(d.arch)) : json(nullptr)},
                       {"memory", slots_json(d.usage, &d.total_bytes)},
                       {"buffers", buffer_count(d.usage)},
                       {"processes", processes}});
  }
  json processes = json::array();
  for (const auto& [slot, p] : registry.processes()) {
    for (const auto& [dev, pd] : p.devices) {
      const bool holds = buffer_count(pd.usage) > 0;
      const bool open = pd.state == ProcessDevice::State::open || pd.state == ProcessDevice::State::closing;
      if (!holds && !open) continue;
      json row = {{"pid", p.pid}, {"name", p.name}, {"device", dev}};
      for (std::size_t s = 0; s < kSlots; ++s)
        row[std::string(to_string(static_cast<Slot>(s)))] = pd.usage[s].bytes;
      row["buffers"] = buffer_count(pd.usage);
      processes.push_back(row);
    }
  }
  return {
      {"devices", devices}, {"processes", processes}, {"active_allocations", registry.allocations().size()}};
}

json leak_json(const LeakRecord& l) {
  return {{"pid", l.pid},
          {"name", l.process_name},
          {"device", l.device},
          {"type", proto::to_string(l.type)},
          {"kind", proto::to_string(l.kind)},
          {"id", l.id},
          {"size", l.size},
          {"address", l.address},
          {"site", l.site},
          {"age_ms", l.age_ns / 1'000'000},
          {"time_ns", l.time_ns},
          {"cause", l.swept_by_close ? "held at close (swept)" : "never released by the close sequence"}};
}

json orphan_json(const OrphanRecord& o) {
  json held = json::array();
  for (const auto& h : o.held) {
    held.push_back(
        {{"device", h.device}, {"type", to_string(h.slot)}, {"bytes", h.bytes}, {"buffers", h.buffers}});
  }
  return {{"pid", o.pid},           {"name", o.process_name},     {"time_ns", o.time_ns}, {"held", held},
          {"bytes", o.total_bytes}, {"buffers", o.total_buffers}, {"messages", o.lines()}};
}

json devices_json(const Registry& registry) {
  json out = json::array();
  for (const auto& [id, d] : registry.devices()) {
    json total = json::object();
    for (std::size_t s = 0; s < kSlots; ++s)
      total[std::string(to_string(static_cast<Slot>(s)))] = d.total_bytes[s];
    json users = json::array();
    for (const auto& [slot, p] : registry.processes()) {
      auto it = p.devices.find(id);
      if (it == p.devices.end()) continue;
      const char* state = "implicit";
      switch (it->second.state) {
        case ProcessDevice::State::open:
          state = "open";
          break;
        case ProcessDevice::State::closing:
          state = "closing";
          break;
        case ProcessDevice::State::closed:
          state = "closed";
          break;
        case ProcessDevice::State::implicit:
          break;
      }
      users.push_back({{"pid", p.pid}, {"name", p.name}, {"state", state}});
    }
    out.push_back({{"id", id},
                   {"arch", d.announced ? json(arch_name(d.arch)) : json(nullptr)},
                   {"total", total},
                   {"processes", users}});
  }
  return {{"devices", out}};
}

namespace {

json record_json(const proto::EventRecord& e, pid_t pid, std::string_view name, std::string_view site) {
  json j = {{"event", e.op == proto::EventOp::alloc ? "alloc" : "free"},
            {"pid", pid},
            {"name", name},
            {"device", e.device},
            {"type", proto::to_string(e.type)},
            {"kind", proto::to_string(e.kind)},
            {"id", e.id},
            {"size", e.size},
            {"address", e.address},
            {"site", std::string(site)},
            {"timestamp_ns", e.timestamp_ns}};
  if (e.op == proto::EventOp::free) j["reason"] = proto::to_string(e.reason);
  return j;
}

}  // namespace

json event_json(const AppliedEvent& a) {
  json j = record_json(a.event, a.process->pid, a.process->name, a.site);
  j["time_ns"] = realtime_ns();
  return j;
}

json history_entry_json(const Registry& registry, const HistoryEntry& h) {
  json j = record_json(h.event, h.pid, registry.process_name(h.process_slot),
                       registry.site_text(h.process_slot, h.event.site));
  j["time_ns"] = h.time_ns;
  return j;
}

}  // namespace ttmem::server
