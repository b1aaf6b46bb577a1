// libttmem implementation: thread rings, the sender thread, connection, resync; see ttmem/client.hpp.
#include "ttmem/client.hpp"

#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ring.hpp"
#include "ttmem/socket_path.hpp"
#include "ttmem/units.hpp"

namespace ttmem::client {

namespace {

constexpr std::uint32_t kClientVersion = proto::pack_version(0, 1, 0);

std::uint64_t now_ns() {
  return monotonic_ns();
}

std::atomic<std::uint64_t> g_next_client_id{1};

/// Which ring this thread writes for which client. The ring is shared with the client's list, so either
/// may go first at exit.
struct TlsBinding {
  std::uint64_t client_id = 0;
  std::shared_ptr<Ring> ring;
  ~TlsBinding() {
    if (ring) ring->abandoned.store(true, std::memory_order_release);
  }
};
// initial-exec: a direct %fs access on the hot path instead of a __tls_get_addr call from this shared
// library.
thread_local TlsBinding t_binding __attribute__((tls_model("initial-exec")));

bool env_off(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  const std::string s(v);
  return s == "0" || s == "false" || s == "off" || s == "no";
}

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

Options Options::from_environment() {
  Options o;
  o.socket_path = client_socket_path();
  o.enabled = !env_off("TTMEM_TRACKING") && !env_off("TT_ALLOC_TRACKING_ENABLED");
  if (const char* n = std::getenv("TTMEM_RING_EVENTS")) {
    const unsigned long v = std::strtoul(n, nullptr, 10);
    if (v >= 64 && v <= (1u << 24) && (v & (v - 1)) == 0) o.ring_events = v;
  }
  if (const char* n = std::getenv("TTMEM_MAX_STALL_MS")) {
    char* end = nullptr;
    const unsigned long v = std::strtoul(n, &end, 10);
    if (end != n && *end == '\0' && v <= 3'600'000) o.max_stall = std::chrono::milliseconds(v);
  }
  return o;
}

struct Client::Impl {
  explicit Impl(Client& c, Options o) : client(c), options(std::move(o)), id(g_next_client_id.fetch_add(1)) {}

  Client& client;
  Options options;
  const std::uint64_t id;

  std::mutex rings_mutex;
  std::vector<std::shared_ptr<Ring>> rings;

  std::mutex sites_mutex;
  std::unordered_map<std::string, SiteId> site_ids;
  std::vector<proto::Site> all_sites;
  std::vector<proto::Site> pending_sites;

  std::mutex control_mutex;
  std::map<std::uint32_t, std::vector<std::uint8_t>> control_frames;  // fence number -> encoded frame

  std::mutex resync_mutex;
  ResyncCallback resync;

  std::thread sender;
  std::mutex wake_mutex;
  std::condition_variable wake_cv;
  bool wake = false;
  // Producers whose ring is full sleep here; the sender wakes them after it has drained.
  std::mutex space_mutex;
  std::condition_variable space_cv;
  std::atomic<int> sleepers{0};
  std::atomic<bool> stopping{false};
  bool forked = false;

  std::mutex flush_mutex;
  std::condition_variable flush_cv;
  std::uint64_t flush_requested = 0;
  std::uint64_t flush_acked = 0;
  std::uint64_t flush_failed_below = 0;  // tokens up to here failed (disconnect)
  std::uint64_t barrier_sent = 0;

  // Owned by the sender thread.
  int fd = -1;
  bool connected = false;
  bool permanent_failure = false;
  bool warned = false;
  std::uint64_t connections = 0;
  std::uint64_t snapshot_seq = 0;
  std::uint64_t last_stats_ns = 0;
  std::vector<std::uint8_t> out;
  std::vector<proto::EventRecord> batch;      // snapshot records
  proto::EventFrameWriter* frames = nullptr;  // while draining: the frame being written
  proto::FrameReader reader{proto::kMaxReplyPayload};
  std::vector<proto::DeviceOpen> snap_devices;
  std::vector<proto::EventRecord> snap_allocs;

  std::mutex path_mutex;
  std::string requested_path;  // set by set_socket_path, taken by the sender
  std::uint64_t requested_generation = 0;
  std::uint64_t path_generation = 0;       // generation of options.socket_path (sender thread)
  std::uint64_t attempted_generation = 0;  // generation of the latest finished connection attempt

