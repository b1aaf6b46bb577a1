// ttmemd's connection handling and event dispatch; see server.hpp.
#include "server.hpp"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "queries.hpp"
#include "ttmem/reply_pages.hpp"

namespace ttmem::server {

using nlohmann::json;

namespace {

constexpr std::size_t kScratchBytes = 128 * 1024;  // one frame of libttmem's size (kSendEventsPerFrame)
/// Read per wake-up from one connection (one read), so a busy client holds the loop for a few thousand
/// events at most; the loop reports it again at once if it has more.
constexpr std::size_t kReadBudget = kScratchBytes;
/// Read per turn of the loop from all connections together: the bound on how long the loop goes without
/// a wait (and without giving paged answers their slice). Connections left out are served next turn.
constexpr std::size_t kTurnReadBudget = kScratchBytes;
/// A connection's read buffer is given back once empty if it grew past this.
constexpr std::size_t kKeepReadBuffer = 64 * 1024;
/// A paged query waits while its connection has this much unread output.
constexpr std::size_t kPagedWatermark = 256 * 1024;
/// Time given to paged queries after each batch of events.
constexpr std::uint64_t kPagedSliceNs = 500'000;

/// The peer has shut its end: nobody can send on this connection any more.
bool peer_closed(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP)) != 0;
}

/// Still the process identified at accept: alive, and /proc agrees.
bool still_alive(const PeerIdentity& peer) {
  if (!peer.alive) return false;
  if (peer.pidfd >= 0) return !pidfd_exited(peer.pidfd);
  const auto info = read_process_info(peer.pid);
  return info && !info->exited && info->start_time == peer.start_time && info->euid == peer.uid;
}

/// Calls handle(message) when `d` decoded, else fail(code, message) with the decoder's own error code
/// (malformed, version_mismatch...).
template <typename T, typename Fail, typename Handle>
void on_decoded(const proto::Decoded<T>& d, Fail&& fail, Handle&& handle) {
  if (const auto* e = std::get_if<proto::DecodeError>(&d)) return fail(e->code, e->message);
  handle(std::get<T>(d));
}

}  // namespace

struct Server::Connection {
  int fd = -1;
  std::uint64_t id = 0;
  PeerIdentity peer;  ///< bound at accept; its pidfd goes to the death watch or is closed at HELLO
  bool greeted = false;
  proto::Role role = proto::Role::tool;
  std::uint32_t process_slot = 0;  // registry slot; 0 until a tracked process says hello
  bool detached = false;           // its process had exited before HELLO: reclaimed when this closes
  std::string name;
  proto::FrameReader reader{proto::kMaxRequestPayload};
  std::vector<std::uint8_t> out;
  std::size_t out_offset = 0;
  std::uint64_t out_progress_ns = 0;  // when output last drained (or became pending)
  std::uint32_t interest = 0;         // EventLoop bits asked for
  bool reading = true;                // false while frames wait behind a paged query
  bool closing = false;               // a protocol error: close once `out` is flushed, ignore input
  bool write_failed = false;          // the peer stopped taking replies: drop them, keep reading its input
  bool subscriber = false;
  bool dying = false;  // its process died: read to the end, then the process is reclaimed
  std::uint64_t dropped_notifications = 0;
  std::unique_ptr<PagedQuery> paged;
  std::uint32_t paged_query_id = 0;
  std::uint64_t frames = 0;
  std::uint64_t events = 0;
  std::uint64_t events_at_last_tick = 0;
  double events_per_second = 0;
  std::uint64_t connected_ns = 0;

