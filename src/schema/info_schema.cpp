// `info`: the server itself, its clients, anomalies and limits.
#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

std::string to_json(const views::ServerInfo& v) {
  json clients = json::array();
  for (const auto& c : v.clients) {
    json row = {{"connection", c.connection},
                {"pid", c.pid},
                {"uid", c.uid},
                {"name", c.name},
                {"role", c.role},
                {"events", c.events},
                {"events_per_second", c.events_per_second},
                {"subscriber", c.subscriber},
                {"read_buffer_bytes", c.read_buffer_bytes},
                {"pending_output_bytes", c.pending_output_bytes},
                {"connected_s", c.connected_s}};
    if (c.client) {
      json& stats = row["client"] = json::object();
#define TTMEM_SHOW(name) stats[#name] = c.client->name;
      TTMEM_CLIENT_STATS(TTMEM_SHOW)
#undef TTMEM_SHOW
    }
    clients.push_back(std::move(row));
  }
  json anomalies = json::object();
#define TTMEM_SHOW(name) anomalies[#name] = v.anomalies.name;
  TTMEM_LEDGER_ANOMALIES(TTMEM_SHOW)
  TTMEM_SERVER_ANOMALIES(TTMEM_SHOW)
#undef TTMEM_SHOW
  json limits = json::object();
  for (const auto& l : v.limits) limits[l.name] = l.value;
  json history = nullptr;
  if (v.history) {
    const views::HistoryStatus& h = *v.history;
    history = {{"path", h.path},
               {"degraded", h.degraded},
               {"error", h.error},
               {"records_written", h.records_written},
               {"records_pending", h.records_pending},
               {"lifetimes_written", h.lifetimes_written},
               {"lifetimes_dropped", h.lifetimes_dropped}};
  }
  return dump({{"version", v.version},
               {"protocol", v.protocol},
               {"pid", v.pid},
               {"socket", v.socket},
               {"uptime_s", v.uptime_s},
               {"connections", v.connections},
               {"processes", v.processes},
               {"clients", std::move(clients)},
               {"events_total", v.events_total},
               {"events_per_second", v.events_per_second},
               {"active_allocations", v.active_allocations},
               {"registry_bytes", v.registry_bytes},
               {"oom_records", v.oom_records},
               {"death_watch", v.death_watch},
               {"loop",
                {{"longest_busy_ms", v.loop.longest_busy_ms},
                 {"longest_busy_cpu_ms", v.loop.longest_busy_cpu_ms},
                 {"longest_paged_step_ms", v.loop.longest_paged_step_ms},
                 {"paged_queries", v.loop.paged_queries}}},
               {"anomalies", std::move(anomalies)},
               {"limits", std::move(limits)},
               {"history", std::move(history)}});
}

template <>
views::ServerInfo from_json<views::ServerInfo>(std::string_view text) {
  return decode(text, "info answer", [](const json& j) {
    views::ServerInfo v;
    v.version = get<std::string>(j, "version");
    v.protocol = get<std::uint32_t>(j, "protocol");
    v.pid = get<pid_t>(j, "pid");
    v.socket = get<std::string>(j, "socket");
    v.uptime_s = get<double>(j, "uptime_s");
    v.connections = get<std::uint64_t>(j, "connections");
    v.processes = get<std::uint64_t>(j, "processes");
    each(j, "clients", [&](const json& c) {
      views::ClientInfo& row = v.clients.emplace_back();
      row.connection = get<std::uint64_t>(c, "connection");
      row.pid = get<pid_t>(c, "pid");
      row.uid = get<std::uint32_t>(c, "uid");
      row.name = get<std::string>(c, "name");
      row.role = get<std::string>(c, "role");
      row.events = get<std::uint64_t>(c, "events");
      row.events_per_second = get<double>(c, "events_per_second");
      row.subscriber = get<bool>(c, "subscriber");
      row.read_buffer_bytes = get<std::uint64_t>(c, "read_buffer_bytes");
      row.pending_output_bytes = get<std::uint64_t>(c, "pending_output_bytes");
      row.connected_s = get<double>(c, "connected_s");
      if (c.contains("client")) {
        const json& s = c["client"];
        proto::ClientStats& stats = row.client.emplace();
#define TTMEM_READ(name) stats.name = get<std::uint64_t>(s, #name);
        TTMEM_CLIENT_STATS(TTMEM_READ)
#undef TTMEM_READ
      }
    });
    v.events_total = get<std::uint64_t>(j, "events_total");
    v.events_per_second = get<double>(j, "events_per_second");
    v.active_allocations = get<std::uint64_t>(j, "active_allocations");
    v.registry_bytes = get<std::uint64_t>(j, "registry_bytes");
    v.oom_records = get_optional<std::uint64_t>(j, "oom_records").value_or(0);
    v.death_watch = get<std::string>(j, "death_watch");
    const json& loop = j.at("loop");
    v.loop = {get<double>(loop, "longest_busy_ms"), get<double>(loop, "longest_busy_cpu_ms"),
              get<double>(loop, "longest_paged_step_ms"), get<std::uint64_t>(loop, "paged_queries")};
    const json& a = j.at("anomalies");
#define TTMEM_READ(name) v.anomalies.name = get<std::uint64_t>(a, #name);
    TTMEM_LEDGER_ANOMALIES(TTMEM_READ)
    TTMEM_SERVER_ANOMALIES(TTMEM_READ)
#undef TTMEM_READ
    for (const auto& [k, value] : j.at("limits").items()) v.limits.push_back({k, value.get<std::uint64_t>()});
    if (j.contains("history") && !j["history"].is_null()) {
      const json& h = j["history"];
      v.history = views::HistoryStatus{get<std::string>(h, "path"),
                                       get<bool>(h, "degraded"),
                                       get<std::string>(h, "error"),
                                       get<std::uint64_t>(h, "records_written"),
                                       get<std::uint64_t>(h, "records_pending"),
                                       get<std::uint64_t>(h, "lifetimes_written"),
                                       get<std::uint64_t>(h, "lifetimes_dropped")};
    }
    return v;
  });
}

}  // namespace ttmem::schema