  std::mutex first_mutex;
  std::condition_variable first_cv;
  bool first_attempt_done = false;

  void first_attempt_over() {
    std::lock_guard lock(first_mutex);
    attempted_generation = path_generation;
    first_attempt_done = true;
    first_cv.notify_all();
  }

  /// Applies a pending set_socket_path: the next attempt goes to the new server, right away.
  bool take_new_path() {
    std::lock_guard lock(path_mutex);
    if (requested_path.empty()) return false;
    options.socket_path = std::move(requested_path);
    requested_path.clear();
    {
      std::lock_guard first(first_mutex);
      path_generation = requested_generation;
    }
    options.warn_without_server = false;  // whoever points us somewhere knows whether a server is there
    return true;
  }

  std::atomic<std::uint64_t> events{0}, bytes{0}, batches{0}, reconnects{0}, snapshots{0}, superseded{0},
      flushes{0}, gaps{0};

  void notify_sender() {
    {
      std::lock_guard lock(wake_mutex);
      wake = true;
    }
    wake_cv.notify_one();
  }

  void warn_once(const std::string& text) {
    if (warned || !options.warn_without_server) return;
    warned = true;
    std::fprintf(stderr, "ttmem: %s\n", text.c_str());
  }

  // ---- draining ------------------------------------------------------------------------------------

  void emit_batch() {
    for (std::size_t i = 0; i < batch.size(); i += proto::kSendEventsPerFrame) {
      const std::size_t n = std::min(proto::kSendEventsPerFrame, batch.size() - i);
      proto::encode(out, std::span<const proto::EventRecord>(batch.data() + i, n));
      batches.fetch_add(1, std::memory_order_relaxed);
    }
    events.fetch_add(batch.size(), std::memory_order_relaxed);
    batch.clear();
  }

  /// Ends the EVENTS frame being written straight from the rings (drain_all counts them at the end).
  void close_frame() { frames->close(); }

  /// Moves ring i's records with epoch < limit into the output, honouring fences: before fence F goes
  /// out, every record of every ring written before F (epoch < F) goes out first.
  void drain_ring(std::size_t i, std::uint32_t limit) {
    Ring& r = *rings[i];
    std::uint64_t tail = r.tail.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint64_t head = r.head.load(std::memory_order_acquire);
      if (tail == head) break;
      const Slot& s = r.slots[tail & r.mask];
      if (static_cast<std::int32_t>(s.epoch - limit) >= 0) break;  // at or after `limit`, wrap-safe
      if (s.fence != 0) {
        for (std::size_t j = 0; j < rings.size(); ++j) {
          if (j != i) drain_ring(j, s.fence);
        }
        close_frame();
        std::lock_guard lock(control_mutex);
        auto it = control_frames.find(s.fence);
        if (it != control_frames.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          control_frames.erase(it);
          events.fetch_add(1, std::memory_order_relaxed);
          batches.fetch_add(1, std::memory_order_relaxed);
        }
      } else {
        frames->add(s.record);
      }
      ++tail;
      r.tail.store(tail, std::memory_order_release);
    }
  }

  void wake_sleepers() {
    if (sleepers.load(std::memory_order_acquire) == 0) return;
    std::lock_guard lock(space_mutex);
    space_cv.notify_all();
  }

  void drain_all() {
    std::lock_guard lock(rings_mutex);
    proto::EventFrameWriter writer(out);
    frames = &writer;
    // Open a new epoch and send only what was written before it. A record written after another thread's
    // record (a free after the allocation it received) carries an epoch at least as large, so when the
    // later one is drained the earlier one is too: the server never sees a free before its allocation.
    // (Producers load the epoch with acquire and publish with release; with this RMW that orders them on
    // x86-TSO and on ARMv8's RCsc acquire/release.)
    const std::uint32_t limit = client.epoch_.fetch_add(1, std::memory_order_seq_cst) + 1;
    for (std::size_t i = 0; i < rings.size(); ++i) drain_ring(i, limit);
    wake_sleepers();
    close_frame();
    events.fetch_add(writer.records(), std::memory_order_relaxed);
    batches.fetch_add(writer.frames(), std::memory_order_relaxed);
    frames = nullptr;
    std::erase_if(rings, [](const std::shared_ptr<Ring>& r) {
      return r->abandoned.load(std::memory_order_acquire) &&
             r->tail.load(std::memory_order_relaxed) == r->head.load(std::memory_order_acquire);
    });
  }

