// ttmemd: the ttmem allocation server.
#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "history_writer.hpp"
#include "http_address.hpp"
#include "server.hpp"
#include "socket_activation.hpp"
#include "ttmem/exit_codes.hpp"
#include "ttmem/socket_path.hpp"

int main(int argc, char** argv) {
  CLI::App app{
      "ttmemd: the ttmem allocation server. Processes using Tenstorrent devices report their allocations "
      "here; `ttmem` queries it."};
  app.set_version_flag("--version", "ttmemd " + ttmem::proto::version_string(ttmem::proto::kTtmemVersion) +
                                        " (protocol " + std::to_string(ttmem::proto::kProtocolVersion) + ")");
  ttmem::server::ServerOptions options;
  options.socket_path = ttmem::server_socket_path();
  std::string group;
  std::string log_level = "info";
  app.add_option("-s,--socket", options.socket_path,
                 "Unix socket to listen on ($TTMEM_SOCKET; default /run/ttmem/ttmemd.sock as root, else "
                 "$XDG_RUNTIME_DIR/ttmemd.sock)");
  app.add_option("-g,--group", group, "Group (name or id) given access to the socket (mode 0660)");
  app.add_flag("-v,--verbose", options.verbose, "Log every allocation and release");
  app.add_option("--stats-interval", options.stats_interval_s,
                 "Log per-device statistics every SEC seconds (0: off)");
  app.add_option("--max-connections", options.max_connections, "Connections served at once")
      ->check(CLI::Range(2, 1 << 20));
  app.add_option("--tool-slots", options.tool_slots,
                 "Connections kept for tools (ttmem, queries) that tracked processes cannot take")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--max-handshakes", options.max_handshakes,
                 "Connections that have not said HELLO yet; past this the oldest is closed")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--handshake-timeout-ms", options.handshake_timeout_ms,
                 "A connection that says no HELLO within this time is closed")
      ->check(CLI::Range(10, 3'600'000));
  app.add_option("--write-timeout-ms", options.write_timeout_ms,
                 "A client that reads none of its pending replies for this long is cut off")
      ->check(CLI::Range(10, 86'400'000));
  app.add_option("--max-live-per-process", options.limits.max_live_allocations_per_process,
                 "Live allocations tracked per process; more are refused and counted");
  int ready_fd = -1;
  app.add_option("--ready-fd", ready_fd,
                 "Write one byte to this descriptor once listening (for supervisors and tests)");
  app.add_option("--max-pending-output", options.max_pending_output,
                 "Bytes of unread replies a connection may have before it is closed");
  app.add_option("--max-query-rows", options.query_limits.max_rows,
                 "Matching buffers a `buffers` query without a limit may list (48 bytes each while it runs)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 32));
  app.add_option("--event-history", options.limits.event_history,
                 "Recent events kept for `ttmem events` (0: none)");
  app.add_flag("--poll-deaths", options.poll_for_deaths,
               "Watch process deaths by polling /proc instead of pidfd");
  std::string http, http_token_file;
  bool http_remote = false;
  app.add_option("--http", http,
                 "Serve /metrics (Prometheus) and /api (JSON) over HTTP at [ADDR:]PORT; loopback unless an "
                 "address is given (0: any free port)");
  app.add_flag("--http-remote", http_remote, "Allow --http on an address other than loopback");
  app.add_option("--http-token-file", http_token_file,
                 "Require \"Authorization: Bearer TOKEN\" on HTTP requests, TOKEN read from this file");
  std::string state_dir;
  bool no_history = false;
  ttmem::history::HistoryOptions history;
  std::uint64_t history_max_mb = history.max_bytes >> 20;
  app.add_option("--state-dir", state_dir,
                 "Where the history is kept ($TTMEM_STATE_DIR; default /var/lib/ttmem as root, else "
                 "$XDG_STATE_HOME/ttmem)");
  app.add_flag("--no-history", no_history,
               "Keep no history on disk (records and the timeline live in memory only)");
  app.add_option("--history-interval-ms", history.interval_ms,
                 "How often the timeline is sampled and written")
      ->check(CLI::Range(std::uint64_t{10}, std::uint64_t{60'000}));
  app.add_option("--history-min-size", history.lifetime_min_size,
                 "Keep the lifetimes of buffers of at least this many bytes (0: all)");
  app.add_option("--history-lifetimes-per-s", history.lifetimes_per_s,
                 "Buffer lifetimes kept per second at most; more are counted, not kept")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{100'000'000}));
  app.add_option("--history-keep-days", history.keep_days, "Delete records and points older than this")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{36'500}));
  app.add_option("--history-max-mb", history_max_mb, "Past this size the oldest lifetimes, then records, go")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 30));
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error"}));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : ttmem::exit_status::usage;
  }
  if (options.tool_slots >= options.max_connections) {
    std::cerr << "ttmemd: --tool-slots (" << options.tool_slots << ") must be below --max-connections ("
              << options.max_connections << ")\n";
    return ttmem::exit_status::usage;
  }
  if (!http.empty()) {
    std::string error;
    const auto address = ttmem::server::parse_http_address(http, &error);
    if (!address) {
      std::cerr << "ttmemd: " << error << '\n';
      return ttmem::exit_status::usage;
    }
    if (!ttmem::server::is_loopback(address->host) && !http_remote) {
      std::cerr << "ttmemd: --http " << http << " would show every process's device memory to the network; "
                << "add --http-remote to mean it (and consider --http-token-file)\n";
      return ttmem::exit_status::usage;
    }
    ttmem::server::HttpOptions h;
    h.address = address->host;
    h.port = address->port;
    if (!http_token_file.empty()) {
      std::ifstream in(http_token_file);
      std::getline(in, h.bearer_token);
      if (!in && h.bearer_token.empty()) {
        std::cerr << "ttmemd: cannot read a token from --http-token-file " << http_token_file << '\n';
        return ttmem::exit_status::no_input;
      }
      if (h.bearer_token.empty()) {
        std::cerr << "ttmemd: --http-token-file " << http_token_file << " is empty\n";
        return ttmem::exit_status::bad_input;
      }
    }
    options.http = h;
  } else if (http_remote || !http_token_file.empty()) {
    std::cerr << "ttmemd: --http-remote and --http-token-file go with --http [ADDR:]PORT\n";
    return ttmem::exit_status::usage;
  }
  if (no_history && !state_dir.empty()) {
    std::cerr << "ttmemd: --no-history and --state-dir contradict each other: give one\n";
    return ttmem::exit_status::usage;
  }
  for (const char* flag : {"--history-interval-ms", "--history-min-size", "--history-lifetimes-per-s",
                           "--history-keep-days", "--history-max-mb"}) {
    if (no_history && app.count(flag) > 0) {
      std::cerr << "ttmemd: " << flag << " has no effect with --no-history: give one of them\n";
      return ttmem::exit_status::usage;
    }
  }
  if (!no_history) {
    history.state_dir = state_dir.empty() ? ttmem::history::default_state_dir() : state_dir;
    history.max_bytes = history_max_mb << 20;
    options.history = history;
  }
  // Every connection costs a descriptor and a tracked process a pidfd: take what the hard limit allows.
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
    files.rlim_cur = files.rlim_max;
    setrlimit(RLIMIT_NOFILE, &files);
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%d %H:%M:%S.%e [%^%l%$] %v");
  if (!group.empty()) {
    const struct group* g = getgrnam(group.c_str());
    if (g) {
      options.group = g->gr_gid;
    } else if (group.find_first_not_of("0123456789") == std::string::npos) {
      options.group = static_cast<gid_t>(std::stoul(group));
    } else {
      std::cerr << "ttmemd: unknown group '" << group << "'\n";
      return ttmem::exit_status::usage;
    }
  }
  try {
    if (auto activated = ttmem::server::take_activated_socket()) {
      if (app.count("--socket") > 0 && options.socket_path != activated->path)
        spdlog::warn("--socket {} ignored: systemd passed the socket {}", options.socket_path,
                     activated->path);
      if (options.group)
        spdlog::warn("--group ignored: the socket is systemd's (set SocketGroup= in ttmemd.socket)");
      options.socket_path = activated->path;
      options.activated_fd = activated->fd;
      spdlog::info("serving the socket systemd passed: {}", activated->path);
    }
    ttmem::server::Server server(options);
    if (ready_fd >= 0) {
      const char ready = '1';
      [[maybe_unused]] auto n = write(ready_fd, &ready, 1);
      close(ready_fd);
    }
    server.run();
  } catch (const std::exception& e) {
    std::cerr << "ttmemd: " << e.what() << '\n';
    return ttmem::exit_status::failure;
  }
  return 0;
}
