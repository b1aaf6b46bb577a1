// The ledger, free of I/O (no sockets, JSON or logging): live allocations per (process, device, id), totals
// and peaks per device and per (process, device) and memory slot, leak records from device closes, orphan
// records from dead processes, snapshots (resync) and anomaly counters. The server feeds it decoded
// messages in order; sinks (sink.hpp) hear what happened.
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "allocation_table.hpp"
#include "op_figures.hpp"
#include "sink.hpp"
#include "site_labels.hpp"
#include "ttmem/protocol.hpp"
#include "ttmem/units.hpp"
#include "ttmem/views.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::model {

using ttmem::kSlots;
using ttmem::Slot;
using ttmem::slot_of;
using ttmem::to_string;

struct Figures {
  std::uint64_t bytes = 0;
  std::uint64_t buffers = 0;
  std::uint64_t peak_bytes = 0;
  std::uint64_t interval_peak = 0;  ///< the most since Registry::begin_interval (the history's timeline)
};
using SlotFigures = std::array<Figures, kSlots>;

/// Buffers counted in all slots.
inline std::uint64_t buffer_count(const SlotFigures& usage) {
  std::uint64_t n = 0;
  for (const auto& f : usage) n += f.buffers;
  return n;
}

/// What the ledger refused or found odd (the list, with what each counts: ttmem/views.hpp).
struct Anomalies {
#define TTMEM_ANOMALY_FIELD(name) std::uint64_t name = 0;
  TTMEM_LEDGER_ANOMALIES(TTMEM_ANOMALY_FIELD)
#undef TTMEM_ANOMALY_FIELD
  Anomalies& operator+=(const Anomalies& o);
};

/// One memory type's banks as DEVICE_OPEN announced them: each spans [base, base + bank_size).
struct BankGeometry {
  std::uint64_t base = 0;
  std::uint64_t bank_size = 0;
  std::uint32_t num_banks = 0;
};

struct DeviceState {
  std::uint16_t id = 0;
  std::uint8_t arch = 0;
  bool announced = false;  ///< some process sent DEVICE_OPEN for it
  std::array<std::uint64_t, kSlots> total_bytes{};
  std::array<BankGeometry, kBufferTypes> banks{};  ///< by BufferType value
  /// Allocations and frees so far, by BufferType value: free-space figures computed at another count are
  /// stale (ledger_views caches them by it).
  std::array<std::uint64_t, kBufferTypes> changes{};
  SlotFigures usage{};
};

struct ProcessDevice {
  using State = DeviceUseState;
  State state = State::implicit;
  std::uint64_t close_began_ns = 0;
  SlotFigures usage{};
  AllocationTable::Group group = AllocationTable::kNoGroup;  ///< its live allocations in the table
  std::uint64_t last_oom = 0;     ///< its latest out-of-memory record since it opened the device (0: none)
  DeviceState* device = nullptr;  ///< the device's own figures
};

struct ProcessState {
  std::uint32_t slot = 0;
  pid_t pid = 0;
  std::uint64_t start_time = 0;  ///< /proc/PID/stat field 22: tells a reused pid apart
  uid_t uid = 0;
  std::string name;
  std::string command;  ///< its command line (from /proc, by the server); empty when unknown
  bool alive = true;
  std::unordered_map<std::uint32_t, std::string> sites;
  std::size_t site_bytes = 0;  ///< text held by `sites`
  SiteLabels labels;           ///< the (site, op scope) pairs of its live records
  OpFigures ops;               ///< what each op holds and held at most, per device and memory type
  /// An op path's site id -> the id of the path one level up ("fwd/attn" -> "fwd"), 0 at the top: found
  /// once per path by its text (the client interns an outer path before any path inside it).
  std::unordered_map<std::uint32_t, std::uint32_t> op_parents;
  std::map<std::uint16_t, ProcessDevice> devices;
  std::vector<ProcessDevice*> device_index;  // by device id, into `devices` (map nodes do not move)
  SlotFigures usage{};
  Anomalies anomalies;
  std::uint64_t events = 0;
  proto::ClientStats client_stats;  ///< as last reported by the client library
  std::uint64_t first_seen_ns = 0;
  struct Snapshot {
    std::uint64_t id = 0;
    std::vector<proto::DeviceOpen> devices;
    std::vector<proto::EventRecord> allocations;
    std::uint64_t received = 0;  ///< allocations received, kept or refused by the limit
  };
  std::optional<Snapshot> snapshot;
};

struct LeakRecord {
  std::uint64_t seq = 0;  ///< 1, 2, ... in the order recorded
  pid_t pid = 0;
  std::string process_name;
  std::uint16_t device = 0;
  proto::BufferType type = proto::BufferType::DRAM;
  proto::AllocKind kind = proto::AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string site;
  std::string scope;  ///< the op it was made in ("outer/inner"), empty: none
  std::uint64_t age_ns = 0;
  std::uint64_t time_ns = 0;    ///< CLOCK_REALTIME when recorded
  bool swept_by_close = true;   ///< false: the close sequence never released it (a lifecycle gap)
  std::uint64_t after_oom = 0;  ///< the process's out-of-memory record on the device before the close
};

