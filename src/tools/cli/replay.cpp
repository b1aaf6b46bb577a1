// ttmem replay: a ttnn graph capture fed through the bridge, into ttmemd as this process's allocations
// (so smi, buffers, leaks and top show it as they would the real run), and analysed per op.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/bridge/client_sink.hpp"
#include "ttmem/bridge/tee_sink.hpp"
#include "ttmem/client.hpp"
#include "ttmem/replay/report.hpp"

namespace ttmem::cli {

namespace {

/// "1=0,1" -> mesh 1 of chips 0 and 1.
bool parse_mesh(const std::string& text, std::map<replay::TtDeviceId, std::vector<replay::TtDeviceId>>& out) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) return false;
  std::vector<replay::TtDeviceId> chips;
  std::stringstream list(text.substr(eq + 1));
  std::string item;
  while (std::getline(list, item, ',')) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 9)
      return false;
    chips.push_back(static_cast<replay::TtDeviceId>(std::stoul(item)));
  }
  const std::string mesh = text.substr(0, eq);
  if (chips.empty() || mesh.find_first_not_of("0123456789") != std::string::npos || mesh.size() > 9)
    return false;
  out[static_cast<replay::TtDeviceId>(std::stoul(mesh))] = chips;
  return true;
}

/// Waits for SIGINT or SIGTERM (blocked beforehand, so the client's threads never take them).
void wait_for_interrupt(const sigset_t& signals) {
  int signal = 0;
  sigwait(&signals, &signal);
}

}  // namespace

int run_replay(const Common& common, const ReplayOptions& options) {
  replay::ReplayOptions setup_options;
  if (options.arch) {
    setup_options.arch = parse_enum<Arch>(*options.arch);
    if (!setup_options.arch) {
      std::cerr << "ttmem replay: unknown --arch '" << *options.arch
                << "' (one of: " << names_of(enum_values<Arch>()) << ")\n";
      return kExitUsage;
    }
  }
  for (const std::string& m : options.meshes) {
    if (!parse_mesh(m, setup_options.meshes)) {
      std::cerr << "ttmem replay: --mesh '" << m << "' is not MESH=CHIP[,CHIP...] (e.g. --mesh 1=0)\n";
      return kExitUsage;
    }
  }
  std::optional<std::uint32_t> grid_x, grid_y;
  if (options.grid) {
    unsigned x = 0, y = 0;
    char sep = 0, rest = 0;
    if (std::sscanf(options.grid->c_str(), "%u%c%u%c", &x, &sep, &y, &rest) != 3 || sep != 'x' || x == 0 ||
        y == 0 || x > 64 || y > 64) {
      std::cerr << "ttmem replay: --grid '" << *options.grid
                << "' is not XxY worker cores (e.g. --grid 11x10)\n";
      return kExitUsage;
    }
    grid_x = x;
    grid_y = y;
  }
  if ((options.grid || options.l1_base) && !options.check) {
    std::cerr << "ttmem replay: --grid and --l1-base are for the address check: add --check\n";
    return kExitUsage;
  }
  replay::Capture capture;
  try {
    capture = replay::read_capture(options.file);
  } catch (const replay::CaptureError& e) {
    std::cerr << "ttmem replay: " << e.what() << '\n';
    return e.unreadable() ? kExitNoInput : kExitBadInput;
  }
  if (options.offline && options.keep_open) {
    std::cerr << "ttmem replay: --keep-open holds memory in ttmemd; it cannot go with --offline\n";
    return kExitUsage;
  }

  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  if (options.keep_open) pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  replay::OpAnalysis analysis;
  std::optional<query::QueryClient> tool;
  std::unique_ptr<client::Client> tracker;
  std::unique_ptr<bridge::ClientSink> client_sink;
  std::unique_ptr<bridge::TeeSink> tee;
  bridge::Sink* sink = &analysis;
  if (!options.offline) {
    tool.emplace(connect_or_exit(common.socket));
    client::Options o = client::Options::from_environment();
    o.enabled = true;  // the replay's whole point: TTMEM_TRACKING=0 does not apply
    o.socket_path = common.socket;
    o.warn_without_server = false;
    o.process_name = "ttmem replay";
    tracker = std::make_unique<client::Client>(o);
    client_sink = std::make_unique<bridge::ClientSink>(*tracker);
    tee = std::make_unique<bridge::TeeSink>(*client_sink, analysis);
    sink = tee.get();
  }
  bridge::Bridge bridge(*sink);
  if (client_sink) {
    client_sink->attach(bridge);
    if (!tracker->wait_for_first_attempt(std::chrono::seconds(5))) {
      std::cerr << "ttmem replay: could not report to ttmemd at " << common.socket
                << " (it answered queries but refused a tracked process; see its log), or use --offline\n";
      return kExitUnreachable;
    }
  }
  const replay::ReplaySetup setup = replay::announce(capture, bridge, setup_options);
  replay::feed(capture, bridge, analysis);

  std::ostringstream live;
  if (tracker) {
    const bool flushed = tracker->flush(std::chrono::seconds(10));
    const std::uint32_t pid = tracker->server_seen_pid();
    if (options.keep_open) {
      std::cerr << "ttmem replay: " << capture.name << " is live in ttmemd as pid " << pid
                << " (ttmem smi, buffers -p " << pid << ", top); Ctrl-C ends it and closes its devices\n";
      wait_for_interrupt(signals);
    }
    // The capture is over as the run would end: its chips close, so what it left allocated is reported
    // as that run's leaks (a capture is a window: what it allocated and never released in it).
    for (replay::TtDeviceId chip : setup.chips) bridge.close_device(chip);
    const bool closed = tracker->flush(std::chrono::seconds(10));
    std::size_t leaks = 0;
    std::uint64_t leak_bytes = 0;
    for (const views::Leak& l : tool->leaks().leaks) {
      if (l.pid != static_cast<pid_t>(pid)) continue;
      ++leaks;
      leak_bytes += l.size;
    }
    live << "\ninto ttmemd (" << common.socket << ") as pid " << pid << ": "
         << (flushed && closed ? "every event applied" : "NOT every event was acknowledged (see ttmem info)")
         << "; at close it reported " << leaks << " leak" << (leaks == 1 ? "" : "s") << " ("
         << human_bytes(leak_bytes) << "): what the capture allocated and never released (ttmem leaks -p "
         << pid << ")\n";
    tracker->shutdown();
  }

  std::optional<replay::AddressCheck> check;
  if (options.check) {
    replay::AddressCheckOptions c;
    c.arch = setup.arch;
    c.grid_x = grid_x;
    c.grid_y = grid_y;
    c.l1_base = options.l1_base;
    try {
      check = replay::check_addresses(capture, c);
    } catch (const replay::CaptureError& e) {
      std::cerr << "ttmem replay: --check: " << e.what() << '\n';
      return kExitBadInput;
    }
  }
  const bridge::BridgeStats stats = bridge.stats();
  const replay::CaptureFigures figures = analysis.finish();
  const replay::ReportInput input{capture, setup, stats, figures, check ? &*check : nullptr};
  if (common.json) {
    print_json(replay::to_json(input));
  } else {
    replay::write_text(std::cout, input, {options.limit, options.op});
    std::cout << live.str();
    if (check) {
      std::cout << '\n';
      replay::write_text(std::cout, *check);
    }
  }
  return 0;
}

}  // namespace ttmem::cli
