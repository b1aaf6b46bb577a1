// `ttmem history`, `ttmem timeline`, `ttmem export`: what ttmemd kept on disk (docs/history.md), read
// straight from its state directory, so they answer while ttmemd is down too.
#include "ttmem/history.hpp"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

namespace {

struct Window {
  std::uint64_t since = 0;
  std::uint64_t until = UINT64_MAX;
};

/// The span asked for, or a usage error's message.
std::optional<Window> window_of(const HistorySource& s, const char* command, std::uint64_t default_span_ns) {
  const std::uint64_t now = realtime_ns();
  Window w;
  w.since = default_span_ns ? now - default_span_ns : 0;
  if (!s.since.empty()) {
    auto t = history::parse_time(s.since, now);
    if (!t) {
      std::cerr << "ttmem " << command << ": --since '" << s.since << "' is not a time: give "
                << history::kTimeForms << '\n';
      return std::nullopt;
    }
    w.since = *t;
  }
  if (!s.until.empty()) {
    auto t = history::parse_time(s.until, now);
    if (!t) {
      std::cerr << "ttmem " << command << ": --until '" << s.until << "' is not a time (as --since)\n";
      return std::nullopt;
    }
    w.until = *t;
  }
  if (w.until < w.since) {
    std::cerr << "ttmem " << command << ": --until is before --since\n";
    return std::nullopt;
  }
  return w;
}

std::string state_dir_of(const HistorySource& s) {
  return s.state_dir.empty() ? history::default_state_dir() : s.state_dir;
}

int terminal_width() {
  winsize ws{};
  if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/// One slot's chart: `rows` lines of block glyphs, the most in each column's span (points are steps: a
/// figure holds until the next point), y labels on the left, the span's ends below.
void chart(std::ostream& out, const views::TimelineSeries& s, const views::Timeline& t, int width, int rows) {
  const std::uint64_t from = t.since_ns, to = std::max(t.until_ns, from + 1);
  std::vector<std::uint64_t> col(static_cast<std::size_t>(width), 0);
  std::vector<bool> known(static_cast<std::size_t>(width), false);
  const double per_col = static_cast<double>(to - from) / width;
  auto column_of = [&](std::uint64_t ns) {
    return std::clamp(static_cast<int>(static_cast<double>(ns - std::min(ns, from)) / per_col), 0, width - 1);
  };
  for (std::size_t i = 0; i < s.points.size(); ++i) {
    const auto& p = s.points[i];
    const std::uint64_t end = i + 1 < s.points.size() ? s.points[i + 1].time_ns : t.until_ns;
    const int a = column_of(p.time_ns), b = column_of(end);
    col[a] = std::max(col[a], p.peak);
    known[a] = true;
    for (int c = a; c <= b; ++c) {
      col[c] = std::max(col[c], p.bytes);
      known[c] = true;
    }
  }
  for (const auto& g : t.gaps) {  // ttmemd was down: nothing is known there
    const int a = column_of(g.from_ns), b = g.to_ns >= t.until_ns ? width : column_of(g.to_ns);
    for (int c = a + 1; c < b; ++c) known[c] = false, col[c] = 0;
  }
  const std::uint64_t top = std::max<std::uint64_t>(1, *std::max_element(col.begin(), col.end()));
  static const char* kEighths[] = {" ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const std::string label_top = human_bytes(top);
  const std::size_t label_width = std::max<std::size_t>(label_top.size(), 3);
  for (int r = rows - 1; r >= 0; --r) {
    std::string line = fmt::format("{:>{}} │", r == rows - 1 ? label_top : (r == 0 ? "0" : ""), label_width);
    for (int c = 0; c < width; ++c) {
      if (!known[c]) {
        line += r == 0 ? "·" : " ";
        continue;
      }
      const double level = static_cast<double>(col[c]) / static_cast<double>(top) * rows;  // in rows
      const double in_row = std::clamp(level - r, 0.0, 1.0);
      line += kEighths[static_cast<int>(std::round(in_row * 8))];
    }
    out << line << '\n';
  }
  out << std::string(label_width + 1, ' ') << "└" << std::string(static_cast<std::size_t>(width), '-')
      << '\n';
  const std::string left = date_time(from), right = date_time(t.until_ns);
  const int pad = std::max(1, width + 2 - static_cast<int>(left.size() + right.size()));
  out << std::string(label_width + 1, ' ') << left << std::string(static_cast<std::size_t>(pad), ' ') << right
      << '\n';
}

}  // namespace

int run_history(const Common& common, const HistoryOptions& o) {
  auto w = window_of(o.source, "history", 0);
  if (!w) return kExitUsage;
  history::RecordFilter f;
  f.since_ns = w->since;
  f.until_ns = w->until;
  if (o.origin.device) f.device = static_cast<std::uint16_t>(*o.origin.device);
  if (o.origin.pid) f.pid = *o.origin.pid;
  if (o.origin.site) f.site = *o.origin.site;
  if (o.origin.op) f.op = *o.origin.op;
  f.limit = o.limit;
  if (!o.kinds.empty()) {
    std::string bad;
    auto kinds = parse_enum_list<HistoryKind>(o.kinds, &bad);
    if (!kinds) {
      std::cerr << "ttmem history: unknown --kind '" << bad << "'; one of "
                << names_of(enum_values<HistoryKind>()) << '\n';
      return kExitUsage;
    }
    f.kinds = std::move(*kinds);
  }
  try {
    const history::Reader reader(state_dir_of(o.source));
    const views::HistoryList list = reader.records(f);
    if (common.json) {
      print_json(schema::to_json(list));
      return 0;
    }
    if (o.csv) {
      std::cout << csv_line(
                       {"seq", "time", "kind", "pid", "process", "device", "site", "op", "bytes", "summary"})
                << '\n';
      for (const auto& r : list.records)
        std::cout << csv_line({std::to_string(r.seq), date_time(r.time_ns), std::string(to_string(r.kind)),
                               std::to_string(r.pid), r.name, r.device ? std::to_string(*r.device) : "",
                               r.site, r.scope, std::to_string(r.bytes), r.summary})
                  << '\n';
      return 0;
    }
    const Style style = Style::detect();
    if (list.records.empty()) {
      std::cout << "no records in " << reader.path() << " for that span and filter\n";
      return 0;
    }
    Table t;
    t.column("time", Table::Align::left);
    t.column("kind", Table::Align::left);
    t.column("what", Table::Align::left);
    for (const auto& r : list.records) {
      std::string kind(to_string(r.kind));
      if (r.kind == HistoryKind::leak || r.kind == HistoryKind::orphan || r.kind == HistoryKind::oom) {
        kind = style.red(kind);
      } else if (r.kind == HistoryKind::anomaly || r.kind == HistoryKind::lifetimes_dropped) {
        kind = style.yellow(kind);
      }
      t.row({date_time(r.time_ns), kind, r.summary});
    }
    t.print(std::cout, style);
    if (list.truncated)
      std::cout << style.dim(
                       fmt::format("(the newest {}; -n N for more, --since to narrow)", list.records.size()))
                << '\n';
  } catch (const history::HistoryError& e) {
    std::cerr << "ttmem history: " << e.what() << '\n';
    return kExitNoInput;
  }
  return 0;
}

int run_timeline(const Common& common, const TimelineOptions& o) {
  auto w = window_of(o.source, "timeline", 3600 * history::kSecondNs);
  if (!w) return kExitUsage;
  history::TimelineQuery q;
  q.device = static_cast<std::uint16_t>(o.device);
  q.since_ns = w->since;
  q.until_ns = w->until;
  q.per_process = o.processes;
  if (o.pid) q.pid = *o.pid;
  if (!o.slot.empty()) {
    const auto slot = parse_enum<Slot>(o.slot);
    if (!slot) {
      std::cerr << "ttmem timeline: unknown --type '" << o.slot << "'; one of "
                << names_of(enum_values<Slot>()) << '\n';
      return kExitUsage;
    }
    q.slot = *slot;
  }
  try {
    const history::Reader reader(state_dir_of(o.source));
    const views::Timeline t = reader.timeline(q);
    if (common.json) {
      print_json(schema::to_json(t));
      return 0;
    }
    if (o.csv) {
      std::cout << csv_line({"time_ns", "time", "type", "pid", "process", "bytes", "peak"}) << '\n';
      for (const auto& s : t.series)
        for (const auto& p : s.points)
          std::cout << csv_line({std::to_string(p.time_ns), date_time(p.time_ns),
                                 std::string(to_string(s.slot)), std::to_string(s.pid), s.name,
                                 std::to_string(p.bytes), std::to_string(p.peak)})
                    << '\n';
      return 0;
    }
    if (t.series.empty()) {
      std::cout << "device " << o.device << ": no points between " << date_time(t.since_ns) << " and "
                << date_time(t.until_ns) << " in " << reader.path() << '\n';
      return 0;
    }
    const Style style = Style::detect();
    const int width = std::clamp(o.width ? o.width : terminal_width() - 14, 20, 400);
    std::cout << style.bold(fmt::format("device {}", o.device)) << ", " << date_time(t.since_ns) << " to "
              << date_time(t.until_ns)
              << style.dim(t.resolution_ns < history::kSecondNs
                               ? fmt::format(" (points every {} ms)", t.resolution_ns / 1'000'000)
                               : fmt::format(" (points every {} s)", t.resolution_ns / history::kSecondNs))
              << '\n';
    for (const auto& s : t.series) {
      std::uint64_t peak = 0;
      for (const auto& p : s.points) peak = std::max(peak, p.peak);
      const std::string who = s.pid ? fmt::format(" of pid {} ({})", s.pid, s.name) : "";
      std::cout << '\n'
                << style.bold(std::string(to_string(s.slot))) << who << ": now "
                << human_bytes(s.points.back().bytes) << ", at most " << human_bytes(peak) << '\n';
      chart(std::cout, s, t, width, 6);
    }
    for (const auto& g : t.gaps)
      std::cout << style.yellow(g.to_ns >= t.until_ns
                                    ? fmt::format("ttmemd not running since {} (·)", date_time(g.from_ns))
                                    : fmt::format("ttmemd not running from {} to {} (·)",
                                                  date_time(g.from_ns), date_time(g.to_ns)))
                << '\n';
  } catch (const history::HistoryError& e) {
    std::cerr << "ttmem timeline: " << e.what() << '\n';
    return kExitNoInput;
  }
  return 0;
}

int run_export(const Common&, const ExportOptions& o) {
  if (o.perfetto.empty() == o.memory_viz.empty()) {
    std::cerr << "ttmem export: give one of --perfetto FILE or --memory-viz FILE\n";
    return kExitUsage;
  }
  auto w = window_of(o.source, "export", 3600 * history::kSecondNs);
  if (!w) return kExitUsage;
  history::ExportWindow window{w->since, w->until, std::nullopt};
  if (o.device) window.device = static_cast<std::uint16_t>(*o.device);
  std::string text;
  try {
    const history::Reader reader(state_dir_of(o.source));
    text = o.perfetto.empty() ? history::memory_viz_snapshot(reader, window)
                              : history::perfetto_trace(reader, window);
  } catch (const history::HistoryError& e) {
    std::cerr << "ttmem export: " << e.what() << '\n';
    return kExitNoInput;
  }
  if (!o.perfetto.empty()) {
    std::ofstream out(o.perfetto, std::ios::binary);
    out << text;
    out.close();
    if (!out) {
      std::cerr << "ttmem export: cannot write " << o.perfetto << '\n';
      return kExitServerError;
    }
    std::cout << "wrote " << o.perfetto << " (" << human_bytes(text.size())
              << "): open it at ui.perfetto.dev or chrome://tracing\n";
    return 0;
  }
  // memory_viz reads pickles (protocol 2 to 4): Python's own pickle writes it from the snapshot's JSON.
  const std::string script =
      "import json, pickle, sys\n"
      "snapshot = json.load(sys.stdin)\n"
      "with open(sys.argv[1], 'wb') as f:\n"
      "    pickle.dump(snapshot, f, protocol=4)\n";
  const std::string command = "/usr/bin/python3 -c \"$TTMEM_PICKLE\" \"$TTMEM_OUT\"";
  setenv("TTMEM_PICKLE", script.c_str(), 1);
  setenv("TTMEM_OUT", o.memory_viz.c_str(), 1);
  FILE* pipe = popen(command.c_str(), "w");
  if (!pipe) {
    std::cerr << "ttmem export: cannot run /usr/bin/python3 to write the pickle\n";
    return kExitServerError;
  }
  const bool written = std::fwrite(text.data(), 1, text.size(), pipe) == text.size();
  const int status = pclose(pipe);
  if (!written || status != 0) {
    std::cerr << "ttmem export: writing " << o.memory_viz << " failed (python3 exit " << status << ")\n";
    return kExitServerError;
  }
  std::cout << "wrote " << o.memory_viz
            << ": open it at pytorch.org/memory_viz (one device per TT device x type)\n";
  return 0;
}

}  // namespace ttmem::cli
