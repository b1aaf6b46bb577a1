// What ttmemd answers, as plain data: one struct per view of the ledger. The model fills them
// (src/model/ledger_views.hpp), the schema turns them into the JSON of the wire and back (ttmem/schema.hpp),
// the query client returns them to the tools. No JSON, no sockets: a view is what a query means, not how it
// travels. Field meanings and units: docs/protocol.md, "Queries".
#pragma once

#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "ttmem/protocol.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::views {

// ---- stats: usage per device and per process on a device ---------------------------------------------

/// Where a memory type's free space is. Every bank of an interleaved type has the same layout (lockstep),
/// so the per-bank figures are those of any bank; `free` is over all banks, like `used` and `total`.
struct FreeSpace {
  std::uint64_t free = 0;
  std::uint64_t free_per_bank = 0;
  std::uint64_t largest_free_block = 0;  ///< per bank: the most any one allocation can take in each bank
  std::uint64_t free_blocks = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t bank_size = 0;
  /// Live buffers the figures could not place: no per-bank size reported, or outside the bank's range.
  std::uint64_t unplaced_buffers = 0;
  /// 1 - largest / free per bank: 0 when the free space is one block, toward 1 when it is in crumbs.
  double fragmentation = 0;
  bool operator==(const FreeSpace&) const = default;
};

/// One memory slot of a device.
struct SlotUsage {
  std::uint64_t used = 0;
  std::uint64_t peak = 0;
  std::uint64_t buffers = 0;
  std::uint64_t total = 0;  ///< the device's capacity (0: not announced)
  /// The allocator's free space (announced devices; not for CB, which is not the allocator's).
  std::optional<FreeSpace> space;
  bool operator==(const SlotUsage&) const = default;
};

/// Something wrong with a device's picture that a person should see (smi, top, info show them).
struct DeviceWarning {
  /// kOverFull: a memory type holds more than the device has; kShared: two or more live processes hold
  /// the device at once (TT-Metal holds a chip one process at a time).
  std::string kind;
  std::string text;  ///< a sentence: what, with the figures or pids
  bool operator==(const DeviceWarning&) const = default;
};
inline constexpr std::string_view kOverFull = "over_full";
inline constexpr std::string_view kShared = "shared";

struct DeviceUsage {
  std::uint16_t id = 0;
  std::optional<Arch> arch;  ///< empty until a process announces the device (DEVICE_OPEN)
  std::array<SlotUsage, kSlots> memory{};
  std::uint64_t buffers = 0;
  std::uint64_t processes = 0;  ///< holding memory there, or with the device open
  std::vector<DeviceWarning> warnings;
  bool operator==(const DeviceUsage&) const = default;
};

/// A process on one device: shown while it holds memory there or has the device open.
struct ProcessUsage {
  pid_t pid = 0;
  std::string name;
  std::string command;  ///< its command line ("python3 serve.py --port 80"); empty when unknown
  std::uint16_t device = 0;
  std::array<std::uint64_t, kSlots> bytes{};
  std::uint64_t buffers = 0;
  bool operator==(const ProcessUsage&) const = default;
};

struct Stats {
  std::vector<DeviceUsage> devices;
  std::vector<ProcessUsage> processes;
  std::uint64_t active_allocations = 0;
  bool operator==(const Stats&) const = default;
};

// ---- devices: what is known of each device, and who uses it ------------------------------------------

struct DeviceUser {
  pid_t pid = 0;
  std::string name;
  DeviceUseState state = DeviceUseState::implicit;
  bool operator==(const DeviceUser&) const = default;
};

struct DeviceInfo {
  std::uint16_t id = 0;
  std::optional<Arch> arch;
  std::array<std::uint64_t, kSlots> total{};
  std::vector<DeviceUser> processes;
  bool operator==(const DeviceInfo&) const = default;
};

struct DeviceList {
  std::vector<DeviceInfo> devices;
  bool operator==(const DeviceList&) const = default;
};