  /// Drops everything recorded so far (the server is away, or a snapshot is about to cover it).
  void discard_all() {
    std::lock_guard lock(rings_mutex);
    for (auto& r : rings) {
      const std::uint64_t head = r->head.load(std::memory_order_acquire);
      const std::uint64_t tail = r->tail.load(std::memory_order_relaxed);
      superseded.fetch_add(head - tail, std::memory_order_relaxed);
      r->tail.store(head, std::memory_order_release);
    }
    wake_sleepers();
    std::lock_guard control(control_mutex);
    control_frames.clear();
  }

  // ---- connection ----------------------------------------------------------------------------------

  bool send_all() {
    std::size_t sent = 0;
    std::uint64_t last_progress = now_ns();
    while (sent < out.size()) {
      const ssize_t n = ::send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        last_progress = now_ns();
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        // The server is not keeping up: wait (reporting threads feel it as backpressure), but not forever.
        if (now_ns() - last_progress >
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

  /// Reads what the server sent; waits up to wait_ms for readability first.
  void read_replies(int wait_ms) {
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
        const std::string text =
            proto::ok(err) ? std::get<proto::ErrorMessage>(err).text : "unreadable error";
        std::fprintf(stderr, "ttmem: the allocation server refused this client: %s\n", text.c_str());
        if (proto::ok(err) && std::get<proto::ErrorMessage>(err).code == proto::ErrorCode::version_mismatch) {
          permanent_failure = true;
        }
        return disconnect("");
      }
    }
  }

  void disconnect(const std::string& why) {
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

  bool handshake() {
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
    const std::uint64_t deadline = now_ns() + 5'000'000'000ull;
    while (connected && now_ns() < deadline) {
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

  void resynchronise() {
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

  void cycle() {
    // The barrier covers what was reported before flush() asked for it: read the request before draining,
    // so that every such report has an epoch below this drain's limit. (Read after, a report made while
    // the drain ran and flushed at once would go out behind its own barrier.)
    std::uint64_t token = 0;
    {
      std::lock_guard lock(flush_mutex);
      if (flush_requested > barrier_sent) token = barrier_sent = flush_requested;
    }
    drain_all();
    std::vector<std::uint8_t> body;
    body.swap(out);
    {
      std::lock_guard lock(sites_mutex);  // after draining: every site an event uses is pending by now
      if (!pending_sites.empty()) proto::encode(out, std::span<const proto::Site>(pending_sites));
      pending_sites.clear();
    }
    out.insert(out.end(), body.begin(), body.end());
    const std::uint64_t now = now_ns();
    // Every second, and with every flush so a barrier also brings the server's view of our costs up to date.
    if (token || now - last_stats_ns > 1'000'000'000ull) {
      last_stats_ns = now;
      const Counters c = client.counters();
      proto::encode(out, static_cast<const proto::ClientStats&>(c));
    }
    if (token) proto::encode(out, proto::Barrier{token});
    if (!out.empty() && !send_all()) return;
    if (token) {
      const std::uint64_t deadline =
          now_ns() + static_cast<std::uint64_t>(options.server_timeout.count()) * 1'000'000ull;
      for (;;) {
        {
          std::lock_guard lock(flush_mutex);
          if (flush_acked >= token) break;
        }
        if (!connected) return;
        if (now_ns() > deadline) return disconnect("the allocation server did not acknowledge a flush");
        read_replies(20);
      }
    } else {
      read_replies(0);
    }
  }

  void run() {
    std::chrono::milliseconds backoff(20);
    while (!stopping.load()) {
      client.coarse_now_ns_.store(now_ns(), std::memory_order_relaxed);
      if (take_new_path()) {
        if (connected) cycle();  // what the old server is owed, then leave it
        disconnect("");
        permanent_failure = false;
        backoff = std::chrono::milliseconds(20);
      }
      if (!connected) {
        if (!permanent_failure && handshake()) {
          if (++connections > 1) reconnects.fetch_add(1);
          if (client.overflowed_.exchange(false)) gaps.fetch_add(1, std::memory_order_relaxed);
          resynchronise();
          const bool sent = connected && send_all();
          first_attempt_over();
          if (!sent) continue;
          backoff = std::chrono::milliseconds(20);
          continue;
        }
        first_attempt_over();
        std::unique_lock lock(wake_mutex);
        wake_cv.wait_for(lock, permanent_failure ? std::chrono::milliseconds(1000) : backoff,
                         [&] { return stopping.load() || wake; });
        wake = false;
        backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
        continue;
      }
      {
        std::unique_lock lock(wake_mutex);
        wake_cv.wait_for(lock, options.send_interval, [&] { return wake || stopping.load(); });
        wake = false;
      }
      client.coarse_now_ns_.store(now_ns(), std::memory_order_relaxed);
      cycle();
      if (connected && client.overflowed_.load(std::memory_order_acquire)) {
        // The server has taken everything sent so far: make its picture exact again with a snapshot, on
        // this same connection, and record from the snapshot's cut on.
        client.overflowed_.store(false, std::memory_order_release);
        gaps.fetch_add(1, std::memory_order_relaxed);
        resynchronise();
        if (!send_all()) continue;
      }
    }
    if (connected) cycle();  // last words
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

// ---- SnapshotWriter ---------------------------------------------------------------------------------

void SnapshotWriter::begin() {
  if (begun_) return;
  begun_ = true;
  client_.impl_->discard_all();  // what was recorded so far is covered by this snapshot
  client_.active_.store(true);
}

namespace {
proto::DeviceOpen device_open_message(const DeviceReport& d) {
  proto::DeviceOpen m;
  m.device = d.device;
  m.arch = d.arch;
  m.mesh = d.mesh;
  m.total_bytes = d.total_bytes;
  m.num_banks = d.num_banks;
  return m;
}
}  // namespace

void SnapshotWriter::device(const DeviceReport& d) {
  client_.impl_->snap_devices.push_back(device_open_message(d));
}

namespace {
proto::EventRecord alloc_record(const AllocationReport& a, std::uint64_t fallback_ts) {
  proto::EventRecord r;
  r.op = proto::EventOp::alloc;
  r.type = a.type;
  r.kind = a.kind;
  r.device = a.device;
  r.flags = a.internal ? proto::kFlagInternal : 0;
  r.site = a.site;
  r.num_banks = a.num_banks;
  r.mesh = a.mesh;
  r.id = a.id;
  r.size = a.size;
  r.address = a.address;
  r.size_per_bank = a.size_per_bank;
  r.timestamp_ns = a.timestamp_ns ? a.timestamp_ns : fallback_ts;
  return r;
}
}  // namespace

void SnapshotWriter::allocation(const AllocationReport& a) {
  client_.impl_->snap_allocs.push_back(
      alloc_record(a, client_.coarse_now_ns_.load(std::memory_order_relaxed)));
}

// ---- Client -----------------------------------------------------------------------------------------

namespace {
Client* g_instance = nullptr;

void shutdown_instance() {
  if (g_instance) g_instance->shutdown();
}
}  // namespace

Client& Client::instance() {
  static Client* client = [] {
    auto* c = new Client(Options::from_environment());  // never destroyed: reporting may go on during exit
    g_instance = c;
    std::atexit(shutdown_instance);
    pthread_atfork(nullptr, nullptr, [] {
      // In a child the sender thread does not exist and the socket is the parent's: never touch either.
      if (!g_instance) return;
      g_instance->active_.store(false);
      g_instance->enabled_ = false;
      g_instance->impl_->forked = true;
      if (g_instance->impl_->fd >= 0) ::close(g_instance->impl_->fd);
      g_instance->impl_->fd = -1;
    });
    return c;
  }();
  return *client;
}

Client::Client(Options options) {
  if (options.socket_path.empty()) options.socket_path = client_socket_path();
  if (options.ring_events < 64 || (options.ring_events & (options.ring_events - 1)) != 0)
    options.ring_events = 8192;
  enabled_ = options.enabled;
  coarse_now_ns_.store(now_ns());
  impl_ = std::make_unique<Impl>(*this, std::move(options));
  if (enabled_) impl_->sender = std::thread([this] { impl_->run(); });
}

Client::~Client() {
  shutdown();
}

void Client::shutdown() {
  if (impl_->forked) return;
  if (!impl_->sender.joinable()) return;
  if (active()) flush(std::chrono::milliseconds(2000));
  impl_->stopping.store(true);
  impl_->notify_sender();
  impl_->sender.join();
  active_.store(false);
}

Ring* Client::ring_for_this_thread() {
  if (t_binding.client_id != impl_->id) {
    if (t_binding.ring) t_binding.ring->abandoned.store(true, std::memory_order_release);
    t_binding.ring = std::make_shared<Ring>(impl_->options.ring_events);
    t_binding.client_id = impl_->id;
    std::lock_guard lock(impl_->rings_mutex);
    impl_->rings.push_back(t_binding.ring);
  }
  return t_binding.ring.get();
}

void Client::write(const proto::EventRecord& record, std::uint32_t fence) {
  Ring& r = *ring_for_this_thread();
  const std::uint64_t head = r.head.load(std::memory_order_relaxed);
  if (head - r.cached_tail >= r.capacity()) {
    r.cached_tail = r.tail.load(std::memory_order_acquire);
    if (head - r.cached_tail >= r.capacity()) {
      // Full: the sender is behind. Wait for room (backpressure) — but not past the client going inactive,
      // in which case the record is covered by the next snapshot.
      // Sleep rather than spin: on a small machine the sender and the server need the CPU to make room.
      const std::uint64_t t0 = now_ns();
      const std::uint64_t deadline =
          t0 + static_cast<std::uint64_t>(impl_->options.max_stall.count()) * 1'000'000ull;
      impl_->notify_sender();
      impl_->sleepers.fetch_add(1, std::memory_order_acq_rel);
      {
        std::unique_lock lock(impl_->space_mutex);
        for (;;) {
          r.cached_tail = r.tail.load(std::memory_order_acquire);
          if (head - r.cached_tail < r.capacity() || !active_.load(std::memory_order_relaxed)) break;
          if (now_ns() >= deadline) break;
          impl_->space_cv.wait_for(lock, std::chrono::milliseconds(1));
        }
      }
      impl_->sleepers.fetch_sub(1, std::memory_order_acq_rel);
      stall_ns_.fetch_add(now_ns() - t0, std::memory_order_relaxed);
      if (head - r.cached_tail >= r.capacity()) {
        // Waited max_stall, or tracking went inactive. Either way the application goes on: stop recording
        // (the sender resynchronises once the server has caught up) and count what is dropped.
        if (active_.load(std::memory_order_relaxed)) {
          overflowed_.store(true, std::memory_order_release);
          active_.store(false, std::memory_order_release);
          impl_->notify_sender();
        }
        skipped();
        return;
      }
    }
  }
  Slot& s = r.slots[head & r.mask];
  s.record = record;
  s.epoch = fence ? fence : epoch_.load(std::memory_order_acquire);
  s.fence = fence;
  r.head.store(head + 1, std::memory_order_release);
  if (head - r.cached_tail == r.capacity() / 2)
    impl_->notify_sender();  // half full: do not wait for the timer
}

void Client::skipped() {
  if (overflowed_.load(std::memory_order_relaxed)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

void Client::report_alloc(const AllocationReport& a) {
  if (!active_.load(std::memory_order_relaxed)) return skipped();
  write(alloc_record(a, coarse_now_ns_.load(std::memory_order_relaxed)), 0);
}

void Client::report_free(std::uint16_t device, std::uint64_t id, proto::ReleaseReason reason) {
  if (!active_.load(std::memory_order_relaxed)) return skipped();
  proto::EventRecord r;
  r.op = proto::EventOp::free;
  r.device = device;
  r.id = id;
  r.reason = reason;
  r.timestamp_ns = coarse_now_ns_.load(std::memory_order_relaxed);
  write(r, 0);
}

void Client::fence(std::function<void(std::vector<std::uint8_t>&)> encode_control) {
  if (!active_.load(std::memory_order_relaxed)) return;
  std::uint32_t number;
  {
    std::lock_guard lock(impl_->control_mutex);
    number = epoch_.fetch_add(1) + 1;
    if (number == 0) number = epoch_.fetch_add(1) + 1;  // 0 marks "not a fence" (the epoch wrapped)
    encode_control(impl_->control_frames[number]);
  }
  write(proto::EventRecord{}, number);
  impl_->notify_sender();
}

void Client::device_open(const DeviceReport& d) {
  const proto::DeviceOpen m = device_open_message(d);
  fence([&](std::vector<std::uint8_t>& out) { proto::encode(out, m); });
}

void Client::device_close(std::uint16_t device, proto::ClosePhase phase) {
  fence([&](std::vector<std::uint8_t>& out) { proto::encode(out, proto::DeviceClose{device, phase}); });
}

SiteId Client::intern_site(std::string_view text) {
  if (!enabled_ || text.empty()) return 0;
  std::lock_guard lock(impl_->sites_mutex);
  auto it = impl_->site_ids.find(std::string(text));
  if (it != impl_->site_ids.end()) return it->second;
  const SiteId id = static_cast<SiteId>(impl_->all_sites.size() + 1);
  const std::string stored(text.substr(0, proto::kMaxSiteLength));
  impl_->site_ids.emplace(std::string(text), id);
  impl_->all_sites.push_back({id, stored});
  impl_->pending_sites.push_back({id, stored});
  return id;
}

bool Client::set_socket_path(const std::string& path, std::chrono::milliseconds wait) {
  if (!enabled_ || impl_->forked) return false;
  std::uint64_t generation;
  {
    std::lock_guard lock(impl_->path_mutex);
    if (impl_->requested_path.empty() && impl_->options.socket_path == path) {
      generation = 0;  // already the target: just wait for its first attempt
    } else {
      impl_->requested_path = path;
      generation = ++impl_->requested_generation;
    }
  }
  if (generation == 0) return wait_for_first_attempt(wait);
  impl_->notify_sender();
  std::unique_lock lock(impl_->first_mutex);
  impl_->first_cv.wait_for(lock, wait, [&] { return impl_->attempted_generation >= generation; });
  return impl_->attempted_generation >= generation && active();
}

std::string Client::socket_path() const {
  std::lock_guard lock(impl_->path_mutex);
  return impl_->requested_path.empty() ? impl_->options.socket_path : impl_->requested_path;
}

bool Client::wait_for_first_attempt(std::chrono::milliseconds timeout) {
  if (!enabled_ || impl_->forked) return false;
  std::unique_lock lock(impl_->first_mutex);
  impl_->first_cv.wait_for(lock, timeout, [&] { return impl_->first_attempt_done; });
  return active();
}

bool Client::flush(std::chrono::milliseconds timeout) {
  if (!enabled_ || impl_->forked || !active()) return false;
  std::unique_lock lock(impl_->flush_mutex);
  const std::uint64_t token = ++impl_->flush_requested;
  lock.unlock();
  impl_->notify_sender();
  lock.lock();
  const bool done = impl_->flush_cv.wait_for(
      lock, timeout, [&] { return impl_->flush_acked >= token || impl_->flush_failed_below >= token; });
  const bool ok = done && impl_->flush_acked >= token;
  if (ok) impl_->flushes.fetch_add(1, std::memory_order_relaxed);
  return ok;
}

void Client::set_resync_callback(ResyncCallback callback) {
  std::lock_guard lock(impl_->resync_mutex);
  impl_->resync = std::move(callback);
}

Counters Client::counters() const {
  Counters c;
  c.events = impl_->events.load();
  c.bytes = impl_->bytes.load();
  c.batches = impl_->batches.load();
  c.stall_ns = stall_ns_.load();
  c.reconnects = impl_->reconnects.load();
  c.snapshots = impl_->snapshots.load();
  c.superseded_events = impl_->superseded.load();
  c.flushes = impl_->flushes.load();
  c.dropped_events = dropped_.load();
  c.gaps = impl_->gaps.load();
  c.connected = active();
  return c;
}

}  // namespace ttmem::client
