// ttmemd's connection handling and event dispatch; see server.hpp.
#include "server.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "process_info.hpp"
#include "queries.hpp"

namespace ttmem::server {

using nlohmann::json;

struct Server::Connection {
  int fd = -1;
  std::uint64_t id = 0;
  pid_t pid = 0;
  uid_t uid = 0;
  bool greeted = false;
  proto::Role role = proto::Role::tool;
  std::uint32_t process_slot = 0;  // registry slot; 0 until a tracked process says hello
  std::string name;
  proto::FrameReader reader{proto::kMaxRequestPayload};
  std::vector<std::uint8_t> out;
  std::size_t out_offset = 0;
  bool want_write = false;
  bool closing = false;  // close once `out` is flushed
  bool subscriber = false;
  std::uint64_t dropped_notifications = 0;
  std::uint64_t frames = 0;
  std::uint64_t events = 0;
  std::uint64_t events_at_last_tick = 0;
  double events_per_second = 0;
  std::uint64_t connected_ns = 0;
};

namespace {

std::string errno_text() {
  return std::strerror(errno);
}

std::uint64_t pending(const std::vector<std::uint8_t>& out, std::size_t offset) {
  return out.size() - offset;
}

std::string human_bytes(std::uint64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace

int listen_on_socket(const ServerOptions& options) {
  const std::string& path = options.socket_path;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    throw std::runtime_error(
        fmt::format("socket path '{}' is empty or longer than {} bytes; pick a shorter --socket", path,
                    sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  struct stat st {};
  if (lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      throw std::runtime_error(
          fmt::format("{} exists and is not a socket; remove it or pick another --socket", path));
    }
    const int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const bool live = connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    close(probe);
    if (live) {
      throw std::runtime_error(
          fmt::format("a ttmemd is already listening on {}; stop it first or pick another --socket", path));
    }
    spdlog::info("replacing stale socket file {}", path);
    unlink(path.c_str());
  }
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error("socket: " + errno_text());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    const std::string why = errno_text();
    close(fd);
    throw std::runtime_error(fmt::format("cannot bind {}: {}", path, why));
  }
  if (chmod(path.c_str(), 0660) < 0 ||
      (options.group && chown(path.c_str(), static_cast<uid_t>(-1), *options.group) < 0)) {
    const std::string why = errno_text();
    close(fd);
    unlink(path.c_str());
    throw std::runtime_error(fmt::format("cannot set mode or group of {}: {}", path, why));
  }
  if (listen(fd, 512) < 0) {
    const std::string why = errno_text();
    close(fd);
    throw std::runtime_error("listen: " + why);
  }
  return fd;
}

Server::Server(ServerOptions options) : options_(std::move(options)), registry_(options_.limits) {
  started_ns_ = monotonic_ns();
  listen_fd_ = listen_on_socket(options_);
  loop_.add(listen_fd_, EPOLLIN, [this](std::uint32_t) { accept_clients(); });

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &mask, nullptr);
  signal(SIGPIPE, SIG_IGN);
  signal_fd_ = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  loop_.add(signal_fd_, EPOLLIN, [this](std::uint32_t) {
    signalfd_siginfo info{};
    if (read(signal_fd_, &info, sizeof info) == sizeof info) {
      spdlog::info("received {}, shutting down", strsignal(static_cast<int>(info.ssi_signo)));
    }
    stop();
  });
  loop_.add_timer(1000, [this] { tick(); });
  if (options_.poll_for_deaths) loop_.add_timer(options_.death_poll_ms, [this] { poll_deaths(); });

  registry_.notify_events(options_.verbose);
  registry_.on_event = [this](const AppliedEvent& a) {
    if (options_.verbose) {
      const auto& e = a.event;
      const bool alloc = e.op == proto::EventOp::alloc;
      spdlog::info("pid {} {} {} bytes of {} on device {} (id {}, site {}{})", a.process->pid,
                   alloc ? "allocated" : "freed", e.size, proto::to_string(e.type), e.device, e.id,
                   a.site.empty() ? "-" : a.site,
                   alloc ? "" : fmt::format(", {}", proto::to_string(e.reason)));
    }
    if (subscribers_ > 0) notify(event_json(a));
  };
  registry_.on_leak = [this](const LeakRecord& l) {
    spdlog::warn(
        "leak: pid {} ({}) still held {} bytes of {} on device {} when it closed the device (id {}, kind {}, "
        "site {}, age {:.3f} s{})",
        l.pid, l.process_name, l.size, proto::to_string(l.type), l.device, l.id, proto::to_string(l.kind),
        l.site.empty() ? "-" : l.site, static_cast<double>(l.age_ns) / 1e9,
        l.swept_by_close ? "" : "; the close sequence never released it");
    if (subscribers_ > 0) {
      json j = leak_json(l);
      j["event"] = "leak";
      j["time_ns"] = realtime_ns();
      notify(j);
    }
  };
  spdlog::info("ttmemd {} listening on {} (protocol {}, pid {})", proto::version_string(kServerVersion),
               options_.socket_path, proto::kProtocolVersion, getpid());
}

Server::~Server() {
  for (auto& [id, c] : connections_) close(c->fd);
  for (auto& [slot, w] : watches_) {
    if (w.pidfd >= 0) close(w.pidfd);
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    unlink(options_.socket_path.c_str());
  }
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

void Server::accept_clients() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) spdlog::warn("accept: {}", errno_text());
      return;
    }
    ucred cred{};
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
      spdlog::warn("SO_PEERCRED: {}; refusing the connection", errno_text());
      close(fd);
      continue;
    }
    if (connections_.size() >= options_.max_connections) {
      ++refused_connections_;
      std::vector<std::uint8_t> bytes;
      proto::encode(bytes,
                    proto::ErrorMessage{proto::ErrorCode::limit_exceeded,
                                        fmt::format("ttmemd serves at most {} connections; try again later",
                                                    options_.max_connections)});
      [[maybe_unused]] auto n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
      close(fd);
      if (refused_connections_ == 1 || refused_connections_ % 1000 == 0) {
        spdlog::warn("connection limit ({}) reached; refused {} so far (last from pid {})",
                     options_.max_connections, refused_connections_, cred.pid);
      }
      continue;
    }
    add_connection(fd, cred.pid, cred.uid);
  }
}

