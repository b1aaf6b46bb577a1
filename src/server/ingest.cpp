// ttmemd's frames: HELLO and identity, tracked processes' messages applied to the model in order, the
// errors that end a connection. Part of Server (server.hpp).
#include <poll.h>
#include <spdlog/spdlog.h>

#include "connection.hpp"
#include "queries.hpp"

namespace ttmem::server {

namespace {

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
    case MessageType::alloc_failure:
      return on_decoded(proto::decode_alloc_failure(frame.payload), failing,
                        [&](const proto::AllocFailure& m) { registry_.alloc_failure(p, m); });
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
  if (!c.peer.command.empty()) p.command = c.peer.command;
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

}  // namespace ttmem::server
