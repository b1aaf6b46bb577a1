// Parser of the ttmem-emu workload language; see script.hpp and docs/emu-scripts.md.
#include "script.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <set>

namespace ttmem::emu_tool {

namespace {

struct VerbSpec {
  Verb id;
  std::string_view verb;
  std::size_t min_args;
  std::size_t max_args;
  std::set<std::string_view> options;
  std::string_view usage;
};

const std::vector<VerbSpec>& verbs() {
  static const std::vector<VerbSpec> table = {
      {Verb::mesh,
       "mesh",
       1,
       1,
       {"arch", "devices", "grid", "l1_small", "trace_region", "worker_l1", "allocation_alignment",
        "l1_base"},
       "mesh PRESET [arch=wormhole_b0|blackhole] [devices=ID,...] [l1_small=BYTES] [trace_region=BYTES] "
       "[worker_l1=BYTES] "
       "[grid=XxY] [l1_base=BYTES] [allocation_alignment=BYTES]"},
      {Verb::alloc,
       "alloc",
       3,
       3,
       {"page", "shard_cores", "site"},
       "alloc NAME TYPE SIZE [page=BYTES] [shard_cores=N] [site=TEXT]"},
      {Verb::alloc_at,
       "alloc_at",
       4,
       4,
       {"page", "device", "site"},
       "alloc_at NAME TYPE SIZE ADDRESS [device=N] [page=BYTES] [site=TEXT]"},
      {Verb::free, "free", 1, 1, {}, "free NAME"},
      {Verb::program,
       "program",
       1,
       1,
       {"cb", "cores", "kernel"},
       "program NAME cb=SIZE[xCOUNT][@CORES] [cb=...] [cores=N|CORES] [kernel=BYTES]"},
      {Verb::run, "run", 1, 1, {}, "run NAME"},
      {Verb::release, "release", 1, 1, {}, "release NAME"},
      {Verb::clear_program_cache, "clear_program_cache", 0, 0, {}, "clear_program_cache"},
      {Verb::trace, "trace", 2, 2, {"site"}, "trace NAME SIZE [site=TEXT]"},
      {Verb::release_trace, "release_trace", 1, 1, {}, "release_trace NAME"},
      {Verb::close, "close", 0, 0, {}, "close"},
      {Verb::sleep, "sleep", 1, 1, {}, "sleep MS"},
      {Verb::abort, "abort", 0, 0, {}, "abort"},
      {Verb::stats, "stats", 0, 0, {}, "stats"},
      {Verb::dump, "dump", 0, 0, {"device"}, "dump [device=N]"},
      {Verb::flush, "flush", 0, 0, {}, "flush"},
      {Verb::op, "op", 1, 1, {}, "op NAME ... end"},
      {Verb::repeat, "repeat", 1, 1, {}, "repeat N ... end"},
      {Verb::end, "end", 0, 0, {}, "end"},
  };
  // One entry per verb, in the enum's order: a verb added to one and not the other fails every parse.
  static const bool complete = [] {
    if (table.size() != kVerbs) return false;
    for (std::size_t i = 0; i < table.size(); ++i) {
      if (table[i].id != static_cast<Verb>(i)) return false;
    }
    return true;
  }();
  if (!complete) throw std::logic_error("the verb table does not list every Verb once, in order");
  return table;
}

const VerbSpec* find_verb(std::string_view verb) {
  for (const VerbSpec& v : verbs()) {
    if (v.verb == verb) return &v;
  }
  return nullptr;
}

bool is_size_arg(Verb verb, std::size_t index) {
  return ((verb == Verb::alloc || verb == Verb::alloc_at) && index == 2) ||
         (verb == Verb::alloc_at && index == 3) || (verb == Verb::trace && index == 1);
}

void check_size(int line, std::string_view what, const std::string& value) {
  if (!parse_size(value)) {
    throw ScriptError(line, fmt::format("{} '{}' is not a size (use bytes or a K, M, G suffix: 4096, 4K, 1M)",
                                        what, value));
  }
}

void check_number(int line, std::string_view what, const std::string& value) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || ptr != value.data() + value.size()) {
    throw ScriptError(line, fmt::format("{} '{}' is not a whole number", what, value));
  }
}

void check_cores(int line, std::string_view what, std::string_view text) {
  std::string error;
  if (!parse_cores(text, &error)) throw ScriptError(line, fmt::format("{}: {}", what, error));
}

void check_cb(int line, const std::string& value) {
  const auto at = value.find('@');
  const std::string head = value.substr(0, at);
  const auto x = head.find('x');
  check_size(line, "cb size", head.substr(0, x));
  if (x != std::string::npos) check_number(line, "cb count", head.substr(x + 1));
  if (at != std::string::npos) check_cores(line, "cb cores", std::string_view(value).substr(at + 1));
}