  ~Connection() {
    if (peer.pidfd >= 0) ::close(peer.pidfd);
  }
  std::size_t pending() const { return out.size() - out_offset; }
};

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      registry_(options_.limits),
      log_(options_.verbose),
      subscribers_(registry_, [this](const json& j) { notify(j); }),
      listener_(options_.socket_path, options_.group),
      deaths_(loop_, options_.death_poll_ms, options_.poll_for_deaths,
              [this](std::uint32_t slot) { on_process_exit(slot); }),
      scratch_(kScratchBytes) {
  started_ns_ = last_tick_ns_ = monotonic_ns();
  loop_.add(listener_.fd(), EventLoop::kReadable, [this](std::uint32_t) { accept_clients(); });
  accept_pause_ = loop_.add_timer([this] {
    accepting_ = true;
    loop_.modify(listener_.fd(), EventLoop::kReadable);
  });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.add(signal_fd_, EventLoop::kReadable, [this](std::uint32_t) {
    signalfd_siginfo info{};
    if (read(signal_fd_, &info, sizeof info) == sizeof info) {
      spdlog::info("received {}, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
    }
    stop();
  });
  housekeeping_timer_ = loop_.add_timer([this] { housekeeping(); });
  housekeeping_timer_.arm(std::clamp<std::uint32_t>(options_.handshake_timeout_ms / 2, 10, 1000));
  loop_.set_background([this] { return run_paged_queries(); });

  registry_.add_sink(log_);
  spdlog::info("ttmemd {} listening on {} (protocol {}, pid {})", proto::version_string(kServerVersion),
               options_.socket_path, proto::kProtocolVersion, getpid());
}

Server::~Server() {
  registry_.remove_sink(log_);
  for (auto& [id, c] : connections_) {
    loop_.remove(c->fd);
    close(c->fd);
  }
  connections_.clear();
  if (signal_fd_ >= 0) close(signal_fd_);
}

void Server::run() {
  loop_.run();
  log_statistics();
  spdlog::info("ttmemd stopped");
}

void Server::stop() {
  loop_.stop();
}

// ---- connections --------------------------------------------------------------------------------------

void Server::accept_clients() {
  for (int round = 0; round < 64 && accepting_; ++round) {
    int fd = -1;
    switch (listener_.accept(&fd)) {
      case Listener::Outcome::none:
        return;
      case Listener::Outcome::refused:
        ++refused_connections_;
        if (++descriptor_shortages_ == 1 || descriptor_shortages_ % 1000 == 0)
          spdlog::warn("out of file descriptors: refused a connection ({} so far)", descriptor_shortages_);
        continue;
      case Listener::Outcome::exhausted:
        // Not even a spare descriptor: stop listening for a moment instead of spinning on a readable socket.
        ++descriptor_shortages_;
        accepting_ = false;
        loop_.modify(listener_.fd(), 0);
        accept_pause_.arm_once(100);
        return;
      case Listener::Outcome::accepted:
        break;
    }
    PeerIdentity peer = identify_peer(fd);
    if (!peer.alive && peer.short_of_descriptors) {
      // Without a descriptor to read /proc, who connected cannot be told: refuse rather than guess.
      ++refused_connections_;
      ++descriptor_shortages_;
      std::vector<std::uint8_t> bytes;
      proto::encode(bytes,
                    proto::ErrorMessage{proto::ErrorCode::limit_exceeded,
                                        "ttmemd has no file descriptor left to identify this connection "
                                        "(raise its limit with ulimit -n or LimitNOFILE=); try again later"});
      Listener::refuse(fd, bytes);
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      if (handshaking_.empty()) {
        ++refused_connections_;
        std::vector<std::uint8_t> bytes;
        proto::encode(bytes,
                      proto::ErrorMessage{proto::ErrorCode::limit_exceeded,
                                          fmt::format("ttmemd serves at most {} connections; try again later",
                                                      options_.max_connections)});
        Listener::refuse(fd, bytes);
        if (peer.pidfd >= 0) close(peer.pidfd);
        if (refused_connections_ == 1 || refused_connections_ % 1000 == 0) {
          spdlog::warn("connection limit ({}) reached; refused {} so far (last from pid {})",
                       options_.max_connections, refused_connections_, peer.pid);
        }
        continue;
      }
      evict_oldest_handshake(fmt::format(
          "ttmemd serves at most {} connections, and this one never said HELLO", options_.max_connections));
    }
    if (handshaking_.size() >= options_.max_handshakes)
      evict_oldest_handshake(
          fmt::format("more than {} connections are waiting to say HELLO; this one waited longest",
                      options_.max_handshakes));
    const std::uint64_t id = add_connection(fd, std::move(peer));
    // Clients say HELLO as they connect: take it now, so idle connections arriving behind cannot push
    // a real client out first.
    if (auto it = connections_.find(id); it != connections_.end()) read_and_settle(*it->second);
  }
}

std::uint64_t Server::add_connection(int fd, PeerIdentity peer) {
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->id = next_connection_id_++;
  c->peer = std::move(peer);
  c->name = c->peer.alive ? c->peer.name : "?";
  c->connected_ns = monotonic_ns();
  c->interest = EventLoop::kReadable | EventLoop::kPeerClosed;
  const std::uint64_t id = c->id;
  connections_.emplace(id, std::move(c));
  handshaking_.insert(id);
  loop_.add(fd, EventLoop::kReadable | EventLoop::kPeerClosed,
            [this, id](std::uint32_t events) { on_connection_event(id, events); });
  return id;
}

void Server::evict_oldest_handshake(const std::string& why) {
  const std::uint64_t id = *handshaking_.begin();
  Connection& c = *connections_.at(id);
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::ErrorMessage{proto::ErrorCode::limit_exceeded, why});
  [[maybe_unused]] auto n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ++refused_connections_;
  close_connection(id);
}

bool Server::usable(const Connection&, std::uint64_t id) const {
  auto it = connections_.find(id);
  return it != connections_.end() && !it->second->closing;
}

void Server::on_connection_event(std::uint64_t id, std::uint32_t events) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (events & EventLoop::kWritable) flush_output(c);
  if (!connections_.contains(id)) return;
  if ((events & (EventLoop::kHangup | EventLoop::kError)) && c.paged) {
    // The client is gone while its answer was being built: stop building it, read what is left.
    drop_paged_query(c);
    set_reading(c, true);
  }
  if (events & (EventLoop::kReadable | EventLoop::kPeerClosed | EventLoop::kHangup | EventLoop::kError))
    read_and_settle(c);
}

