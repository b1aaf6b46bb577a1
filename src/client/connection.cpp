// libttmem's connection to ttmemd: connect and handshake (refusing a server of an untrusted user,
// a version it cannot speak), the resync snapshot on every connect, writing and reading frames.
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "client_impl.hpp"
#include "ttmem/socket_path.hpp"

namespace ttmem::client {

namespace {

std::string own_process_name() {
  char buf[64] = {};
  FILE* f = std::fopen("/proc/self/comm", "r");
  if (f) {
    if (std::fgets(buf, sizeof buf, f)) buf[std::strcspn(buf, "\n")] = 0;
    std::fclose(f);
  }
  return buf;
}

}  // namespace

bool Client::Impl::send_all() {
  std::size_t sent = 0;
  std::uint64_t last_progress = monotonic_ns();
  while (sent < out.size()) {
    const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      last_progress = monotonic_ns();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The server is not keeping up: wait (reporting threads feel it as backpressure), but not forever.
      if (monotonic_ns() - last_progress >
          static_cast<std::uint64_t>(options.server_timeout.count()) * 1'000'000ull) {
        disconnect("the allocation server stopped reading");
        return false;
      }
      pollfd p{fd, POLLOUT, 0};
      ::poll(&p, 1, 50);
      read_replies(0);
      if (!connected) return false;
      continue;
    }
    disconnect(std::string("lost the allocation server: ") + std::strerror(errno));
    return false;
  }
  bytes.fetch_add(out.size(), std::memory_order_relaxed);
  out.clear();
  return true;
}

void Client::Impl::read_replies(int wait_ms) {
  pollfd p{fd, POLLIN, 0};
  if (::poll(&p, 1, wait_ms) <= 0) return;
  std::uint8_t buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n == 0) return disconnect("the allocation server closed the connection");
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      return disconnect(std::string("lost the allocation server: ") + std::strerror(errno));
    }
    reader.append({buf, static_cast<std::size_t>(n)});
  }
  for (;;) {
    auto next = reader.next();
    if (std::holds_alternative<std::nullopt_t>(next)) break;
    if (auto* e = std::get_if<proto::DecodeError>(&next))
      return disconnect("bad reply from the server: " + e->message);
    const proto::Frame& f = std::get<proto::Frame>(next);
    if (f.type == proto::MessageType::barrier_ack) {
      auto ack = proto::decode_barrier(f.payload);
      if (proto::ok(ack)) {
        std::lock_guard lock(flush_mutex);
        flush_acked = std::max(flush_acked, std::get<proto::Barrier>(ack).token);
        flush_cv.notify_all();
      }
    } else if (f.type == proto::MessageType::error) {
      auto err = proto::decode_error(f.payload);
      const std::string text = proto::ok(err) ? std::get<proto::ErrorMessage>(err).text : "unreadable error";
      std::fprintf(stderr, "ttmem: the allocation server refused this client: %s\n", text.c_str());
      if (proto::ok(err) && std::get<proto::ErrorMessage>(err).code == proto::ErrorCode::version_mismatch) {
        permanent_failure = true;
      }
      return disconnect("");
    }
  }
}

void Client::Impl::disconnect(const std::string& why) {
  if (!connected && fd < 0) return;
  client.active_.store(false);
  if (fd >= 0) ::close(fd);
  fd = -1;
  connected = false;
  out.clear();
  reader = proto::FrameReader(proto::kMaxReplyPayload);
  discard_all();
  {
    std::lock_guard lock(flush_mutex);
    flush_failed_below = flush_requested;
    flush_cv.notify_all();
  }
  if (!why.empty()) warn_once(why + "; tracking pauses and resumes (with a full resync) when it is back");
}