Command parse_line(const std::vector<std::string>& tokens, int line) {
  Command cmd;
  cmd.line = line;
  cmd.verb = tokens.front();
  const VerbSpec* spec = find_verb(cmd.verb);
  if (!spec) throw ScriptError(line, fmt::format("unknown command '{}'", cmd.verb));
  cmd.id = spec->id;
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const std::string& t = tokens[i];
    const auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0) {
      cmd.args.push_back(t);
      continue;
    }
    const std::string key = t.substr(0, eq);
    const std::string value = t.substr(eq + 1);
    if (!spec->options.contains(key)) {
      throw ScriptError(
          line, fmt::format("'{}' does not take option '{}' (usage: {})", cmd.verb, key, spec->usage));
    }
    if (value.empty()) throw ScriptError(line, fmt::format("option '{}' has no value", key));
    if (key == "cb") {
      check_cb(line, value);
      cmd.cbs.push_back(value);
    } else if (key == "cores" && cmd.id == Verb::program) {
      check_cores(line, "cores", value);
      if (cmd.options.contains(key)) throw ScriptError(line, fmt::format("option '{}' given twice", key));
      cmd.options[key] = value;
    } else if (cmd.options.contains(key)) {
      throw ScriptError(line, fmt::format("option '{}' given twice", key));
    } else {
      cmd.options[key] = value;
    }
  }
  if (cmd.args.size() < spec->min_args || cmd.args.size() > spec->max_args) {
    throw ScriptError(line, fmt::format("'{}' takes {} argument{} (usage: {})", cmd.verb, spec->min_args,
                                        spec->min_args == 1 ? "" : "s", spec->usage));
  }
  for (std::size_t i = 0; i < cmd.args.size(); ++i) {
    if (is_size_arg(cmd.id, i)) check_size(line, i == 3 ? "address" : "size", cmd.args[i]);
  }
  for (const char* key : {"page", "l1_small", "trace_region", "worker_l1", "kernel"}) {
    if (cmd.options.contains(key)) check_size(line, key, cmd.options[key]);
  }
  for (const char* key : {"shard_cores", "cores", "device"}) {
    if (cmd.options.contains(key)) check_number(line, key, cmd.options[key]);
  }
  if (cmd.id == Verb::sleep) check_number(line, "sleep time", cmd.args[0]);
  if (cmd.id == Verb::repeat) {
    check_number(line, "repeat count", cmd.args[0]);
    cmd.repeat_count = std::stoull(cmd.args[0]);
  }
  if (cmd.id == Verb::program && cmd.cbs.empty() && !cmd.options.contains("kernel")) {
    // A program without CBs is legal in TT-Metal, but in a script it is almost always a typo.
    throw ScriptError(line, fmt::format("'program' needs at least one cb=SIZE (usage: {})", spec->usage));
  }
  return cmd;
}

}  // namespace

std::vector<std::string> tokenize(std::string_view line, int line_number) {
  std::vector<std::string> out;
  std::string current;
  bool in_token = false, quoted = false;
  for (char c : line) {
    if (quoted) {
      if (c == '"') {
        quoted = false;
      } else {
        current += c;
      }
      continue;
    }
    if (c == '#') break;
    if (c == '"') {
      quoted = in_token = true;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      if (in_token) out.push_back(std::move(current));
      current.clear();
      in_token = false;
    } else {
      current += c;
      in_token = true;
    }
  }
  if (quoted) throw ScriptError(line_number, "unterminated quote");
  if (in_token) out.push_back(std::move(current));
  return out;
}

std::vector<Command> parse_script(std::string_view text, int first_line) {
  std::vector<Command> top;
  std::vector<Command*> open_blocks;  // repeat and op commands waiting for their `end`
  int line_number = first_line - 1;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t nl = text.find('\n', pos);
    const std::string_view raw =
        text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() + 1 : nl + 1;
    ++line_number;
    const auto tokens = tokenize(raw, line_number);
    if (tokens.empty()) continue;
    Command cmd = parse_line(tokens, line_number);
    auto& target = open_blocks.empty() ? top : open_blocks.back()->body;
    if (cmd.id == Verb::end) {
      if (open_blocks.empty()) throw ScriptError(line_number, "'end' without 'repeat' or 'op'");
      open_blocks.pop_back();
      continue;
    }
    target.push_back(std::move(cmd));
    if (target.back().id == Verb::repeat || target.back().id == Verb::op)
      open_blocks.push_back(&target.back());
  }
  if (!open_blocks.empty()) {
    throw ScriptError(open_blocks.back()->line, fmt::format("'{}' without 'end'", open_blocks.back()->verb));
  }
  return top;
}

std::optional<CoreText> parse_cores(std::string_view text, std::string* error) {
  CoreText out;
  if (!text.empty() && (text.front() == '{' || text.front() == '[')) {
    const std::string braced = text.front() == '[' ? "{" + std::string(text) + "}" : std::string(text);
    auto set = ttmem::parse_core_range_set(braced, error);
    if (!set) return std::nullopt;
    out.ranges = std::move(*set);
    return out;
  }
  std::uint32_t n = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec == std::errc{} && end == text.data() + text.size()) {
    if (n == 0) {
      if (error) *error = "a count of cores must be at least 1";
      return std::nullopt;
    }
    out.count = n;
    return out;
  }
  // Compact: X-Y:X-Y[,X-Y:X-Y...] is the short TT-Metal spelling without its brackets and blanks.
  std::string tt = "{";
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = text.find(',', start);
    const std::string_view part =
        text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    const std::size_t colon = part.find(':');
    if (colon == std::string_view::npos) {
      if (error)
        *error = fmt::format(
            "\"{}\" is not a count, X-Y:X-Y ranges joined by ',', or a TT-Metal core range "
            "set such as {{[0-0 - 7-0]}}",
            text);
      return std::nullopt;
    }
    tt +=
        fmt::format("{}[{} - {}]", tt.size() > 1 ? ", " : "", part.substr(0, colon), part.substr(colon + 1));
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  tt += "}";
  auto set = ttmem::parse_core_range_set(tt, error);
  if (!set) return std::nullopt;
  out.ranges = std::move(*set);
  return out;
}

}  // namespace ttmem::emu_tool