void Server::set_reading(Connection& c, bool on) {
  c.reading = on;
  const std::uint32_t want = (on ? EventLoop::kReadable | EventLoop::kPeerClosed : 0u) |
                             (c.pending() > 0 && !c.write_failed ? EventLoop::kWritable : 0u);
  if (want != c.interest) {
    c.interest = want;
    loop_.modify(c.fd, want);
  }
}

Server::Read Server::read_from(Connection& c) {
  const std::uint64_t id = c.id;
  if (turn_ != loop_.turn()) {
    turn_ = loop_.turn();
    turn_bytes_ = 0;
  }
  for (std::size_t got = 0; got < kReadBudget;) {
    if (turn_bytes_ >= kTurnReadBudget) return Read::more;  // the loop reports it again next turn
    if (c.paged) {
      set_reading(c, false);  // later frames wait for this answer; the socket buffers them meanwhile
      return Read::more;
    }
    const ssize_t n = ::read(c.fd, scratch_.data(), scratch_.size());
    if (n == 0) {
      close_connection(id);
      return Read::closed;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return Read::drained;
      close_connection(id);
      return Read::closed;
    }
    got += static_cast<std::size_t>(n);
    turn_bytes_ += static_cast<std::size_t>(n);
    if (c.closing) continue;  // discard input from a connection we are closing
    if (!consume(c, {scratch_.data(), static_cast<std::size_t>(n)})) {
      return connections_.contains(id) ? Read::more : Read::closed;
    }
  }
  return Read::more;
}

void Server::read_and_settle(Connection& c) {
  const std::uint64_t id = c.id;
  const Read r = read_from(c);
  // A dead process's connection is read, a slice at a time like any other, until nothing it sent is
  // left; then its process is reclaimed. (close_connection settles the ones that close.)
  if (r == Read::drained && connections_.contains(id) && c.dying) settle_dying(c);
}

void Server::settle_dying(Connection& c) {
  c.dying = false;
  const std::uint32_t slot = c.process_slot;
  auto it = dying_.find(slot);
  if (it == dying_.end() || --it->second > 0) return;
  dying_.erase(it);
  reclaim(slot);
}

bool Server::consume(Connection& c, std::span<const std::uint8_t> bytes) {
  const std::uint64_t id = c.id;
  // First complete the frame the reader holds part of, with only the bytes it still needs.
  while (c.reader.buffered() > 0 && !bytes.empty()) {
    const std::size_t need = c.reader.missing();
    if (need == 0) break;
    const std::size_t take = std::min(need, bytes.size());
    c.reader.append(bytes.first(take));
    bytes = bytes.subspan(take);
  }
  if (c.reader.buffered() > 0) {
    if (!process_buffered(c)) return false;
    if (c.reader.buffered() > 0) {
      c.reader.append(bytes);
      return true;
    }
  }
  // Then handle whole frames where they lie, and keep only the tail.
  while (!bytes.empty()) {
    if (c.paged) break;
    auto next = proto::next_frame(bytes, proto::kMaxRequestPayload);
    if (std::holds_alternative<std::nullopt_t>(next)) break;
    if (auto* err = std::get_if<proto::DecodeError>(&next)) {
      fail(c, err->code, err->message);  // may close (and free) the connection
      return false;
    }
    handle_frame(c, std::get<proto::Frame>(next));
    if (!usable(c, id)) return false;
  }
  c.reader.append(bytes);
  c.reader.release_if_empty(kKeepReadBuffer);
  return true;
}

bool Server::process_buffered(Connection& c) {
  const std::uint64_t id = c.id;
  while (!c.paged) {
    auto next = c.reader.next();
    if (std::holds_alternative<std::nullopt_t>(next)) break;
    if (auto* err = std::get_if<proto::DecodeError>(&next)) {
      fail(c, err->code, err->message);
      return false;
    }
    handle_frame(c, std::get<proto::Frame>(next));
    if (!usable(c, id)) return false;
  }
  c.reader.release_if_empty(kKeepReadBuffer);
  return true;
}

void Server::feed(std::span<const std::uint8_t> bytes) {
  // A connection from this very process over a socket pair, given `bytes` as if read from it. Its replies
  // are dropped (nobody reads them), so paged queries run to their end.
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return;
  PeerIdentity self;
  self.pid = getpid();
  self.uid = geteuid();
  if (const auto info = read_process_info(self.pid)) {
    self.start_time = info->start_time;
    self.name = info->name;
    self.alive = true;
  }
  const std::uint64_t id = add_connection(pair[0], std::move(self));
  connections_.at(id)->write_failed = true;
  if (consume(*connections_.at(id), bytes)) {
    while (connections_.contains(id) && connections_.at(id)->paged) run_paged_queries();
  }
  close_connection(id);
  close(pair[1]);
}

void Server::close_connection(std::uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (c.subscriber) subscribers_.removed();
  handshaking_.erase(id);
  drop_paged_query(c);
  if (c.role == proto::Role::tracked_process && c.greeted) {
    --tracked_connections_;
    spdlog::info("pid {} ({}) disconnected (connection {}, {} events)", c.peer.pid, c.name, c.id, c.events);
  }
  loop_.remove(c.fd);
  close(c.fd);
  const bool detached = c.detached;
  const bool dying = c.dying;
  const std::uint32_t slot = c.process_slot;
  connections_.erase(it);
  if (detached) {
    reclaim(slot);  // everything its exited process sent is in
  } else if (dying) {
    auto d = dying_.find(slot);
    if (d != dying_.end() && --d->second == 0) {
      dying_.erase(d);
      reclaim(slot);
    }
  }
}

