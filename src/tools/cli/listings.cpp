// `ttmem buffers`, `leaks`, `events`, `devices`, `info`: listings of what ttmemd knows.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>
#include <limits>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

query::QueryClient connect_or_exit(const std::string& socket) {
  try {
    return query::QueryClient(socket);
  } catch (const query::ConnectError& e) {
    std::cerr << "ttmem: " << e.what() << '\n';
    std::exit(kExitUnreachable);
  }
}

bool OriginFilter::keeps(pid_t p, std::uint16_t d, std::string_view s, std::string_view scope) const {
  if (pid && p != *pid) return false;
  if (device && d != *device) return false;
  if (site && s.find(*site) == std::string_view::npos) return false;
  if (op && scope.find(*op) == std::string_view::npos) return false;
  return true;
}

bool OriginFilter::keeps(const views::Orphan& orphan) const {
  if (site || op || (pid && orphan.pid != *pid)) return false;
  return !device || std::any_of(orphan.held.begin(), orphan.held.end(),
                                [&](const views::Orphan::Held& h) { return h.device == *device; });
}

namespace {

/// Why a leak record is one, for people.
std::string leak_cause(const views::Leak& l) {
  if (l.after_oom) return fmt::format("left after out-of-memory record {}", l.after_oom);
  return l.swept_by_close ? "held at close (swept)" : "never released by the close sequence";
}

std::string when(std::uint64_t time_ns) {
  return time_ns ? clock_time(time_ns) + " " : "";
}

std::string event_line(const views::EventRow& e, const Style& style) {
  const bool alloc = e.op == EventOp::alloc;
  return fmt::format("{}pid {} ({}) {} {} bytes of {} on device {} (id {}, {}{}{}{})",
                     style.dim(when(e.time_ns)), e.pid, e.name, alloc ? "allocated" : "freed", e.size,
                     to_string(e.type), e.device, e.id, to_string(e.kind),
                     e.site.empty() ? "" : ", site " + e.site, e.scope.empty() ? "" : ", op " + e.scope,
                     alloc || !e.reason ? "" : ", " + std::string(to_string(*e.reason)));
}

std::string stream_line(const views::StreamEvent& event, const Style& style) {
  struct Line {
    const Style& style;
    std::string operator()(const views::EventRow& e) const { return event_line(e, style); }
    std::string operator()(const views::Leak& l) const {
      return fmt::format(
          "{}{} pid {} ({}) still held {} bytes of {} on device {} when it closed it (id {}, {}, site {}{}, "
          "age {})",
          style.dim(when(l.time_ns)), style.red("LEAK"), l.pid, l.name, l.size, to_string(l.type), l.device,
          l.id, to_string(l.kind), l.site.empty() ? "-" : l.site, l.scope.empty() ? "" : ", op " + l.scope,
          human_age_ms(l.age_ms));
    }
    std::string operator()(const views::Orphan& o) const {
      std::string out;
      for (const auto& m : o.messages) {
        out += fmt::format("{}{}{} {}", out.empty() ? "" : "\n", style.dim(when(o.time_ns)),
                           style.yellow("ORPHAN"), m);
      }
      return out;
    }
    std::string operator()(const views::OomRecord& r) const { return oom_line(r, style); }
    std::string operator()(const views::Dropped& d) const {
      return fmt::format("({} events were dropped: this reader fell behind)", d.count);
    }
    std::string operator()(const views::Changes& c) const {  // a socket subscriber gets each event instead
      return fmt::format("{} {} events applied", clock_time(c.time_ns), c.events);
    }
  };
  return std::visit(Line{style}, event);
}

template <typename T>
std::optional<T> parse_choice(const std::optional<std::string>& name) {
  if (!name) return std::nullopt;
  return parse_enum<T>(*name);  // the command line checked the name
}

/// `buffers --by KEY`: one row per key and memory type.
void print_groups(const views::BufferList& answer, GroupBy by, const Style& style) {
  Table t;
  const char* key = by == GroupBy::pid      ? "PID"
                    : by == GroupBy::device ? "DEV"
                    : by == GroupBy::op     ? "OP"
                                            : "SITE";
  t.column(key, by == GroupBy::pid || by == GroupBy::device ? Table::Align::right : Table::Align::left);
  if (by == GroupBy::pid) t.column("NAME", Table::Align::left);
  t.column("TYPE", Table::Align::left);
  for (const char* c : {"BYTES", "BUFFERS", "LARGEST", "DEVS", "PROCS"}) t.column(c, Table::Align::right);
  for (const auto& g : answer.groups) {
    std::vector<std::string> row{g.key.empty() ? "-" : g.key};
    if (by == GroupBy::pid) row.push_back(g.name);
    row.insert(row.end(), {std::string(to_string(g.slot)), human_bytes(g.bytes), std::to_string(g.buffers),
                           human_bytes(g.largest), std::to_string(g.devices), std::to_string(g.processes)});
    t.row(std::move(row));
  }
  t.print(std::cout, style);
  const std::uint64_t shown = answer.groups.size();
  std::cout << style.dim(fmt::format("{} buffer{} in {} group{}{}", answer.total,
                                     answer.total == 1 ? "" : "s", answer.total_groups,
                                     answer.total_groups == 1 ? "" : "s",
                                     shown < answer.total_groups
                                         ? fmt::format(", the {} largest shown; --all lists every one", shown)
                                         : ", largest first"))
            << '\n';
}

}  // namespace

