// libttmem: the process-wide client, its construction from the environment, and the public calls that
// wait for the sender (flush, first connection, a new socket path); see ttmem/client.hpp.
#include <pthread.h>

#include <cstdio>
#include <cstdlib>

#include "client_impl.hpp"
#include "ttmem/socket_path.hpp"

namespace ttmem::client {

namespace {

bool env_off(const char* name) {
  const char* v = std::getenv(name);
  if (!v) return false;
  const std::string s(v);
  return s == "0" || s == "false" || s == "off" || s == "no";
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
  id_ = g_next_client_id.fetch_add(1);
  coarse_now_ns_.store(monotonic_ns());
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
  c.send_cycles = impl_->send_cycles.load();
  c.dropped_events = dropped_.load();
  c.gaps = impl_->gaps.load();
  c.connected = active();
  return c;
}

}  // namespace ttmem::client