struct OrphanRecord {
  std::uint64_t seq = 0;  ///< 1, 2, ... in the order recorded
  pid_t pid = 0;
  std::string process_name;
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME
  struct Held {
    std::uint16_t device = 0;
    Slot slot = Slot::DRAM;
    std::uint64_t bytes = 0;
    std::uint64_t buffers = 0;
  };
  std::vector<Held> held;
  /// What it held, by where it was made (site and op): the largest kOrphanOrigins, bytes descending.
  struct Origin {
    std::string site;
    std::string scope;
    std::uint64_t bytes = 0;
    std::uint64_t buffers = 0;
  };
  static constexpr std::size_t kOrphanOrigins = 16;
  std::vector<Origin> origins;
  std::uint64_t total_bytes = 0;
  std::uint64_t total_buffers = 0;
  std::vector<std::string> lines()
      const;  ///< "pid 141211 (python) died holding 12288 bytes of L1 on device 0 in 3 buffers"
};

/// One entry of the recent-event history: fixed size, no allocation per event.
struct HistoryEntry {
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME when applied
  pid_t pid = 0;
  std::uint32_t process_slot = 0;
  char name[16] = {};        ///< /proc comm is at most 15 characters
  proto::EventRecord event;  ///< frees carry what was freed
};

struct RegistryLimits {
  std::size_t max_leak_records = 10'000;
  std::size_t max_orphan_records = 1'000;
  std::size_t max_oom_records = 1'000;
  std::size_t max_live_allocations_per_process = 16'000'000;  ///< also bounds a snapshot being received
  std::size_t max_sites_per_process = 65'536;
  std::size_t max_site_bytes_per_process = 8u << 20;  ///< site texts, in all
  std::uint16_t max_device_id = 4095;
  std::size_t event_history = 10'000;  ///< recent events kept for `ttmem events`; 0: none
};

/// What happened to one event, for logging and subscribers.
struct AppliedEvent {
  const ProcessState* process = nullptr;
  proto::EventRecord event;
  std::string_view site;
  std::string_view scope;
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME of the batch it came in
  std::uint32_t allocated_ms =
      0;  ///< a free: when the freed buffer was allocated (AllocationRecord::time_ms)
};

/// Where a live record was made, as text.
struct OriginText {
  std::string_view site;
  std::string_view scope;
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME of the batch it came in
  std::uint32_t allocated_ms =
      0;  ///< a free: when the freed buffer was allocated (AllocationRecord::time_ms)
};

class Registry {
 public:
  explicit Registry(RegistryLimits limits = {});

  /// The process with this pid; a different start time means the old process died (it is reclaimed).
  ProcessState& process(pid_t pid, std::uint64_t start_time, uid_t uid, const std::string& name);
  ProcessState& new_process(pid_t pid, std::uint64_t start_time, uid_t uid, const std::string& name);
  ProcessState* find_process(pid_t pid);
  const ProcessState* find_process(pid_t pid) const;
  /// A process known only by what its connection carried: it had exited before it could be identified.
  /// It is never found by pid (a live process may have that pid now) and is reclaimed like any other.
  ProcessState& detached_process(pid_t pid, uid_t uid);

  void device_open(ProcessState& p, const proto::DeviceOpen& m);
  void device_close(ProcessState& p, const proto::DeviceClose& m);
  void sites(ProcessState& p, const std::vector<proto::Site>& sites);
  void event(ProcessState& p, const proto::EventRecord& e);
  /// A refused allocation: an out-of-memory record of the device as it is now.
  void alloc_failure(ProcessState& p, const proto::AllocFailure& m);
  void snapshot_begin(ProcessState& p, const proto::SnapshotBegin& m);
  void snapshot_end(ProcessState& p, const proto::SnapshotEnd& m);
  /// The wall-clock time stamped on history entries until the next call (once per received batch, so the
  /// clock is not read per event).
  void set_batch_time(std::uint64_t realtime_ns) { batch_time_ns_ = realtime_ns; }
  /// The process died: its allocations are reclaimed and an orphan record says what it held.
  /// Returns the record (empty `held` when it held nothing).
  OrphanRecord process_died(ProcessState& p);

