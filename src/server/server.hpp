// ttmemd: accepts clients on a Unix socket, attributes each to its real process (SO_PEERCRED), applies their
// messages to the registry in order, answers queries, streams events to subscribers, and reclaims the
// allocations of processes that die (pidfd, polling as fallback).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "event_loop.hpp"
#include "registry.hpp"
#include "ttmem/protocol.hpp"

namespace ttmem::server {

inline constexpr std::uint32_t kServerVersion = proto::pack_version(0, 1, 0);

struct ServerOptions {
  std::string socket_path;
  std::optional<gid_t> group;          ///< socket group (mode 0660)
  bool verbose = false;                ///< log every event
  std::uint32_t stats_interval_s = 0;  ///< periodic statistics in the log; 0: off
  std::size_t max_connections = 1024;
  std::size_t max_pending_output = 256u << 20;  ///< per connection: replies a client does not read
  std::size_t max_subscriber_backlog =
      8u << 20;                  ///< per subscriber: notifications beyond are dropped and counted
  bool poll_for_deaths = false;  ///< use polling even where pidfd works (tests the fallback)
  std::uint32_t death_poll_ms = 20;
  RegistryLimits limits;
};

/// Binds the socket: replaces a stale socket file, refuses to clobber a live server or a non-socket.
/// Throws std::runtime_error with a message that says what to do.
int listen_on_socket(const ServerOptions& options);

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  /// Runs the event loop until SIGINT/SIGTERM or stop().
  void run();
  void stop();
  const Registry& registry() const { return registry_; }
  /// Handles `bytes` as the whole input of one new connection from this process, then closes it (the
  /// connection handler fed a byte stream: fuzzing and tests).
  void feed(std::span<const std::uint8_t> bytes);

 private:
  struct Connection;
  struct Watch {
    int pidfd = -1;
    pid_t pid = 0;
    std::uint64_t start_time = 0;
  };

  void accept_clients();
  void on_connection_event(Connection& c, std::uint32_t events);
  void read_from(Connection& c);
  /// Handles every complete frame buffered for `c`; false when `c` was closed or is closing.
  bool process_frames(Connection& c);
  std::uint64_t add_connection(int fd, pid_t pid, uid_t uid);
  void handle_frame(Connection& c, const proto::Frame& frame);
  void handle_hello(Connection& c, const proto::Frame& frame);
  void handle_query(Connection& c, const proto::Frame& frame);
  ProcessState* process_of(Connection& c);
  void send(Connection& c, const std::vector<std::uint8_t>& bytes);
  void flush_output(Connection& c);
  void fail(Connection& c, proto::ErrorCode code, const std::string& message);
  void close_connection(std::uint64_t id);
  void watch_process(const ProcessState& p);
  void on_process_exit(std::uint32_t slot);
  void poll_deaths();
  void notify(const nlohmann::json& j);
  void tick();
  void log_statistics();
  nlohmann::json info_json() const;

  ServerOptions options_;
  EventLoop loop_;
  Registry registry_;
  int listen_fd_ = -1;
  int signal_fd_ = -1;
  std::uint64_t next_connection_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::map<std::uint32_t, Watch> watches_;  // by process slot
  std::uint64_t started_ns_ = 0;
  std::uint64_t events_at_last_tick_ = 0;
  double events_per_second_ = 0;
  std::uint64_t decode_errors_ = 0;
  std::uint64_t refused_connections_ = 0;
  std::size_t subscribers_ = 0;
  std::uint32_t ticks_ = 0;
};

}  // namespace ttmem::server
