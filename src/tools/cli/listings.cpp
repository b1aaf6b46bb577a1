// `ttmem buffers`, `leaks`, `events`, `devices`, `info`: listings of what ttmemd knows.
#include <fmt/format.h>

#include <iostream>

#include "commands.hpp"
#include "output.hpp"

namespace ttmem::cli {

using nlohmann::json;

query::QueryClient connect_or_exit(const std::string& socket) {
  try {
    return query::QueryClient(socket);
  } catch (const query::ConnectError& e) {
    std::cerr << "ttmem: " << e.what() << '\n';
    std::exit(kExitUnreachable);
  }
}

namespace {

std::string num(const json& v) {
  return std::to_string(v.get<std::int64_t>());
}

std::string event_line(const json& e, const Style& style) {
  const std::string when = e.contains("time_ns") ? clock_time(e["time_ns"].get<std::uint64_t>()) + " " : "";
  const std::string type = e.value("event", "");
  if (type == "alloc" || type == "free") {
    const bool alloc = type == "alloc";
    const std::string site = e.value("site", "");
    return fmt::format("{}pid {} ({}) {} {} bytes of {} on device {} (id {}, {}{}{})", style.dim(when),
                       num(e["pid"]), e["name"].get<std::string>(), alloc ? "allocated" : "freed",
                       num(e["size"]), e["type"].get<std::string>(), num(e["device"]), num(e["id"]),
                       e["kind"].get<std::string>(), site.empty() ? "" : ", site " + site,
                       alloc ? "" : ", " + e.value("reason", std::string()));
  }
  if (type == "leak") {
    return fmt::format(
        "{}{} pid {} ({}) still held {} bytes of {} on device {} when it closed it (id {}, {}, site {}, "
        "age {})",
        style.dim(when), style.red("LEAK"), num(e["pid"]), e["name"].get<std::string>(), num(e["size"]),
        e["type"].get<std::string>(), num(e["device"]), num(e["id"]), e["kind"].get<std::string>(),
        e.value("site", std::string("-")), human_age_ms(e["age_ms"].get<std::uint64_t>()));
  }
  if (type == "orphan") {
    std::string out;
    for (const auto& m : e["messages"]) {
      out += fmt::format("{}{}{} {}", out.empty() ? "" : "\n", style.dim(when), style.yellow("ORPHAN"),
                         m.get<std::string>());
    }
    return out;
  }
  if (type == "dropped")
    return fmt::format("{}({} events were dropped: this reader fell behind)", when, num(e["count"]));
  return e.dump();
}

}  // namespace

int run_buffers(const Common& common, const BufferOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  json q = {{"type", "buffers"}};
  if (o.device) q["device"] = *o.device;
  if (o.pid) q["pid"] = *o.pid;
  if (o.type) q["buffer_type"] = *o.type;
  if (o.kind) q["kind"] = *o.kind;
  if (!o.all) q["limit"] = o.limit;
  const json answer = client.query(q);
  if (common.json) {
    std::cout << answer.dump(2) << '\n';
    return 0;
  }
  const Style style = Style::detect();
  const auto& rows = answer["buffers"];
  if (rows.empty()) {
    std::cout << "No live buffers" << (q.size() > 2 ? " match." : ".") << '\n';
    return 0;
  }
  Table t;
  for (const char* c : {"PID", "NAME", "DEV", "TYPE", "KIND", "SIZE", "ADDRESS", "AGE", "SITE"}) {
    const bool right = std::string(c) == "PID" || std::string(c) == "DEV" || std::string(c) == "SIZE" ||
                       std::string(c) == "ADDRESS" || std::string(c) == "AGE";
    t.column(c, right ? Table::Align::right : Table::Align::left);
  }
  for (const auto& b : rows) {
    std::string kind = b["kind"];
    if (b["internal"].get<bool>()) kind += style.dim(" (runtime)");
    t.row({num(b["pid"]), b["name"], num(b["device"]), b["type"], kind, human_bytes(b["size"]),
           fmt::format("{:#x}", b["address"].get<std::uint64_t>()), human_age_ms(b["age_ms"]), b["site"]});
  }
  t.print(std::cout, style);
  const std::uint64_t total = answer["total"];
  if (total > rows.size()) {
    std::cout << style.dim(fmt::format("showing the {} largest of {} buffers; --all lists every one",
                                       rows.size(), total))
              << '\n';
  } else {
    std::cout << style.dim(fmt::format("{} buffer{}, largest first", total, total == 1 ? "" : "s")) << '\n';
  }
  return 0;
}

int run_leaks(const Common& common, std::size_t limit) {
  query::QueryClient client = connect_or_exit(common.socket);
  json answer = client.leaks();
  if (answer["leaks"].size() > limit)
    answer["leaks"].erase(answer["leaks"].begin() + static_cast<std::ptrdiff_t>(limit),
                          answer["leaks"].end());
  if (common.json) {
    std::cout << answer.dump(2) << '\n';
    return 0;
  }
  const Style style = Style::detect();
  std::cout << style.bold("Leaks: buffers still held when their device was closed") << " (newest first)\n";
  if (answer["leaks"].empty()) {
    std::cout << "  none\n";
  } else {
    Table t;
    for (const char* c : {"TIME", "PID", "NAME", "DEV", "TYPE", "KIND", "SIZE", "AGE", "SITE", "CAUSE"}) {
      t.column(c, Table::Align::left);
    }
    for (const auto& l : answer["leaks"]) {
      t.row({clock_time(l["time_ns"]), num(l["pid"]), l["name"], num(l["device"]), l["type"], l["kind"],
             human_bytes(l["size"]), human_age_ms(l["age_ms"]),
             l["site"].get<std::string>().empty() ? "-" : l["site"], l["cause"]});
    }
    t.print(std::cout, style, "  ");
  }
  std::cout << '\n'
            << style.bold("Orphans: processes that died holding device memory") << " (newest first)\n";
  if (answer["orphans"].empty()) {
    std::cout << "  none\n";
  } else {
    for (const auto& o : answer["orphans"]) {
      for (const auto& m : o["messages"]) {
        std::cout << "  " << style.dim(clock_time(o["time_ns"])) << "  " << m.get<std::string>() << '\n';
      }
    }
  }
  return 0;
}

int run_events(const Common& common, const EventOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  const Style style = Style::detect();
  auto print = [&](const json& e) {
    if (common.json) {
      std::cout << e.dump() << '\n';
    } else {
      std::cout << event_line(e, style) << '\n';
    }
  };
  std::optional<query::QueryClient> stream;
  if (o.follow) {
    // Subscribe before reading the history so nothing falls between the two.
    stream.emplace(common.socket);
    stream->subscribe();
  }
  const json history = client.query({{"type", "events"}, {"limit", o.last}});
  for (const auto& e : history["events"]) print(e);
  std::cout.flush();
  if (!o.follow) return 0;
  const std::uint64_t seen_until =
      history["events"].empty() ? 0 : history["events"].back()["time_ns"].get<std::uint64_t>();
  for (;;) {
    auto e = stream->next_event(std::chrono::milliseconds(1000));
    if (!e) continue;
    if (e->contains("time_ns") && (*e)["time_ns"].get<std::uint64_t>() <= seen_until &&
        (*e)["event"] != "orphan") {
      continue;  // already printed from the history
    }
    print(*e);
    std::cout.flush();
  }
}

int run_devices(const Common& common) {
  query::QueryClient client = connect_or_exit(common.socket);
  const json answer = client.devices();
  if (common.json) {
    std::cout << answer.dump(2) << '\n';
    return 0;
  }
  const Style style = Style::detect();
  if (answer["devices"].empty()) {
    std::cout << "No device has been reported yet.\n";
    return 0;
  }
  Table t;
  t.column("ID", Table::Align::right);
  t.column("ARCH", Table::Align::left);
  for (const char* c : {"DRAM", "L1", "L1_SMALL", "TRACE"}) t.column(c, Table::Align::right);
  t.column("PROCESSES", Table::Align::left);
  for (const auto& d : answer["devices"]) {
    std::string users;
    for (const auto& p : d["processes"]) {
      users += fmt::format("{}{} {} ({})", users.empty() ? "" : ", ", num(p["pid"]),
                           p["name"].get<std::string>(), p["state"].get<std::string>());
    }
    t.row({num(d["id"]), d["arch"].is_null() ? "?" : d["arch"].get<std::string>(),
           human_bytes(d["total"]["DRAM"]), human_bytes(d["total"]["L1"]),
           human_bytes(d["total"]["L1_SMALL"]), human_bytes(d["total"]["TRACE"]),
           users.empty() ? "-" : users});
  }
  t.print(std::cout, style);
  return 0;
}

int run_info(const Common& common) {
  query::QueryClient client = connect_or_exit(common.socket);
  const json info = client.info();
  if (common.json) {
    std::cout << info.dump(2) << '\n';
    return 0;
  }
  const Style style = Style::detect();
  std::cout << style.bold(fmt::format("ttmemd {}", info["version"].get<std::string>()))
            << fmt::format(" (protocol {}, pid {}) on {}\n", num(info["protocol"]), num(info["pid"]),
                           info["socket"].get<std::string>())
            << fmt::format(
                   "up {}, {} connection(s), {} process(es), {} active allocations, {:.0f} events/s, {} "
                   "events in all\n",
                   human_age_ms(static_cast<std::uint64_t>(info["uptime_s"].get<double>() * 1000)),
                   num(info["connections"]), num(info["processes"]), num(info["active_allocations"]),
                   info["events_per_second"].get<double>(), num(info["events_total"]))
            << fmt::format("registry: {} | death watch: {} | longest loop stall: {:.2f} ms\n",
                           human_bytes(info["registry_bytes"]), info["death_watch"].get<std::string>(),
                           info["loop"]["longest_busy_ms"].get<double>());
  std::string anomalies;
  for (const auto& [k, v] : info["anomalies"].items()) {
    if (v.get<std::uint64_t>() > 0)
      anomalies += fmt::format("{}{} {}", anomalies.empty() ? "" : ", ", k, num(v));
  }
  std::cout << "anomalies: " << (anomalies.empty() ? "none" : style.yellow(anomalies)) << "\n\n";
  Table t;
  for (const char* c : {"CONN", "PID", "NAME", "ROLE", "EVENTS", "EVENTS/S", "BATCHES", "STALL", "RECONNECTS",
                        "GAPS", "DROPPED"}) {
    t.column(c,
             std::string(c) == "NAME" || std::string(c) == "ROLE" ? Table::Align::left : Table::Align::right);
  }
  for (const auto& c : info["clients"]) {
    const bool tracked = c.contains("client");
    t.row({num(c["connection"]), num(c["pid"]), c["name"], c["role"], num(c["events"]),
           fmt::format("{:.0f}", c["events_per_second"].get<double>()),
           tracked ? num(c["client"]["batches"]) : "-",
           tracked ? human_age_ms(c["client"]["stall_ns"].get<std::uint64_t>() / 1'000'000) : "-",
           tracked ? num(c["client"]["reconnects"]) : "-", tracked ? num(c["client"]["gaps"]) : "-",
           tracked ? num(c["client"]["dropped_events"]) : "-"});
  }
  t.print(std::cout, style);
  return 0;
}

}  // namespace ttmem::cli