void Server::housekeeping() {
  const std::uint64_t now = monotonic_ns();
  const std::uint64_t handshake_ns = std::uint64_t{options_.handshake_timeout_ms} * 1'000'000;
  std::vector<std::uint64_t> late;
  for (std::uint64_t id : handshaking_) {
    if (now - connections_.at(id)->connected_ns > handshake_ns) late.push_back(id);
  }
  for (std::uint64_t id : late) {
    ++handshake_timeouts_;
    Connection& c = *connections_.at(id);
    std::vector<std::uint8_t> bytes;
    proto::encode(bytes,
                  proto::ErrorMessage{proto::ErrorCode::unexpected_message,
                                      fmt::format("no HELLO within {} ms", options_.handshake_timeout_ms)});
    [[maybe_unused]] auto n = ::send(c.fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    close_connection(id);
  }
  if (!late.empty()) spdlog::info("closed {} connection(s) that never said HELLO", late.size());
  const std::uint64_t write_ns = std::uint64_t{options_.write_timeout_ms} * 1'000'000;
  std::vector<std::uint64_t> stalled;
  for (const auto& [id, c] : connections_) {
    if (c->pending() > 0 && !c->write_failed && now - c->out_progress_ns > write_ns) stalled.push_back(id);
  }
  for (std::uint64_t id : stalled) {
    Connection& c = *connections_.at(id);
    spdlog::warn("connection {} of pid {} does not read its replies ({} pending for {} ms); closing it", id,
                 c.peer.pid, human_bytes(c.pending()), options_.write_timeout_ms);
    close_connection(id);
  }
  if (now - last_tick_ns_ >= 1'000'000'000ull) {
    last_tick_ns_ = now;
    tick();
  }
}

// ---- frames -------------------------------------------------------------------------------------------

ProcessState* Server::process_of(Connection& c) {
  if (c.process_slot == 0) return nullptr;
  return const_cast<ProcessState*>(registry_.process_by_slot(c.process_slot));
}

void Server::fail(Connection& c, proto::ErrorCode code, const std::string& message) {
  ++decode_errors_;
  spdlog::warn("closing connection {} of pid {} ({}): {}: {}", c.id, c.peer.pid, c.name,
               proto::to_string(code), message);
  const std::uint64_t id = c.id;
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::ErrorMessage{code, message});
  send(c, bytes);
  if (!connections_.contains(id)) return;  // send() may have closed it
  c.closing = true;
  if (c.pending() == 0) close_connection(id);
}

void Server::handle_frame(Connection& c, const proto::Frame& frame) {
  ++c.frames;
  using proto::MessageType;
  if (!c.greeted) {
    if (frame.type != MessageType::hello) {
      fail(c, proto::ErrorCode::unexpected_message,
           fmt::format("expected HELLO as the first message, got {}", proto::to_string(frame.type)));
      return;
    }
    handle_hello(c, frame);
    return;
  }
  auto failing = [&](proto::ErrorCode code, const std::string& m) { fail(c, code, m); };
  switch (frame.type) {
    case MessageType::query:
      handle_query(c, frame);
      return;
    case MessageType::barrier: {
      // Everything before it on this connection is applied: acknowledge.
      on_decoded(proto::decode_barrier(frame.payload), failing, [&](const proto::Barrier& m) {
        std::vector<std::uint8_t> bytes;
        proto::encode(bytes, m, MessageType::barrier_ack);
        send(c, bytes);
      });
      return;
    }
    default:
      break;
  }
  ProcessState* p = process_of(c);
  if (!p) {
    fail(c, proto::ErrorCode::unexpected_message,
         fmt::format("{} is only accepted from a tracked process (this connection said hello as a tool, or "
                     "its process is gone)",
                     proto::to_string(frame.type)));
    return;
  }
  handle_process_frame(c, *p, frame);
}