// ---- buffers: the live allocations, largest first ----------------------------------------------------

/// A `buffers` query: the filters, and how many rows (largest first) to send back.
struct BufferQuery {
  std::optional<std::uint16_t> device;
  std::optional<pid_t> pid;
  std::optional<BufferType> type;
  std::optional<AllocKind> kind;
  std::optional<std::uint64_t> limit;  ///< empty: every matching buffer
  std::optional<std::string> site;     ///< buffers whose site contains this text
  std::optional<std::string> scope;    ///< buffers whose op scope contains this text
  /// Set: the answer is the matching buffers grouped by this key and memory type (BufferList::groups),
  /// largest first; `limit` then counts groups.
  std::optional<GroupBy> by;
  bool operator==(const BufferQuery&) const = default;
};

struct BufferRow {
  pid_t pid = 0;
  std::string name;
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string site;
  std::string scope;      ///< the op it was made in, "outer/inner" (empty: none)
  bool internal = false;  ///< allocated by the runtime itself (kernel binaries, ...), not by the program
  std::uint64_t age_ms = 0;
  bool operator==(const BufferRow&) const = default;
};

/// Live buffers of one key (`BufferQuery::by`) and one memory type. A mesh tensor is one group entry with
/// its device count, not one row per device.
struct BufferGroup {
  std::string key;  ///< the op path or site ("" : none), or the pid or device in decimal
  pid_t pid = 0;    ///< by pid: the process (its name in `name`)
  std::string name;
  std::uint16_t device = 0;  ///< by device: the device
  Slot slot = Slot::DRAM;    ///< the memory type (circular buffers apart from L1 buffers)
  std::uint64_t bytes = 0;
  std::uint64_t buffers = 0;
  std::uint64_t largest = 0;    ///< the largest buffer's size
  std::uint32_t devices = 0;    ///< distinct devices the group's buffers are on
  std::uint32_t processes = 0;  ///< distinct processes holding them
  bool operator==(const BufferGroup&) const = default;
};

struct BufferList {
  std::vector<BufferRow> buffers;
  std::uint64_t total = 0;          ///< matching buffers, of which `buffers` are the largest
  std::vector<BufferGroup> groups;  ///< a grouped query's answer (`buffers` is then empty), bytes descending
  std::uint64_t total_groups = 0;   ///< groups there were, of which `groups` are the largest
  bool operator==(const BufferList&) const = default;
};

// ---- ops: what each op scope holds now, and the most it held at once ----------------------------------

/// One op of one process on one device and memory type. The op is its whole path: "forward/matmul" holds
/// what was allocated inside matmul within forward, not what forward allocated around it.
struct OpUsage {
  pid_t pid = 0;
  std::string name;
  std::string scope;
  std::uint16_t device = 0;
  Slot slot = Slot::DRAM;
  std::uint64_t bytes = 0;  ///< live now, allocated in this op
  std::uint64_t buffers = 0;
  std::uint64_t peak = 0;  ///< the most it held at once since the process began
  bool operator==(const OpUsage&) const = default;
};

struct OpList {
  std::vector<OpUsage> ops;  ///< peak descending
  std::uint64_t total = 0;   ///< matching entries, of which `ops` are the largest
  bool operator==(const OpList&) const = default;
};

// ---- leaks and orphans -----------------------------------------------------------------------------

/// A buffer still held when its device was closed.
struct Leak {
  pid_t pid = 0;
  std::string name;
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string site;
  std::string scope;  ///< the op it was made in (empty: none)
  std::uint64_t age_ms = 0;
  std::uint64_t time_ns = 0;   ///< CLOCK_REALTIME when recorded
  bool swept_by_close = true;  ///< false: the close sequence never released it (a lifecycle gap)
  /// The out-of-memory record of this process on this device before the close (0: none). A run that
  /// failed and then closed its device is not a leaker: what the close swept is shown as left by it.
  std::uint64_t after_oom = 0;
  std::uint64_t seq = 0;  ///< the leak record's number: 1, 2, ... in the order ttmemd kept them
  bool operator==(const Leak&) const = default;
};

