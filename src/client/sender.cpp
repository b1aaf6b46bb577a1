// libttmem's sender thread: drains the rings in epochs (a free never overtakes its allocation, a fence
// goes out after everything written before it), adds sites, statistics and flush barriers, and loops
// over connecting, sending and reading acknowledgements.
#include <unistd.h>

#include <cstdio>

#include "client_impl.hpp"

namespace ttmem::client {

void Client::Impl::first_attempt_over() {
  std::lock_guard lock(first_mutex);
  attempted_generation = path_generation;
  first_attempt_done = true;
  first_cv.notify_all();
}

bool Client::Impl::take_new_path() {
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

void Client::Impl::warn_once(const std::string& text) {
  if (warned || !options.warn_without_server) return;
  warned = true;
  std::fprintf(stderr, "ttmem: %s\n", text.c_str());
}

void Client::Impl::emit_batch() {
  for (std::size_t i = 0; i < batch.size(); i += proto::kSendEventsPerFrame) {
    const std::size_t n = std::min(proto::kSendEventsPerFrame, batch.size() - i);
    proto::encode(out, std::span<const proto::EventRecord>(batch.data() + i, n));
    batches.fetch_add(1, std::memory_order_relaxed);
  }
  events.fetch_add(batch.size(), std::memory_order_relaxed);
  batch.clear();
}

void Client::Impl::drain_ring(std::size_t i, std::uint32_t limit) {
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

void Client::Impl::wake_sleepers() {
  if (sleepers.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lock(space_mutex);
  space_cv.notify_all();
}

void Client::Impl::drain_all() {
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

void Client::Impl::discard_all() {
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

void Client::Impl::cycle() {
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
  const std::uint64_t now = monotonic_ns();
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
        monotonic_ns() + static_cast<std::uint64_t>(options.server_timeout.count()) * 1'000'000ull;
    for (;;) {
      {
        std::lock_guard lock(flush_mutex);
        if (flush_acked >= token) break;
      }
      if (!connected) return;
      if (monotonic_ns() > deadline) return disconnect("the allocation server did not acknowledge a flush");
      read_replies(20);
    }
  } else {
    read_replies(0);
  }
}

void Client::Impl::run() {
  std::chrono::milliseconds backoff(20);
  while (!stopping.load()) {
    client.coarse_now_ns_.store(monotonic_ns(), std::memory_order_relaxed);
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
    client.coarse_now_ns_.store(monotonic_ns(), std::memory_order_relaxed);
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

}  // namespace ttmem::client