void Server::handle_process_frame(Connection& c, ProcessState& p, const proto::Frame& frame) {
  using proto::MessageType;
  auto failing = [&](proto::ErrorCode code, const std::string& m) { fail(c, code, m); };
  switch (frame.type) {
    case MessageType::events: {
      // Validate the whole batch first: a bad one changes nothing.
      if (auto err = proto::validate_events(frame.payload)) return fail(c, err->code, err->message);
      registry_.set_batch_time(realtime_ns());
      const std::size_t count = (frame.payload.size() - 4) / proto::kEventRecordSize;
      for (std::size_t i = 0; i < count; ++i) registry_.event(p, proto::event_at(frame.payload, i));
      c.events += count;
      return;
    }
    case MessageType::device_open:
      return on_decoded(proto::decode_device_open(frame.payload), failing,
                        [&](const proto::DeviceOpen& d) { registry_.device_open(p, d); });
    case MessageType::device_close:
      return on_decoded(proto::decode_device_close(frame.payload), failing,
                        [&](const proto::DeviceClose& d) { registry_.device_close(p, d); });
    case MessageType::sites:
      return on_decoded(proto::decode_sites(frame.payload), failing,
                        [&](const std::vector<proto::Site>& sites) { registry_.sites(p, sites); });
    case MessageType::snapshot_begin:
      return on_decoded(proto::decode_snapshot_begin(frame.payload), failing,
                        [&](const proto::SnapshotBegin& m) { registry_.snapshot_begin(p, m); });
    case MessageType::snapshot_end:
      return on_decoded(proto::decode_snapshot_end(frame.payload), failing, [&](const proto::SnapshotEnd& m) {
        registry_.snapshot_end(p, m);
        spdlog::info("pid {} ({}) resynchronised: {} live allocations", p.pid, p.name, m.num_allocations);
      });
    case MessageType::client_stats:
      return on_decoded(proto::decode_client_stats(frame.payload), failing,
                        [&](const proto::ClientStats& m) { p.client_stats = m; });
    default:
      fail(c, proto::ErrorCode::unexpected_message,
           fmt::format("{} is not a message a client sends", proto::to_string(frame.type)));
  }
}

void Server::handle_hello(Connection& c, const proto::Frame& frame) {
  auto decoded = proto::decode_hello(frame.payload);
  if (auto* err = std::get_if<proto::DecodeError>(&decoded)) {
    std::string message = err->message;
    if (err->code == proto::ErrorCode::version_mismatch) {
      message +=
          fmt::format("; this ttmemd {} speaks protocol {}: use a libttmem of the same protocol version",
                      proto::version_string(kServerVersion), proto::kProtocolVersion);
    }
    fail(c, err->code, message);
    return;
  }
  const proto::Hello& hello = std::get<proto::Hello>(decoded);
  const pid_t pid = c.peer.pid;
  auto acknowledge = [&] {
    proto::HelloAck ack;
    ack.server_version = kServerVersion;
    ack.server_pid = static_cast<std::uint32_t>(getpid());
    ack.peer_pid = static_cast<std::uint32_t>(pid);
    ack.connection_id = c.id;
    std::vector<std::uint8_t> bytes;
    proto::encode(bytes, ack);
    send(c, bytes);
  };
  if (hello.role != proto::Role::tracked_process) {
    c.greeted = true;
    handshaking_.erase(c.id);
    c.role = hello.role;
    if (c.peer.pidfd >= 0) close(c.peer.pidfd);
    c.peer.pidfd = -1;
    acknowledge();
    return;
  }
  if (pid <= 0) {
    ++refused_identities_;
    fail(c, proto::ErrorCode::unexpected_message,
         "ttmemd cannot tell which process this is: the client runs in a pid namespace ttmemd cannot see "
         "(its peer credentials say pid 0), so its memory could be merged with others' or reclaimed while it "
         "lives; run ttmemd in the host's pid namespace (or in the client's)");
    return;
  }
  if (tracked_connections_ + options_.tool_slots >= options_.max_connections) {
    fail(c, proto::ErrorCode::limit_exceeded,
         fmt::format(
             "ttmemd serves at most {} tracked connections ({} of {} kept for tools); try again later",
             options_.max_connections - options_.tool_slots, options_.tool_slots, options_.max_connections));
    return;
  }
  if (!still_alive(c.peer)) {
    // The process that connected has exited. What it sent before it died belongs to a record of its own,
    // never to whoever has its pid now — and only if nobody else holds the connection.
    if (!peer_closed(c.fd)) {
      ++refused_identities_;
      fail(c, proto::ErrorCode::unexpected_message,
           fmt::format("the process that opened this connection (pid {}) has exited; a connection cannot be "
                       "handed to another process: connect again",
                       pid));
      return;
    }
    ProcessState& p = registry_.detached_process(pid, c.peer.uid);
    c.greeted = true;
    handshaking_.erase(c.id);
    c.role = hello.role;
    c.process_slot = p.slot;
    c.detached = true;
    ++tracked_connections_;
    spdlog::info(
        "pid {} exited before it was identified; applying what its connection carried (connection {})", pid,
        c.id);
    acknowledge();
    return;
  }
  c.greeted = true;
  handshaking_.erase(c.id);
  c.role = hello.role;
  ++tracked_connections_;
  ProcessState& p = registry_.process(pid, c.peer.start_time, c.peer.uid, c.name);
  c.process_slot = p.slot;
  if (hello.claimed_pid != 0 && hello.claimed_pid != static_cast<std::uint32_t>(pid)) {
    ++p.anomalies.pid_mismatch;
    spdlog::warn(
        "connection {} claims pid {} but its peer credentials say pid {} ({}); attributing it to pid {}",
        c.id, hello.claimed_pid, pid, c.name, pid);
  }
  if (!deaths_.watching(p.slot)) {
    int pidfd = c.peer.pidfd;
    c.peer.pidfd = -1;
    if (pidfd < 0) pidfd = open_pidfd(pid);  // none at accept (no descriptor then): one more try
    deaths_.watch(p.slot, pid, p.start_time, pidfd);
  }
  spdlog::info("pid {} ({}) connected (client {}, connection {})", pid, c.name,
               proto::version_string(hello.client_version), c.id);
  acknowledge();
}

