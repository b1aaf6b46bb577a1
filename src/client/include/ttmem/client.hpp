// libttmem: how a runtime reports device-memory allocations to ttmemd.
//
// Hot path (report_alloc / report_free): no syscall and no shared lock — the record goes into a ring owned
// by the calling thread, and one background thread sends batches. Rings are bounded; when the server
// cannot keep up the reporting thread waits (backpressure, counted as stall time), but never longer than
// Options::max_stall: past that the library stops recording (counting what it drops), and once the server
// has caught up it sends a snapshot of the live allocations (set_resync_callback), so the server's picture
// is exact again and the gap is counted, never hidden. Without a server the calls are a cheap no-op (one
// warning at most) and the library keeps trying to connect; every (re)connect sends such a snapshot too,
// so a server restart loses nothing.
//
// Environment: TTMEM_SOCKET (default: ttmem/socket_path.hpp); TTMEM_TRACKING=0 turns tracking off;
// TT_ALLOC_TRACKING_ENABLED=0/1 is accepted as well; TTMEM_MAX_STALL_MS bounds backpressure. Contract for
// exact resync: report events while holding the lock your resync callback takes.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "ttmem/client_ring.hpp"
#include "ttmem/protocol.hpp"

namespace ttmem::client {

using SiteId = std::uint32_t;  ///< 0: no site

struct AllocationReport {
  std::uint16_t device = 0;
  proto::BufferType type = proto::BufferType::DRAM;
  proto::AllocKind kind = proto::AllocKind::owning;
  std::uint64_t id = 0;  ///< unique in the process (per device at least); never an address
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  SiteId site = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t size_per_bank = 0;
  std::uint32_t mesh = 0;
  bool internal = false;           ///< runtime-owned: released by close without being a leak
  std::uint64_t timestamp_ns = 0;  ///< CLOCK_MONOTONIC; 0: the library stamps it (millisecond resolution)
  /// The op scope it was made in (from push_op or intern_site of the op path); 0: the reporting thread's
  /// current one. A resync snapshot gives each allocation's own.
  SiteId scope = 0;
};

struct DeviceReport {
  std::uint16_t device = 0;
  std::uint8_t arch = 0;  ///< 0 wormhole_b0, 1 blackhole
  std::uint32_t mesh = 0;
  std::array<std::uint64_t, proto::kNumMemorySlots> total_bytes{};  ///< by BufferType value
  std::array<std::uint32_t, proto::kNumMemorySlots> num_banks{};
  std::array<std::uint64_t, proto::kNumMemorySlots> base_address{};  ///< start of each type's range per bank
};

/// An allocation the runtime refused (rare: it goes out like a device open, after everything before it).
struct AllocationFailureReport {
  std::uint16_t device = 0;
  proto::BufferType type = proto::BufferType::DRAM;
  proto::FailureReason reason = proto::FailureReason::out_of_memory;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t size_per_bank = 0;  ///< what each bank needed to hold
  std::string_view site;
  std::string_view message;        ///< the runtime's error text
  std::string_view scope;          ///< the op path it was asked in; empty: the calling thread's current op
  std::uint64_t timestamp_ns = 0;  ///< CLOCK_MONOTONIC; 0: now
};

/// What the client sends the server (proto::ClientStats: the list is TTMEM_CLIENT_STATS), and what only
/// this process sees.
struct Counters : proto::ClientStats {
  std::uint64_t flushes = 0;      ///< flush() calls that were acknowledged
  std::uint64_t send_cycles = 0;  ///< the sender's rounds (drain, send, read); none while it is idle
  bool connected = false;
};

class Client;

/// Given to the resync callback. Call begin() while holding the lock under which you report events:
/// it marks the cut (events reported before it are covered by the snapshot), then list what is live.
class SnapshotWriter {
 public:
  void begin();
  void device(const DeviceReport& device);
  void allocation(const AllocationReport& allocation);