/// A process that died holding device memory, and what it held.
struct Orphan {
  struct Held {
    std::uint16_t device = 0;
    Slot slot = Slot::DRAM;
    std::uint64_t bytes = 0;
    std::uint64_t buffers = 0;
    bool operator==(const Held&) const = default;
  };
  pid_t pid = 0;
  std::string name;
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME
  std::vector<Held> held;
  std::uint64_t bytes = 0;
  std::uint64_t buffers = 0;
  std::vector<std::string> messages;  ///< one line per held slot, for people
  /// What it held by where it was made: the largest 16 (site, op) pairs, bytes descending.
  struct Origin {
    std::string site;
    std::string scope;
    std::uint64_t bytes = 0;
    std::uint64_t buffers = 0;
    bool operator==(const Origin&) const = default;
  };
  std::vector<Origin> origins;
  std::uint64_t seq = 0;  ///< the orphan record's number: 1, 2, ... in the order ttmemd kept them
  bool operator==(const Orphan&) const = default;
};

/// Newest first.
struct Leaks {
  std::vector<Leak> leaks;
  std::vector<Orphan> orphans;
  bool operator==(const Leaks&) const = default;
};

// ---- out of memory: a refused allocation and the device as it was then ----------------------------

/// A process's holdings on the device of a failure.
struct OomHolder {
  pid_t pid = 0;
  std::string name;
  std::string command;
  std::array<std::uint64_t, kSlots> bytes{};
  std::uint64_t buffers = 0;
  /// Per bank, of the failed memory type: what its buffers (runtime's own apart) take in each bank.
  std::uint64_t per_bank = 0;
  std::uint64_t internal_per_bank = 0;  ///< per bank, the runtime's own buffers (kernel binaries, ...)
  bool operator==(const OomHolder&) const = default;
};

/// One of the largest buffers of the failed type at the failure.
struct OomBuffer {
  pid_t pid = 0;
  std::uint64_t id = 0;
  AllocKind kind = AllocKind::owning;
  std::uint64_t size = 0;
  std::uint64_t size_per_bank = 0;
  std::uint64_t address = 0;
  std::string site;
  std::string scope;
  bool internal = false;
  std::uint64_t age_ms = 0;
  bool operator==(const OomBuffer&) const = default;
};

/// A free block of one bank's address map.
struct FreeBlock {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  bool operator==(const FreeBlock&) const = default;
};

struct OomRecord {
  std::uint64_t id = 0;  ///< 1, 2, ... in the order recorded
  pid_t pid = 0;
  std::string name;
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME when recorded
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  FailureReason reason = FailureReason::out_of_memory;
  std::uint64_t size = 0;
  std::uint64_t page_size = 0;
  std::uint32_t num_banks = 0;
  std::uint64_t needed_per_bank = 0;
  std::string site;
  std::string scope;    ///< the op it was asked in, "outer/inner" (empty: none)
  std::string message;  ///< the runtime's own text
  /// The device's free space of that type at the failure, from ttmemd's map (per bank but `free`).
  std::optional<FreeSpace> space;
  std::vector<FreeBlock> free_blocks;  ///< the largest free blocks of one bank (at most 32), by address
  std::vector<OomHolder> holders;      ///< every process on the device, the failing one first
  std::vector<OomBuffer> largest;      ///< the largest buffers of the type (at most 10)
  OomVerdict verdict = OomVerdict::unknown;
  std::string summary;  ///< the verdict in one sentence, with its numbers
  bool operator==(const OomRecord&) const = default;
};

/// Newest first; `records` holds whole records (an `oom` query for one id) or all kept ones.
struct OomList {
  std::vector<OomRecord> records;
  std::uint64_t total = 0;  ///< records made since ttmemd started
  bool operator==(const OomList&) const = default;
};

