// See top_layout.hpp.
#include "top_layout.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "output.hpp"

namespace ttmem::cli {

namespace {

/// Text fields (names, commands, record lines) that do not fit end in "..." at a space when there is
/// one near, never inside a number.
std::string fit_text(const std::string& text, std::size_t width) {
  return abbreviated(text, width, true);
}

TopLine plain(const std::string& text, Tone tone = Tone::normal) {
  return {Segment{text, tone}};
}

Tone level(std::uint64_t used, std::uint64_t total) {
  if (!total) return Tone::normal;
  const double f = static_cast<double>(used) / static_cast<double>(total);
  return f >= 0.9 ? Tone::bad : f >= 0.7 ? Tone::warn : Tone::ok;
}

bool idle(const views::DeviceUsage& d) {
  if (d.processes) return false;
  return std::all_of(d.memory.begin(), d.memory.end(), [](const views::SlotUsage& m) { return m.used == 0; });
}

/// "2-9, 12" for ids in order.
std::string ranges(const std::vector<int>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    out +=
        (out.empty() ? "" : ", ") + (j == i ? std::to_string(ids[i]) : fmt::format("{}-{}", ids[i], ids[j]));
    i = j + 1;
  }
  return out;
}

/// One slot's usage: "DRAM [###  ]  1% 88.0 MiB/12.0 GiB" (no bar when bar == 0).
void add_usage(TopLine& line, const char* label, const views::SlotUsage& m, int bar) {
  line.push_back({fmt::format("{:<4} ", label), Tone::normal});
  if (bar > 0) {
    const double f = m.total ? std::min(1.0, static_cast<double>(m.used) / static_cast<double>(m.total)) : 0;
    int filled = static_cast<int>(f * bar + 0.5);
    if (m.used > 0 && filled == 0) filled = 1;
    line.push_back({"[", Tone::normal});
    line.push_back({std::string(static_cast<std::size_t>(filled), '#'), level(m.used, m.total)});
    line.push_back({std::string(static_cast<std::size_t>(bar - filled), ' ') + "] ", Tone::normal});
  }
  line.push_back(
      {fmt::format("{:>4} {:>9}/{:<9}", percent(m.used, m.total), human_bytes(m.used), human_bytes(m.total)),
       Tone::normal});
}

/// A busy device on one line, the richest form that fits: bars, then without bars, then a short arch,
/// then DRAM alone.
TopLine device_line(const views::DeviceUsage& d, std::size_t cols) {
  const std::string arch = d.arch ? std::string(to_string(*d.arch)) : "?";
  const std::string short_arch = d.arch ? (*d.arch == Arch::blackhole ? "bh" : "wh") : "?";
  const auto& dram = d.memory[index(Slot::DRAM)];
  const auto& l1 = d.memory[index(Slot::L1)];
  auto build = [&](const std::string& a, int bar, bool with_l1) {
    TopLine line{{fmt::format("{:>3} {} ", d.id, a), Tone::normal}};
    add_usage(line, "DRAM", dram, bar);
    if (with_l1) {
      line.push_back({"  ", Tone::normal});
      add_usage(line, "L1", l1, bar);
    }
    return line;
  };
  for (int bar : {20, 14, 10, 6}) {
    TopLine line = build(arch, bar, true);
    if (line_width(line) <= cols) return line;
  }
  for (const std::string& a : {arch, short_arch}) {
    TopLine line = build(a, 0, true);
    if (line_width(line) <= cols) return line;
  }
  TopLine line = build(short_arch, 0, false);
  if (line_width(line) <= cols) return line;
  return plain(fit_text(fmt::format("{:>3} {} {}", d.id, short_arch, human_bytes(dram.used)), cols));
}

/// The second line of a device: the other slots and free space, as many fields as fit.
TopLine device_details(const views::DeviceUsage& d, std::size_t cols) {
  auto largest = [&](Slot slot) {
    const auto& space = d.memory[index(slot)].space;
    return space ? human_bytes(space->largest_free_block) : std::string("-");
  };
  const std::vector<std::string> fields{
      fmt::format("L1_SMALL {}", human_bytes(d.memory[index(Slot::L1_SMALL)].used)),
      fmt::format("TRACE {}", human_bytes(d.memory[index(Slot::TRACE)].used)),
      fmt::format("CB {}", human_bytes(d.memory[index(Slot::CB)].used)),
      fmt::format("buffers {}", d.buffers),
      fmt::format("processes {}", d.processes),
      fmt::format("largest free/bank DRAM {} L1 {}", largest(Slot::DRAM), largest(Slot::L1))};
  std::string text = "      ";
  for (const auto& f : fields) {
    const std::string next = text + (text.size() > 6 ? "   " : "") + f;
    if (visible_width(next) > cols) break;
    text = next;
  }
  return plain(text, Tone::dim);
}

struct Column {
  const char* name;
  int width;
  bool right;
};

/// The process table's columns that fit: the essential ones always, then CB, BUFFERS, L1_SMALL and
/// TRACE as room allows; COMMAND takes what is left on a wide screen.
std::vector<Column> process_columns(std::size_t cols, int& command_width) {
  std::vector<Column> columns{
      {"DEV", 3, true}, {"PID", 8, true}, {"NAME", 15, false}, {"DRAM", 10, true}, {"L1", 10, true}};
  auto used = [&] {
    std::size_t w = 1;
    for (const auto& c : columns) w += static_cast<std::size_t>(c.width) + 1;
    return w;
  };
  for (Column extra : {Column{"CB", 10, true}, Column{"BUFFERS", 8, true}, Column{"L1_SMALL", 10, true},
                       Column{"TRACE", 10, true}}) {
    if (used() + static_cast<std::size_t>(extra.width) + 1 <= cols) columns.push_back(extra);
  }
  // A narrow terminal: fewer columns rather than cut ones.
  if (used() > cols) std::erase_if(columns, [](const Column& c) { return std::string_view(c.name) == "L1"; });
  if (used() > cols) columns[2].width = 9;  // NAME
  if (used() > cols)
    std::erase_if(columns, [](const Column& c) { return std::string_view(c.name) == "NAME"; });
  command_width = static_cast<int>(cols) - static_cast<int>(used()) - 1;
  if (command_width < 12) command_width = 0;
  return columns;
}

std::string process_cell(const views::ProcessUsage& p, const std::string& column) {
  if (column == "DEV") return std::to_string(p.device);
  if (column == "PID") return std::to_string(p.pid);
  if (column == "NAME") return p.name;
  if (column == "BUFFERS") return std::to_string(p.buffers);
  return human_bytes(p.bytes[index(*parse_enum<Slot>(column))]);
}

std::string row_text(const std::vector<Column>& columns, int command_width,
                     const std::function<std::string(const Column&)>& cell, const std::string& command) {
  std::string text = " ";
  for (const auto& c : columns) {
    const std::string v = fit_text(cell(c), static_cast<std::size_t>(c.width));
    text += c.right ? fmt::format("{:>{}} ", v, c.width) : fmt::format("{:<{}} ", v, c.width);
  }
  if (command_width > 0) text += fit_text(command, static_cast<std::size_t>(command_width));
  return text;
}

}  // namespace

