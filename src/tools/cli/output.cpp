// Text output helpers of the ttmem tools; see output.hpp.
#include "output.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <ostream>

#include "ttmem/schema.hpp"
#include "ttmem/utf8.hpp"

namespace ttmem::cli {

void print_json(std::string_view json_text) {
  schema::write_pretty(std::cout, json_text);
  std::cout << '\n';
}

std::string percent(std::uint64_t used, std::uint64_t total) {
  if (total == 0) return "-";
  return fmt::format("{:.0f}%", 100.0 * static_cast<double>(used) / static_cast<double>(total));
}

std::string human_age_ms(std::uint64_t ms) {
  if (ms < 1000) return fmt::format("{} ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f} s", static_cast<double>(ms) / 1000);
  if (ms < 3'600'000) return fmt::format("{} min", ms / 60'000);
  return fmt::format("{:.1f} h", static_cast<double>(ms) / 3'600'000);
}

std::string clock_time(std::uint64_t realtime_ns) {
  const std::time_t secs = static_cast<std::time_t>(realtime_ns / 1'000'000'000ull);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:02}:{:02}:{:02}.{:03}", tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (realtime_ns / 1'000'000) % 1000);
}

std::string date_time(std::uint64_t realtime_ns) {
  const std::time_t secs = static_cast<std::time_t>(realtime_ns / 1'000'000'000ull);
  std::tm tm{};
  localtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

bool Style::color_refused() {
  const char* no_color = std::getenv("NO_COLOR");
  return no_color && *no_color;
}

Style Style::detect() {
  Style s;
  s.color = isatty(STDOUT_FILENO) && !color_refused();
  return s;
}

namespace {
std::string wrap(const Style& s, const char* code, const std::string& text) {
  return s.color ? fmt::format("\x1b[{}m{}\x1b[0m", code, text) : text;
}
}  // namespace

std::string Style::bold(const std::string& s) const {
  return wrap(*this, "1", s);
}
std::string Style::dim(const std::string& s) const {
  return wrap(*this, "2", s);
}
std::string Style::red(const std::string& s) const {
  return wrap(*this, "31", s);
}
std::string Style::yellow(const std::string& s) const {
  return wrap(*this, "33", s);
}
std::string Style::green(const std::string& s) const {
  return wrap(*this, "32", s);
}

std::string Style::by_level(const std::string& s, double fraction) const {
  if (fraction >= 0.9) return red(s);
  if (fraction >= 0.7) return yellow(s);
  return green(s);
}

std::string bar(std::uint64_t used, std::uint64_t total, int width, const Style& style) {
  const double f = total ? std::min(1.0, static_cast<double>(used) / static_cast<double>(total)) : 0.0;
  int filled = static_cast<int>(f * width + 0.5);
  if (used > 0 && filled == 0) filled = 1;  // something is there: show it
  const std::string inside = std::string(static_cast<std::size_t>(filled), '#') +
                             std::string(static_cast<std::size_t>(width - filled), ' ');
  return "[" + style.by_level(inside, f) + "]";
}

std::size_t visible_width(const std::string& s) {
  std::size_t w = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\x1b') {
      while (i < s.size() && s[i] != 'm') ++i;
      continue;
    }
    if ((static_cast<unsigned char>(s[i]) & 0xc0) != 0x80) ++w;  // count code points, not bytes
  }
  return w;
}

std::string abbreviated(const std::string& text, std::size_t width, bool at_space) {
  if (visible_width(text) <= width) return text;
  if (width <= 3) return std::string(width, '.');
  std::string out;
  std::size_t shown = 0;
  for (std::size_t i = 0; i < text.size() && shown + 3 < width;) {
    const std::size_t len = std::max<std::size_t>(1, utf8_sequence_length(text, i));
    out.append(text, i, len);
    i += len;
    ++shown;
  }
  if (at_space) {
    const std::size_t space = out.rfind(' ');
    if (space != std::string::npos && space + 12 >= out.size()) out.resize(space);
  }
  return out + "...";
}

void Table::column(std::string title, Align align) {
  titles_.push_back(std::move(title));
  aligns_.push_back(align);
}

void Table::row(std::vector<std::string> cells) {
  cells.resize(titles_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out, const Style& style, const std::string& indent) const {
  std::vector<std::size_t> width(titles_.size());
  for (std::size_t c = 0; c < titles_.size(); ++c) {
    width[c] = visible_width(titles_[c]);
    for (const auto& r : rows_) width[c] = std::max(width[c], visible_width(r[c]));
  }
  auto line = [&](const std::vector<std::string>& cells, bool header) {
    std::string text = indent;
    for (std::size_t c = 0; c < cells.size(); ++c) {
      const std::size_t pad = width[c] - visible_width(cells[c]);
      const std::string cell = header ? style.bold(cells[c]) : cells[c];
      const bool last = c + 1 == cells.size();
      if (aligns_[c] == Align::right) {
        text += std::string(pad, ' ') + cell;
      } else {
        text += cell + (last ? "" : std::string(pad, ' '));
      }
      if (!last) text += "  ";
    }
    out << text << '\n';
  };
  line(titles_, true);
  for (const auto& r : rows_) line(r, false);
}

std::string csv_line(const std::vector<std::string>& cells) {
  std::string out;
  for (std::size_t i = 0; i < cells.size(); ++i) {
    if (i) out += ',';
    const std::string& c = cells[i];
    if (c.find_first_of(",\"\n") == std::string::npos) {
      out += c;
    } else {
      out += '"';
      for (char ch : c) out += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      out += '"';
    }
  }
  return out;
}

std::vector<std::string> device_warning_lines(const views::Stats& stats) {
  std::vector<std::string> out;
  for (const auto& d : stats.devices)
    for (const auto& w : d.warnings) out.push_back(fmt::format("! device {}: {}", d.id, w.text));
  return out;
}

void print_device_warnings(std::ostream& out, const views::Stats& stats, const Style& style,
                           std::string_view indent) {
  for (const std::string& line : device_warning_lines(stats)) out << indent << style.red(line) << '\n';
}

}  // namespace ttmem::cli
