// libttmem on the reporting threads: each thread's ring, events and fences into it, sites, and the
// snapshot writer the resync callback fills. The hot path is Client::write.
#include <cstring>

#include "client_impl.hpp"

namespace ttmem::client {

__thread detail::ThreadRing detail::t_ring;

namespace {

/// Keeps the calling thread's ring alive for as long as the thread lives, and tells the sender when the
/// thread is gone. Touched only when a thread binds a ring, never on the hot path (its destructor needs a
/// TLS guard the hot path must not pay).
struct TlsBinding {
  std::shared_ptr<detail::Ring> ring;
  ~TlsBinding() {
    if (ring) ring->abandoned.store(true, std::memory_order_release);
  }
};
thread_local TlsBinding t_binding;

/// The stack behind it, touched by push_op and pop_op only: the path, and for each frame the path's length
/// before it and the frame's id.
struct OpStack {
  std::string path;
  std::vector<std::pair<std::size_t, SiteId>> frames;
};
thread_local OpStack t_ops;

}  // namespace

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
  m.base_address = d.base_address;
  return m;
}
}  // namespace

void SnapshotWriter::device(const DeviceReport& d) {
  client_.impl_->snap_devices.push_back(device_open_message(d));
}

void SnapshotWriter::allocation(const AllocationReport& a) {
  proto::EventRecord& r = client_.impl_->snap_allocs.emplace_back();
  detail::fill_alloc(r, a, client_.coarse_now_ns_.load(std::memory_order_relaxed), 0);
}

bool Client::make_room(detail::ThreadRing& t) {
  if (t.client_id != id_) {
    if (t_binding.ring) t_binding.ring->abandoned.store(true, std::memory_order_release);
    auto ring = std::make_shared<detail::Ring>(impl_->options.ring_events);
    {
      std::lock_guard lock(impl_->rings_mutex);
      impl_->rings.push_back(ring);
    }
    t_binding.ring = ring;
    t.client_id = id_;
    t.head = 0;
    t.limit = 0;
    t.mask = ring->mask;
    t.records = ring->records.get();
    t.epochs = ring->epochs.get();
    t.ring = ring.get();
  }
  detail::Ring& r = *t.ring;
  const std::uint64_t capacity = r.capacity();
  std::uint64_t tail = r.tail.load(std::memory_order_acquire);
  if (t.head - tail < capacity / 2) {
    t.limit = tail + capacity / 2;
    return true;
  }
  if (t.head - tail < capacity) {
    impl_->notify_sender();  // half full: do not wait for the timer
    t.limit = tail + capacity;
    return true;
  }
  // Full: the sender is behind. Wait for room (backpressure) — but not past the client going inactive, in
  // which case the record is covered by the next snapshot. Sleep rather than spin: on a small machine the
  // sender and the server need the CPU to make room.
  const std::uint64_t t0 = monotonic_ns();
  const std::uint64_t deadline =
      t0 + static_cast<std::uint64_t>(impl_->options.max_stall.count()) * 1'000'000ull;
  impl_->notify_sender();
  impl_->sleepers.fetch_add(1, std::memory_order_acq_rel);
  {
    std::unique_lock lock(impl_->space_mutex);
    for (;;) {
      tail = r.tail.load(std::memory_order_acquire);
      if (t.head - tail < capacity || !active_.load(std::memory_order_relaxed)) break;
      if (monotonic_ns() >= deadline) break;
      impl_->space_cv.wait_for(lock, std::chrono::milliseconds(1));
    }
  }
  impl_->sleepers.fetch_sub(1, std::memory_order_acq_rel);
  stall_ns_.fetch_add(monotonic_ns() - t0, std::memory_order_relaxed);
  if (t.head - tail < capacity) {
    t.limit = tail + capacity;
    return true;
  }
  // Waited max_stall, or tracking went inactive. Either way the application goes on: stop recording (the
  // sender resynchronises once the server has caught up) and count what is dropped.
  if (active_.load(std::memory_order_relaxed)) {
    overflowed_.store(true, std::memory_order_release);
    active_.store(false, std::memory_order_release);
    impl_->notify_sender();
  }
  return false;
}