  const AllocationTable& allocations() const { return table_; }
  const std::map<std::uint16_t, DeviceState>& devices() const { return devices_; }
  const std::map<std::uint32_t, ProcessState>& processes() const { return processes_; }
  const std::deque<LeakRecord>& leaks() const { return leaks_; }        ///< newest first, seq descending
  const std::deque<OrphanRecord>& orphans() const { return orphans_; }  ///< newest first, seq descending
  const std::deque<views::OomRecord>& ooms() const { return ooms_; }    ///< newest first, id descending
  std::uint64_t oom_total() const { return oom_seq_; }
  Anomalies anomalies() const;
  std::uint64_t events_applied() const { return events_applied_; }
  /// The newest `limit` events of the history, oldest first.
  std::vector<HistoryEntry> recent_events(std::size_t limit) const;
  std::string_view site_text(const ProcessState& p, std::uint32_t site) const;
  /// Site text by process slot, for live processes and recently dead ones ("?" when forgotten).
  std::string_view site_text(std::uint32_t process_slot, std::uint32_t site) const;
  /// The site and op scope of a live record of the process in `process_slot`.
  OriginText origin(std::uint32_t process_slot, std::uint32_t label) const;
  OriginText origin(const ProcessState& p, std::uint32_t label) const;
  /// Process name by slot, for live processes and recently dead ones.
  std::string_view process_name(std::uint32_t process_slot) const;
  const ProcessState* process_by_slot(std::uint32_t slot) const;

  /// Starts a new interval of Figures::interval_peak: each becomes the figure's bytes now.
  void begin_interval();

  /// Sinks are called in the order added; a sink outlives its registration.
  void add_sink(Sink& sink);
  void remove_sink(Sink& sink);
  /// A sink's wants_events() changed.
  void sinks_changed();

 private:
  /// Adds the record to (Sign 1) or takes it from (Sign -1) every figure it counts in.
  template <int Sign>
  void account(ProcessState& p, ProcessDevice& pd, Slot slot, std::uint64_t size, std::uint32_t label,
               std::uint16_t device);
  template <int Sign>
  void account(ProcessState& p, ProcessDevice& pd, const AllocationRecord& r) {
    account<Sign>(p, pd, slot_of(static_cast<proto::BufferType>(r.type), r.kind()), r.size, r.label,
                  r.device);
  }
  std::uint32_t op_parent(ProcessState& p, std::uint32_t scope);
  /// `pd`: the process's use of e.device when the caller has it (nullptr: found or made here).
  void insert_allocation(ProcessState& p, ProcessDevice* pd, const proto::EventRecord& e);
  /// Takes e's allocation out of the table and the totals into `r`; false when it is not live.
  bool release_allocation(ProcessState& p, ProcessDevice* pd, const proto::EventRecord& e,
                          AllocationRecord& r);
  /// The history entry this event goes in (its time and process filled in, the event left to the caller).
  HistoryEntry& next_history_entry(const ProcessState& p);
  void record_leak(ProcessState& p, const AllocationRecord& r, bool swept, std::uint64_t now_ns);
  void drop_process_allocations(ProcessState& p);
  /// Removes every allocation of (p, device) from the table and the totals, calling f(record) for each.
  template <typename F>
  void drop_group(ProcessState& p, ProcessDevice& pd, F&& f);
  DeviceState& device(std::uint16_t id) {
    if (id < device_index_.size() && device_index_[id]) return *device_index_[id];
    return new_device(id);
  }
  DeviceState& new_device(std::uint16_t id);
  ProcessDevice& process_device(ProcessState& p, std::uint16_t id) {
    if (ProcessDevice* pd = find_process_device(p, id)) return *pd;
    return new_process_device(p, id);
  }
  ProcessDevice& new_process_device(ProcessState& p, std::uint16_t id);
  static ProcessDevice* find_process_device(ProcessState& p, std::uint16_t id) {
    return id < p.device_index.size() ? p.device_index[id] : nullptr;
  }

  RegistryLimits limits_;
  AllocationTable table_;
  std::map<std::uint16_t, DeviceState> devices_;
  std::vector<DeviceState*> device_index_;           // by device id, into `devices_`
  std::map<std::uint32_t, ProcessState> processes_;  // by slot
  std::unordered_map<pid_t, std::uint32_t> slot_of_pid_;
  std::uint32_t next_slot_ = 1;
  std::deque<LeakRecord> leaks_;
  std::deque<OrphanRecord> orphans_;
  std::deque<views::OomRecord> ooms_;
  std::uint64_t oom_seq_ = 0;
  std::uint64_t leak_seq_ = 0;
  std::uint64_t orphan_seq_ = 0;
  Anomalies retired_anomalies_;  // of processes that are gone
  // Names and site tables of recently dead processes, so the event history can still name them.
  struct Retired {
    std::string name;
    std::unordered_map<std::uint32_t, std::string> sites;
  };
  std::map<std::uint32_t, Retired> retired_;
  std::uint64_t events_applied_ = 0;
  std::vector<HistoryEntry> history_;  // ring
  std::uint64_t batch_time_ns_ = 0;
  std::vector<Sink*> sinks_;
  std::vector<Sink*> event_sinks_;  // those of sinks_ that want events now
  std::size_t history_next_ = 0;
  bool history_full_ = false;
};

using ttmem::monotonic_ns;
using ttmem::realtime_ns;

}  // namespace ttmem::model
