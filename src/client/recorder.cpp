// libttmem on the reporting threads: each thread's ring, events and fences into it, sites, and the
// snapshot writer the resync callback fills. The hot path is Client::write.
#include <cstring>

#include "client_impl.hpp"

namespace ttmem::client {

namespace {

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

/// The calling thread's op scope, read on every report: plain data with a constant initialiser, so reading
/// it needs no TLS guard.
struct CurrentOp {
  std::uint64_t client_id = 0;
  SiteId id = 0;
};
thread_local CurrentOp t_op __attribute__((tls_model("initial-exec")));

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
  r.scope = a.scope;
  return r;
}
}  // namespace

void SnapshotWriter::allocation(const AllocationReport& a) {
  client_.impl_->snap_allocs.push_back(
      alloc_record(a, client_.coarse_now_ns_.load(std::memory_order_relaxed)));
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
      const std::uint64_t t0 = monotonic_ns();
      const std::uint64_t deadline =
          t0 + static_cast<std::uint64_t>(impl_->options.max_stall.count()) * 1'000'000ull;
      impl_->notify_sender();
      impl_->sleepers.fetch_add(1, std::memory_order_acq_rel);
      {
        std::unique_lock lock(impl_->space_mutex);
        for (;;) {
          r.cached_tail = r.tail.load(std::memory_order_acquire);
          if (head - r.cached_tail < r.capacity() || !active_.load(std::memory_order_relaxed)) break;
          if (monotonic_ns() >= deadline) break;
          impl_->space_cv.wait_for(lock, std::chrono::milliseconds(1));
        }
      }
      impl_->sleepers.fetch_sub(1, std::memory_order_acq_rel);
      stall_ns_.fetch_add(monotonic_ns() - t0, std::memory_order_relaxed);
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
  proto::EventRecord r = alloc_record(a, coarse_now_ns_.load(std::memory_order_relaxed));
  if (r.scope == 0 && t_op.client_id == impl_->id) r.scope = t_op.id;
  write(r, 0);
}

SiteId Client::push_op(std::string_view name) {
  OpStack& s = t_ops;
  const std::size_t mark = s.path.size();
  if (!s.path.empty()) s.path += '/';
  s.path.append(name);
  const SiteId id = intern_site(s.path);
  s.frames.emplace_back(mark, id);
  t_op = {impl_->id, id};
  return id;
}

void Client::pop_op() {
  OpStack& s = t_ops;
  if (s.frames.empty()) return;
  s.path.resize(s.frames.back().first);
  s.frames.pop_back();
  t_op = {impl_->id, s.frames.empty() ? SiteId{0} : s.frames.back().second};
}

SiteId Client::current_op() const {
  return t_op.client_id == impl_->id ? t_op.id : 0;
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