// ---- map: one bank's address space ----------------------------------------------------------------

/// A block of the map: free, one buffer, several overlapping buffers, or a circular buffer.
struct MapBlock {
  std::uint64_t address = 0;
  std::uint64_t size = 0;
  BlockUse use = BlockUse::free;
  pid_t pid = 0;  ///< buffer and circular_buffer blocks: the owner
  std::uint64_t id = 0;
  AllocKind kind = AllocKind::owning;
  bool internal = false;
  std::string site;
  std::string scope;
  std::uint32_t buffers = 0;  ///< overlap: how many buffers hold it at once
  bool operator==(const MapBlock&) const = default;
};

/// The address space of one bank of a memory type (lockstep: it stands for every bank of the type).
struct AddressMap {
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  std::uint64_t base = 0;
  FreeSpace space;
  std::vector<MapBlock> blocks;            ///< by address, covering [base, base + bank_size)
  std::vector<MapBlock> circular_buffers;  ///< L1: every CB, by address (programs' CBs may share addresses)
  std::uint64_t overlapping_bytes = 0;     ///< per bank, held by more than one buffer at once
  bool operator==(const AddressMap&) const = default;
};

// ---- events: the recent history, and the stream of a subscriber --------------------------------------

/// An allocation or a free, as applied.
struct EventRow {
  EventOp op = EventOp::alloc;
  pid_t pid = 0;
  std::string name;
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string site;
  std::string scope;  ///< the op it was made in (empty: none)
  bool internal = false;
  std::uint32_t num_banks = 0;          ///< banks the buffer is spread over (0: not said)
  std::uint64_t size_per_bank = 0;      ///< bytes in each bank
  std::uint32_t mesh = 0;               ///< the mesh device it belongs to (0: none)
  std::uint64_t timestamp_ns = 0;       ///< the client's CLOCK_MONOTONIC when it happened
  std::uint64_t time_ns = 0;            ///< the server's CLOCK_REALTIME when applied
  std::optional<ReleaseReason> reason;  ///< frees only
  bool operator==(const EventRow&) const = default;
};

struct EventList {
  std::vector<EventRow> events;  ///< oldest first
  bool operator==(const EventList&) const = default;
};

/// The stream told a subscriber that it fell behind and this many notifications were dropped.
struct Dropped {
  std::uint64_t count = 0;
  bool operator==(const Dropped&) const = default;
};

/// A stream that is told of changes rather than each one (the dashboard's /api/events): this many events
/// were applied since the last such note, the latest at time_ns. One per 100 ms at most while events are
/// applied, and one before each record (a leak, orphan or OOM) for the events before it.
struct Changes {
  std::uint64_t events = 0;
  std::uint64_t time_ns = 0;
  bool operator==(const Changes&) const = default;
};

/// What a subscriber receives.
using StreamEvent = std::variant<EventRow, Leak, Orphan, OomRecord, Dropped, Changes>;

// ---- queries: what a tool asks -----------------------------------------------------------------------