std::uint64_t Server::add_connection(int fd, pid_t pid, uid_t uid) {
  auto c = std::make_unique<Connection>();
  c->fd = fd;
  c->id = next_connection_id_++;
  c->pid = pid;
  c->uid = uid;
  c->connected_ns = monotonic_ns();
  const std::uint64_t id = c->id;
  connections_.emplace(id, std::move(c));
  loop_.add(fd, EPOLLIN | EPOLLRDHUP, [this, id](std::uint32_t events) {
    auto it = connections_.find(id);
    if (it != connections_.end()) on_connection_event(*it->second, events);
  });
  return id;
}

void Server::on_connection_event(Connection& c, std::uint32_t events) {
  const std::uint64_t id = c.id;
  if (events & EPOLLOUT) flush_output(c);
  if (!connections_.contains(id)) return;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) read_from(c);
}

void Server::read_from(Connection& c) {
  const std::uint64_t id = c.id;
  // Bounded work per wake-up so one busy client cannot starve the others.
  for (std::size_t budget = 0; budget < (4u << 20);) {
    // Read straight into the frame reader: no copy between the socket and the decoder.
    const auto space = c.reader.prepare(256 * 1024);
    const ssize_t n = ::read(c.fd, space.data(), space.size());
    if (n == 0) {
      close_connection(id);
      return;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      close_connection(id);
      return;
    }
    budget += static_cast<std::size_t>(n);
    if (c.closing) continue;  // discard input from a connection we are closing
    c.reader.commit(static_cast<std::size_t>(n));
    if (!process_frames(c)) return;
  }
}

bool Server::process_frames(Connection& c) {
  const std::uint64_t id = c.id;
  for (;;) {
    auto next = c.reader.next();
    if (std::holds_alternative<std::nullopt_t>(next)) return true;
    if (auto* err = std::get_if<proto::DecodeError>(&next)) {
      fail(c, err->code, err->message);  // may close (and free) the connection
      return false;
    }
    handle_frame(c, std::get<proto::Frame>(next));
    if (!connections_.contains(id) || c.closing) return false;
  }
}

void Server::feed(std::span<const std::uint8_t> bytes) {
  // A connection from this very process over a socket pair, given `bytes` as if read from it.
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) return;
  const std::uint64_t id = add_connection(pair[0], getpid(), getuid());
  auto it = connections_.find(id);
  if (it != connections_.end()) {
    it->second->reader.append(bytes);
    process_frames(*it->second);
  }
  close_connection(id);
  close(pair[1]);  // drops whatever the server answered
}

ProcessState* Server::process_of(Connection& c) {
  if (c.process_slot == 0) return nullptr;
  auto* p = const_cast<ProcessState*>(registry_.process_by_slot(c.process_slot));
  return p;
}