int run_buffers(const Common& common, const BufferOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  views::BufferQuery q;
  if (o.origin.device) q.device = static_cast<std::uint16_t>(*o.origin.device);
  if (o.origin.pid) q.pid = *o.origin.pid;
  q.site = o.origin.site;
  q.scope = o.origin.op;
  q.type = parse_choice<BufferType>(o.type);
  q.kind = parse_choice<AllocKind>(o.kind);
  q.by = parse_choice<GroupBy>(o.by);
  if (!o.all) q.limit = o.limit;
  const views::BufferList answer = client.buffers(q);
  if (common.json) {
    print_json(schema::to_json(answer));
    return 0;
  }
  if (o.csv) {
    if (q.by) {
      std::cout << csv_line({"key", "name", "type", "bytes", "buffers", "largest", "devices", "processes"})
                << '\n';
      for (const auto& g : answer.groups)
        std::cout << csv_line({g.key, g.name, std::string(to_string(g.slot)), std::to_string(g.bytes),
                               std::to_string(g.buffers), std::to_string(g.largest),
                               std::to_string(g.devices), std::to_string(g.processes)})
                  << '\n';
      return 0;
    }
    std::cout << csv_line({"pid", "name", "device", "type", "kind", "size", "address", "age_ms", "site", "op",
                           "internal"})
              << '\n';
    for (const auto& b : answer.buffers)
      std::cout << csv_line({std::to_string(b.pid), b.name, std::to_string(b.device),
                             std::string(to_string(b.type)), std::string(to_string(b.kind)),
                             std::to_string(b.size), std::to_string(b.address), std::to_string(b.age_ms),
                             b.site, b.scope, b.internal ? "1" : "0"})
                << '\n';
    return 0;
  }
  const Style style = Style::detect();
  if (q.by && !answer.groups.empty()) {
    print_groups(answer, *q.by, style);
    return 0;
  }
  if (answer.buffers.empty()) {
    const bool filtered = o.origin.any() || q.type || q.kind;
    std::cout << "No live buffers" << (filtered ? " match." : ".") << '\n';
    return 0;
  }
  // The OP column only when some buffer has an op: programs that push none see the table they always did.
  const bool ops = std::any_of(answer.buffers.begin(), answer.buffers.end(),
                               [](const views::BufferRow& b) { return !b.scope.empty(); });
  std::vector<const char*> columns{"PID", "NAME", "DEV", "TYPE", "KIND", "SIZE", "ADDRESS", "AGE", "SITE"};
  if (ops) columns.push_back("OP");
  Table t;
  for (const char* c : columns) {
    const bool right = std::string(c) == "PID" || std::string(c) == "DEV" || std::string(c) == "SIZE" ||
                       std::string(c) == "ADDRESS" || std::string(c) == "AGE";
    t.column(c, right ? Table::Align::right : Table::Align::left);
  }
  for (const auto& b : answer.buffers) {
    std::string kind(to_string(b.kind));
    if (b.internal) kind += style.dim(" (runtime)");
    std::vector<std::string> row{std::to_string(b.pid),
                                 b.name,
                                 std::to_string(b.device),
                                 std::string(to_string(b.type)),
                                 kind,
                                 human_bytes(b.size),
                                 fmt::format("{:#x}", b.address),
                                 human_age_ms(b.age_ms),
                                 b.site};
    if (ops) row.push_back(b.scope.empty() ? "-" : b.scope);
    t.row(row);
  }
  t.print(std::cout, style);
  const std::uint64_t total = answer.total;
  if (total > answer.buffers.size()) {
    std::cout << style.dim(fmt::format("showing the {} largest of {} buffers; --all lists every one",
                                       answer.buffers.size(), total))
              << '\n';
  } else {
    std::cout << style.dim(fmt::format("{} buffer{}, largest first", total, total == 1 ? "" : "s")) << '\n';
  }
  return 0;
}

