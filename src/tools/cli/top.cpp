// `ttmem top`: a live full-screen view (ncurses) — device usage bars per memory type, a history chart of
// DRAM and L1 per device, a sortable process table, the latest leaks and orphans.
#include <fmt/format.h>
#include <langinfo.h>
#include <ncurses.h>

#include <chrono>
#include <clocale>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "commands.hpp"
#include "output.hpp"
#include "top_model.hpp"

namespace ttmem::cli {

namespace {

enum Colors { kGreen = 1, kYellow, kRed, kTitle };

class Screen {
 public:
  Screen(bool unicode) : unicode_(unicode) {
    initscr();
    cbreak();
    noecho();
    keypad(stdscr, TRUE);
    curs_set(0);
    color_ = has_colors() && !Style::color_refused();
    if (color_) {
      start_color();
      use_default_colors();
      init_pair(kGreen, COLOR_GREEN, -1);
      init_pair(kYellow, COLOR_YELLOW, -1);
      init_pair(kRed, COLOR_RED, -1);
      init_pair(kTitle, COLOR_BLACK, COLOR_CYAN);
    }
  }
  ~Screen() { endwin(); }

  int rows() const { return getmaxy(stdscr); }
  int cols() const { return getmaxx(stdscr); }
  bool unicode() const { return unicode_; }

  /// Writes text at (y, x), clipped to the screen; returns the column after it.
  int put(int y, int x, const std::string& text, attr_t attr = A_NORMAL) {
    if (y < 0 || y >= rows() || x >= cols()) return x;
    attron(attr);
    mvaddnstr(y, x, text.c_str(), static_cast<int>(clip_bytes(text, static_cast<std::size_t>(cols() - x))));
    attroff(attr);
    return x + static_cast<int>(visible_width(text));
  }
  attr_t level(double fraction) const {
    if (!color_) return A_NORMAL;
    return COLOR_PAIR(fraction >= 0.9 ? kRed : fraction >= 0.7 ? kYellow : kGreen);
  }
  attr_t title() const { return color_ ? COLOR_PAIR(kTitle) : A_REVERSE; }
  attr_t red() const { return color_ ? COLOR_PAIR(kRed) : A_BOLD; }