void Server::handle_query(Connection& c, const proto::Frame& frame) {
  auto decoded = proto::decode_query(frame.payload);
  if (const auto* e = std::get_if<proto::DecodeError>(&decoded)) return fail(c, e->code, e->message);
  const proto::Query* q = &std::get<proto::Query>(decoded);
  json answer;
  try {
    const json request = json::parse(q->json);
    if (!request.is_object() || !request.contains("type") || !request["type"].is_string()) {
      throw QueryFailure(ErrorCode::bad_query, "a query is a JSON object with a string field 'type'");
    }
    const std::string type = request["type"];
    std::unique_ptr<PagedQuery> paged;
    if (type == "stats") {
      answer = stats_json(model::stats_view(registry_));
    } else if (type == "buffers") {
      paged = buffers_query(parse_buffer_filter(request), options_.query_limits);
    } else if (type == "leaks") {
      paged = leaks_query();
    } else if (type == "events") {
      const auto limit = request.value("limit", 100);
      if (limit < 0) throw QueryFailure(ErrorCode::bad_query, "field 'limit' must not be negative");
      paged = events_query(registry_, static_cast<std::size_t>(limit));
    } else if (type == "devices") {
      answer = devices_json(model::devices_view(registry_));
    } else if (type == "info") {
      answer = info_json(request.value("reset_loop", false));
    } else if (type == "subscribe") {
      if (!c.subscriber) subscribers_.added();
      c.subscriber = true;
      answer = {{"subscribed", true}};
    } else {
      throw QueryFailure(
          ErrorCode::bad_query,
          "unknown query type '" + type + "' (stats, buffers, leaks, devices, events, info, subscribe)");
    }
    if (paged) {
      // Answered in pages between batches of events; this connection's later frames wait for it.
      c.paged = std::move(paged);
      c.paged_query_id = q->query_id;
      paged_.insert(c.id);
      return;
    }
  } catch (const QueryFailure& e) {
    reply(c, q->query_id, proto::kReplyError, to_wire_text(query_error_json(e.code(), e.what())));
    return;
  } catch (const json::exception& e) {  // the request's text is not JSON, or a field has the wrong type
    reply(c, q->query_id, proto::kReplyError,
          to_wire_text(query_error_json(ErrorCode::bad_query, std::string("bad query: ") + e.what())));
    return;
  } catch (const std::exception& e) {
    reply(c, q->query_id, proto::kReplyError, to_wire_text(query_error_json(ErrorCode::internal, e.what())));
    return;
  }
  reply(c, q->query_id, proto::kReplyDone, to_wire_text(answer));
}

// ---- output -------------------------------------------------------------------------------------------

template <typename Encode>
void Server::send_encoded(Connection& c, Encode&& encode) {
  if (c.write_failed) return;
  const std::uint64_t id = c.id;
  if (c.pending() == 0) c.out_progress_ns = monotonic_ns();
  encode(c.out);  // straight into the connection's output: no copy of a page on its way
  flush_output(c);
  if (connections_.contains(id) && c.pending() > options_.max_pending_output) {
    spdlog::warn("connection {} of pid {} does not read its replies ({} pending); closing it", c.id,
                 c.peer.pid, human_bytes(c.pending()));
    close_connection(c.id);
  }
}

void Server::reply(Connection& c, std::uint32_t query_id, std::uint8_t status, std::string text) {
  proto::QueryReply r;
  r.query_id = query_id;
  r.status = status;
  r.json = std::move(text);
  send_encoded(c, [&](std::vector<std::uint8_t>& out) { proto::encode(out, r); });
}

void Server::send(Connection& c, const std::vector<std::uint8_t>& bytes) {
  send_encoded(c, [&](std::vector<std::uint8_t>& out) { out.insert(out.end(), bytes.begin(), bytes.end()); });
}

void Server::flush_output(Connection& c) {
  while (c.out_offset < c.out.size() && !c.write_failed) {
    // At most 16 KiB a call: larger sends make the kernel look for high-order pages for the socket buffer,
    // which on a fragmented host can mean direct compaction inside the call (seen: 6 ms for 100 KB).
    const std::size_t chunk = std::min<std::size_t>(c.out.size() - c.out_offset, 16 * 1024);
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_offset, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The peer takes no more replies (it may have exited). Its input is still to be applied: drop the
      // output, keep reading until the end of what it sent.
      c.write_failed = true;
      break;
    }
    c.out_offset += static_cast<std::size_t>(n);
    c.out_progress_ns = monotonic_ns();
  }
  if (c.write_failed || c.out_offset == c.out.size()) {
    if (c.out.capacity() > kKeepReadBuffer && !c.paged) {
      std::vector<std::uint8_t>().swap(c.out);  // a big answer's buffer is given back once it is over
    } else {
      c.out.clear();
    }
    c.out_offset = 0;
    if (c.subscriber && c.dropped_notifications > 0 && !c.write_failed) {
      std::vector<std::uint8_t> bytes;
      proto::encode(bytes, proto::EventNotify{
                               to_wire_text(json{{"event", "dropped"}, {"count", c.dropped_notifications}})});
      c.dropped_notifications = 0;
      c.out = std::move(bytes);
      return flush_output(c);
    }
    if (c.closing) {
      close_connection(c.id);
      return;
    }
  } else if (c.out_offset > (1u << 20)) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_offset));
    c.out_offset = 0;
  }
  set_reading(c, c.reading);  // asks for EventLoop::kWritable exactly while output is pending
}