int run_leaks(const Common& common, const LeakOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  views::Leaks answer = client.leaks();
  const OriginFilter& f = o.origin;
  std::erase_if(answer.leaks,
                [&](const views::Leak& l) { return !f.keeps(l.pid, l.device, l.site, l.scope); });
  std::erase_if(answer.orphans, [&](const views::Orphan& orphan) { return !f.keeps(orphan); });
  if (answer.leaks.size() > o.limit) answer.leaks.resize(o.limit);
  if (common.json) {
    print_json(schema::to_json(answer));
    return 0;
  }
  if (o.csv) {
    std::cout << csv_line({"record", "time", "pid", "name", "device", "type", "kind", "bytes", "buffers",
                           "site", "op", "cause"})
              << '\n';
    for (const auto& l : answer.leaks)
      std::cout << csv_line({"leak", date_time(l.time_ns), std::to_string(l.pid), l.name,
                             std::to_string(l.device), std::string(to_string(l.type)),
                             std::string(to_string(l.kind)), std::to_string(l.size), "1", l.site, l.scope,
                             leak_cause(l)})
                << '\n';
    for (const auto& orphan : answer.orphans)
      for (const auto& h : orphan.held)
        std::cout << csv_line({"orphan", date_time(orphan.time_ns), std::to_string(orphan.pid), orphan.name,
                               std::to_string(h.device), std::string(to_string(h.slot)), "",
                               std::to_string(h.bytes), std::to_string(h.buffers), "", "", "died holding it"})
                  << '\n';
    return 0;
  }
  const Style style = Style::detect();
  std::cout << style.bold("Leaks: buffers still held when their device was closed") << " (newest first)\n";
  if (answer.leaks.empty()) {
    std::cout << "  none\n";
  } else {
    Table t;
    for (const char* c :
         {"TIME", "PID", "NAME", "DEV", "TYPE", "KIND", "SIZE", "AGE", "SITE", "OP", "CAUSE"}) {
      t.column(c, Table::Align::left);
    }
    for (const auto& l : answer.leaks) {
      t.row({clock_time(l.time_ns), std::to_string(l.pid), l.name, std::to_string(l.device),
             std::string(to_string(l.type)), std::string(to_string(l.kind)), human_bytes(l.size),
             human_age_ms(l.age_ms), l.site.empty() ? "-" : l.site, l.scope.empty() ? "-" : l.scope,
             leak_cause(l)});
    }
    t.print(std::cout, style, "  ");
  }
  std::cout << '\n'
            << style.bold("Orphans: processes that died holding device memory") << " (newest first)\n";
  if (answer.orphans.empty()) {
    std::cout << "  none\n";
  } else {
    for (const auto& orphan : answer.orphans) {
      for (const auto& m : orphan.messages)
        std::cout << "  " << style.dim(clock_time(orphan.time_ns)) << "  " << m << '\n';
      // Where what it held was made: the site and op of each group, largest first.
      for (const auto& w : orphan.origins) {
        std::cout << "                "
                  << fmt::format("{:>10} in {} buffer{}, site {}{}", human_bytes(w.bytes), w.buffers,
                                 w.buffers == 1 ? "" : "s", w.site.empty() ? "-" : w.site,
                                 w.scope.empty() ? "" : ", op " + w.scope)
                  << '\n';
      }
    }
  }
  return 0;
}

