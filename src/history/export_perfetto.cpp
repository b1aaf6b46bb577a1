// The history as a Chrome trace (JSON) for Perfetto: Perfetto reads JSON "best effort" and does not nest
// overlapping B/E slices, so lifetimes and op spans are async (b/e) events, each with its own id.
#include <fmt/format.h>

#include <map>
#include <nlohmann/json.hpp>
#include <tuple>

#include "ttmem/history.hpp"

namespace ttmem::history {

using nlohmann::json;

namespace {

double micros(std::uint64_t ns) {
  return static_cast<double>(ns) / 1e3;
}
int trace_pid(std::uint16_t device) {
  return 1 + device;
}  // Chrome traces want pids; 0 is not shown well
constexpr int kServerPid = 100000;  // records of no device

}  // namespace

std::string perfetto_trace(const Reader& reader, const ExportWindow& w) {
  json events = json::array();
  std::vector<std::uint16_t> devices = w.device ? std::vector<std::uint16_t>{*w.device} : reader.devices();
  for (std::uint16_t d : devices) {
    events.push_back({{"ph", "M"},
                      {"cat", "__metadata"},
                      {"name", "process_name"},
                      {"pid", trace_pid(d)},
                      {"tid", 0},
                      {"args", {{"name", fmt::format("device {}", d)}}}});
    events.push_back({{"ph", "M"},
                      {"cat", "__metadata"},
                      {"name", "process_sort_index"},
                      {"pid", trace_pid(d)},
                      {"tid", 0},
                      {"args", {{"sort_index", d}}}});
    TimelineQuery q;
    q.device = d;
    q.since_ns = w.since_ns;
    q.until_ns = w.until_ns;
    q.per_process = true;
    for (const auto& s : reader.timeline(q).series) {
      const std::string name =
          s.pid == 0 ? fmt::format("{} in use", to_string(s.slot))
                     : fmt::format("{} in use by pid {} ({})", to_string(s.slot), s.pid, s.name);
      for (const auto& p : s.points)
        events.push_back({{"ph", "C"},
                          {"cat", "memory"},
                          {"name", name},
                          {"pid", trace_pid(d)},
                          {"tid", 0},
                          {"ts", micros(p.time_ns)},
                          {"args",
                           {{"bytes", p.bytes},
                            {"peak", p.peak}}}});  // two tracks: at the point, and the most since the last
    }
  }
  events.push_back({{"ph", "M"},
                    {"cat", "__metadata"},
                    {"name", "process_name"},
                    {"pid", kServerPid},
                    {"tid", 0},
                    {"args", {{"name", "ttmemd records"}}}});

  LifetimeQuery lq;
  lq.since_ns = w.since_ns;
  lq.until_ns = w.until_ns;
  lq.device = w.device;
  std::uint64_t next_id = 1;
  // An op's span: from its first buffer's allocation to its last one's free, per process and device.
  struct Span {
    std::uint64_t from = UINT64_MAX, to = 0, bytes = 0, buffers = 0;
  };
  std::map<std::tuple<std::uint16_t, pid_t, std::string>, Span> ops;
  for (const Lifetime& l : reader.lifetimes(lq)) {
    const std::string id = fmt::format("0x{:x}", next_id++);
    const std::string name = l.site.empty() ? fmt::format("{} buffer", to_string(l.type)) : l.site;
    const json args = {{"size", l.size},
                       {"address", l.address},
                       {"type", to_string(l.type)},
                       {"kind", to_string(l.kind)},
                       {"pid", l.pid},
                       {"process", l.name},
                       {"op", l.scope},
                       {"buffer_id", l.id}};
    events.push_back({{"ph", "b"},
                      {"cat", "buffer"},
                      {"name", name},
                      {"id", id},
                      {"pid", trace_pid(l.device)},
                      {"tid", l.pid},
                      {"ts", micros(l.alloc_ns)},
                      {"args", args}});
    events.push_back({{"ph", "e"},
                      {"cat", "buffer"},
                      {"name", name},
                      {"id", id},
                      {"pid", trace_pid(l.device)},
                      {"tid", l.pid},
                      {"ts", micros(l.free_ns)}});
    if (!l.scope.empty()) {
      Span& s = ops[{l.device, l.pid, l.scope}];
      s.from = std::min(s.from, l.alloc_ns);
      s.to = std::max(s.to, l.free_ns);
      s.bytes += l.size;
      ++s.buffers;
    }
  }
  for (const auto& [key, s] : ops) {
    const auto& [device, pid, scope] = key;
    const std::string id = fmt::format("0x{:x}", next_id++);
    events.push_back({{"ph", "b"},
                      {"cat", "op"},
                      {"name", scope},
                      {"id", id},
                      {"pid", trace_pid(device)},
                      {"tid", pid},
                      {"ts", micros(s.from)},
                      {"args", {{"pid", pid}, {"buffers", s.buffers}, {"bytes", s.bytes}}}});
    events.push_back({{"ph", "e"},
                      {"cat", "op"},
                      {"name", scope},
                      {"id", id},
                      {"pid", trace_pid(device)},
                      {"tid", pid},
                      {"ts", micros(s.to)}});
  }

  RecordFilter rf;
  rf.since_ns = w.since_ns;
  rf.until_ns = w.until_ns;
  rf.device = w.device;
  rf.kinds = {HistoryKind::leak, HistoryKind::orphan, HistoryKind::oom, HistoryKind::server_start,
              HistoryKind::lifetimes_dropped};
  rf.limit = 100'000;
  for (const auto& r : reader.records(rf).records) {
    json e = {
        {"ph", "i"},
        {"cat", "record"},
        {"name", to_string(r.kind)},
        {"ts", micros(r.time_ns)},
        {"args",
         {{"summary", r.summary}, {"pid", r.pid}, {"site", r.site}, {"op", r.scope}, {"bytes", r.bytes}}}};
    if (r.device) {
      e["pid"] = trace_pid(*r.device);
      e["tid"] = r.pid;
      e["s"] = "p";
    } else {
      e["pid"] = kServerPid;
      e["tid"] = 0;
      e["s"] = "g";
    }
    events.push_back(std::move(e));
  }
  json out = {{"traceEvents", std::move(events)},
              {"displayTimeUnit", "ms"},
              {"otherData", {{"source", "ttmem export --perfetto"}, {"since_ns", w.since_ns}}}};
  return out.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace ttmem::history