void Client::wake_idle_sender() {
  if (sender_idle_.exchange(false, std::memory_order_acq_rel)) impl_->notify_sender();
}

void Client::write(const proto::EventRecord& record, std::uint32_t fence) {
  detail::ThreadRing& t = detail::t_ring;
  if (t.client_id != id_ || t.head >= t.limit) {
    if (!make_room(t)) return skipped();
  }
  if (!fence) {
    append(t, [&](proto::EventRecord& r, std::uint64_t) { r = record; });
    return;
  }
  detail::RingRecord& slot = t.records[t.head & t.mask];
  static_cast<proto::EventRecord&>(slot) = record;
  slot.flags = detail::kFenceRecord;
  t.epochs[t.head & t.mask] = fence;  // a fence's epoch is its own number
  ++t.head;
  t.ring->head.store(t.head, std::memory_order_release);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  if (sender_idle_.load(std::memory_order_relaxed)) wake_idle_sender();
}

void Client::skipped() {
  if (overflowed_.load(std::memory_order_relaxed)) dropped_.fetch_add(1, std::memory_order_relaxed);
}

namespace {
/// The scope an allocation reported now on this thread is stamped with.
std::uint32_t thread_scope(std::uint64_t client_id) {
  return detail::t_ring.op_client_id == client_id ? detail::t_ring.op_id : 0;
}
}  // namespace

std::uint64_t Client::slow_path_clock() {
  // An idle sender keeps no clock: stamp from a fresh one, and wake the sender for what follows.
  if (sender_idle_.load(std::memory_order_relaxed)) {
    coarse_now_ns_.store(monotonic_ns(), std::memory_order_relaxed);
    wake_idle_sender();
  }
  return coarse_now_ns_.load(std::memory_order_relaxed);
}

void Client::report_alloc_slow(const AllocationReport& a) {
  if (!active_.load(std::memory_order_relaxed)) return skipped();
  proto::EventRecord r;
  detail::fill_alloc(r, a, slow_path_clock(), thread_scope(id_));
  write(r, 0);
}

void Client::report_free_slow(std::uint16_t device, std::uint64_t id, proto::ReleaseReason reason) {
  if (!active_.load(std::memory_order_relaxed)) return skipped();
  proto::EventRecord r;
  detail::fill_free(r, device, id, reason, slow_path_clock());
  write(r, 0);
}

SiteId Client::push_op(std::string_view name) {
  OpStack& s = t_ops;
  const std::size_t mark = s.path.size();
  if (!s.path.empty()) s.path += '/';
  s.path.append(name);
  const SiteId id = intern_site(s.path);
  s.frames.emplace_back(mark, id);
  detail::t_ring.op_client_id = id_;
  detail::t_ring.op_id = id;
  return id;
}

void Client::pop_op() {
  OpStack& s = t_ops;
  if (s.frames.empty()) return;
  s.path.resize(s.frames.back().first);
  s.frames.pop_back();
  detail::t_ring.op_client_id = id_;
  detail::t_ring.op_id = s.frames.empty() ? SiteId{0} : s.frames.back().second;
}

SiteId Client::current_op() const {
  return thread_scope(id_);
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

void Client::report_alloc_failure(const AllocationFailureReport& f) {
  proto::AllocFailure m;
  m.device = f.device;
  m.type = f.type;
  m.reason = f.reason;
  m.num_banks = f.num_banks;
  m.size = f.size;
  m.page_size = f.page_size;
  m.size_per_bank = f.size_per_bank;
  m.timestamp_ns = f.timestamp_ns ? f.timestamp_ns : monotonic_ns();
  m.site = std::string(f.site);
  m.message = std::string(f.message);
  // The op it was asked in: the caller's, else the thread's (the same thread that asked, by construction).
  m.scope = !f.scope.empty() ? std::string(f.scope) : current_op() != 0 ? t_ops.path : std::string();
  fence([&](std::vector<std::uint8_t>& out) { proto::encode(out, m); });
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

}  // namespace ttmem::client