// ---- paged queries ------------------------------------------------------------------------------------

bool Server::run_paged_queries() {
  std::erase_if(retired_, [](const std::unique_ptr<PagedQuery>& q) { return q->release_some(); });
  if (paged_.empty()) return !retired_.empty();
  const std::uint64_t deadline = monotonic_ns() + kPagedSliceNs;
  bool ready = false;
  do {
    ready = false;
    std::vector<std::uint64_t> turn(paged_.begin(), paged_.end());
    if (turn.size() > options_.max_paged_queries) turn.resize(options_.max_paged_queries);  // the rest wait
    for (std::uint64_t id : turn) {
      auto it = connections_.find(id);
      if (it == connections_.end() || !it->second->paged) continue;
      Connection& c = *it->second;
      if (c.pending() > kPagedWatermark) continue;  // until the client reads what it has
      std::string page;
      bool last = false;
      const std::uint64_t t0 = monotonic_ns();
      try {
        last = c.paged->step(registry_, page);
        longest_paged_step_ns_ = std::max(longest_paged_step_ns_, monotonic_ns() - t0);
      } catch (const std::exception& e) {
        const auto* failure = dynamic_cast<const QueryFailure*>(&e);
        reply(c, c.paged_query_id, proto::kReplyError,
              to_wire_text(query_error_json(failure ? failure->code() : ErrorCode::internal, e.what())));
        if (connections_.contains(id)) finish_paged_query(c);
        continue;
      }
      if (!page.empty())
        reply(c, c.paged_query_id, last ? proto::kReplyDone : proto::kReplyPartial, std::move(page));
      if (!connections_.contains(id)) continue;
      if (last) {
        finish_paged_query(c);
      } else {
        ready = true;
      }
    }
  } while (ready && monotonic_ns() < deadline);
  // More to do now only if some query can go on without waiting for its client.
  for (std::uint64_t id : paged_) {
    auto it = connections_.find(id);
    if (it != connections_.end() && it->second->pending() <= kPagedWatermark) return true;
  }
  return !retired_.empty();
}

void Server::drop_paged_query(Connection& c) {
  if (!c.paged) return;
  if (!c.paged->release_some()) retired_.push_back(std::move(c.paged));  // freed a slice per turn
  c.paged.reset();
  paged_.erase(c.id);
}

void Server::finish_paged_query(Connection& c) {
  const std::uint64_t id = c.id;
  drop_paged_query(c);
  // Frames that waited behind the answer go on now, then reading resumes.
  if (!process_buffered(c) || !connections_.contains(id)) return;
  if (!c.paged) set_reading(c, true);
}

// ---- processes ----------------------------------------------------------------------------------------

void Server::on_process_exit(std::uint32_t slot) {
  // Everything the process sent before it died is applied first: its connections are read to their end
  // (in slices, between other clients' batches), then it is reclaimed.
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->process_slot == slot && !c->dying) ids.push_back(id);
  }
  if (ids.empty()) return reclaim(slot);
  dying_[slot] = ids.size();
  for (std::uint64_t id : ids) {
    Connection& c = *connections_.at(id);
    c.dying = true;
    if (c.paged) {  // nobody will read that answer now
      drop_paged_query(c);
      set_reading(c, true);
      if (!process_buffered(c)) continue;
    }
    read_and_settle(c);
  }
}

void Server::reclaim(std::uint32_t slot) {
  auto* p = const_cast<ProcessState*>(registry_.process_by_slot(slot));
  if (!p) return;
  registry_.process_died(*p);  // the sinks log it and tell subscribers
  for (auto& [id, c] : connections_) {
    if (c->process_slot == slot) c->process_slot = 0;
  }
}

void Server::notify(const json& j) {
  const std::string text = to_wire_text(j);
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::EventNotify{text});
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->subscriber && !c->write_failed) ids.push_back(id);
  }
  for (std::uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& c = *it->second;
    if (c.pending() + bytes.size() > options_.max_subscriber_backlog) {
      ++c.dropped_notifications;  // a slow subscriber loses notifications (and is told how many), never
                                  // the server
      continue;
    }
    send(c, bytes);
  }
}

void Server::tick() {
  const std::uint64_t applied = registry_.events_applied();
  events_per_second_ = static_cast<double>(applied - events_at_last_tick_);
  events_at_last_tick_ = applied;
  for (auto& [id, c] : connections_) {
    c->events_per_second = static_cast<double>(c->events - c->events_at_last_tick);
    c->events_at_last_tick = c->events;
  }
  if (options_.stats_interval_s > 0 && ++ticks_ % options_.stats_interval_s == 0) log_statistics();
}