 private:
  /// Bytes of the longest prefix of `s` that is at most `width` code points.
  static std::size_t clip_bytes(const std::string& s, std::size_t width) {
    std::size_t cells = 0, i = 0;
    for (; i < s.size(); ++i) {
      if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) {
        if (cells == width) break;
        ++cells;
      }
    }
    return i;
  }
  bool unicode_;
  bool color_ = false;
};

double fraction(std::uint64_t used, std::uint64_t total) {
  return total ? static_cast<double>(used) / static_cast<double>(total) : 0.0;
}

/// "[#####     ] 40% 4.8 GiB/12.0 GiB" with the bar coloured by level.
int usage_bar(Screen& s, int y, int x, const char* label, const views::SlotUsage& m, int width) {
  const std::uint64_t used = m.used, total = m.total;
  const double f = fraction(used, total);
  int filled = static_cast<int>(std::min(1.0, f) * width + 0.5);
  if (used > 0 && filled == 0) filled = 1;
  x = s.put(y, x, fmt::format("{:<5}[", label));
  x = s.put(y, x, std::string(static_cast<std::size_t>(filled), '#'), s.level(f));
  x = s.put(y, x, std::string(static_cast<std::size_t>(width - filled), ' ') + "]");
  return s.put(
      y, x, fmt::format(" {:>4} {:>9}/{:<9}", percent(used, total), human_bytes(used), human_bytes(total)));
}

void draw_help(Screen& s) {
  const std::vector<std::string> lines = {
      "ttmem top: keys",
      "",
      "  d  sort processes by DRAM      l  by L1        s  by L1_SMALL",
      "  t  by TRACE                    c  by CB        b  by buffers",
      "  p  by pid                      n  by name      v  by device",
      "  r  reverse the order",
      "  h  show or hide this help      q  quit",
      "",
      "Bars: used / total allocatable bytes per memory type; CB is L1",
      "held by programs' circular buffers. History: newest at the right.",
  };
  const int w = 70, h = static_cast<int>(lines.size()) + 2;
  const int y0 = std::max(0, (s.rows() - h) / 2), x0 = std::max(0, (s.cols() - w) / 2);
  for (int y = 0; y < h; ++y) s.put(y0 + y, x0, std::string(static_cast<std::size_t>(w), ' '), A_REVERSE);
  for (std::size_t i = 0; i < lines.size(); ++i)
    s.put(y0 + 1 + static_cast<int>(i), x0 + 2, lines[i], A_REVERSE);
}

void draw(Screen& s, const TopModel& model, const std::optional<views::ServerInfo>& info,
          const std::string& socket, std::uint32_t interval_ms, std::uint32_t history_s,
          const std::string& error, bool help) {
  erase();
  const int cols = s.cols(), rows = s.rows();
  const views::Stats& stats = model.stats();
  std::string title =
      fmt::format(" ttmem top | ttmemd {} at {} | {} process(es) | {} allocations | every {:.1f} s",
                  info ? info->version : "?", socket, info ? info->processes : 0, stats.active_allocations,
                  interval_ms / 1000.0);
  const std::string keys = "h help  q quit ";
  title.resize(static_cast<std::size_t>(std::max(0, cols - static_cast<int>(keys.size()))), ' ');
  s.put(0, 0, title + keys, s.title());
  int y = 1;
  if (!error.empty()) s.put(y++, 0, error, s.red());
  y++;

  // Devices
  s.put(y++, 0, "DEVICES", A_BOLD);
  const int bar_width = std::max(5, std::min(20, (cols - 20) / 2 - 34));
  const auto& devices = stats.devices;
  if (devices.empty()) s.put(y++, 2, "No device has been reported yet.");
  for (const auto& d : devices) {
    if (y >= rows - 8) break;
    const auto& m = d.memory;
    int x = s.put(y, 1, fmt::format("{:>2} {:<12}", d.id, d.arch ? std::string(to_string(*d.arch)) : "?"));
    x = usage_bar(s, y, x, "DRAM", m[index(Slot::DRAM)], bar_width);
    usage_bar(s, y, x + 2, "L1", m[index(Slot::L1)], bar_width);
    ++y;
    auto largest = [&](Slot slot) {
      const auto& space = m[index(slot)].space;
      return space ? human_bytes(space->largest_free_block) : std::string("-");
    };
    s.put(y++, 17,
          fmt::format(
              "L1_SMALL {}   TRACE {}   CB {}   buffers {}   processes {}   largest free/bank: DRAM {}  "
              "L1 {}",
              human_bytes(m[index(Slot::L1_SMALL)].used), human_bytes(m[index(Slot::TRACE)].used),
              human_bytes(m[index(Slot::CB)].used), d.buffers, d.processes, largest(Slot::DRAM),
              largest(Slot::L1)));
  }

  // History
  if (y < rows - 10 && !devices.empty()) {
    y++;
    s.put(y++, 0,
          fmt::format("HISTORY  DRAM and L1 in use per device, last {} s (full height = total)", history_s),
          A_BOLD);
    const std::size_t width = static_cast<std::size_t>(std::max(10, cols - 14));
    for (const auto& d : devices) {
      if (y >= rows - 8) break;
      const int id = d.id;
      std::vector<std::uint64_t> dram, l1;
      for (const auto& h : model.history(id)) {
        dram.push_back(h.dram);
        l1.push_back(h.l1);
      }
      s.put(y, 1, fmt::format("{:>2} DRAM", id));
      s.put(y++, 11, "|" + sparkline(dram, d.memory[index(Slot::DRAM)].total, width, s.unicode()) + "|");
      s.put(y, 1, fmt::format("{:>2} L1", id));
      s.put(y++, 11, "|" + sparkline(l1, d.memory[index(Slot::L1)].total, width, s.unicode()) + "|");
    }
  }

  // Processes
  y++;
  s.put(y++, 0,
        fmt::format("PROCESSES  sorted by {} ({}); keys d l s t c b p n v sort, r reverses",
                    sort_key_name(model.sort_key()), model.descending() ? "descending" : "ascending"),
        A_BOLD);
  const auto processes = model.processes();
  const std::string header =
      fmt::format("{:>3} {:>8}  {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}", "DEV", "PID", "NAME",
                  "DRAM", "L1", "L1_SMALL", "TRACE", "CB", "BUFFERS");
  s.put(y++, 1, header, A_UNDERLINE);
  if (processes.empty()) s.put(y++, 2, "No process holds device memory.");
  const int leak_rows = 4;
  for (const auto& p : processes) {
    if (y >= rows - leak_rows - 2) break;
    s.put(y++, 1,
          fmt::format("{:>3} {:>8}  {:<15} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}", p.device, p.pid,
                      p.name.substr(0, 15), human_bytes(p.bytes[index(Slot::DRAM)]),
                      human_bytes(p.bytes[index(Slot::L1)]), human_bytes(p.bytes[index(Slot::L1_SMALL)]),
                      human_bytes(p.bytes[index(Slot::TRACE)]), human_bytes(p.bytes[index(Slot::CB)]),
                      p.buffers));
  }

  // Leaks and orphans
  y = std::max(y + 1, rows - leak_rows - 1);
  s.put(y++, 0, "LATEST OUT OF MEMORY, LEAKS AND ORPHANS", A_BOLD);
  const auto records = model.recent_records(static_cast<std::size_t>(leak_rows));
  if (records.empty()) s.put(y, 2, "none");
  for (const auto& r : records)
    s.put(y++, 2, r, r.rfind("LEAK", 0) == 0 || r.rfind("OOM", 0) == 0 ? s.red() : A_NORMAL);

  if (help) draw_help(s);
  refresh();
}

}  // namespace

int run_top(const Common& common, const TopOptions& o) {
  std::optional<query::QueryClient> client(connect_or_exit(common.socket));
  std::setlocale(LC_ALL, "");
  const bool unicode = std::strcmp(nl_langinfo(CODESET), "UTF-8") == 0;
  TopModel model(std::max<std::size_t>(1, o.history_s * 1000 / std::max<std::uint32_t>(1, o.interval_ms)));
  Screen screen(unicode);
  std::optional<views::ServerInfo> info;
  std::string error;
  bool help = false;
  auto fetch = [&] {
    try {
      if (!client) client.emplace(common.socket);
      model.update(client->stats(), client->leaks(), client->oom());
      info = client->info();
      error.clear();
    } catch (const std::exception& e) {
      client.reset();
      error = fmt::format("lost ttmemd at {} ({}); retrying", common.socket, e.what());
    }
  };
  fetch();
  auto next_fetch = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.interval_ms);
  for (;;) {
    draw(screen, model, info, common.socket, o.interval_ms, o.history_s, error, help);
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_fetch - std::chrono::steady_clock::now());
    timeout(static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    const int ch = getch();
    if (ch == 'q' || ch == 'Q') return 0;
    if (ch == 'h' || ch == 'H' || ch == '?') {
      help = !help;
    } else if (ch == ERR) {
      fetch();
      next_fetch = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.interval_ms);
    } else {
      model.key(ch);  // KEY_RESIZE and unknown keys just redraw
    }
  }
}

}  // namespace ttmem::cli