int run_events(const Common& common, const EventOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  const Style style = Style::detect();
  const OriginFilter& f = o.origin;
  auto print = [&](const views::StreamEvent& e) {
    if (f.any()) {
      // Allocations and frees by their origin; leaks likewise; OOM records by process and device.
      if (const auto* row = std::get_if<views::EventRow>(&e);
          row && !f.keeps(row->pid, row->device, row->site, row->scope))
        return;
      if (const auto* l = std::get_if<views::Leak>(&e); l && !f.keeps(l->pid, l->device, l->site, l->scope))
        return;
      if (const auto* r = std::get_if<views::OomRecord>(&e); r && !f.keeps(r->pid, r->device, r->site, {}))
        return;
      if (const auto* orphan = std::get_if<views::Orphan>(&e); orphan && !f.keeps(*orphan)) return;
    }
    if (o.csv) {
      const auto* row = std::get_if<views::EventRow>(&e);
      if (!row) return;  // records are not allocation events: `ttmem leaks --csv`, `ttmem oom`
      std::cout << csv_line({date_time(row->time_ns), std::string(to_string(row->op)),
                             std::to_string(row->pid), row->name, std::to_string(row->device),
                             std::string(to_string(row->type)), std::string(to_string(row->kind)),
                             std::to_string(row->id), std::to_string(row->size), std::to_string(row->address),
                             row->site, row->scope, row->reason ? std::string(to_string(*row->reason)) : ""})
                << '\n';
    } else if (common.json) {
      std::cout << schema::to_json(e) << '\n';
    } else {
      std::cout << stream_line(e, style) << '\n';
    }
  };
  if (o.csv)
    std::cout << csv_line({"time", "event", "pid", "name", "device", "type", "kind", "id", "size", "address",
                           "site", "op", "reason"})
              << '\n';
  std::optional<query::QueryClient> stream;
  if (o.follow) {
    // Subscribe before reading the history so nothing falls between the two.
    stream.emplace(common.socket);
    stream->subscribe();
  }
  // Filtered, the last N matching events: ask for the whole history and keep the newest N that match.
  views::EventList history = client.events(f.any() ? std::numeric_limits<std::uint32_t>::max() : o.last);
  if (f.any()) {
    std::erase_if(history.events,
                  [&](const views::EventRow& e) { return !f.keeps(e.pid, e.device, e.site, e.scope); });
    if (history.events.size() > o.last)
      history.events.erase(history.events.begin(),
                           history.events.end() - static_cast<std::ptrdiff_t>(o.last));
  }
  // Out-of-memory records since the oldest event shown go between the events, by time.
  std::vector<views::OomRecord> ooms;
  if (!history.events.empty()) {
    for (auto& r : client.oom().records) {
      if (r.time_ns >= history.events.front().time_ns) ooms.push_back(std::move(r));
    }
    std::reverse(ooms.begin(), ooms.end());  // oldest first, as the events
  }
  auto next_oom = ooms.begin();
  for (const auto& e : history.events) {
    for (; next_oom != ooms.end() && next_oom->time_ns < e.time_ns; ++next_oom) print(*next_oom);
    print(e);
  }
  for (; next_oom != ooms.end(); ++next_oom) print(*next_oom);
  std::cout.flush();
  if (!o.follow) return 0;
  const std::uint64_t seen_until = history.events.empty() ? 0 : history.events.back().time_ns;
  for (;;) {
    auto e = stream->next_event(std::chrono::milliseconds(1000));
    if (!e) continue;
    if (const auto* row = std::get_if<views::EventRow>(&*e); row && row->time_ns <= seen_until) {
      continue;  // already printed from the history
    }
    print(*e);
    std::cout.flush();
  }
}

int run_devices(const Common& common) {
  query::QueryClient client = connect_or_exit(common.socket);
  const views::DeviceList answer = client.devices();
  // Free space comes with usage (the stats answer): the devices answer says what each device is.
  const views::Stats stats = common.json ? views::Stats{} : client.stats();
  if (common.json) {
    print_json(schema::to_json(answer));
    return 0;
  }
  const Style style = Style::detect();
  if (answer.devices.empty()) {
    std::cout << "No device has been reported yet.\n";
    return 0;
  }
  Table t;
  t.column("ID", Table::Align::right);
  t.column("ARCH", Table::Align::left);
  for (BufferType m : kManagedTypes) t.column(std::string(to_string(m)), Table::Align::right);
  t.column("DRAM FREE (LARGEST/BANK)", Table::Align::right);
  t.column("L1 FREE (LARGEST/BANK)", Table::Align::right);
  t.column("PROCESSES", Table::Align::left);
  for (const auto& d : answer.devices) {
    std::string users;
    for (const auto& p : d.processes) {
      users += fmt::format("{}{} {} ({})", users.empty() ? "" : ", ", p.pid, p.name, to_string(p.state));
    }
    std::vector<std::string> row{std::to_string(d.id), d.arch ? std::string(to_string(*d.arch)) : "?"};
    for (BufferType m : kManagedTypes)
      row.push_back(human_bytes(d.total[index(slot_of(m, AllocKind::owning))]));
    const auto usage = std::find_if(stats.devices.begin(), stats.devices.end(),
                                    [&](const views::DeviceUsage& u) { return u.id == d.id; });
    for (Slot s : {Slot::DRAM, Slot::L1}) {
      const auto* space = usage == stats.devices.end() || !usage->memory[index(s)].space
                              ? nullptr
                              : &*usage->memory[index(s)].space;
      row.push_back(
          space ? fmt::format("{} ({})", human_bytes(space->free), human_bytes(space->largest_free_block))
                : "-");
    }
    row.push_back(users.empty() ? "-" : users);
    t.row(row);
  }
  t.print(std::cout, style);
  return 0;
}

