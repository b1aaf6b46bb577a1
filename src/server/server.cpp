// ttmemd: construction, the loop, connections (accept, read, close), processes (exits, reclaims,
// statistics); see server.hpp. Frames are in ingest.cpp, queries in query_service.cpp, replies in
// output.cpp.
#include "server.hpp"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "connection.hpp"
#include "queries.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::server {

Server::Server(ServerOptions options)
    : options_(std::move(options)),
      registry_(options_.limits),
      log_(options_.verbose),
      subscribers_(registry_, [this](const views::StreamEvent& e) { notify(e); }),
      listener_(options_.socket_path, options_.group, options_.activated_fd),
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
  signal(SIGXFSZ,
         SIG_IGN);  // a history file past RLIMIT_FSIZE is a failed write (degraded), not a dead ttmemd
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
  if (options_.history) {
    history_writer_ = std::make_unique<history::Writer>(*options_.history);
    history_ = std::make_unique<history::HistorySink>(registry_, *history_writer_);
    registry_.add_sink(*history_);
    history_->server_started(fmt::format("ttmemd {} started on {} (pid {})",
                                         proto::version_string(kServerVersion), options_.socket_path,
                                         getpid()));
    history_timer_ = loop_.add_timer([this] {
      history_->tick();
      watch_history();
    });
    history_timer_.arm(static_cast<std::uint32_t>(options_.history->interval_ms));
    spdlog::info("history: {} (timeline every {} ms)", history_writer_->status().path,
                 options_.history->interval_ms);
  } else {
    spdlog::info("history: off (--no-history)");
  }
  if (options_.http) {  // after the signal mask: its threads inherit it, and signals stay the loop's
    changes_timer_ = loop_.add_timer([this] { note_changes(); });
    http_ = std::make_unique<HttpService>(
        *options_.http,
        [this](const std::string& path, const HttpParams& params) { return http_reply(path, params); },
        [this](bool add, bool each) {
          return mailbox_
              .call(
                  [this, add, each] {
                    if (add) {
                      subscribers_.added(each);  // each: the ledger now reports every event to the stream
                    } else {
                      subscribers_.removed(each);
                    }
                    if (!each) {
                      change_streams_ = add ? change_streams_ + 1 : change_streams_ - 1;
                      if (add && change_streams_ == 1) {
                        changes_seen_ = registry_.events_applied();
                        changes_timer_.arm(kChangesIntervalMs);
                      } else if (change_streams_ == 0) {
                        changes_timer_.disarm();
                      }
                    }
                    return std::string("ok");
                  },
                  std::chrono::seconds(5))
              .has_value();
        });
  }
}

// A dashboard wants to know that something changed, not each change: one note per interval costs the loop
// nothing per event, where a JSON text per event would cap ingest near a million a second.
void Server::note_changes() {
  const std::uint64_t applied = registry_.events_applied();
  if (applied == changes_seen_) return;
  views::Changes c{applied - changes_seen_, realtime_ns()};
  changes_seen_ = applied;
  if (http_) http_->publish(schema::to_json(views::StreamEvent(c)));
}

Server::~Server() {
  mailbox_.close();  // requests still waiting are answered "unavailable"; then the HTTP threads end
  http_.reset();
  if (history_) {
    history_->server_stopping();
    registry_.remove_sink(*history_);
    history_writer_.reset();  // writes what is queued, then stops
  }
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
  mailbox_.close();
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

void Server::watch_history() {
  const history::WriterStatus s = history_writer_->status();
  if (s.degraded == history_degraded_) return;
  history_degraded_ = s.degraded;
  if (s.degraded) {
    spdlog::error(
        "history: writes to {} fail ({}); live tracking goes on, {} record(s) wait in memory and "
        "are written when the disk takes them again",
        s.path, s.error, s.records_pending);
  } else {
    spdlog::info("history: writing again ({} lifetime(s) lost while writes failed or over the rate)",
                 s.lifetimes_dropped);
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

}  // namespace ttmem::server
