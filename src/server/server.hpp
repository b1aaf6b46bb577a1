// ttmemd: accepts clients on a Unix socket, binds each connection to the process that opened it, applies
// their messages to the registry in order, answers queries (large ones in pages, between batches of
// events), streams events to subscribers, and reclaims the allocations of processes that die.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "death_watch.hpp"
#include "event_loop.hpp"
#include "history_sink.hpp"
#include "history_writer.hpp"
#include "http_service.hpp"
#include "ledger.hpp"
#include "listener.hpp"
#include "log_sink.hpp"
#include "loop_mailbox.hpp"
#include "peer.hpp"
#include "query_pages.hpp"
#include "subscribers.hpp"
#include "ttmem/protocol.hpp"

namespace ttmem::server {

inline constexpr std::uint32_t kServerVersion = proto::kTtmemVersion;

struct ServerOptions {
  std::string socket_path;
  std::optional<gid_t> group;          ///< socket group (mode 0660)
  int activated_fd = -1;               ///< a listening socket systemd passed (socket_path is its path)
  bool verbose = false;                ///< log every event
  std::uint32_t stats_interval_s = 0;  ///< periodic statistics in the log; 0: off
  std::size_t max_connections = 1024;  ///< every connection, greeted or not
  std::size_t tool_slots = 16;         ///< of those, kept for tools: tracked processes get the rest
  std::size_t max_handshakes = 64;     ///< connections still to say HELLO; the oldest goes first past this
  std::uint32_t handshake_timeout_ms = 5000;
  std::size_t max_pending_output = 64u << 20;  ///< per connection: replies a client does not read
  std::uint32_t write_timeout_ms = 30'000;     ///< replies pending this long without progress: cut off
  std::size_t max_subscriber_backlog =
      8u << 20;                       ///< per subscriber: notifications beyond are dropped and counted
  std::size_t max_paged_queries = 8;  ///< large answers being built at once; more wait their turn
  bool poll_for_deaths = false;       ///< use polling even where pidfd works (tests the fallback)
  std::uint32_t death_poll_ms = 20;
  RegistryLimits limits;
  PagedQueryLimits query_limits;
  std::optional<HttpOptions> http;  ///< serve /metrics and /api over HTTP (off unless given)
  std::optional<history::HistoryOptions>
      history;  ///< keep records and the timeline on disk (docs/history.md)
};

class Server {
 public:
  explicit Server(ServerOptions options);
  ~Server();
  /// Runs the event loop until SIGINT/SIGTERM or stop().
  void run();
  void stop();
  const Registry& registry() const { return registry_; }
  /// The HTTP port served (`--http`), 0 when HTTP is off.
  int http_port() const { return http_ ? http_->port() : 0; }
  /// Handles `bytes` as the whole input of one new connection from this process, runs its queries to
  /// their end, then closes it (the connection handler fed a byte stream: fuzzing and tests).
  void feed(std::span<const std::uint8_t> bytes);

 private:
  struct Connection;

  // connections
  void accept_clients();
  std::uint64_t add_connection(int fd, PeerIdentity peer);
  void on_connection_event(std::uint64_t id, std::uint32_t events);
  enum class Read : std::uint8_t { more, drained, closed };
  /// Reads what the client sent, a bounded amount: `drained` when nothing more is buffered now.
  Read read_from(Connection& c);
  /// read_from, then reclaims a dead process once its connections are drained.
  void read_and_settle(Connection& c);
  void settle_dying(Connection& c);
  /// Handles the frames in `bytes`; what is left (a partial frame, or frames behind a paged query) stays
  /// in the connection's reader. False when `c` was closed or is closing.
  bool consume(Connection& c, std::span<const std::uint8_t> bytes);
  /// Handles the complete frames buffered in the connection's reader.
  bool process_buffered(Connection& c);
  bool usable(const Connection& c, std::uint64_t id) const;
  void set_reading(Connection& c, bool on);
  void close_connection(std::uint64_t id);
  void evict_oldest_handshake(const std::string& why);
  void housekeeping();
  void watch_history();  // logs when the history's writes start or stop failing

