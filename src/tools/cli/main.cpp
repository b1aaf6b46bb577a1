// ttmem: the command-line tools over ttmemd (smi, buffers, leaks, oom, events, devices, info, top), and
// replay of ttnn graph captures.
#include <CLI/CLI.hpp>
#include <iostream>

#include "commands.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/socket_path.hpp"
#include "ttmem/vocab.hpp"

int main(int argc, char** argv) {
  using namespace ttmem::cli;
  CLI::App app{
      "ttmem: who holds which device memory, per device, memory type, process and buffer.\n"
      "Reads from ttmemd (start it with: ttmemd &)."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "ttmem " + ttmem::proto::version_string(ttmem::proto::kTtmemVersion));
  Common common;
  common.socket = ttmem::client_socket_path();
  app.add_option("-s,--socket", common.socket,
                 "ttmemd's socket ($TTMEM_SOCKET; default: your own ttmemd's, else /run/ttmem/ttmemd.sock)");

  SmiOptions smi;
  SmiFlags smi_flags;
  std::uint32_t loop_s = 0;
  auto* smi_cmd = app.add_subcommand("smi", "Memory per device and per process, like nvidia-smi");
  smi_cmd->add_flag("--json", common.json, "One JSON object (schema: docs/tools.md)");
  smi_cmd->add_flag("--csv", smi.csv, "CSV of the device table (or --processes); values in bytes");
  smi_cmd->add_option("--format", smi_flags.format,
                      "nvidia-smi's: csv[,noheader][,nounits] (CSV is in bytes)");
  smi_cmd->add_option("--query", smi_flags.query, "CSV fields, comma separated (see docs/tools.md)");
  smi_cmd->add_option("--query-gpu", smi_flags.query_gpu, "nvidia-smi's: CSV fields of the device table");
  smi_cmd->add_option("--query-compute-apps", smi_flags.query_apps,
                      "nvidia-smi's: CSV fields of the process table");
  smi_cmd->add_flag("--noheader", smi.noheader, "CSV without the header line");
  smi_cmd->add_flag("--processes", smi.processes, "The process table only (CSV: its fields)");
  smi_cmd->add_option("-d,-i,--device,--id", smi_flags.devices, "Only these devices: 0, or 0,1");
  auto* loop_opt = smi_cmd->add_option("-l,--loop", loop_s, "Repeat every SEC seconds");
  smi_cmd->add_option("--loop-ms", smi.loop_ms, "Repeat every MS milliseconds (-lms, as nvidia-smi)")
      ->excludes(loop_opt);
  smi_cmd->add_option("--count", smi.count, "With a loop: stop after N reports")->check(CLI::PositiveNumber);

  // -p, -d, --site, --op: one set of filters for every listing of records.
  const auto add_origin_filter = [](CLI::App* cmd, OriginFilter& f) {
    cmd->add_option("-d,--device", f.device, "Only this device");
    cmd->add_option("-p,--pid", f.pid, "Only this process");
    cmd->add_option("--site", f.site, "Only sites containing TEXT");
    cmd->add_option("--op", f.op, "Only ops (scopes, \"outer/inner\") containing TEXT");
  };

  BufferOptions buffers;
  auto* buffers_cmd = app.add_subcommand("buffers", "Live buffers, largest first");
  buffers_cmd->add_flag("--json", common.json, "JSON");
  add_origin_filter(buffers_cmd, buffers.origin);
  buffers_cmd->add_option("-t,--type", buffers.type, "Only this memory type")
      ->check(CLI::IsMember(ttmem::name_list(ttmem::kManagedTypes)));
  buffers_cmd->add_option("-k,--kind", buffers.kind, "Only this kind")
      ->check(CLI::IsMember(ttmem::name_list(ttmem::enum_values<ttmem::AllocKind>())));
  buffers_cmd
      ->add_option("--by", buffers.by, "One row per op, site, pid or device (and memory type), largest first")
      ->check(CLI::IsMember(ttmem::name_list(ttmem::enum_values<ttmem::GroupBy>())));
  buffers_cmd->add_option("-n,--limit", buffers.limit, "At most N rows (default 50)");
  buffers_cmd->add_flag("-a,--all", buffers.all, "Every buffer");
  buffers_cmd->add_flag("--csv", buffers.csv, "CSV (sizes in bytes, age in ms)")
      ->excludes(buffers_cmd->get_option("--json"));

  OpsOptions ops;
  auto* ops_cmd = app.add_subcommand(
      "ops", "Per op: what it holds now and the most it held at once (peak), per device and memory type");
  ops_cmd->add_flag("--json", common.json, "JSON");
  ops_cmd->add_option("-d,--device", ops.origin.device, "Only this device");
  ops_cmd->add_option("-p,--pid", ops.origin.pid, "Only this process");
  ops_cmd->add_option("--op", ops.origin.op, "Only ops (\"outer/inner\") containing TEXT");
  ops_cmd->add_option("-n,--limit", ops.limit, "At most N rows (default 50)");

  LeakOptions leaks;
  auto* leaks_cmd =
      app.add_subcommand("leaks", "Leaks at device close and orphans of dead processes, newest first");
  leaks_cmd->add_flag("--json", common.json, "JSON");
  leaks_cmd->add_option("-n,--limit", leaks.limit, "At most N leak records (default 100)");
  add_origin_filter(leaks_cmd, leaks.origin);
  leaks_cmd->add_flag("--csv", leaks.csv, "CSV: a line per leak, and per device and type an orphan held")
      ->excludes(leaks_cmd->get_option("--json"));

  EventOptions events;
  auto* events_cmd = app.add_subcommand("events", "Recent allocation events; --follow streams them");
  events_cmd->add_flag("-f,--follow", events.follow, "Keep printing new events");
  events_cmd->add_flag("--json", common.json, "One JSON object per line");
  events_cmd->add_option("-n,--last", events.last, "How many recent events first (default 20)");
  add_origin_filter(events_cmd, events.origin);
  events_cmd->add_flag("--csv", events.csv, "CSV of allocations and frees (records: leaks --csv, oom)")
      ->excludes(events_cmd->get_option("--json"));

  std::optional<std::uint64_t> oom_id;
  auto* oom_cmd = app.add_subcommand("oom", "Refused allocations: why each failed, and the device then");
  oom_cmd->add_option("ID", oom_id, "Show this record in full")->check(CLI::PositiveNumber);
  oom_cmd->add_flag("--json", common.json, "JSON");

  MapOptions map;
  auto* map_cmd = app.add_subcommand("map", "One bank's address space: buffers, CBs and free gaps");
  map_cmd->add_option("-d,--device", map.device, "Device (default 0)")->check(CLI::Range(0, 65535));
  map_cmd->add_option("-t,--type", map.type, "Memory type (default L1)")
      ->check(CLI::IsMember(ttmem::name_list(ttmem::kManagedTypes)));
  map_cmd->add_option("-w,--width", map.width, "Drawing width (default: the terminal's)")
      ->check(CLI::Range(24, 10'000));
  map_cmd->add_option("--rows", map.rows, "Rows of the drawing (default 4)")->check(CLI::Range(1, 100));
  map_cmd->add_option("-n,--limit", map.limit, "At most N blocks listed (default 40)");
  map_cmd->add_flag("-a,--all", map.all, "List every block");
  map_cmd->add_flag("--json", common.json, "JSON: every block");

  auto* devices_cmd = app.add_subcommand("devices", "What each device is and who has it open");
  devices_cmd->add_flag("--json", common.json, "JSON");

  auto* info_cmd =
      app.add_subcommand("info", "The server: version, clients, events/s, tracking cost, anomalies");
  info_cmd->add_flag("--json", common.json, "JSON");

  TopOptions top;
  auto* top_cmd = app.add_subcommand("top", "Live full-screen view (q quits, h helps)");
  top_cmd->add_option("-i,--interval-ms", top.interval_ms, "Refresh interval in ms (default 1000)")
      ->check(CLI::Range(50u, 3'600'000u));
  top_cmd->add_option("--history", top.history_s, "Seconds of history in the chart (default 300)")
      ->check(CLI::Range(1u, 86'400u));

  // The history on disk: read from ttmemd's state directory, with or without ttmemd running.
  const auto add_history_source = [](CLI::App* cmd, HistorySource& h, const char* since_default) {
    cmd->add_option("--state-dir", h.state_dir,
                    "ttmemd's --state-dir (default: $TTMEM_STATE_DIR, as ttmemd's)");
    cmd->add_option("--since", h.since,
                    std::string("From this time: 90s, 30m, 2h, 7d ago, epoch seconds, or "
                                "2026-12-02T10:00:00 (default ") +
                        since_default + ")");
    cmd->add_option("--until", h.until, "Up to this time (default: now)");
  };
  HistoryOptions history_opts;
  auto* history_cmd = app.add_subcommand(
      "history",
      "What ttmemd kept on disk: leaks, orphans, OOMs, processes, devices, restarts (oldest first)");
  add_history_source(history_cmd, history_opts.source, "all");
  add_origin_filter(history_cmd, history_opts.origin);
  history_cmd->add_option(
      "--kind", history_opts.kinds,
      "Only these kinds, comma-separated: " + ttmem::names_of(ttmem::enum_values<ttmem::HistoryKind>()));
  history_cmd->add_option("-n,--limit", history_opts.limit, "The newest N records (default 200)");
  history_cmd->add_flag("--csv", history_opts.csv, "CSV");
  history_cmd->add_flag("--json", common.json, "JSON");

  TimelineOptions timeline;
  auto* timeline_cmd =
      app.add_subcommand("timeline", "Memory in use over time on one device, from the history");
  add_history_source(timeline_cmd, timeline.source, "1h");
  timeline_cmd->add_option("-d,--device", timeline.device, "The device (default 0)")
      ->check(CLI::Range(0, 65535));
  timeline_cmd->add_option("-t,--type", timeline.slot,
                           "Only this memory type: " + ttmem::names_of(ttmem::enum_values<ttmem::Slot>()));
  timeline_cmd->add_option("-p,--pid", timeline.pid, "Only this process's share");
  timeline_cmd->add_flag("--processes", timeline.processes, "Each process's share too");
  timeline_cmd->add_option("--width", timeline.width, "Chart columns (default: the terminal's)");
  timeline_cmd->add_flag("--csv", timeline.csv, "CSV: one line per point");
  timeline_cmd->add_flag("--json", common.json, "JSON");

  ExportOptions export_opts;
  auto* export_cmd = app.add_subcommand(
      "export",
      "The history for other viewers: --perfetto (Chrome trace JSON), --memory-viz (PyTorch pickle)");
  add_history_source(export_cmd, export_opts.source, "1h");
  export_cmd->add_option("--perfetto", export_opts.perfetto,
                         "Write a Chrome trace JSON file (ui.perfetto.dev)");
  export_cmd->add_option("--memory-viz", export_opts.memory_viz,
                         "Write a memory_viz snapshot pickle (pytorch.org/memory_viz)");
  export_cmd->add_option("-d,--device", export_opts.device, "Only this device");

  ReplayOptions replay;
  auto* replay_cmd = app.add_subcommand(
      "replay",
      "A ttnn graph capture (JSON): into ttmemd as a tracked process, and its per-op L1/DRAM peaks");
  replay_cmd
      ->add_option("file", replay.file, "end_graph_capture() JSON, or an end_graph_capture_to_file() report")
      ->required();
  replay_cmd->add_flag("--offline", replay.offline, "The report only: no ttmemd needed");
  replay_cmd->add_flag("--keep-open", replay.keep_open,
                       "Hold the capture's memory in ttmemd until Ctrl-C (then close its devices)");
  replay_cmd->add_option("--arch", replay.arch,
                         "wormhole_b0 or blackhole (default: the capture's, else blackhole)");
  replay_cmd->add_option("--mesh", replay.meshes,
                         "MESH=CHIP[,CHIP...]: a MeshDevice's chips, if the capture lacks them");
  replay_cmd->add_option("-n,--limit", replay.limit, "At most N op rows (default 200; --json has all)");
  replay_cmd->add_option("--op", replay.op, "Also list what the peak of ops containing TEXT is made of");
  replay_cmd->add_flag("--check", replay.check,
                       "NORMAL captures: replay the allocations through the emulator, compare every address");
  replay_cmd->add_option("--grid", replay.grid,
                         "With --check: the chip's worker cores, XxY (default: inferred)");
  replay_cmd->add_option("--l1-base", replay.l1_base,
                         "With --check: L1's unreserved base (default: the first CB's)");
  replay_cmd->add_flag("--json", common.json, "The whole report as JSON (schema: docs/replay.md)");

  // "ttmem bogus" is an unknown subcommand, not a missing one (CLI11 would say "A subcommand is required").
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-s" || arg == "--socket") {
      ++i;  // its value
      continue;
    }
    if (arg.empty() || arg[0] == '-') continue;
    std::string names;
    bool known = false;
    for (const CLI::App* sub : app.get_subcommands({})) {
      names += (names.empty() ? "" : ", ") + sub->get_name();
      known = known || sub->get_name() == arg;
    }
    if (!known) {
      std::cerr << "ttmem: unknown subcommand '" << arg << "' (one of: " << names << "; ttmem --help)\n";
      return kExitUsage;
    }
    break;
  }

  // nvidia-smi's -lms is one short option of three letters, which CLI11 would read as -l with "ms".
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "-lms") argv[i] = const_cast<char*>("--loop-ms");
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  if (common.socket.empty()) {
    std::cerr << "ttmem: the socket path is empty (--socket PATH, or TTMEM_SOCKET)\n";
    return kExitUsage;
  }

  try {
    if (*smi_cmd) {
      if (loop_s) smi.loop_ms = loop_s * 1000;
      if (smi.count && !smi.loop_ms) {
        std::cerr << "ttmem smi: --count needs a loop (-l SEC or --loop-ms MS)\n";
        return kExitUsage;
      }
      if (const std::string error = apply_smi_flags(smi_flags, common, smi); !error.empty()) {
        std::cerr << "ttmem smi: " << error << '\n';
        return kExitUsage;
      }
      return run_smi(common, smi);
    }
    if (*buffers_cmd) return run_buffers(common, buffers);
    if (*ops_cmd) return run_ops(common, ops);
    if (*leaks_cmd) return run_leaks(common, leaks);
    if (*events_cmd) return run_events(common, events);
    if (*oom_cmd) return run_oom(common, oom_id);
    if (*map_cmd) return run_map(common, map);
    if (*devices_cmd) return run_devices(common);
    if (*info_cmd) return run_info(common);
    if (*top_cmd) return run_top(common, top);
    if (*replay_cmd) return run_replay(common, replay);
    if (*history_cmd) return run_history(common, history_opts);
    if (*timeline_cmd) return run_timeline(common, timeline);
    if (*export_cmd) return run_export(common, export_opts);
  } catch (const ttmem::query::QueryError& e) {
    std::cerr << "ttmem: " << e.what() << '\n';
    return kExitServerError;
  }
  return 0;
}
