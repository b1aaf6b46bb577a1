// `ttmem top`: a live full-screen view (ncurses) of what top_layout.hpp lays out — a sortable, scrolling
// process table, device usage bars per memory type, the latest records, history charts when there is room.
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
#include "top_layout.hpp"
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
  attr_t attr(Tone tone) const {
    switch (tone) {
      case Tone::title:
        return color_ ? COLOR_PAIR(kTitle) : A_REVERSE;
      case Tone::heading:
        return A_BOLD;
      case Tone::underline:
        return A_UNDERLINE;
      case Tone::red:
        return color_ ? COLOR_PAIR(kRed) : A_BOLD;
      case Tone::dim:
        return A_DIM;
      case Tone::ok:
        return color_ ? COLOR_PAIR(kGreen) : A_NORMAL;
      case Tone::warn:
        return color_ ? COLOR_PAIR(kYellow) : A_NORMAL;
      case Tone::bad:
        return color_ ? COLOR_PAIR(kRed) : A_BOLD;
      case Tone::normal:
        break;
    }
    return A_NORMAL;
  }

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

void draw_help(Screen& s) {
  const std::vector<std::string> lines = {
      "ttmem top: keys",
      "",
      "  d  sort processes by DRAM      l  by L1        s  by L1_SMALL",
      "  t  by TRACE                    c  by CB        b  by buffers",
      "  p  by pid                      n  by name      v  by device",
      "  r  reverse the order           j k, arrows, PgUp PgDn  scroll",
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

void draw(Screen& s, const TopModel& model, const TopScreen& screen, bool help, int& scroll) {
  erase();
  int y = 0;
  for (const TopLine& line : layout_top(model, screen, scroll)) {
    int x = 0;
    for (const Segment& seg : line) x = s.put(y, x, seg.text, s.attr(seg.tone));
    ++y;
  }
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
  TopScreen view;
  view.socket = common.socket;
  view.interval_ms = o.interval_ms;
  view.history_s = o.history_s;
  view.unicode = unicode;
  bool help = false;
  int scroll = 0;
  auto fetch = [&] {
    try {
      if (!client) {
        client.emplace(common.socket);
        model.forget_records();  // perhaps another ttmemd, numbering its records afresh
      }
      // Only the leak and orphan records not seen yet: a long-running server keeps thousands.
      model.update(client->stats(), client->leaks(model.last_leak_seq(), model.last_orphan_seq()),
                   client->oom());
      view.info = client->info();
      view.error.clear();
    } catch (const std::exception& e) {
      client.reset();
      view.error = fmt::format("lost ttmemd at {} ({}); retrying", common.socket, e.what());
    }
  };
  fetch();
  auto next_fetch = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.interval_ms);
  for (;;) {
    view.cols = screen.cols();
    view.rows = screen.rows();
    draw(screen, model, view, help, scroll);
    const auto wait =
        std::chrono::duration_cast<std::chrono::milliseconds>(next_fetch - std::chrono::steady_clock::now());
    timeout(static_cast<int>(std::max<std::int64_t>(0, wait.count())));
    const int ch = getch();
    if (ch == 'q' || ch == 'Q') return 0;
    if (ch == 'h' || ch == 'H' || ch == '?') {
      help = !help;
    } else if (ch == 'j' || ch == KEY_DOWN) {
      ++scroll;  // the layout clamps it
    } else if (ch == 'k' || ch == KEY_UP) {
      scroll = std::max(0, scroll - 1);
    } else if (ch == KEY_NPAGE || ch == ' ') {
      scroll += std::max(1, screen.rows() / 2);
    } else if (ch == KEY_PPAGE) {
      scroll = std::max(0, scroll - std::max(1, screen.rows() / 2));
    } else if (ch == ERR) {
      fetch();
      next_fetch = std::chrono::steady_clock::now() + std::chrono::milliseconds(o.interval_ms);
    } else {
      model.key(ch);  // KEY_RESIZE and unknown keys just redraw
    }
  }
}

}  // namespace ttmem::cli