  // frames
  void handle_frame(Connection& c, const proto::Frame& frame);
  void handle_hello(Connection& c, const proto::Frame& frame);
  void handle_query(Connection& c, const proto::Frame& frame);
  struct Answer;
  /// `c` is null for a query over HTTP (which cannot subscribe).
  Answer answer(Connection* c, const views::Query& query);
  void handle_process_frame(Connection& c, ProcessState& p, const proto::Frame& frame);
  ProcessState* process_of(Connection& c);
  void fail(Connection& c, proto::ErrorCode code, const std::string& message);

  // output
  void send(Connection& c, const std::vector<std::uint8_t>& bytes);
  /// Appends a frame encode(out) writes to the connection's output, then flushes what it can.
  template <typename Encode>
  void send_encoded(Connection& c, Encode&& encode);
  void flush_output(Connection& c);
  void reply(Connection& c, std::uint32_t query_id, std::uint8_t status, std::string text);

  // paged queries
  bool run_paged_queries();
  void finish_paged_query(Connection& c);
  /// Ends the connection's paged query, if any; its memory is freed over the next turns.
  void drop_paged_query(Connection& c);

  // processes
  void on_process_exit(std::uint32_t slot);
  /// The process is gone and all it sent is applied: its records become an orphan record.
  void reclaim(std::uint32_t slot);
  void notify(const views::StreamEvent& event);
  void tick();
  void log_statistics();
  views::ServerInfo info_view(bool reset_loop);
  views::OomList oom_view(const views::OomQuery& q) const;
  /// An HTTP path's answer (http_service.hpp), built on the loop's thread.
  std::string http_answer(const std::string& path);
  /// An HTTP request's reply, from an HTTP thread: queries with parameters run step by step on the loop.
  std::optional<HttpReply> http_reply(const std::string& path, const HttpParams& params);
  struct HttpJob;
  void http_step(HttpJob& job);

  ServerOptions options_;
  EventLoop loop_;
  Registry registry_;
  model::FreeSpaceCache free_space_;  // stats answers reuse figures of devices that did not change
  LogSink log_;
  Subscribers subscribers_;
  Listener listener_;
  DeathWatch deaths_;
  int signal_fd_ = -1;
  EventLoop::Timer housekeeping_timer_;
  EventLoop::Timer accept_pause_;
  bool accepting_ = true;
  std::vector<std::uint8_t> scratch_;  // every read lands here; frames are handled in place
  std::uint64_t turn_ = 0;             // the loop's turn turn_bytes_ counts for
  std::size_t turn_bytes_ = 0;
  std::uint64_t next_connection_id_ = 1;
  std::map<std::uint64_t, std::unique_ptr<Connection>> connections_;
  std::set<std::uint64_t> handshaking_;  // ids of connections yet to say HELLO (oldest first)
  std::size_t tracked_connections_ = 0;
  std::set<std::uint64_t> paged_;                     // connections with a paged query under way
  std::vector<std::unique_ptr<PagedQuery>> retired_;  // answered; their memory goes back a slice a turn
  std::map<std::uint32_t, std::size_t> dying_;        // dead processes' slots -> connections still to drain
  std::uint64_t longest_paged_step_ns_ = 0;
  std::uint64_t started_ns_ = 0;
  std::uint64_t last_tick_ns_ = 0;
  std::uint64_t events_at_last_tick_ = 0;
  double events_per_second_ = 0;
  std::uint64_t decode_errors_ = 0;
  std::uint64_t refused_connections_ = 0;
  std::uint64_t handshake_timeouts_ = 0;
  std::uint64_t refused_identities_ = 0;
  std::uint64_t descriptor_shortages_ = 0;
  std::uint32_t ticks_ = 0;
  std::unique_ptr<history::Writer> history_writer_;  // made first: a state dir in use stops ttmemd at start
  std::unique_ptr<history::HistorySink> history_;
  EventLoop::Timer history_timer_;
  bool history_degraded_ = false;  // as last logged
  LoopMailbox mailbox_{loop_};     // the HTTP threads' way onto the loop
  // HTTP streams that get `changes` notes: the timer runs while there is one.
  EventLoop::Timer changes_timer_;
  std::size_t change_streams_ = 0;
  std::uint64_t changes_seen_ = 0;  // Registry::events_applied() at the last note
  void note_changes();
  static constexpr std::uint32_t kChangesIntervalMs = 100;
  std::unique_ptr<HttpService> http_;  // stopped (its threads joined) before the mailbox goes
};

}  // namespace ttmem::server