struct StatsQuery {
  bool operator==(const StatsQuery&) const = default;
};
struct DevicesQuery {
  bool operator==(const DevicesQuery&) const = default;
};
struct LeaksQuery {
  /// Only records numbered above these (what a watcher has not seen yet; 0: all kept).
  std::uint64_t after_leak = 0;
  std::uint64_t after_orphan = 0;
  bool operator==(const LeaksQuery&) const = default;
};
struct EventsQuery {
  std::uint64_t limit = 100;  ///< the newest this many
  bool operator==(const EventsQuery&) const = default;
};
struct InfoQuery {
  bool reset_loop = false;  ///< start the loop's longest-stall figures again after this answer
  bool operator==(const InfoQuery&) const = default;
};
/// Out-of-memory records: all kept (newest first), or the one with this id.
struct OomQuery {
  std::optional<std::uint64_t> id;
  bool operator==(const OomQuery&) const = default;
};
/// The address map of one memory type of one device.
struct MapQuery {
  std::uint16_t device = 0;
  BufferType type = BufferType::L1;
  bool operator==(const MapQuery&) const = default;
};
/// Per-op figures (OpList), peak descending.
struct OpsQuery {
  std::optional<pid_t> pid;
  std::optional<std::uint16_t> device;
  std::optional<std::string> scope;  ///< ops whose path contains this text
  std::uint64_t limit = 200;
  bool operator==(const OpsQuery&) const = default;
};
/// Turns the connection into an event stream (StreamEvent).
struct SubscribeQuery {
  bool operator==(const SubscribeQuery&) const = default;
};
using Query = std::variant<StatsQuery, BufferQuery, LeaksQuery, DevicesQuery, EventsQuery, InfoQuery,
                           SubscribeQuery, OomQuery, MapQuery, OpsQuery>;

// ---- info: the server itself ----------------------------------------------------------------------------

// What the ledger refused or found odd, one counter each.
// clang-format off
#define TTMEM_LEDGER_ANOMALIES(X) \
  X(free_unknown_id)      /* a free for an id the server never saw */ \
  X(duplicate_id)         /* an allocation whose id is already live */ \
  X(events_after_close)   /* events for a device the process had closed */ \
  X(pid_mismatch)         /* HELLO claimed a pid other than the peer's */ \
  X(snapshot_mismatch)    /* SNAPSHOT_END count differed from what was received */ \
  X(limit_refused)        /* allocations refused by the per-process limit */ \
  X(device_out_of_range)  /* events naming a device id above the limit (no machine has it) */ \
  X(size_overflow)        /* allocations refused because a total would pass 2^64 - 1 */ \
  X(site_limit)           /* sites not kept: the process's site table is full */
// What the server's connections did wrong or ran into.
#define TTMEM_SERVER_ANOMALIES(X) \
  X(protocol_errors)       /* frames that failed to decode */ \
  X(refused_connections)   /* turned away: over a connection limit, or no descriptor to identify them */ \
  X(handshake_timeouts)    /* no HELLO in time */ \
  X(refused_identities)    /* HELLO from a process ttmemd cannot tell apart (pid 0, or already exited) */ \
  X(descriptor_shortages)  /* times the server ran out of file descriptors */
// clang-format on

/// A tool's or tracked process's connection.
struct ClientInfo {
  std::uint64_t connection = 0;
  pid_t pid = 0;
  std::uint32_t uid = 0;
  std::string name;
  std::string role;  ///< "tracked", "tool", or "handshake" until HELLO
  std::uint64_t events = 0;
  double events_per_second = 0;
  bool subscriber = false;
  std::uint64_t read_buffer_bytes = 0;
  std::uint64_t pending_output_bytes = 0;
  double connected_s = 0;
  std::optional<proto::ClientStats> client;  ///< libttmem's own counters (tracked processes)
  bool operator==(const ClientInfo&) const = default;
};

/// A named figure (limits are listed, not enumerated: each server option adds one).
struct NamedValue {
  std::string name;
  std::uint64_t value = 0;
  bool operator==(const NamedValue&) const = default;
};

/// The history's writer as ttmemd sees it (docs/history.md): degraded while writes fail (a full disk, a
/// state dir gone read-only); live tracking goes on and nothing stored is lost.
struct HistoryStatus {
  std::string path;
  bool degraded = false;
  std::string error;  ///< the latest write error (empty: none)
  std::uint64_t records_written = 0;
  std::uint64_t records_pending = 0;  ///< kept in memory until a write succeeds
  std::uint64_t lifetimes_written = 0;
  std::uint64_t lifetimes_dropped = 0;
  bool operator==(const HistoryStatus&) const = default;
};

