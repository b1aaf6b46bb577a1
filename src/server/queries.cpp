// Query answers; see queries.hpp.
#include "queries.hpp"

#include <algorithm>
#include <stdexcept>

namespace ttmem::server {

using nlohmann::json;

json query_error_json(ErrorCode code, std::string_view text) {
  return {{"error", text}, {"code", to_string(code)}};
}

std::string to_wire_text(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

namespace {

template <typename T>
std::optional<T> optional_field(const json& q, const char* name) {
  if (!q.contains(name) || q[name].is_null()) return std::nullopt;
  try {
    return q[name].get<T>();
  } catch (const json::exception&) {
    throw QueryFailure(ErrorCode::bad_query, std::string("field '") + name + "' has the wrong type");
  }
}

}  // namespace

BufferFilter parse_buffer_filter(const json& q) {
  BufferFilter f;
  if (auto d = optional_field<std::int64_t>(q, "device")) {
    if (*d < 0 || *d > 65535) throw QueryFailure(ErrorCode::bad_query, "field 'device' is out of range");
    f.device = static_cast<std::uint16_t>(*d);
  }
  if (auto p = optional_field<std::int64_t>(q, "pid")) f.pid = static_cast<pid_t>(*p);
  if (auto t = optional_field<std::string>(q, "buffer_type")) {
    f.type = parse_enum<BufferType>(*t);
    if (!f.type)
      throw QueryFailure(ErrorCode::bad_query,
                         "unknown buffer_type '" + *t + "' (" + names_of(kManagedTypes) + ")");
  }
  if (auto k = optional_field<std::string>(q, "kind")) {
    f.kind = parse_enum<AllocKind>(*k);
    if (!f.kind)
      throw QueryFailure(ErrorCode::bad_query,
                         "unknown kind '" + *k + "' (" + names_of(enum_values<AllocKind>()) + ")");
  }
  if (auto l = optional_field<std::int64_t>(q, "limit")) {
    if (*l < 0) throw QueryFailure(ErrorCode::bad_query, "field 'limit' must not be negative");
    f.limit = static_cast<std::size_t>(*l);
  }
  return f;
}

json stats_json(const model::Stats& stats) {
  json devices = json::array();
  for (const auto& d : stats.devices) {
    json memory = json::object();
    for (Slot slot : enum_values<Slot>()) {
      const auto& m = d.memory[index(slot)];
      memory[std::string(to_string(slot))] = {
          {"used", m.used}, {"peak", m.peak}, {"buffers", m.buffers}, {"total", m.total}};
    }
    devices.push_back({{"id", d.id},
                       {"arch", d.arch ? json(to_string(*d.arch)) : json(nullptr)},
                       {"memory", memory},
                       {"buffers", d.buffers},
                       {"processes", d.processes}});
  }
  json processes = json::array();
  for (const auto& p : stats.processes) {
    json row = {{"pid", p.pid}, {"name", p.name}, {"device", p.device}};
    for (Slot slot : enum_values<Slot>()) row[std::string(to_string(slot))] = p.bytes[index(slot)];
    row["buffers"] = p.buffers;
    processes.push_back(row);
  }
  return {{"devices", devices}, {"processes", processes}, {"active_allocations", stats.active_allocations}};
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

json devices_json(const std::vector<model::DeviceInfo>& devices) {
  json out = json::array();
  for (const auto& d : devices) {
    json total = json::object();
    for (Slot slot : enum_values<Slot>()) total[std::string(to_string(slot))] = d.total[index(slot)];
    json users = json::array();
    for (const auto& u : d.processes)
      users.push_back({{"pid", u.pid}, {"name", u.name}, {"state", to_string(u.state)}});
    out.push_back({{"id", d.id},
                   {"arch", d.arch ? json(to_string(*d.arch)) : json(nullptr)},
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