void Server::fail(Connection& c, proto::ErrorCode code, const std::string& message) {
  ++decode_errors_;
  spdlog::warn("closing connection {} of pid {} ({}): {}: {}", c.id, c.pid, c.name.empty() ? "?" : c.name,
               proto::to_string(code), message);
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::ErrorMessage{code, message});
  send(c, bytes);
  c.closing = true;
  if (pending(c.out, c.out_offset) == 0) close_connection(c.id);
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
  if (frame.type == MessageType::query) {
    handle_query(c, frame);
    return;
  }
  if (frame.type == MessageType::barrier) {
    auto m = proto::decode_barrier(frame.payload);
    if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
    std::vector<std::uint8_t> bytes;
    proto::encode(bytes, std::get<proto::Barrier>(m), MessageType::barrier_ack);
    send(c, bytes);
    return;
  }
  ProcessState* p = process_of(c);
  if (!p) {
    fail(c, proto::ErrorCode::unexpected_message,
         fmt::format("{} is only accepted from a tracked process (this connection said hello as a tool, or "
                     "its process "
                     "is gone)",
                     proto::to_string(frame.type)));
    return;
  }
  switch (frame.type) {
    case MessageType::events: {
      // Validate the whole batch first: a bad one changes nothing.
      if (auto err = proto::validate_events(frame.payload)) return fail(c, err->code, err->message);
      registry_.set_batch_time(realtime_ns());
      const std::size_t count = (frame.payload.size() - 4) / proto::kEventRecordSize;
      for (std::size_t i = 0; i < count; ++i) registry_.event(*p, proto::event_at(frame.payload, i));
      c.events += count;
      return;
    }
    case MessageType::device_open: {
      auto m = proto::decode_device_open(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      const auto& d = std::get<proto::DeviceOpen>(m);
      if (options_.verbose)
        spdlog::info("pid {} ({}) opened device {} ({})", p->pid, p->name, d.device, arch_name(d.arch));
      registry_.device_open(*p, d);
      return;
    }
    case MessageType::device_close: {
      auto m = proto::decode_device_close(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      const auto& d = std::get<proto::DeviceClose>(m);
      if (options_.verbose) {
        spdlog::info("pid {} ({}) {} closing device {}", p->pid, p->name,
                     d.phase == proto::ClosePhase::begin ? "began" : "finished", d.device);
      }
      registry_.device_close(*p, d);
      return;
    }
    case MessageType::sites: {
      auto m = proto::decode_sites(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      registry_.sites(*p, std::get<std::vector<proto::Site>>(m));
      return;
    }
    case MessageType::snapshot_begin: {
      auto m = proto::decode_snapshot_begin(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      registry_.snapshot_begin(*p, std::get<proto::SnapshotBegin>(m));
      return;
    }
    case MessageType::snapshot_end: {
      auto m = proto::decode_snapshot_end(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      const auto& s = std::get<proto::SnapshotEnd>(m);
      registry_.snapshot_end(*p, s);
      spdlog::info("pid {} ({}) resynchronised: {} live allocations", p->pid, p->name, s.num_allocations);
      return;
    }
    case MessageType::client_stats: {
      auto m = proto::decode_client_stats(frame.payload);
      if (!proto::ok(m)) return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(m).message);
      p->client_stats = std::get<proto::ClientStats>(m);
      return;
    }
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
  const auto info = read_process_info(c.pid);
  c.greeted = true;
  c.role = hello.role;
  c.name = info ? info->name : hello.process_name;
  if (hello.role == proto::Role::tracked_process) {
    ProcessState& p = registry_.process(c.pid, info ? info->start_time : 0, c.uid, c.name);
    c.process_slot = p.slot;
    if (hello.claimed_pid != 0 && hello.claimed_pid != static_cast<std::uint32_t>(c.pid)) {
      ++p.anomalies.pid_mismatch;
      spdlog::warn(
          "connection {} claims pid {} but its peer credentials say pid {} ({}); attributing it to pid {}",
          c.id, hello.claimed_pid, c.pid, c.name, c.pid);
    }
    watch_process(p);
    spdlog::info("pid {} ({}) connected (client {}, connection {})", c.pid, c.name,
                 proto::version_string(hello.client_version), c.id);
  }
  proto::HelloAck ack;
  ack.server_version = kServerVersion;
  ack.server_pid = static_cast<std::uint32_t>(getpid());
  ack.peer_pid = static_cast<std::uint32_t>(c.pid);
  ack.connection_id = c.id;
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, ack);
  send(c, bytes);
}

void Server::handle_query(Connection& c, const proto::Frame& frame) {
  auto decoded = proto::decode_query(frame.payload);
  if (!proto::ok(decoded))
    return fail(c, proto::ErrorCode::malformed, std::get<proto::DecodeError>(decoded).message);
  const proto::Query& q = std::get<proto::Query>(decoded);
  proto::QueryReply reply;
  reply.query_id = q.query_id;
  json answer;
  try {
    const json request = json::parse(q.json);
    if (!request.is_object() || !request.contains("type") || !request["type"].is_string()) {
      throw std::invalid_argument("a query is a JSON object with a string field 'type'");
    }
    const std::string type = request["type"];
    if (type == "stats") {
      answer = stats_json(registry_);
    } else if (type == "buffers") {
      answer = buffers_json(registry_, parse_buffer_filter(request));
    } else if (type == "leaks") {
      answer = leaks_json(registry_);
    } else if (type == "devices") {
      answer = devices_json(registry_);
    } else if (type == "events") {
      const auto limit = request.value("limit", 100);
      if (limit < 0) throw std::invalid_argument("field 'limit' must not be negative");
      answer = history_json(registry_, static_cast<std::size_t>(limit));
    } else if (type == "info") {
      answer = info_json();
    } else if (type == "subscribe") {
      if (!c.subscriber) ++subscribers_;
      c.subscriber = true;
      registry_.notify_events(true);
      answer = {{"subscribed", true}};
    } else {
      throw std::invalid_argument("unknown query type '" + type +
                                  "' (stats, buffers, leaks, devices, events, info, subscribe)");
    }
  } catch (const std::exception& e) {
    reply.ok = 0;
    answer = {{"error", e.what()}};
  }
  reply.json = to_wire_text(answer);
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, reply);
  send(c, bytes);
}

void Server::send(Connection& c, const std::vector<std::uint8_t>& bytes) {
  c.out.insert(c.out.end(), bytes.begin(), bytes.end());
  flush_output(c);
  if (connections_.contains(c.id) && pending(c.out, c.out_offset) > options_.max_pending_output) {
    spdlog::warn("connection {} of pid {} does not read its replies ({} pending); closing it", c.id, c.pid,
                 human_bytes(pending(c.out, c.out_offset)));
    close_connection(c.id);
  }
}

void Server::flush_output(Connection& c) {
  while (c.out_offset < c.out.size()) {
    const ssize_t n =
        ::send(c.fd, c.out.data() + c.out_offset, c.out.size() - c.out_offset, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      close_connection(c.id);
      return;
    }
    c.out_offset += static_cast<std::size_t>(n);
  }
  if (c.out_offset == c.out.size()) {
    c.out.clear();
    c.out_offset = 0;
    if (c.subscriber && c.dropped_notifications > 0) {
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
  const bool want = c.out_offset < c.out.size();
  if (want != c.want_write) {
    c.want_write = want;
    loop_.modify(c.fd, EPOLLIN | EPOLLRDHUP | (want ? EPOLLOUT : 0u));
  }
}

void Server::close_connection(std::uint64_t id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Connection& c = *it->second;
  if (c.subscriber) --subscribers_;
  registry_.notify_events(options_.verbose || subscribers_ > 0);
  if (c.role == proto::Role::tracked_process && c.greeted) {
    spdlog::info("pid {} ({}) disconnected (connection {}, {} events)", c.pid, c.name, c.id, c.events);
  }
  loop_.remove(c.fd);
  close(c.fd);
  connections_.erase(it);
}

void Server::watch_process(const ProcessState& p) {
  if (watches_.contains(p.slot)) return;
  Watch w;
  w.pid = p.pid;
  w.start_time = p.start_time;
  if (!options_.poll_for_deaths) w.pidfd = open_pidfd(p.pid);
  if (w.pidfd >= 0) {
    loop_.add(w.pidfd, EPOLLIN, [this, slot = p.slot](std::uint32_t) { on_process_exit(slot); });
  } else if (!options_.poll_for_deaths) {
    // pidfd_open is missing (kernel < 5.3) or refused: fall back to polling for this and later processes.
    spdlog::warn("pidfd_open failed for pid {} ({}); watching process deaths by polling every {} ms", p.pid,
                 errno_text(), options_.death_poll_ms);
    options_.poll_for_deaths = true;
    loop_.add_timer(options_.death_poll_ms, [this] { poll_deaths(); });
  }
  watches_[p.slot] = w;
}

void Server::poll_deaths() {
  std::vector<std::uint32_t> dead;
  for (const auto& [slot, w] : watches_) {
    if (w.pidfd >= 0) continue;
    const auto info = read_process_info(w.pid);
    // Gone, a zombie being reaped, or a new process under the same pid.
    if (!info || (w.start_time != 0 && info->start_time != w.start_time)) dead.push_back(slot);
  }
  for (std::uint32_t slot : dead) on_process_exit(slot);
}

void Server::on_process_exit(std::uint32_t slot) {
  auto w = watches_.find(slot);
  if (w != watches_.end()) {
    if (w->second.pidfd >= 0) {
      loop_.remove(w->second.pidfd);
      close(w->second.pidfd);
    }
    watches_.erase(w);
  }
  // Apply whatever the process managed to send before it died, then reclaim.
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->process_slot == slot) ids.push_back(id);
  }
  for (std::uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it != connections_.end()) read_from(*it->second);
  }
  auto* p = const_cast<ProcessState*>(registry_.process_by_slot(slot));
  if (!p) return;
  const pid_t pid = p->pid;
  const OrphanRecord orphan = registry_.process_died(*p);
  for (std::uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it != connections_.end()) it->second->process_slot = 0;
  }
  if (orphan.held.empty()) {
    spdlog::info("pid {} ({}) exited holding no device memory", pid, orphan.process_name);
    return;
  }
  for (const auto& line : orphan.lines()) spdlog::warn("{}", line);
  if (subscribers_ > 0) {
    json j = orphan_json(orphan);
    j["event"] = "orphan";
    notify(j);
  }
}

