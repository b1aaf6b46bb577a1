// Arbitrary views, field by field (see view_generators.hpp for why gen::exec and not gen::build).
#include "view_generators.hpp"

#include <map>
#include <nlohmann/json.hpp>

namespace ttmem::test {

using namespace views;
namespace gen = rc::gen;

namespace {

rc::Gen<std::string> text_gen() {
  return gen::map(
      gen::container<std::vector<std::string>>(gen::element<std::string>(
          "a", "Z", "0", " ", "_", ":", "/", "\"", "\\", "\n", "\t", "\x01", "é", "→", "\xf0\x9f\x98\x80")),
      [](const std::vector<std::string>& parts) {
        std::string s;
        for (const auto& p : parts) s += p;
        return s;
      });
}

std::string text() {
  return *text_gen();
}

template <typename T>
T any() {
  return *gen::arbitrary<T>();
}

template <NamedEnum E>
E any_of() {
  return *gen::elementOf(enum_values<E>());
}

/// Numbers that JSON carries exactly: whole numbers up to 2^64 - 1, and doubles of a few decimals.
double decimal() {
  return static_cast<double>(*gen::inRange<std::int64_t>(-1'000'000'000, 1'000'000'000)) / 1000.0;
}

/// Empty or one drawn from `draw`: half and half.
template <typename F>
auto maybe(F draw) -> std::optional<decltype(draw())> {
  if (*gen::arbitrary<bool>()) return std::nullopt;
  return draw();
}

/// How long a list is: up to a third of rapidcheck's current size. Lists nest three deep, and at full size
/// one case was megabytes of JSON (a minute under the sanitizers) without finding more.
std::size_t list_length() {
  return *gen::withSize(
      [](int size) { return gen::inRange<std::size_t>(0, static_cast<std::size_t>(size) / 3 + 1); });
}

/// A list of what `draw` gives. Drawn in a loop rather than with gen::container: a generator per element
/// type is what made this file slow to build.
template <typename F>
auto list_of(F draw) -> std::vector<decltype(draw())> {
  std::vector<decltype(draw())> out(list_length());
  for (auto& v : out) v = draw();
  return out;
}

template <typename T, std::size_t N>
std::array<T, N> array_of(T (*draw)()) {
  std::array<T, N> a{};
  for (auto& v : a) v = draw();
  return a;
}

FreeSpace free_space() {
  FreeSpace f;
  f.free = any<std::uint64_t>();
  f.free_per_bank = any<std::uint64_t>();
  f.largest_free_block = any<std::uint64_t>();
  f.free_blocks = any<std::uint64_t>();
  f.num_banks = any<std::uint32_t>();
  f.bank_size = any<std::uint64_t>();
  f.unplaced_buffers = any<std::uint64_t>();
  // Any finite ratio: JSON has no NaN or infinity, and the figure is a ratio of two counts.
  f.fragmentation = static_cast<double>(*gen::inRange<std::uint32_t>(0, 1u << 20)) / (1u << 20);
  return f;
}

SlotUsage slot_usage() {
  SlotUsage s;
  s.used = any<std::uint64_t>();
  s.peak = any<std::uint64_t>();
  s.buffers = any<std::uint64_t>();
  s.total = any<std::uint64_t>();
  s.space = maybe(free_space);
  return s;
}

std::uint64_t any_u64() {
  return any<std::uint64_t>();
}

Leak leak() {
  Leak l;
  l.pid = any<pid_t>();
  l.name = text();
  l.device = any<std::uint16_t>();
  l.type = any_of<BufferType>();
  l.kind = any_of<AllocKind>();
  l.id = any_u64();
  l.size = any_u64();
  l.address = any_u64();
  l.site = text();
  l.scope = text();
  l.age_ms = any_u64();
  l.time_ns = any_u64();
  l.swept_by_close = any<bool>();
  l.after_oom = any_u64();
  return l;
}

Orphan orphan() {
  Orphan o;
  o.pid = any<pid_t>();
  o.name = text();
  o.time_ns = any_u64();
  o.held = list_of([] {
    Orphan::Held h;
    h.device = any<std::uint16_t>();
    h.slot = any_of<Slot>();
    h.bytes = any_u64();
    h.buffers = any_u64();
    return h;
  });
  o.bytes = any_u64();
  o.buffers = any_u64();
  o.messages = list_of(text);
  o.origins = list_of([] { return Orphan::Origin{text(), text(), any_u64(), any_u64()}; });
  return o;
}

EventRow event_row() {
  EventRow e;
  e.op = any_of<EventOp>();
  e.pid = any<pid_t>();
  e.name = text();
  e.device = any<std::uint16_t>();
  e.type = any_of<BufferType>();
  e.kind = any_of<AllocKind>();
  e.id = any_u64();
  e.size = any_u64();
  e.address = any_u64();
  e.site = text();
  e.scope = text();
  e.internal = any<bool>();
  e.num_banks = any<std::uint32_t>();
  e.size_per_bank = any_u64();
  e.mesh = any<std::uint32_t>();
  e.timestamp_ns = any_u64();
  e.time_ns = any_u64();
  e.reason = maybe(any_of<ReleaseReason>);
  return e;
}

OomRecord oom_record() {
  OomRecord r;
  r.id = any_u64();
  r.pid = any<pid_t>();
  r.name = text();
  r.time_ns = any_u64();
  r.device = any<std::uint16_t>();
  r.type = any_of<BufferType>();
  r.reason = any_of<FailureReason>();
  r.size = any_u64();
  r.page_size = any_u64();
  r.num_banks = any<std::uint32_t>();
  r.needed_per_bank = any_u64();
  r.site = text();
  r.scope = text();
  r.message = text();
  r.space = maybe(free_space);
  r.free_blocks = list_of([] { return FreeBlock{any_u64(), any_u64()}; });
  r.holders = list_of([] {
    OomHolder h;
    h.pid = any<pid_t>();
    h.name = text();
    h.command = text();
    h.bytes = array_of<std::uint64_t, kSlots>(any_u64);
    h.buffers = any_u64();
    h.per_bank = any_u64();
    h.internal_per_bank = any_u64();
    return h;
  });
  r.largest = list_of([] {
    OomBuffer b;
    b.pid = any<pid_t>();
    b.id = any_u64();
    b.kind = any_of<AllocKind>();
    b.size = any_u64();
    b.size_per_bank = any_u64();
    b.address = any_u64();
    b.site = text();
    b.scope = text();
    b.internal = any<bool>();
    b.age_ms = any_u64();
    return b;
  });
  r.verdict = any_of<OomVerdict>();
  r.summary = text();
  return r;
}

/// A record with small lists: records nest four lists, and a hundred of a hundred each would make one
/// case megabytes of JSON (minutes under the sanitizers) without finding more.
OomRecord small_oom_record() {
  return *gen::resize(20, gen::exec(oom_record));
}

MapBlock map_block() {
  // Owner fields travel only with blocks that have an owner, overlap counts only with overlaps.
  MapBlock b;
  b.address = any_u64();
  b.size = any_u64();
  b.use = any_of<BlockUse>();
  if (b.use == BlockUse::buffer || b.use == BlockUse::circular_buffer) {
    b.pid = any<pid_t>();
    b.id = any_u64();
    b.kind = any_of<AllocKind>();
    b.internal = any<bool>();
    b.site = text();
    b.scope = text();
    b.buffers = 1;
  }
  if (b.use == BlockUse::overlap) b.buffers = any<std::uint32_t>();
  return b;
}

ClientInfo client_info() {
  ClientInfo c;
  c.connection = any_u64();
  c.pid = any<pid_t>();
  c.uid = any<std::uint32_t>();
  c.name = text();
  c.role = *gen::element<std::string>("tracked", "tool", "handshake");
  c.events = any_u64();
  c.events_per_second = decimal();
  c.subscriber = any<bool>();
  c.read_buffer_bytes = any_u64();
  c.pending_output_bytes = any_u64();
  c.connected_s = decimal();
  c.client = maybe([] {
    proto::ClientStats s;
#define TTMEM_GEN(name) s.name = any_u64();
    TTMEM_CLIENT_STATS(TTMEM_GEN)
#undef TTMEM_GEN
    return s;
  });
  return c;
}

}  // namespace

rc::Gen<FreeSpace> free_space_gen() {
  return gen::exec(free_space);
}

rc::Gen<Stats> stats_gen() {
  return gen::exec([] {
    Stats s;
    s.devices = list_of([] {
      DeviceUsage d;
      d.id = any<std::uint16_t>();
      d.arch = maybe(any_of<Arch>);
      d.memory = array_of<SlotUsage, kSlots>(slot_usage);
      d.buffers = any_u64();
      d.processes = any_u64();
      d.warnings = list_of([] { return DeviceWarning{text(), text()}; });
      return d;
    });
    s.processes = list_of([] {
      ProcessUsage p;
      p.pid = any<pid_t>();
      p.name = text();
      p.command = text();
      p.device = any<std::uint16_t>();
      p.bytes = array_of<std::uint64_t, kSlots>(any_u64);
      p.buffers = any_u64();
      return p;
    });
    s.active_allocations = any_u64();
    return s;
  });
}

rc::Gen<DeviceList> device_list_gen() {
  return gen::exec([] {
    DeviceList l;
    l.devices = list_of([] {
      DeviceInfo d;
      d.id = any<std::uint16_t>();
      d.arch = maybe(any_of<Arch>);
      d.total = array_of<std::uint64_t, kSlots>(any_u64);
      d.processes = list_of([] { return DeviceUser{any<pid_t>(), text(), any_of<DeviceUseState>()}; });
      return d;
    });
    return l;
  });
}

rc::Gen<BufferList> buffer_list_gen() {
  return gen::exec([] {
    BufferList l;
    l.buffers = list_of([] {
      BufferRow b;
      b.pid = any<pid_t>();
      b.name = text();
      b.device = any<std::uint16_t>();
      b.type = any_of<BufferType>();
      b.kind = any_of<AllocKind>();
      b.id = any_u64();
      b.size = any_u64();
      b.address = any_u64();
      b.site = text();
      b.scope = text();
      b.internal = any<bool>();
      b.age_ms = any_u64();
      return b;
    });
    l.total = any_u64();
    l.groups = list_of([] {
      BufferGroup g;
      g.key = text();
      g.pid = any<pid_t>();
      g.name = text();
      g.device = any<std::uint16_t>();
      g.slot = any_of<Slot>();
      g.bytes = any_u64();
      g.buffers = any_u64();
      g.largest = any_u64();
      g.devices = any<std::uint32_t>();
      g.processes = any<std::uint32_t>();
      return g;
    });
    l.total_groups = l.groups.empty() ? 0 : any_u64();
    return l;
  });
}

rc::Gen<OpList> op_list_gen() {
  return gen::exec([] {
    OpList l;
    l.ops = list_of([] {
      OpUsage o;
      o.pid = any<pid_t>();
      o.name = text();
      o.scope = text();
      o.device = any<std::uint16_t>();
      o.slot = any_of<Slot>();
      o.bytes = any_u64();
      o.buffers = any_u64();
      o.peak = any_u64();
      return o;
    });
    l.total = any_u64();
    return l;
  });
}

rc::Gen<Leak> leak_gen() {
  return gen::exec(leak);
}

rc::Gen<Orphan> orphan_gen() {
  return gen::exec(orphan);
}

rc::Gen<Leaks> leaks_gen() {
  return gen::exec([] { return Leaks{list_of(leak), list_of(orphan)}; });
}

rc::Gen<EventRow> event_row_gen() {
  return gen::exec(event_row);
}

rc::Gen<EventList> event_list_gen() {
  return gen::exec([] { return EventList{list_of(event_row)}; });
}

rc::Gen<OomRecord> oom_record_gen() {
  return gen::exec(oom_record);
}

rc::Gen<OomList> oom_list_gen() {
  return gen::exec([] {
    OomList l;
    const auto n = *gen::inRange<std::size_t>(0, 4);
    for (std::size_t i = 0; i < n; ++i) l.records.push_back(small_oom_record());
    l.total = any_u64();
    return l;
  });
}

rc::Gen<AddressMap> address_map_gen() {
  return gen::exec([] {
    AddressMap m;
    m.device = any<std::uint16_t>();
    m.type = any_of<BufferType>();
    m.base = any_u64();
    m.space = free_space();
    m.blocks = list_of(map_block);
    m.circular_buffers = list_of(map_block);
    m.overlapping_bytes = any_u64();
    return m;
  });
}

rc::Gen<StreamEvent> stream_event_gen() {
  return gen::exec([]() -> StreamEvent {
    switch (*gen::inRange(0, 6)) {
      case 0:
        return event_row();
      case 1:
        return leak();
      case 2:
        return orphan();
      case 3:
        return small_oom_record();
      case 4:
        return Changes{any_u64(), any_u64()};
      default:
        return Dropped{any_u64()};
    }
  });
}

rc::Gen<ServerInfo> server_info_gen() {
  return gen::exec([] {
    ServerInfo i;
    i.version = text();
    i.protocol = any<std::uint32_t>();
    i.pid = any<pid_t>();
    i.socket = text();
    i.uptime_s = decimal();
    i.connections = any_u64();
    i.processes = any_u64();
    i.clients = list_of(client_info);
    i.events_total = any_u64();
    i.events_per_second = decimal();
    i.active_allocations = any_u64();
    i.registry_bytes = any_u64();
    i.oom_records = any_u64();
    i.death_watch = text();
    i.loop = {decimal(), decimal(), decimal(), any_u64()};
#define TTMEM_GEN(name) i.anomalies.name = any_u64();
    TTMEM_LEDGER_ANOMALIES(TTMEM_GEN)
    TTMEM_SERVER_ANOMALIES(TTMEM_GEN)
#undef TTMEM_GEN
    // Limits travel as a JSON object: one value per name, in name order.
    std::map<std::string, std::uint64_t> limits;
    for (const auto& name : list_of(text)) limits[name] = any_u64();
    for (const auto& [k, v] : limits) i.limits.push_back({k, v});
    i.history = maybe([] {
      return HistoryStatus{text(),   *gen::arbitrary<bool>(), text(), any_u64(), any_u64(), any_u64(),
                           any_u64()};
    });
    return i;
  });
}

rc::Gen<HistoryList> history_list_gen() {
  return gen::exec([] {
    HistoryList v;
    v.records = list_of([] {
      HistoryRecord r;
      r.seq = any_u64();
      r.time_ns = any_u64();
      r.kind = any_of<HistoryKind>();
      r.pid = any<pid_t>();
      r.name = text();
      r.command = text();
      r.device = maybe(any<std::uint16_t>);
      r.site = text();
      r.scope = text();
      r.bytes = any_u64();
      r.buffers = any_u64();
      r.summary = text();
      // The detail travels as the JSON object it is; as text it comes back in the library's compact form.
      if (*gen::arbitrary<bool>()) r.detail = nlohmann::json({{"size", any_u64()}, {"site", text()}}).dump();
      return r;
    });
    v.truncated = *gen::arbitrary<bool>();
    return v;
  });
}

rc::Gen<Timeline> timeline_gen() {
  return gen::exec([] {
    Timeline t;
    t.device = any<std::uint16_t>();
    t.since_ns = any_u64();
    t.until_ns = any_u64();
    t.resolution_ns = any_u64();
    t.series = list_of([] {
      TimelineSeries s;
      s.slot = any_of<Slot>();
      s.pid = any<pid_t>();
      s.name = text();
      s.points = list_of([] { return TimelinePoint{any_u64(), any_u64(), any_u64()}; });
      return s;
    });
    t.gaps = list_of([] { return TimelineGap{any_u64(), any_u64()}; });
    return t;
  });
}

rc::Gen<Query> query_gen() {
  return gen::exec([]() -> Query {
    // Limits are JSON integers the decoder reads as signed 64-bit.
    const auto limit = [] { return *gen::inRange<std::uint64_t>(0, std::uint64_t{1} << 62); };
    switch (*gen::inRange(0, 10)) {
      case 0:
        return StatsQuery{};
      case 1: {
        BufferQuery q;
        q.device = maybe(any<std::uint16_t>);
        q.pid = maybe(any<pid_t>);
        q.type = maybe(any_of<BufferType>);
        q.kind = maybe(any_of<AllocKind>);
        q.limit = maybe(limit);
        q.site = maybe(text);
        q.scope = maybe(text);
        q.by = maybe(any_of<GroupBy>);
        return q;
      }
      case 2:
        return LeaksQuery{};
      case 3:
        return DevicesQuery{};
      case 4:
        return EventsQuery{limit()};
      case 5:
        return InfoQuery{any<bool>()};
      case 6:
        return SubscribeQuery{};
      case 7:
        return OomQuery{maybe([] { return *gen::inRange<std::uint64_t>(1, std::uint64_t{1} << 62); })};
      case 8: {
        OpsQuery q;
        q.pid = maybe(any<pid_t>);
        q.device = maybe(any<std::uint16_t>);
        q.scope = maybe(text);
        q.limit = limit();
        return q;
      }
      default:
        return MapQuery{any<std::uint16_t>(),
                        *gen::elementOf(std::vector<BufferType>(kManagedTypes.begin(), kManagedTypes.end()))};
    }
  });
}

}  // namespace ttmem::test