std::size_t line_width(const TopLine& line) {
  std::size_t w = 0;
  for (const auto& s : line) w += visible_width(s.text);
  return w;
}

std::vector<TopLine> layout_top(const TopModel& model, const TopScreen& screen, int& scroll) {
  const std::size_t cols = static_cast<std::size_t>(std::max(1, screen.cols));
  const int rows = std::max(1, screen.rows);
  const views::Stats& stats = model.stats();

  // The title: as many facts as fit, then the keys at the right.
  const std::string keys = "h help  q quit ";
  std::vector<std::string> facts{" ttmem top"};
  if (screen.info) facts.push_back("ttmemd " + screen.info->version);
  facts.push_back(fmt::format("{} process{}", screen.info ? screen.info->processes : 0,
                              screen.info && screen.info->processes == 1 ? "" : "es"));
  facts.push_back(
      fmt::format("{} allocation{}", stats.active_allocations, stats.active_allocations == 1 ? "" : "s"));
  facts.push_back(fmt::format("every {:.1f} s", screen.interval_ms / 1000.0));
  facts.push_back(screen.socket);
  std::string title;
  for (const auto& f : facts) {
    const std::string next = title.empty() ? f : title + " | " + f;
    if (visible_width(next) + keys.size() + 1 > cols) break;
    title = next;
  }
  if (title.empty()) title = fit_text(" ttmem top", cols);
  const std::size_t pad =
      cols > visible_width(title) + keys.size() ? cols - visible_width(title) - keys.size() : 0;
  std::vector<TopLine> head{plain(
      title + std::string(pad, ' ') + (visible_width(title) + keys.size() <= cols ? keys : ""), Tone::title)};
  if (!screen.error.empty()) head.push_back(plain(fit_text(screen.error, cols), Tone::red));

  // What there is to show.
  const auto processes = model.processes();
  std::vector<const views::DeviceUsage*> busy;
  std::vector<int> idle_ids;
  for (const auto& d : stats.devices) {
    if (idle(d)) {
      idle_ids.push_back(d.id);
    } else {
      busy.push_back(&d);
    }
  }
  const std::size_t record_count = 4;
  const auto records = model.recent_records(record_count);

  // Room: the fixed lines, then the minimum of each part, then what is left, by priority.
  const bool spacious = rows >= 36;
  const int gap = spacious ? 1 : 0;  // a blank line between parts on a tall screen
  const int fixed = static_cast<int>(head.size()) + 2 /* processes heading + header */ + 1 /* devices */ +
                    1 /* records */ + 3 * gap;
  int left = rows - fixed;
  const int process_rows = static_cast<int>(processes.size());
  const int busy_rows = static_cast<int>(busy.size());
  const int idle_row = idle_ids.empty() ? 0 : 1;
  int show_processes = std::min(process_rows, std::max(1, std::min(3, left - 3)));
  left -= std::max(1, show_processes);
  int show_devices = std::min(busy_rows, std::max(0, std::min(2, left - 1 - idle_row)));
  left -= show_devices + idle_row;
  int show_records = records.empty() ? 1 : std::min<int>(1, static_cast<int>(records.size()));
  left -= show_records;
  // Then, in order: every process, every busy device, the records, details, history.
  auto grow = [&left](int& shown, int want) {
    const int more = std::max(0, std::min(want - shown, left));
    shown += more;
    left -= more;
  };
  // A table that cannot show every row keeps a line for its "more" marker.
  const bool processes_fit = process_rows - show_processes <= left;
  if (processes_fit) {
    grow(show_processes, process_rows);
  } else {
    grow(show_processes, std::max(show_processes, show_processes + left - 1));
  }
  const bool devices_fit = busy_rows - show_devices <= left;
  grow(show_devices, devices_fit ? busy_rows : show_devices + std::max(0, left - 1));
  grow(show_records, static_cast<int>(records.size()));
  const bool details = show_devices == busy_rows && left >= busy_rows;
  if (details) left -= busy_rows;
  const int history_lines = 2 * busy_rows + 1 + gap;  // what is left shows more, never less
  const bool history = show_devices == busy_rows && busy_rows > 0 && left >= history_lines;

  std::vector<TopLine> out = head;
  auto blank = [&] {
    if (gap) out.push_back(plain(""));
  };
  blank();

  // Processes, scrolled.
  const int hidden_total = std::max(0, process_rows - show_processes);
  const bool marker_room = hidden_total > 0 && show_processes > 1;
  const int row_slots = marker_room ? show_processes - 1 : show_processes;  // one line says what is hidden
  scroll = std::clamp(scroll, 0, std::max(0, process_rows - row_slots));
  out.push_back(plain(
      fit_text(fmt::format("PROCESSES  sorted by {} ({}); d l s t c b p n v sort, r reverses{}",
                           sort_key_name(model.sort_key()), model.descending() ? "descending" : "ascending",
                           hidden_total ? ", j k scroll" : ""),
               cols),
      Tone::heading));
  int command_width = 0;
  const auto columns = process_columns(cols, command_width);
  out.push_back(plain(row_text(
                          columns, command_width, [](const Column& c) { return std::string(c.name); },
                          command_width ? "COMMAND" : ""),
                      Tone::underline));
  if (processes.empty()) {
    out.push_back(plain("  No process holds device memory."));
  } else {
    for (int i = scroll; i < std::min(process_rows, scroll + row_slots); ++i) {
      const auto& p = processes[static_cast<std::size_t>(i)];
      out.push_back(plain(row_text(
          columns, command_width, [&](const Column& c) { return process_cell(p, c.name); }, p.command)));
    }
    const int above = scroll, below = std::max(0, process_rows - scroll - row_slots);
    if (above + below > 0 && marker_room) {
      std::string more = fmt::format("  {} more process row{}", above + below, above + below == 1 ? "" : "s");
      if (above) more += fmt::format(", {} above", above);
      if (below) more += fmt::format(", {} below", below);
      out.push_back(plain(fit_text(more + " (j/k, arrows, PgUp/PgDn)", cols), Tone::dim));
    }
  }
  blank();

  // Devices: the busy ones, the idle ones on a line.
  out.push_back(plain("DEVICES", Tone::heading));
  if (stats.devices.empty()) out.push_back(plain("  No device has been reported yet."));
  for (int i = 0; i < show_devices; ++i) {
    out.push_back(device_line(*busy[static_cast<std::size_t>(i)], cols));
    if (details) out.push_back(device_details(*busy[static_cast<std::size_t>(i)], cols));
  }
  if (show_devices < busy_rows)
    out.push_back(
        plain(fit_text(fmt::format("  {} more busy device{} (ttmem smi lists every one)",
                                   busy_rows - show_devices, busy_rows - show_devices == 1 ? "" : "s"),
                       cols),
              Tone::dim));
  if (idle_row) {
    const std::string idle_text = fmt::format("  idle, nothing allocated: {} device{} ({})", idle_ids.size(),
                                              idle_ids.size() == 1 ? "" : "s", ranges(idle_ids));
    out.push_back(plain(visible_width(idle_text) <= cols
                            ? idle_text
                            : fit_text(fmt::format("  idle: {} devices", idle_ids.size()), cols),
                        Tone::dim));
  }
  blank();

  out.push_back(plain("LATEST OUT OF MEMORY, LEAKS AND ORPHANS", Tone::heading));
  if (records.empty()) out.push_back(plain("  none"));
  for (int i = 0; i < std::min<int>(show_records, static_cast<int>(records.size())); ++i) {
    const auto& r = records[static_cast<std::size_t>(i)];
    const bool red = r.rfind("LEAK", 0) == 0 || r.rfind("OOM", 0) == 0;
    out.push_back(plain(fit_text("  " + r, cols), red ? Tone::red : Tone::normal));
  }

  if (history) {
    blank();
    out.push_back(plain(fit_text(fmt::format("HISTORY  DRAM and L1 in use per device, last {} s (full height "
                                             "= total)",
                                             screen.history_s),
                                 cols),
                        Tone::heading));
    const std::size_t chart = cols > 14 ? cols - 14 : 1;
    for (const auto* d : busy) {
      std::vector<std::uint64_t> dram, l1;
      for (const auto& h : model.history(d->id)) {
        dram.push_back(h.dram);
        l1.push_back(h.l1);
      }
      out.push_back(
          plain(fmt::format("{:>3} DRAM  |{}|", d->id,
                            sparkline(dram, d->memory[index(Slot::DRAM)].total, chart, screen.unicode))));
      out.push_back(
          plain(fmt::format("{:>3} L1    |{}|", d->id,
                            sparkline(l1, d->memory[index(Slot::L1)].total, chart, screen.unicode))));
    }
  }
  if (out.size() > static_cast<std::size_t>(rows)) out.resize(static_cast<std::size_t>(rows));
  return out;
}

}  // namespace ttmem::cli
