// How `ttmem top` fills a terminal of any size: the lines to draw, each already fitting the width, so
// nothing is cut by the terminal (never a number in half). What matters most comes first and is given
// room first: the process table, then the busy devices (idle ones on one line), the latest records,
// then, when the screen is tall enough, each device's details and history. Plain C++, tested without a
// terminal.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "top_model.hpp"
#include "ttmem/views.hpp"

namespace ttmem::cli {

/// How a piece of a line is drawn.
enum class Tone { normal, title, heading, underline, red, dim, ok, warn, bad };

struct Segment {
  std::string text;
  Tone tone = Tone::normal;
};

using TopLine = std::vector<Segment>;

struct TopScreen {
  int cols = 80;
  int rows = 24;
  std::string socket;
  std::optional<views::ServerInfo> info;
  std::string error;  ///< shown under the title (lost ttmemd, ...)
  std::uint32_t interval_ms = 1000;
  std::uint32_t history_s = 300;
  bool unicode = true;
};

/// At most `screen.rows` lines, each at most `screen.cols` cells wide. `scroll` is the first process row
/// shown; it is clamped to what can scroll.
std::vector<TopLine> layout_top(const TopModel& model, const TopScreen& screen, int& scroll);

/// Cells a line takes.
std::size_t line_width(const TopLine& line);

}  // namespace ttmem::cli
