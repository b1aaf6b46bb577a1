// libttmem's sender thread: drains the rings in epochs (a free never overtakes its allocation, a fence
// goes out after everything written before it), adds sites, statistics and flush barriers, and loops
// over connecting, sending and reading acknowledgements.
#include <linux/membarrier.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>

#include "client_impl.hpp"

namespace ttmem::client {

namespace {
/// How long an idle sender sleeps at most when membarrier() is there (nothing is missed without the bound;
/// it is a guard) and when it is not (then a record written as the sender fell asleep may wait this long —
/// flushes and fences still wake it at once).
constexpr int kIdleBoundMs = 10'000;
constexpr int kIdleBoundWithoutBarrierMs = 100;

int membarrier(int cmd) {
  return static_cast<int>(::syscall(SYS_membarrier, cmd, 0, 0));
}
}  // namespace

Client::Impl::Impl(Client& c, Options o) : client(c), options(std::move(o)) {
  wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  barrier_capable = membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0;
}

Client::Impl::~Impl() {
  if (wake_fd >= 0) ::close(wake_fd);
}

void Client::Impl::notify_sender() {
  const std::uint64_t one = 1;
  // Only EAGAIN can fail here (the counter is at its maximum): the sender is woken either way.
  [[maybe_unused]] const ssize_t n = ::write(wake_fd, &one, sizeof one);
}

void Client::Impl::wait_for_work(int timeout_ms) {
  pollfd p[2] = {{wake_fd, POLLIN, 0}, {fd, POLLIN, 0}};
  const nfds_t n = connected && fd >= 0 ? 2 : 1;
  if (::poll(p, n, timeout_ms) > 0 && (p[0].revents & POLLIN)) {
    std::uint64_t count;
    [[maybe_unused]] const ssize_t r = ::read(wake_fd, &count, sizeof count);
  }
}

bool Client::Impl::rings_empty() {
  std::lock_guard lock(rings_mutex);
  for (const auto& r : rings) {
    if (r->tail.load(std::memory_order_relaxed) != r->head.load(std::memory_order_acquire)) return false;
  }
  return true;
}

bool Client::Impl::urgent() {
  if (stopping.load()) return true;
  {
    std::lock_guard lock(flush_mutex);
    if (flush_requested > barrier_sent) return true;
  }
  std::lock_guard lock(path_mutex);
  return !requested_path.empty();
}

void Client::Impl::idle() {
  if (stats_dirty) {  // the server's view of our costs is final until the next record
    send_stats();
    if (!send_all()) return;
  }
  // The exchange (a full barrier, unlike a plain store) keeps the flag before the ring reads;
  // membarrier then makes every producer's ring stores visible, or the shorter bound covers them.
  client.sender_idle_.exchange(true, std::memory_order_seq_cst);
  if (barrier_capable) membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
  if (rings_empty() && !urgent()) wait_for_work(barrier_capable ? kIdleBoundMs : kIdleBoundWithoutBarrierMs);
  client.sender_idle_.store(false, std::memory_order_relaxed);
  client.coarse_now_ns_.store(monotonic_ns(), std::memory_order_relaxed);
  if (urgent()) notify_sender();  // its wake-up was taken here: the next wait must not sit it out
}

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
  detail::Ring& r = *rings[i];
  std::uint64_t tail = r.tail.load(std::memory_order_relaxed);
  // Records between `run` and `tail` are added as one run (contiguous in the ring: runs end at its wrap).
  std::uint64_t run = tail;
  auto add_run = [&] {
    if (tail != run) frames->add(&r.records[run & r.mask], tail - run, sizeof(detail::RingRecord));
    run = tail;
  };
  for (;;) {
    // The head once per pass, the tail stored once per pass: per record, both lines would cross between
    // the producer's core and this one.
    const std::uint64_t head = r.head.load(std::memory_order_acquire);
    if (tail == head) break;
    bool at_limit = false;
    while (tail != head) {
      const std::uint32_t epoch = r.epochs[tail & r.mask];
      if (static_cast<std::int32_t>(epoch - limit) >= 0) {  // at or after `limit`, wrap-safe
        at_limit = true;
        break;
      }
      if (r.records[tail & r.mask].flags & detail::kFenceRecord) {
        add_run();
        const std::uint32_t fence = epoch;
        for (std::size_t j = 0; j < rings.size(); ++j) {
          if (j != i) drain_ring(j, fence);
        }
        close_frame();
        std::lock_guard lock(control_mutex);
        auto it = control_frames.find(fence);
        if (it != control_frames.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          control_frames.erase(it);
          events.fetch_add(1, std::memory_order_relaxed);
          batches.fetch_add(1, std::memory_order_relaxed);
        }
        run = ++tail;
        continue;
      }
      if ((++tail & r.mask) == 0) add_run();
    }
    add_run();
    r.tail.store(tail, std::memory_order_release);
    if (at_limit) break;
  }
}

