// The ttmem-emu workload language: one command per line, '#' comments, `repeat N ... end` blocks.
// Parsing checks every line (verb, arity, option names, sizes) before anything runs.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ttmem/core_range.hpp"
#include "ttmem/units.hpp"

namespace ttmem::emu_tool {

/// The commands of the language; script.cpp's table gives each its name, arity, options and usage, and
/// the interpreter's switch over them must handle every one (-Wswitch).
enum class Verb : std::uint8_t {
  mesh,
  alloc,
  alloc_at,
  free,
  program,
  run,
  release,
  clear_program_cache,
  trace,
  release_trace,
  close,
  sleep,
  abort,
  stats,
  dump,
  flush,
  op,
  repeat,
  end,
};
inline constexpr std::size_t kVerbs = static_cast<std::size_t>(Verb::end) + 1;

struct Command {
  int line = 0;
  Verb id = Verb::end;
  std::string verb;                            ///< as written (messages)
  std::vector<std::string> args;               // positional
  std::map<std::string, std::string> options;  // key=value
  std::vector<std::string> cbs;                // program: every cb=SIZE[xCOUNT], in order
  std::uint64_t repeat_count = 0;              // repeat
  std::vector<Command> body;                   // repeat, op
};

/// Cores a script names: a count (the first N worker cores, row-major) or rectangles, written compactly
/// ("0-0:7-0,0-2:3-2": X-Y:X-Y ranges joined by ',') or as TT-Metal prints a CoreRangeSet
/// ("{[0-0 - 7-0]}", "{[(x=0,y=0) - (x=7,y=0)]}"; quote it, it has spaces).
struct CoreText {
  std::optional<std::uint32_t> count;
  ttmem::CoreRangeSet ranges;
};
/// Nullopt with `error` saying why for text that is neither.
std::optional<CoreText> parse_cores(std::string_view text, std::string* error);

/// A line that cannot be parsed or run; `line` is 1-based.
class ScriptError : public std::runtime_error {
 public:
  ScriptError(int line, const std::string& message) : std::runtime_error(message), line_(line) {}
  int line() const { return line_; }

 private:
  int line_;
};

/// Parses a whole script. Throws ScriptError for the first bad line.
std::vector<Command> parse_script(std::string_view text, int first_line = 1);

using ttmem::parse_size;  // ttmem/units.hpp: sizes as scripts write them

/// Splits a line into tokens: whitespace separated, double quotes group, '#' outside quotes ends the line.
std::vector<std::string> tokenize(std::string_view line, int line_number);

}  // namespace ttmem::emu_tool
