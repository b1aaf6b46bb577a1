// `stats` and `devices`: usage per device and process, and what is known of each device.
#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

void detail::add_free_space(json& out, const views::FreeSpace& f) {
  out["free"] = f.free;
  out["free_per_bank"] = f.free_per_bank;
  out["largest_free_block"] = f.largest_free_block;
  out["free_blocks"] = f.free_blocks;
  out["fragmentation"] = f.fragmentation;
  out["num_banks"] = f.num_banks;
  out["bank_size"] = f.bank_size;
  out["unplaced_buffers"] = f.unplaced_buffers;
}

views::FreeSpace detail::free_space_from(const json& j) {
  return {get<std::uint64_t>(j, "free"),
          get<std::uint64_t>(j, "free_per_bank"),
          get<std::uint64_t>(j, "largest_free_block"),
          get<std::uint64_t>(j, "free_blocks"),
          get<std::uint32_t>(j, "num_banks"),
          get<std::uint64_t>(j, "bank_size"),
          get<std::uint64_t>(j, "unplaced_buffers"),
          get<double>(j, "fragmentation")};
}

namespace {

json arch_json(const std::optional<Arch>& a) {
  return a ? json(name(*a)) : json(nullptr);
}

std::optional<Arch> arch_from(const json& j) {
  if (!j.contains("arch") || j["arch"].is_null()) return std::nullopt;
  return get_enum<Arch>(j, "arch");
}

/// {"DRAM": f(DRAM), "L1": ..., "CB": ...}
template <typename F>
json per_slot(F&& f) {
  json out = json::object();
  for (Slot s : enum_values<Slot>()) out[name(s)] = f(s);
  return out;
}

const json& object_field(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_object()) throw SchemaError(std::string("missing object '") + field + "'");
  return *it;
}

json slot_json(const views::SlotUsage& m) {
  json out = {{"used", m.used}, {"peak", m.peak}, {"buffers", m.buffers}, {"total", m.total}};
  if (m.space) add_free_space(out, *m.space);
  return out;
}

views::SlotUsage slot_from(const json& m) {
  views::SlotUsage u{get<std::uint64_t>(m, "used"), get<std::uint64_t>(m, "peak"),
                     get<std::uint64_t>(m, "buffers"), get<std::uint64_t>(m, "total"), std::nullopt};
  if (m.contains("free")) u.space = free_space_from(m);
  return u;
}

json warnings_json(const std::vector<views::DeviceWarning>& warnings) {
  json out = json::array();
  for (const auto& w : warnings) out.push_back({{"kind", w.kind}, {"text", w.text}});
  return out;
}

}  // namespace

std::string to_json(const views::Stats& v) {
  json devices = json::array();
  for (const auto& d : v.devices) {
    devices.push_back({{"id", d.id},
                       {"arch", arch_json(d.arch)},
                       {"memory", per_slot([&](Slot s) { return slot_json(d.memory[index(s)]); })},
                       {"buffers", d.buffers},
                       {"processes", d.processes},
                       {"warnings", warnings_json(d.warnings)}});
  }
  json processes = json::array();
  for (const auto& p : v.processes) {
    json row = {{"pid", p.pid},
                {"name", p.name},
                {"command", p.command},
                {"device", p.device},
                {"buffers", p.buffers}};
    for (Slot s : enum_values<Slot>()) row[name(s)] = p.bytes[index(s)];
    processes.push_back(std::move(row));
  }
  return dump({{"devices", devices}, {"processes", processes}, {"active_allocations", v.active_allocations}});
}

template <>
views::Stats from_json<views::Stats>(std::string_view text) {
  return decode(text, "stats answer", [](const json& j) {
    views::Stats v;
    each(j, "devices", [&](const json& d) {
      views::DeviceUsage& u = v.devices.emplace_back();
      u.id = get<std::uint16_t>(d, "id");
      u.arch = arch_from(d);
      const json& memory = object_field(d, "memory");
      for (Slot s : enum_values<Slot>()) {
        u.memory[index(s)] = slot_from(object_field(memory, name(s).c_str()));
      }
      u.buffers = get<std::uint64_t>(d, "buffers");
      u.processes = get<std::uint64_t>(d, "processes");
      if (d.contains("warnings")) {  // ttmemd before 0.2 sent none
        each(d, "warnings", [&](const json& w) {
          u.warnings.push_back({get<std::string>(w, "kind"), get<std::string>(w, "text")});
        });
      }
    });
    each(j, "processes", [&](const json& p) {
      views::ProcessUsage& row = v.processes.emplace_back();
      row.pid = get<pid_t>(p, "pid");
      row.name = get<std::string>(p, "name");
      row.command = get_optional<std::string>(p, "command").value_or("");
      row.device = get<std::uint16_t>(p, "device");
      for (Slot s : enum_values<Slot>()) row.bytes[index(s)] = get<std::uint64_t>(p, name(s).c_str());
      row.buffers = get<std::uint64_t>(p, "buffers");
    });
    v.active_allocations = get<std::uint64_t>(j, "active_allocations");
    return v;
  });
}

std::string to_json(const views::DeviceList& v) {
  json out = json::array();
  for (const auto& d : v.devices) {
    json users = json::array();
    for (const auto& u : d.processes)
      users.push_back({{"pid", u.pid}, {"name", u.name}, {"state", name(u.state)}});
    out.push_back({{"id", d.id},
                   {"arch", arch_json(d.arch)},
                   {"total", per_slot([&](Slot s) { return d.total[index(s)]; })},
                   {"processes", users}});
  }
  return dump({{"devices", out}});
}

template <>
views::DeviceList from_json<views::DeviceList>(std::string_view text) {
  return decode(text, "devices answer", [](const json& j) {
    views::DeviceList v;
    each(j, "devices", [&](const json& d) {
      views::DeviceInfo& info = v.devices.emplace_back();
      info.id = get<std::uint16_t>(d, "id");
      info.arch = arch_from(d);
      const json& total = object_field(d, "total");
      for (Slot s : enum_values<Slot>()) info.total[index(s)] = get<std::uint64_t>(total, name(s).c_str());
      each(d, "processes", [&](const json& u) {
        info.processes.push_back(
            {get<pid_t>(u, "pid"), get<std::string>(u, "name"), get_enum<DeviceUseState>(u, "state")});
      });
    });
    return v;
  });
}

}  // namespace ttmem::schema