void Server::notify(const json& j) {
  const std::string text = to_wire_text(j);
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::EventNotify{text});
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->subscriber) ids.push_back(id);
  }
  for (std::uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& c = *it->second;
    if (pending(c.out, c.out_offset) + bytes.size() > options_.max_subscriber_backlog) {
      ++c.dropped_notifications;  // a slow subscriber loses notifications (and is told how many), never the
                                  // server
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
    for (std::size_t s = 0; s < kNumSlots; ++s) {
      if (d.usage[s].buffers == 0) continue;
      line += fmt::format("{}{} {} in {} buffers", line.empty() ? "" : ", ", to_string(static_cast<Slot>(s)),
                          human_bytes(d.usage[s].bytes), d.usage[s].buffers);
    }
    spdlog::info("device {}: {}", id, line.empty() ? "nothing allocated" : line);
  }
  spdlog::info("active allocations: {}, processes: {}, connections: {}, events/s: {:.0f}",
               registry_.allocations().size(), registry_.processes().size(), connections_.size(),
               events_per_second_);
}

json Server::info_json() const {
  const Anomalies a = registry_.anomalies();
  json clients = json::array();
  for (const auto& [id, c] : connections_) {
    json row = {{"connection", c->id},
                {"pid", c->pid},
                {"uid", c->uid},
                {"name", c->name},
                {"role", c->role == proto::Role::tool ? "tool" : "tracked"},
                {"events", c->events},
                {"events_per_second", c->events_per_second},
                {"subscriber", c->subscriber},
                {"connected_s", static_cast<double>(monotonic_ns() - c->connected_ns) / 1e9}};
    if (const ProcessState* p = registry_.process_by_slot(c->process_slot)) {
      const auto& s = p->client_stats;
      row["client"] = {{"events", s.events},
                       {"bytes", s.bytes},
                       {"batches", s.batches},
                       {"stall_ns", s.stall_ns},
                       {"reconnects", s.reconnects},
                       {"snapshots", s.snapshots},
                       {"superseded_events", s.superseded_events}};
    }
    clients.push_back(row);
  }
  return {{"version", proto::version_string(kServerVersion)},
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
          {"death_watch", options_.poll_for_deaths ? "polling" : "pidfd"},
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
            {"refused_connections", refused_connections_}}},
          {"limits",
           {{"max_connections", options_.max_connections},
            {"max_frame_bytes", proto::kMaxRequestPayload},
            {"max_live_allocations_per_process", options_.limits.max_live_allocations_per_process},
            {"max_sites_per_process", options_.limits.max_sites_per_process},
            {"max_site_bytes_per_process", options_.limits.max_site_bytes_per_process},
            {"max_leak_records", options_.limits.max_leak_records},
            {"max_orphan_records", options_.limits.max_orphan_records},
            {"max_pending_output_bytes", options_.max_pending_output},
            {"max_subscriber_backlog_bytes", options_.max_subscriber_backlog},
            {"max_device_id", options_.limits.max_device_id}}}};
}

}  // namespace ttmem::server