void Client::Impl::wake_sleepers() {
  if (sleepers.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lock(space_mutex);
  space_cv.notify_all();
}

std::uint64_t Client::Impl::drain_all() {
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
  std::erase_if(rings, [](const std::shared_ptr<detail::Ring>& r) {
    return r->abandoned.load(std::memory_order_acquire) &&
           r->tail.load(std::memory_order_relaxed) == r->head.load(std::memory_order_acquire);
  });
  return writer.records();
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

void Client::Impl::send_stats() {
  last_stats_ns = monotonic_ns();
  stats_dirty = false;
  const Counters c = client.counters();
  proto::encode(out, static_cast<const proto::ClientStats&>(c));
}

bool Client::Impl::cycle() {
  send_cycles.fetch_add(1, std::memory_order_relaxed);
  // The barrier covers what was reported before flush() asked for it: read the request before draining,
  // so that every such report has an epoch below this drain's limit. (Read after, a report made while
  // the drain ran and flushed at once would go out behind its own barrier.)
  std::uint64_t token = 0;
  {
    std::lock_guard lock(flush_mutex);
    if (flush_requested > barrier_sent) token = barrier_sent = flush_requested;
  }
  const std::uint64_t sent_before = events.load(std::memory_order_relaxed);
  drain_all();  // counts records and fences' control frames in `events`
  const bool busy = token != 0 || events.load(std::memory_order_relaxed) != sent_before;
  if (busy) stats_dirty = true;
  std::vector<std::uint8_t> sites;
  {
    std::lock_guard lock(sites_mutex);  // after draining: every site an event uses is pending by now
    if (!pending_sites.empty()) proto::encode(sites, std::span<const proto::Site>(pending_sites));
    pending_sites.clear();
  }
  // New sites go ahead of the events that name them. Only then are the events copied behind them: most
  // cycles have none, and `out` keeps its buffer from cycle to cycle.
  if (!sites.empty()) {
    sites.insert(sites.end(), out.begin(), out.end());
    out.swap(sites);
  }
  // Every second while busy, and with every flush so a barrier also brings the server's view of our costs
  // up to date (idle() sends the last word before sleeping).
  if (token || (busy && monotonic_ns() - last_stats_ns > 1'000'000'000ull)) send_stats();
  if (token) proto::encode(out, proto::Barrier{token});
  if (!out.empty() && !send_all()) return busy;
  if (token) {
    const std::uint64_t deadline =
        monotonic_ns() + static_cast<std::uint64_t>(options.server_timeout.count()) * 1'000'000ull;
    for (;;) {
      {
        std::lock_guard lock(flush_mutex);
        if (flush_acked >= token) break;
      }
      if (!connected) return busy;
      if (monotonic_ns() > deadline) {
        disconnect("the allocation server did not acknowledge a flush");
        return busy;
      }
      read_replies(20);
    }
  } else {
    read_replies(0);
  }
  return busy;
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
      if (!stopping.load())
        wait_for_work(
            static_cast<int>((permanent_failure ? std::chrono::milliseconds(1000) : backoff).count()));
      backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
      continue;
    }
    // Batch: what producers write in the next send_interval goes out together (flushes, fences and a
    // half-full ring cut the wait short).
    if (!stopping.load()) wait_for_work(static_cast<int>(options.send_interval.count()));
    client.coarse_now_ns_.store(monotonic_ns(), std::memory_order_relaxed);
    const bool busy = cycle();
    if (connected && client.overflowed_.load(std::memory_order_acquire)) {
      // The server has taken everything sent so far: make its picture exact again with a snapshot, on
      // this same connection, and record from the snapshot's cut on.
      client.overflowed_.store(false, std::memory_order_release);
      gaps.fetch_add(1, std::memory_order_relaxed);
      resynchronise();
      if (!send_all()) continue;
    } else if (!busy && connected && !stopping.load()) {
      idle();
    }
  }
  if (connected) cycle();  // last words
  if (fd >= 0) ::close(fd);
  fd = -1;
}

}  // namespace ttmem::client