int run_info(const Common& common) {
  query::QueryClient client = connect_or_exit(common.socket);
  const views::ServerInfo info = client.info();
  if (common.json) {
    print_json(schema::to_json(info));
    return 0;
  }
  const Style style = Style::detect();
  std::cout << style.bold(fmt::format("ttmemd {}", info.version))
            << fmt::format(" (protocol {}, pid {}) on {}\n", info.protocol, info.pid, info.socket)
            << fmt::format(
                   "up {}, {} connection(s), {} process(es), {} active allocations, {:.0f} events/s, {} "
                   "events in all\n",
                   human_age_ms(static_cast<std::uint64_t>(info.uptime_s * 1000)), info.connections,
                   info.processes, info.active_allocations, info.events_per_second, info.events_total)
            << fmt::format("registry: {} | death watch: {} | longest loop stall: {:.2f} ms\n",
                           human_bytes(info.registry_bytes), info.death_watch, info.loop.longest_busy_ms);
  std::string anomalies;
  auto add = [&](std::string_view name, std::uint64_t n) {
    if (n > 0) anomalies += fmt::format("{}{} {}", anomalies.empty() ? "" : ", ", name, n);
  };
#define TTMEM_ADD(name) add(#name, info.anomalies.name);
  TTMEM_LEDGER_ANOMALIES(TTMEM_ADD)
  TTMEM_SERVER_ANOMALIES(TTMEM_ADD)
#undef TTMEM_ADD
  std::cout << "anomalies: " << (anomalies.empty() ? "none" : style.yellow(anomalies)) << "\n";
  print_device_warnings(std::cout, client.stats(), style, "");
  if (!info.history) {
    std::cout << "history: off (--no-history)\n\n";
  } else {
    const views::HistoryStatus& h = *info.history;
    std::cout << "history: " << h.path << " | " << h.records_written << " records, " << h.lifetimes_written
              << " lifetimes written";
    if (h.lifetimes_dropped > 0) std::cout << ", " << h.lifetimes_dropped << " lifetimes not kept";
    std::cout << "\n";
    if (h.degraded) {
      std::cout << style.red(fmt::format("history DEGRADED: writes fail ({}); {} record(s) wait in memory",
                                         h.error, h.records_pending))
                << "\n";
    }
    std::cout << "\n";
  }
  Table t;
  for (const char* c : {"CONN", "PID", "NAME", "ROLE", "EVENTS", "EVENTS/S", "BATCHES", "STALL", "RECONNECTS",
                        "GAPS", "DROPPED"}) {
    t.column(c,
             std::string(c) == "NAME" || std::string(c) == "ROLE" ? Table::Align::left : Table::Align::right);
  }
  for (const auto& c : info.clients) {
    auto counter = [&](std::uint64_t proto::ClientStats::*field) {
      return c.client ? std::to_string((*c.client).*field) : std::string("-");
    };
    t.row({std::to_string(c.connection), std::to_string(c.pid), c.name, c.role, std::to_string(c.events),
           fmt::format("{:.0f}", c.events_per_second), counter(&proto::ClientStats::batches),
           c.client ? human_age_ms(c.client->stall_ns / 1'000'000) : "-",
           counter(&proto::ClientStats::reconnects), counter(&proto::ClientStats::gaps),
           counter(&proto::ClientStats::dropped_events)});
  }
  t.print(std::cout, style);
  return 0;
}

}  // namespace ttmem::cli