 private:
  friend class Client;
  explicit SnapshotWriter(Client& client) : client_(client) {}
  Client& client_;
  bool begun_ = false;
};
using ResyncCallback = std::function<void(SnapshotWriter&)>;

struct Options {
  std::string socket_path;  ///< empty: from the environment
  bool enabled = true;
  std::size_t ring_events = 8192;  ///< per reporting thread (power of two)
  std::chrono::milliseconds send_interval{2};
  /// The longest a reporting thread waits for ring space before recording stops until a resync.
  std::chrono::milliseconds max_stall{20};
  std::chrono::milliseconds server_timeout{
      10'000};  ///< no progress for this long: the server is considered gone
  bool warn_without_server = true;
  std::string process_name;  ///< informational; the server reads /proc
  /// Options from TTMEM_SOCKET, TTMEM_TRACKING, TT_ALLOC_TRACKING_ENABLED, TTMEM_RING_EVENTS,
  /// TTMEM_MAX_STALL_MS.
  static Options from_environment();
};

class Client {
 public:
  /// The process-wide client, configured from the environment on first use. Never destroyed; it flushes
  /// at exit.
  static Client& instance();

  explicit Client(Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool enabled() const { return enabled_; }
  /// Connected and recording: events reported now will reach the server.
  bool active() const { return active_.load(std::memory_order_relaxed); }

  SiteId intern_site(std::string_view text);
  /// Ops: the calling thread enters op `name` (nested in its current one) until pop_op. Every allocation
  /// the thread reports meanwhile is stamped with the op's path, "outer/inner", interned like a site: the
  /// hot path reads one thread-local word. Returns the path's id. Scopes belong to the client they were
  /// pushed on.
  SiteId push_op(std::string_view name);
  void pop_op();
  /// The calling thread's op scope (0: none).
  SiteId current_op() const;
  void device_open(const DeviceReport& device);
  void device_close(std::uint16_t device, proto::ClosePhase phase);
  /// The hot path, inline: stores into the calling thread's ring, no call, no lock (below).
  void report_alloc(const AllocationReport& allocation);
  void report_free(std::uint16_t device, std::uint64_t id,
                   proto::ReleaseReason reason = proto::ReleaseReason::explicit_free);
  /// A failed allocation: the server keeps an out-of-memory record with the device's state at that point.
  void report_alloc_failure(const AllocationFailureReport& failure);

  /// Returns when the server has applied everything reported (by any thread) before the call; false when
  /// not connected or on timeout.
  bool flush(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void set_resync_callback(ResyncCallback callback);
  Counters counters() const;
  /// Reports to the server at `path` from now on: drops the current connection (if any) and connects there,
  /// with a full resync. Waits up to `wait` for that connection attempt; returns active().
  bool set_socket_path(const std::string& path, std::chrono::milliseconds wait = std::chrono::seconds(2));
  std::string socket_path() const;
  /// Waits until the first connection attempt (and its resync) is over; returns active().
  bool wait_for_first_attempt(std::chrono::milliseconds timeout);
  /// The pid the server attributes this process to (0 before the first connection).
  std::uint32_t server_seen_pid() const { return peer_pid_.load(); }
  /// Flushes (bounded) and stops the background thread; later reports are ignored.
  void shutdown();

  struct Impl;

 private:
  friend class SnapshotWriter;
  /// Whether the fast path may write into the calling thread's ring now: bound to this client, room
  /// short of the half-full nudge, recording, and the sender awake (an idle sender must be woken, and the
  /// coarse clock it keeps is stale).
  bool fast_path_open(const detail::ThreadRing& t) const {
    return t.client_id == id_ && t.head < t.limit && active_.load(std::memory_order_relaxed) &&
           !sender_idle_.load(std::memory_order_relaxed);
  }
  /// The fast path's body: fill(record, coarse clock) writes the record at t.head, which is then made
  /// visible to the sender. The ring's fields are read into registers first, so the record's stores (which
  /// the compiler cannot tell apart from the thread's ring state) do not make it read them again.
  /// Wake protocol: the producer stores the head, then reads sender_idle_; the sender, before it sleeps,
  /// sets sender_idle_, issues membarrier() (a full barrier on every thread of the process) and looks at
  /// every ring again. So either the sender sees this record or this thread sees the flag and wakes it —
  /// and the hot path has no fence of its own.
  template <typename Fill>
  void append(detail::ThreadRing& t, Fill&& fill) {
    const std::uint64_t head = t.head;
    const std::uint64_t at = head & t.mask;
    detail::RingRecord* const record = t.records + at;
    std::uint32_t* const epoch = t.epochs + at;
    std::atomic<std::uint64_t>& published = t.ring->head;
    const std::uint64_t now = coarse_now_ns_.load(std::memory_order_relaxed);
    fill(*record, now);
    *epoch = epoch_.load(std::memory_order_acquire);
    t.head = head + 1;
    published.store(head + 1, std::memory_order_release);
    std::atomic_signal_fence(
        std::memory_order_seq_cst);  // the flag is read after the store, in program order
    if (sender_idle_.load(std::memory_order_relaxed)) [[unlikely]]
      wake_idle_sender();
  }
  void report_alloc_slow(const AllocationReport& allocation);
  void report_free_slow(std::uint16_t device, std::uint64_t id, proto::ReleaseReason reason);
  /// Binds the calling thread's ring to this client (a new ring the first time) and makes room for one
  /// record at t.head; false when the record is to be dropped (tracking went off while it waited).
  bool make_room(detail::ThreadRing& t);
  void wake_idle_sender();
  /// The coarse clock for a slow-path report (fresh if the sender was idle, which it then wakes).
  std::uint64_t slow_path_clock();
  void write(const proto::EventRecord& record, std::uint32_t fence);
  void skipped();  // a report while not recording
  void fence(std::function<void(std::vector<std::uint8_t>&)> encode_control);

  // What the hot path reads, on one cache line the sender writes rarely (the epoch and the clock once per
  // cycle, the idle flag when it sleeps).
  alignas(64) std::atomic<bool> active_{false};
  std::atomic<bool> sender_idle_{false};
  std::atomic<std::uint32_t> epoch_{0};  // fences and send cycles so far (wraps); every record carries it
  std::atomic<std::uint64_t> coarse_now_ns_{0};
  std::uint64_t id_ = 0;  // which client a thread's ring binding names

  alignas(64) bool enabled_ = false;
  std::atomic<std::uint64_t> stall_ns_{0};
  std::atomic<bool> overflowed_{false};  // recording stopped: the server could not keep up
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint32_t> peer_pid_{0};
  std::unique_ptr<Impl> impl_;
};

namespace detail {
inline void fill_alloc(proto::EventRecord& r, const AllocationReport& a, std::uint64_t now_ns,
                       std::uint32_t thread_scope) {
  r.op = proto::EventOp::alloc;
  r.type = a.type;
  r.kind = a.kind;
  r.reason = proto::ReleaseReason::explicit_free;
  r.device = a.device;
  r.flags = a.internal ? proto::kFlagInternal : 0;
  r.site = a.site;
  r.num_banks = a.num_banks;
  r.mesh = a.mesh;
  r.scope = a.scope ? a.scope : thread_scope;
  r.id = a.id;
  r.size = a.size;
  r.address = a.address;
  r.size_per_bank = a.size_per_bank;
  r.timestamp_ns = a.timestamp_ns ? a.timestamp_ns : now_ns;
}

inline void fill_free(proto::EventRecord& r, std::uint16_t device, std::uint64_t id,
                      proto::ReleaseReason reason, std::uint64_t now_ns) {
  r = proto::EventRecord{};
  r.op = proto::EventOp::free;
  r.device = device;
  r.id = id;
  r.reason = reason;
  r.timestamp_ns = now_ns;
}
}  // namespace detail

inline void Client::report_alloc(const AllocationReport& a) {
  detail::ThreadRing& t = detail::t_ring;
  if (!fast_path_open(t)) [[unlikely]]
    return report_alloc_slow(a);
  const std::uint32_t scope = t.op_client_id == id_ ? t.op_id : 0;
  append(t, [&](proto::EventRecord& r, std::uint64_t now) { detail::fill_alloc(r, a, now, scope); });
}

inline void Client::report_free(std::uint16_t device, std::uint64_t id, proto::ReleaseReason reason) {
  detail::ThreadRing& t = detail::t_ring;
  if (!fast_path_open(t)) [[unlikely]]
    return report_free_slow(device, id, reason);
  append(t, [&](proto::EventRecord& r, std::uint64_t now) { detail::fill_free(r, device, id, reason, now); });
}

/// An op scope for as long as it lives: `ttmem::client::OpScope op("matmul");`.
class OpScope {
 public:
  explicit OpScope(std::string_view name, Client& client = Client::instance()) : client_(client) {
    client_.push_op(name);
  }
  ~OpScope() { client_.pop_op(); }
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  Client& client_;
};

}  // namespace ttmem::client
