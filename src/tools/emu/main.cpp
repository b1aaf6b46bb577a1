// ttmem-emu: runs a workload script on the emulated TT-Metal runtime.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "interpreter.hpp"
#include "report.hpp"
#include "script.hpp"
#include "ttmem/exit_codes.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/runtime/arch.hpp"
#include "ttmem/runtime/server_tracking.hpp"

namespace {

int list_presets() {
  for (const auto& p : ttmem::emu::mesh_presets()) {
    const auto& spec = ttmem::emu::arch_spec(p.arch);
    std::cout << fmt::format("{:<7} {}x{} {:<12} {:>2} device(s), {} L1 banks x {} B, {} DRAM banks x {} B\n",
                             p.name, p.rows, p.cols, ttmem::emu::to_string(p.arch), p.num_devices(),
                             spec.num_worker_cores(), spec.l1_size_per_core, spec.num_dram_banks,
                             spec.dram_bank_size);
  }
  return 0;
}

/// The interpreter's `flush` and `op` go to tracking (libttmem's op scope of this thread).
void connect_tracking(ttmem::emu_tool::InterpreterOptions& options) {
  options.flush = [] { ttmem::emu::ServerTracking::flush(); };
  options.push_op = [](const std::string& name) { ttmem::client::Client::instance().push_op(name); };
  options.pop_op = [] { ttmem::client::Client::instance().pop_op(); };
}

/// --step: a line-driven session for other programs (tests, notebooks) to drive.
int run_steps(bool quiet) {
  ttmem::emu::ServerTracking::enable();
  ttmem::emu_tool::InterpreterOptions options;
  options.log = quiet ? nullptr : &std::cerr;
  connect_tracking(options);
  ttmem::emu_tool::Interpreter interpreter(options);
  std::string block, line;
  int line_number = 0, block_start = 1, depth = 0;
  while (std::getline(std::cin, line)) {
    ++line_number;
    if (block.empty()) block_start = line_number;
    block += line + '\n';
    try {
      const auto tokens = ttmem::emu_tool::tokenize(line, line_number);
      if (!tokens.empty() && (tokens[0] == "repeat" || tokens[0] == "op")) ++depth;
      if (!tokens.empty() && tokens[0] == "end") --depth;
      if (depth > 0) continue;
      depth = 0;
      const auto commands = ttmem::emu_tool::parse_script(block, block_start);
      block.clear();
      if (auto err = interpreter.step(commands)) {
        std::cout << "error: " << err->line << ": " << err->message
                  << (err->detail.empty() ? "" : " (" + err->detail + ")") << std::endl;
      } else {
        std::cout << "ok" << std::endl;
      }
    } catch (const ttmem::emu_tool::ScriptError& e) {
      block.clear();
      depth = 0;
      std::cout << "error: " << e.line() << ": " << e.what() << std::endl;
    }
  }
  interpreter.finish();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Run a workload script on the emulated TT-Metal device-memory runtime (docs/emu-scripts.md)."};
  app.set_version_flag("--version", "ttmem-emu " + ttmem::proto::version_string(ttmem::proto::kTtmemVersion));
  std::string script_path;
  bool json = false;
  bool quiet = false;
  bool presets = false;
  app.add_option("SCRIPT", script_path, "Workload script, or - for standard input");
  app.add_flag("--json", json, "Print one JSON object with the run's results instead of the log");
  app.add_flag("-q,--quiet", quiet, "Print nothing but errors");
  app.add_flag("--list-presets", presets, "List the mesh presets and exit");
  bool step = false;
  app.add_flag(
      "--step", step,
      "Read commands from standard input and run each as it arrives, answering 'ok' or 'error: ...' on "
      "standard output (the log goes to standard error)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : ttmem::exit_status::usage;
  }
  if (presets) return list_presets();
  if (step) return run_steps(quiet);
  if (script_path.empty()) {
    std::cerr << "ttmem-emu: no SCRIPT given (a file, or - for standard input); see --help\n";
    return ttmem::exit_status::usage;
  }

  std::string text;
  std::string script_name = "stdin";
  if (script_path == "-") {
    std::ostringstream s;
    s << std::cin.rdbuf();
    text = s.str();
  } else {
    std::error_code ec;
    if (std::filesystem::is_directory(script_path, ec)) {
      std::cerr << fmt::format("ttmem-emu: cannot read {}: it is a directory (give a script file)\n",
                               script_path);
      return ttmem::exit_status::no_input;
    }
    std::ifstream in(script_path, std::ios::binary);
    if (!in) {
      std::cerr << fmt::format("ttmem-emu: cannot read {}: {}\n", script_path, std::strerror(errno));
      return ttmem::exit_status::no_input;
    }
    std::ostringstream s;
    s << in.rdbuf();
    text = s.str();
    script_name = std::filesystem::path(script_path).filename().string();
  }

  std::vector<ttmem::emu_tool::Command> script;
  try {
    script = ttmem::emu_tool::parse_script(text);
  } catch (const ttmem::emu_tool::ScriptError& e) {
    std::cerr << fmt::format("{}:{}: {}\n", script_path == "-" ? "stdin" : script_path, e.line(), e.what());
    if (json) {
      std::cout << nlohmann::json{{"error", {{"line", e.line()}, {"message", e.what()}}}}.dump(2) << '\n';
    }
    return ttmem::exit_status::bad_input;
  }

  // Report to ttmemd when one is reachable (TTMEM_SOCKET); TTMEM_TRACKING=0 turns it off.
  ttmem::emu::ServerTracking::enable();
  ttmem::emu_tool::InterpreterOptions options;
  options.script_name = script_name;
  connect_tracking(options);
  options.log = (json || quiet) ? nullptr : &std::cout;
  ttmem::emu_tool::RunResult result;
  {
    ttmem::emu_tool::Interpreter interpreter(options);
    result = interpreter.run(script);
  }
  if (result.error) {
    std::cerr << fmt::format("{}:{}: {}\n", script_path == "-" ? "stdin" : script_path, result.error->line,
                             result.error->message);
    if (!result.error->detail.empty()) std::cerr << "  " << result.error->detail << '\n';
  }
  if (json) std::cout << ttmem::emu_tool::report_json(result) << '\n';
  return ttmem::emu_tool::exit_code(result);
}