void Server::log_statistics() {
  for (const auto& [id, d] : registry_.devices()) {
    std::string line;
    for (Slot slot : enum_values<Slot>()) {
      const Figures& f = d.usage[index(slot)];
      if (f.buffers == 0) continue;
      line += fmt::format("{}{} {} in {} buffers", line.empty() ? "" : ", ", to_string(slot),
                          human_bytes(f.bytes), f.buffers);
    }
    spdlog::info("device {}: {}", id, line.empty() ? "nothing allocated" : line);
  }
  spdlog::info("active allocations: {}, processes: {}, connections: {}, events/s: {:.0f}",
               registry_.allocations().size(), registry_.processes().size(), connections_.size(),
               events_per_second_);
}

json Server::info_json(bool reset_loop) {
  const Anomalies a = registry_.anomalies();
  json clients = json::array();
  for (const auto& [id, c] : connections_) {
    json row = {{"connection", c->id},
                {"pid", c->peer.pid},
                {"uid", c->peer.uid},
                {"name", c->name},
                {"role", !c->greeted                    ? "handshake"
                         : c->role == proto::Role::tool ? "tool"
                                                        : "tracked"},
                {"events", c->events},
                {"events_per_second", c->events_per_second},
                {"subscriber", c->subscriber},
                {"read_buffer_bytes", c->reader.capacity()},
                {"pending_output_bytes", c->pending()},
                {"connected_s", static_cast<double>(monotonic_ns() - c->connected_ns) / 1e9}};
    if (const ProcessState* p = registry_.process_by_slot(c->process_slot)) {
      const auto& s = p->client_stats;
      json& client = row["client"] = json::object();
#define TTMEM_SHOW(name) client[#name] = s.name;
      TTMEM_CLIENT_STATS(TTMEM_SHOW)
#undef TTMEM_SHOW
    }
    clients.push_back(row);
  }
  const std::string death_watch =
      options_.poll_for_deaths    ? "polling"
      : deaths_.by_polling() == 0 ? "pidfd"
                                  : fmt::format("pidfd, polling for {} process(es)", deaths_.by_polling());
  json answer = {{"version", proto::version_string(kServerVersion)},
                 {"protocol", proto::kProtocolVersion},
                 {"pid", getpid()},
                 {"socket", options_.socket_path},
                 {"uptime_s", static_cast<double>(monotonic_ns() - started_ns_) / 1e9},
                 {"connections", connections_.size()},
                 {"processes", registry_.processes().size()},
                 {"clients", clients},
                 {"events_total", registry_.events_applied()},
                 {"events_per_second", events_per_second_},
                 {"active_allocations", registry_.allocations().size()},
                 {"registry_bytes", registry_.allocations().memory_bytes()},
                 {"death_watch", death_watch},
                 {"loop",
                  {{"longest_busy_ms", static_cast<double>(loop_.longest_busy_ns()) / 1e6},
                   {"longest_busy_cpu_ms", static_cast<double>(loop_.longest_busy_cpu_ns()) / 1e6},
                   {"longest_paged_step_ms", static_cast<double>(longest_paged_step_ns_) / 1e6},
                   {"paged_queries", paged_.size()}}},
                 {"anomalies",
                  {{"free_unknown_id", a.free_unknown_id},
                   {"duplicate_id", a.duplicate_id},
                   {"events_after_close", a.events_after_close},
                   {"pid_mismatch", a.pid_mismatch},
                   {"snapshot_mismatch", a.snapshot_mismatch},
                   {"limit_refused", a.limit_refused},
                   {"device_out_of_range", a.device_out_of_range},
                   {"size_overflow", a.size_overflow},
                   {"site_limit", a.site_limit},
                   {"protocol_errors", decode_errors_},
                   {"refused_connections", refused_connections_},
                   {"handshake_timeouts", handshake_timeouts_},
                   {"refused_identities", refused_identities_},
                   {"descriptor_shortages", descriptor_shortages_}}},
                 {"limits",
                  {{"max_connections", options_.max_connections},
                   {"tool_slots", options_.tool_slots},
                   {"max_handshakes", options_.max_handshakes},
                   {"handshake_timeout_ms", options_.handshake_timeout_ms},
                   {"max_frame_bytes", proto::kMaxRequestPayload},
                   {"max_live_allocations_per_process", options_.limits.max_live_allocations_per_process},
                   {"max_sites_per_process", options_.limits.max_sites_per_process},
                   {"max_site_bytes_per_process", options_.limits.max_site_bytes_per_process},
                   {"max_leak_records", options_.limits.max_leak_records},
                   {"max_orphan_records", options_.limits.max_orphan_records},
                   {"max_pending_output_bytes", options_.max_pending_output},
                   {"write_timeout_ms", options_.write_timeout_ms},
                   {"max_subscriber_backlog_bytes", options_.max_subscriber_backlog},
                   {"max_paged_queries", options_.max_paged_queries},
                   {"max_query_rows", options_.query_limits.max_rows},
                   {"max_device_id", options_.limits.max_device_id}}}};
  if (reset_loop) {
    loop_.reset_longest_busy();
    longest_paged_step_ns_ = 0;
  }
  return answer;
}

}  // namespace ttmem::server
