// Text output of the ttmem tools: binary units, usage bars, colour (terminal only, NO_COLOR honoured),
// aligned tables, CSV.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

#include "ttmem/units.hpp"
#include "ttmem/views.hpp"

namespace ttmem::cli {

/// `--json`: an answer's JSON text (schema::to_json), indented, on standard output with a newline.
void print_json(std::string_view json_text);

using ttmem::human_bytes;  // ttmem/units.hpp
/// "12%" style share; "-" when total is 0.
std::string percent(std::uint64_t used, std::uint64_t total);
/// "1.2 s", "3 min", "2 h".
std::string human_age_ms(std::uint64_t ms);
/// Local wall-clock time of a CLOCK_REALTIME timestamp, "08:45:01.123".
std::string clock_time(std::uint64_t realtime_ns);

/// Local date and time, "2026-12-02 08:45:01": records that span days.
std::string date_time(std::uint64_t realtime_ns);

struct Style {
  bool color = false;
  /// Colour when stdout is a terminal and NO_COLOR is unset.
  static Style detect();
  /// NO_COLOR (https://no-color.org) is set to something: the user wants no colour anywhere.
  static bool color_refused();
  std::string bold(const std::string& s) const;
  std::string dim(const std::string& s) const;
  std::string red(const std::string& s) const;
  std::string yellow(const std::string& s) const;
  std::string green(const std::string& s) const;
  /// Green / yellow / red by how full.
  std::string by_level(const std::string& s, double fraction) const;
};

/// "[####      ]" of `width` cells for used/total.
std::string bar(std::uint64_t used, std::uint64_t total, int width, const Style& style);

/// Columns of text aligned by their visible width (colour codes do not count).
class Table {
 public:
  enum class Align { left, right };
  void column(std::string title, Align align);
  void row(std::vector<std::string> cells);
  void print(std::ostream& out, const Style& style, const std::string& indent = "") const;
  bool empty() const { return rows_.empty(); }

 private:
  std::vector<std::string> titles_;
  std::vector<Align> aligns_;
  std::vector<std::vector<std::string>> rows_;
};

/// One line per device warning ("! device 0: held by 2 processes at once ..."), for smi, top and info.
std::vector<std::string> device_warning_lines(const views::Stats& stats);
void print_device_warnings(std::ostream& out, const views::Stats& stats, const Style& style,
                           std::string_view indent);

/// One line for an out-of-memory record (`events`, `events --follow`).
std::string oom_line(const views::OomRecord& r, const Style& style);

/// Visible width of a string (skips ANSI escapes, counts UTF-8 code points).
std::size_t visible_width(const std::string& s);

/// At most `width` characters (UTF-8 code points), "..." marking a cut; with `at_space`, the cut goes
/// back to a space within the last 12 characters, so a number at the end is left out, not cut.
std::string abbreviated(const std::string& text, std::size_t width, bool at_space = false);

/// One CSV line, quoting cells that need it (RFC 4180).
std::string csv_line(const std::vector<std::string>& cells);

}  // namespace ttmem::cli