bool Client::Impl::handshake() {
  fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || options.socket_path.size() >= sizeof addr.sun_path) {
    if (fd >= 0) ::close(fd);
    fd = -1;
    warn_once("socket path '" + options.socket_path + "' is not usable; allocation tracking is off");
    permanent_failure = true;
    return false;
  }
  std::memcpy(addr.sun_path, options.socket_path.c_str(), options.socket_path.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    const int err = errno;
    ::close(fd);
    fd = -1;
    warn_once(
        "no allocation server at " + options.socket_path + " (" + std::strerror(err) +
        "); allocation tracking is off until one starts (start ttmemd, or set TTMEM_TRACKING=0 to silence "
        "this)");
    return false;
  }
  ucred server{};
  socklen_t len = sizeof server;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &server, &len) == 0 && !trusted_server_uid(server.uid)) {
    // Someone else listens on the path: tell nothing of this process's allocations to a squatter.
    ::close(fd);
    fd = -1;
    std::fprintf(stderr, "ttmem: %s\n", untrusted_server_message(options.socket_path, server.uid).c_str());
    permanent_failure = true;
    return false;
  }
  proto::Hello hello;
  hello.role = proto::Role::tracked_process;
  hello.client_version = kClientVersion;
  hello.claimed_pid = static_cast<std::uint32_t>(getpid());
  hello.process_name = options.process_name.empty() ? own_process_name() : options.process_name;
  out.clear();
  proto::encode(out, hello);
  connected = true;  // for send_all / read_replies; not yet active
  if (!send_all()) return false;
  const std::uint64_t deadline = monotonic_ns() + 5'000'000'000ull;
  while (connected && monotonic_ns() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    std::uint8_t buf[512];
    const ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      disconnect("the allocation server closed the connection during the handshake");
      return false;
    }
    reader.append({buf, static_cast<std::size_t>(n)});
    auto next = reader.next();
    if (std::holds_alternative<std::nullopt_t>(next)) continue;
    if (auto* e = std::get_if<proto::DecodeError>(&next)) {
      disconnect("bad handshake reply: " + e->message);
      return false;
    }
    const proto::Frame& f = std::get<proto::Frame>(next);
    if (f.type == proto::MessageType::error) {
      auto err = proto::decode_error(f.payload);
      const bool version =
          proto::ok(err) && std::get<proto::ErrorMessage>(err).code == proto::ErrorCode::version_mismatch;
      std::fprintf(stderr, "ttmem: the allocation server refused this client: %s\n",
                   proto::ok(err) ? std::get<proto::ErrorMessage>(err).text.c_str() : "unreadable error");
      permanent_failure = version;
      disconnect("");
      return false;
    }
    auto ack = proto::decode_hello_ack(f.payload);
    if (f.type != proto::MessageType::hello_ack || !proto::ok(ack)) {
      const std::string why =
          proto::ok(ack) ? "unexpected reply to HELLO" : std::get<proto::DecodeError>(ack).message;
      std::fprintf(stderr, "ttmem: %s\n", why.c_str());
      permanent_failure =
          !proto::ok(ack) && std::get<proto::DecodeError>(ack).code == proto::ErrorCode::version_mismatch;
      disconnect("");
      return false;
    }
    client.peer_pid_.store(std::get<proto::HelloAck>(ack).peer_pid);
    return true;
  }
  disconnect("the allocation server did not answer HELLO");
  return false;
}

void Client::Impl::resynchronise() {
  out.clear();
  snap_devices.clear();
  snap_allocs.clear();
  bool snapshot = false;
  {
    std::lock_guard lock(resync_mutex);
    if (resync) {
      SnapshotWriter writer(client);
      resync(writer);
      if (!writer.begun_) writer.begin();
      snapshot = true;
    }
  }
  if (!snapshot) {
    discard_all();
    client.active_.store(true);
  }
  {
    std::lock_guard lock(sites_mutex);
    pending_sites.clear();
    if (!all_sites.empty()) proto::encode(out, std::span<const proto::Site>(all_sites));
  }
  if (snapshot) {
    const std::uint64_t sid = ++snapshot_seq;
    proto::encode(out, proto::SnapshotBegin{sid});
    for (const auto& d : snap_devices) proto::encode(out, d);
    const std::uint64_t count = snap_allocs.size();
    batch = std::move(snap_allocs);
    emit_batch();
    proto::encode(out, proto::SnapshotEnd{sid, count});
    snapshots.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace ttmem::client