struct ServerInfo {
  struct Loop {
    double longest_busy_ms = 0;
    double longest_busy_cpu_ms = 0;
    double longest_paged_step_ms = 0;
    std::uint64_t paged_queries = 0;
    bool operator==(const Loop&) const = default;
  };
  struct Anomalies {
#define TTMEM_ANOMALY_FIELD(name) std::uint64_t name = 0;
    TTMEM_LEDGER_ANOMALIES(TTMEM_ANOMALY_FIELD)
    TTMEM_SERVER_ANOMALIES(TTMEM_ANOMALY_FIELD)
#undef TTMEM_ANOMALY_FIELD
    bool operator==(const Anomalies&) const = default;
  };
  std::string version;
  std::uint32_t protocol = 0;
  pid_t pid = 0;
  std::string socket;
  double uptime_s = 0;
  std::uint64_t connections = 0;
  std::uint64_t processes = 0;
  std::vector<ClientInfo> clients;
  std::uint64_t events_total = 0;
  double events_per_second = 0;
  std::uint64_t active_allocations = 0;
  std::uint64_t registry_bytes = 0;
  std::uint64_t oom_records = 0;  ///< made since ttmemd started
  std::string death_watch;        ///< "pidfd", "polling", or "pidfd, polling for N process(es)"
  Loop loop;
  Anomalies anomalies;
  std::vector<NamedValue> limits;
  std::optional<HistoryStatus> history;  ///< empty: --no-history
  bool operator==(const ServerInfo&) const = default;
};

// ---- history: what ttmemd kept on disk (docs/history.md) -------------------------------------------

/// One kept record: the server's starts and stops, processes, device opens and closes, leaks, orphans,
/// out-of-memory records, anomalies.
struct HistoryRecord {
  std::uint64_t seq = 0;      ///< 1, 2, ... in the order kept (across restarts)
  std::uint64_t time_ns = 0;  ///< CLOCK_REALTIME
  HistoryKind kind = HistoryKind::server_start;
  pid_t pid = 0;  ///< 0: the server's own record
  std::string name;
  std::string command;
  std::optional<std::uint16_t> device;
  std::string site;
  std::string scope;
  std::uint64_t bytes = 0;
  std::uint64_t buffers = 0;
  std::string summary;  ///< one line for people
  std::string detail;   ///< the record's whole view as JSON (a leak, an orphan, an OOM record), or empty
  bool operator==(const HistoryRecord&) const = default;
};

/// Oldest first.
struct HistoryList {
  std::vector<HistoryRecord> records;
  bool truncated = false;  ///< more matched than the limit: these are the newest
  bool operator==(const HistoryList&) const = default;
};

struct TimelinePoint {
  std::uint64_t time_ns = 0;  ///< the end of the interval the point stands for
  std::uint64_t bytes = 0;    ///< in use at time_ns
  std::uint64_t peak = 0;     ///< the most in use during the interval
  bool operator==(const TimelinePoint&) const = default;
};

/// One device x slot in all (pid 0) or of one process. Points are written when a figure changes: between
/// two points the figure stayed at the first one's bytes.
struct TimelineSeries {
  Slot slot = Slot::DRAM;
  pid_t pid = 0;
  std::string name;  ///< the process's name (empty for the device's total)
  std::vector<TimelinePoint> points;
  bool operator==(const TimelineSeries&) const = default;
};

/// A span ttmemd did not see: it was not running (or not writing), from `from_ns` to `to_ns`.
struct TimelineGap {
  std::uint64_t from_ns = 0;
  std::uint64_t to_ns = 0;
  bool operator==(const TimelineGap&) const = default;
};

struct Timeline {
  std::uint16_t device = 0;
  std::uint64_t since_ns = 0;
  std::uint64_t until_ns = 0;
  std::uint64_t resolution_ns = 0;  ///< of the tier the points come from
  std::vector<TimelineSeries> series;
  std::vector<TimelineGap> gaps;
  bool operator==(const Timeline&) const = default;
};

}  // namespace ttmem::views
