// The ledger's state machine; see registry.hpp.
#include "registry.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <tuple>
#include <unordered_map>

#include "oom_record.hpp"

namespace ttmem::model {

namespace {

template <typename T>
void push_bounded(std::deque<T>& q, T value, std::size_t max) {
  q.push_front(std::move(value));
  while (q.size() > max) q.pop_back();
}

}  // namespace

Anomalies& Anomalies::operator+=(const Anomalies& o) {
#define TTMEM_ADD(name) name += o.name;
  TTMEM_LEDGER_ANOMALIES(TTMEM_ADD)
#undef TTMEM_ADD
  return *this;
}

void Registry::add_sink(Sink& sink) {
  sinks_.push_back(&sink);
  sinks_changed();
}

void Registry::remove_sink(Sink& sink) {
  std::erase(sinks_, &sink);
  sinks_changed();
}

void Registry::sinks_changed() {
  event_sinks_.clear();
  for (Sink* s : sinks_) {
    if (s->wants_events()) event_sinks_.push_back(s);
  }
}

std::vector<std::string> OrphanRecord::lines() const {
  std::vector<std::string> out;
  for (const Held& h : held) {
    out.push_back(fmt::format("pid {} ({}) died holding {} bytes of {} on device {} in {} buffer{}", pid,
                              process_name, h.bytes, to_string(h.slot), h.device, h.buffers,
                              h.buffers == 1 ? "" : "s"));
  }
  return out;
}

Registry::Registry(RegistryLimits limits) : limits_(limits) {}

ProcessState& Registry::process(pid_t pid, std::uint64_t start_time, uid_t uid, const std::string& name) {
  if (auto it = slot_of_pid_.find(pid); it != slot_of_pid_.end()) {
    ProcessState& existing = processes_.at(it->second);
    if (existing.start_time == start_time || start_time == 0 || existing.start_time == 0) return existing;
    // The pid was reused: the process we knew is gone even if we missed its death.
    process_died(existing);
  }
  ProcessState& p = new_process(pid, start_time, uid, name);
  slot_of_pid_[pid] = p.slot;
  return p;
}

ProcessState& Registry::new_process(pid_t pid, std::uint64_t start_time, uid_t uid, const std::string& name) {
  const std::uint32_t slot = next_slot_++;
  ProcessState& p = processes_[slot];
  p.slot = slot;
  p.pid = pid;
  p.start_time = start_time;
  p.uid = uid;
  p.name = name;
  p.alive = true;
  p.first_seen_ns = monotonic_ns();
  return p;
}

ProcessState& Registry::detached_process(pid_t pid, uid_t uid) {
  ProcessState& p = new_process(pid, 0, uid, "?");
  p.alive = false;
  return p;
}

ProcessState* Registry::find_process(pid_t pid) {
  auto it = slot_of_pid_.find(pid);
  return it == slot_of_pid_.end() ? nullptr : &processes_.at(it->second);
}

const ProcessState* Registry::find_process(pid_t pid) const {
  auto it = slot_of_pid_.find(pid);
  return it == slot_of_pid_.end() ? nullptr : &processes_.at(it->second);
}

const ProcessState* Registry::process_by_slot(std::uint32_t slot) const {
  auto it = processes_.find(slot);
  return it == processes_.end() ? nullptr : &it->second;
}

DeviceState& Registry::new_device(std::uint16_t id) {
  DeviceState& d = devices_[id];
  d.id = id;
  if (device_index_.size() <= id) device_index_.resize(id + 1u, nullptr);
  device_index_[id] = &d;
  return d;
}

ProcessDevice& Registry::new_process_device(ProcessState& p, std::uint16_t id) {
  ProcessDevice& pd = p.devices[id];
  pd.device = &device(id);
  if (p.device_index.size() <= id) p.device_index.resize(id + 1u, nullptr);
  p.device_index[id] = &pd;
  return pd;
}

std::string_view Registry::site_text(const ProcessState& p, std::uint32_t site) const {
  if (site == 0) return {};
  auto it = p.sites.find(site);
  return it == p.sites.end() ? std::string_view("?") : std::string_view(it->second);
}

OriginText Registry::origin(const ProcessState& p, std::uint32_t label) const {
  const SiteAndScope o = p.labels.at(label);
  return {site_text(p, o.site), site_text(p, o.scope)};
}

OriginText Registry::origin(std::uint32_t process_slot, std::uint32_t label) const {
  if (const ProcessState* p = process_by_slot(process_slot)) return origin(*p, label);
  return {};
}

std::string_view Registry::site_text(std::uint32_t process_slot, std::uint32_t site) const {
  if (site == 0) return {};
  if (const ProcessState* p = process_by_slot(process_slot)) return site_text(*p, site);
  auto retired = retired_.find(process_slot);
  if (retired == retired_.end()) return "?";
  auto it = retired->second.sites.find(site);
  return it == retired->second.sites.end() ? std::string_view("?") : std::string_view(it->second);
}

std::string_view Registry::process_name(std::uint32_t process_slot) const {
  if (const ProcessState* p = process_by_slot(process_slot)) return p->name;
  auto retired = retired_.find(process_slot);
  return retired == retired_.end() ? std::string_view("?") : std::string_view(retired->second.name);
}

Anomalies Registry::anomalies() const {
  Anomalies a = retired_anomalies_;
  for (const auto& [slot, p] : processes_) a += p.anomalies;
  return a;
}

template <int Sign>
void Registry::account(ProcessState& p, ProcessDevice& pd, Slot slot, std::uint64_t size, std::uint32_t label,
                       std::uint16_t device) {
  static_assert(Sign == 1 || Sign == -1);
  const std::int64_t bytes = Sign * static_cast<std::int64_t>(size);
  auto apply = [&](Figures& f) {
    f.bytes = static_cast<std::uint64_t>(static_cast<std::int64_t>(f.bytes) + bytes);
    f.buffers = static_cast<std::uint64_t>(static_cast<std::int64_t>(f.buffers) + Sign);
    if constexpr (Sign > 0) {  // a free lowers no peak
      f.peak_bytes = std::max(f.peak_bytes, f.bytes);
      f.interval_peak = std::max(f.interval_peak, f.bytes);
    }
  };
  const std::size_t s = index(slot);
  ++pd.device->changes[index(memory_of(slot))];
  apply(pd.device->usage[s]);
  apply(pd.usage[s]);
  apply(p.usage[s]);
  if (label & SiteLabels::kPairBit) {
    // An op holds what the ops inside it hold: "forward"'s peak is the most the whole forward held at once.
    for (std::uint32_t scope = p.labels.at(label).scope; scope; scope = op_parent(p, scope))
      p.ops.apply({scope, device, slot}, bytes, Sign);
  }
}

std::uint32_t Registry::op_parent(ProcessState& p, std::uint32_t scope) {
  if (auto it = p.op_parents.find(scope); it != p.op_parents.end()) return it->second;
  std::uint32_t parent = 0;
  if (auto text = p.sites.find(scope); text != p.sites.end()) {
    const std::size_t slash = text->second.rfind('/');
    if (slash != std::string::npos && slash > 0) {
      const std::string_view up(text->second.data(), slash);
      for (const auto& [id, t] : p.sites) {
        if (t == up && id != scope) {
          parent = id;
          break;
        }
      }
    }
  }
  p.op_parents.emplace(scope, parent);
  return parent;
}

template <typename F>
void Registry::drop_group(ProcessState& p, ProcessDevice& pd, F&& f) {
  if (pd.group == AllocationTable::kNoGroup) return;
  table_.erase_group(pd.group, [&](const AllocationRecord& r) {
    f(r);
    account<-1>(p, pd, r);
  });
}

void Registry::device_open(ProcessState& p, const proto::DeviceOpen& m) {
  if (m.device > limits_.max_device_id) {
    ++p.anomalies.device_out_of_range;  // counted, not applied: an id no machine has
    return;
  }
  if (p.snapshot) {
    // One entry per device: a snapshot repeating DEVICE_OPEN cannot grow it past the device ids.
    auto& devices = p.snapshot->devices;
    auto same =
        std::find_if(devices.begin(), devices.end(), [&](const auto& d) { return d.device == m.device; });
    if (same != devices.end()) {
      *same = m;
    } else {
      devices.push_back(m);
    }
    return;
  }
  DeviceState& d = device(m.device);
  d.announced = true;
  d.arch = m.arch;
  for (Slot slot : enum_values<Slot>()) d.total_bytes[index(slot)] = m.total_bytes[index(memory_of(slot))];
  for (std::size_t t = 0; t < kBufferTypes; ++t) {
    const std::uint32_t banks = m.num_banks[t];
    d.banks[t] = {m.base_address[t], banks ? m.total_bytes[t] / banks : 0, banks};
    ++d.changes[t];
  }
  ProcessDevice& pd = process_device(p, m.device);
  pd.state = ProcessDevice::State::open;
  pd.close_began_ns = 0;
  pd.last_oom = 0;
  for (Sink* s : sinks_) s->on_device_open(p, m);
}

void Registry::device_close(ProcessState& p, const proto::DeviceClose& m) {
  if (m.device > limits_.max_device_id) {
    ++p.anomalies.device_out_of_range;
    return;
  }
  ProcessDevice& pd = process_device(p, m.device);
  if (m.phase == proto::ClosePhase::begin) {
    pd.state = ProcessDevice::State::closing;
    pd.close_began_ns = monotonic_ns();
    for (Sink* s : sinks_) s->on_device_close(p, m);
    return;
  }
  // End of close: whatever the process still holds there was never released by the close sequence.
  const std::uint64_t now = monotonic_ns();
  drop_group(p, pd, [&](const AllocationRecord& r) { record_leak(p, r, false, now); });
  pd.state = ProcessDevice::State::closed;
  for (Sink* s : sinks_) s->on_device_close(p, m);
}

void Registry::sites(ProcessState& p, const std::vector<proto::Site>& sites) {
  for (const auto& s : sites) {
    auto it = p.sites.find(s.id);
    const std::size_t old_bytes = it == p.sites.end() ? 0 : it->second.size();
    const bool room = it != p.sites.end() || p.sites.size() < limits_.max_sites_per_process;
    if (!room || p.site_bytes - old_bytes + s.text.size() > limits_.max_site_bytes_per_process) {
      ++p.anomalies.site_limit;  // events naming it show "?"
      continue;
    }
    p.site_bytes = p.site_bytes - old_bytes + s.text.size();
    if (it != p.sites.end() && it->second != s.text) p.op_parents.clear();  // a path renamed: find them anew
    p.sites[s.id] = s.text;
  }
}

void Registry::alloc_failure(ProcessState& p, const proto::AllocFailure& m) {
  if (m.device > limits_.max_device_id) {
    ++p.anomalies.device_out_of_range;
    return;
  }
  views::OomRecord record = build_oom_record(*this, p, m, ++oom_seq_);
  process_device(p, m.device).last_oom = record.id;
  for (Sink* s : sinks_) s->on_oom(record);
  push_bounded(ooms_, std::move(record), limits_.max_oom_records);
}

void Registry::record_leak(ProcessState& p, const AllocationRecord& r, bool swept, std::uint64_t now_ns) {
  LeakRecord leak;
  leak.pid = p.pid;
  leak.process_name = p.name;
  leak.device = r.device;
  leak.type = static_cast<proto::BufferType>(r.type);
  leak.kind = r.kind();
  leak.id = r.id;
  leak.size = r.size;
  leak.address = r.address;
  const OriginText where = origin(p, r.label);
  leak.site = std::string(where.site);
  leak.scope = std::string(where.scope);
  leak.age_ns = r.age_ms(now_ns) * 1'000'000;
  leak.time_ns = realtime_ns();
  leak.swept_by_close = swept;
  if (const ProcessDevice* pd = find_process_device(p, r.device)) leak.after_oom = pd->last_oom;
  leak.seq = ++leak_seq_;
  for (Sink* s : sinks_) s->on_leak(leak);
  push_bounded(leaks_, std::move(leak), limits_.max_leak_records);
}

void Registry::insert_allocation(ProcessState& p, ProcessDevice* known, const proto::EventRecord& e) {
  if (table_.size() >= limits_.max_live_allocations_per_process &&
      buffer_count(p.usage) >= limits_.max_live_allocations_per_process) {
    ++p.anomalies.limit_refused;
    return;
  }
  // Totals are sums of sizes: refuse what would wrap them (the device's total bounds the process's on
  // that device; the process's own total adds up its devices).
  ProcessDevice& pd = known ? *known : process_device(p, e.device);
  const std::size_t s = index(slot_of(e.type, e.kind));
  if (e.size > ~std::uint64_t{0} - pd.device->usage[s].bytes || e.size > ~std::uint64_t{0} - p.usage[s].bytes)
      [[unlikely]] {
    ++p.anomalies.size_overflow;
    return;
  }
  if (pd.group == AllocationTable::kNoGroup) pd.group = table_.new_group();
  AllocationRecord* r = nullptr;
  switch (table_.emplace(pd.group, {p.slot, e.device, e.id}, &r)) {
    case AllocationTable::Insert::inserted:
      break;
    case AllocationTable::Insert::duplicate:
      ++p.anomalies.duplicate_id;
      return;
    case AllocationTable::Insert::full:
      ++p.anomalies.limit_refused;
      return;
  }
  const std::uint32_t label = p.labels.label(e.site, e.scope, limits_.max_sites_per_process);
  r->describe_from(e, label);
  // Counted from the event, not from the record just written: its fields are still in flight to memory.
  account<1>(p, pd, slot_of(e.type, e.kind), e.size, label, e.device);
}

bool Registry::release_allocation(ProcessState& p, ProcessDevice* pd, const proto::EventRecord& e,
                                  AllocationRecord& r) {
  if (!pd || pd->group == AllocationTable::kNoGroup ||
      !table_.erase(pd->group, {p.slot, e.device, e.id}, &r)) {
    // libttmem sends every allocation before its free (send epochs), so this id is not live: a double
    // free, or a free of something allocated before tracking began.
    ++p.anomalies.free_unknown_id;
    return false;
  }
  account<-1>(p, *pd, r);
  if (e.reason == proto::ReleaseReason::close_leak) record_leak(p, r, true, monotonic_ns());
  return true;
}

void Registry::event(ProcessState& p, const proto::EventRecord& e) {
  if (e.device > limits_.max_device_id) [[unlikely]] {
    ++p.anomalies.device_out_of_range;
    return;
  }
  if (p.snapshot) [[unlikely]] {
    if (e.op != proto::EventOp::alloc) return;
    ++p.snapshot->received;
    // The per-process limit holds while the snapshot is received, not only once it ends.
    if (p.snapshot->allocations.size() >= limits_.max_live_allocations_per_process) {
      ++p.anomalies.limit_refused;
      return;
    }
    p.snapshot->allocations.push_back(e);
    return;
  }
  ++p.events;
  ++events_applied_;
  ProcessDevice* pd = find_process_device(p, e.device);
  if (pd && pd->state == ProcessDevice::State::closed) [[unlikely]] {
    ++p.anomalies.events_after_close;
    return;
  }
  // What is shown of it (history, sinks) is written in place: into the history's next entry when kept.
  proto::EventRecord unkept;
  proto::EventRecord& shown = limits_.event_history > 0 ? next_history_entry(p).event : unkept;
  shown = e;
  std::uint32_t allocated_ms = 0;
  if (e.op == proto::EventOp::alloc) {
    insert_allocation(p, pd, e);
  } else if (AllocationRecord r; release_allocation(p, pd, e, r)) {
    r.describe(shown);
    allocated_ms = r.time_ms;  // a free carries only its id: show what was freed
    const SiteAndScope where = p.labels.at(r.label);
    shown.site = where.site;
    shown.scope = where.scope;
  }
  if (!event_sinks_.empty()) {
    const AppliedEvent applied{&p,
                               shown,
                               site_text(p, shown.site),
                               site_text(p, shown.scope),
                               batch_time_ns_ ? batch_time_ns_ : realtime_ns(),
                               allocated_ms};
    for (Sink* s : event_sinks_) s->on_event(applied);
  }
}

HistoryEntry& Registry::next_history_entry(const ProcessState& p) {
  if (history_.size() < limits_.event_history) [[unlikely]]
    history_.resize(limits_.event_history);
  HistoryEntry& h = history_[history_next_];
  h.time_ns = batch_time_ns_ ? batch_time_ns_ : realtime_ns();
  h.pid = p.pid;
  h.process_slot = p.slot;
  if (++history_next_ == history_.size()) {  // no division on this path
    history_next_ = 0;
    history_full_ = true;
  }
  return h;
}

void Registry::begin_interval() {
  auto restart = [](SlotFigures& figures) {
    for (Figures& f : figures) f.interval_peak = f.bytes;
  };
  for (auto& [id, d] : devices_) restart(d.usage);
  for (auto& [slot, p] : processes_) {
    restart(p.usage);
    for (auto& [dev, pd] : p.devices) restart(pd.usage);
  }
}

std::vector<HistoryEntry> Registry::recent_events(std::size_t limit) const {
  const std::size_t count = history_full_ ? history_.size() : history_next_;
  const std::size_t n = std::min(limit, count);
  std::vector<HistoryEntry> out;
  out.reserve(n);
  for (std::size_t i = count - n; i < count; ++i) {
    const std::size_t at = history_full_ ? (history_next_ + i) % history_.size() : i;
    out.push_back(history_[at]);
  }
  return out;
}

void Registry::snapshot_begin(ProcessState& p, const proto::SnapshotBegin& m) {
  p.snapshot = ProcessState::Snapshot{m.snapshot_id, {}, {}, 0};
}

void Registry::drop_process_allocations(ProcessState& p) {
  for (auto& [dev, pd] : p.devices) drop_group(p, pd, [](const AllocationRecord&) {});
}

void Registry::snapshot_end(ProcessState& p, const proto::SnapshotEnd& m) {
  if (!p.snapshot) {
    ++p.anomalies.snapshot_mismatch;
    return;
  }
  ProcessState::Snapshot snap = std::move(*p.snapshot);
  p.snapshot.reset();
  if (snap.id != m.snapshot_id || snap.received != m.num_allocations) ++p.anomalies.snapshot_mismatch;
  // Replace the process's state as one step: the event loop runs nothing else in between.
  drop_process_allocations(p);
  for (auto& [id, pd] : p.devices) {
    if (pd.state != ProcessDevice::State::closed) pd.state = ProcessDevice::State::implicit;
  }
  for (const auto& d : snap.devices) device_open(p, d);
  for (const auto& e : snap.allocations) insert_allocation(p, nullptr, e);
}

OrphanRecord Registry::process_died(ProcessState& p) {
  OrphanRecord orphan;
  orphan.pid = p.pid;
  orphan.process_name = p.name;
  for (const auto& [dev, pd] : p.devices) {
    for (std::size_t s = 0; s < kSlots; ++s) {
      if (pd.usage[s].buffers == 0) continue;
      orphan.held.push_back({dev, static_cast<Slot>(s), pd.usage[s].bytes, pd.usage[s].buffers});
      orphan.total_bytes += pd.usage[s].bytes;
      orphan.total_buffers += pd.usage[s].buffers;
    }
  }
  orphan.seq = orphan.held.empty() ? 0 : ++orphan_seq_;
  // Tallied while the records are dropped: one pass over the process's own records, as before.
  std::unordered_map<std::uint32_t, std::pair<std::uint64_t, std::uint64_t>> by_label;  // bytes, buffers
  for (auto& [dev, pd] : p.devices) {
    drop_group(p, pd, [&](const AllocationRecord& r) {
      auto& [bytes, buffers] = by_label[r.label];
      bytes += r.size;
      ++buffers;
    });
  }
  for (const auto& [label, figures] : by_label) {
    const OriginText where = origin(p, label);
    orphan.origins.push_back(
        {std::string(where.site), std::string(where.scope), figures.first, figures.second});
  }
  std::sort(orphan.origins.begin(), orphan.origins.end(), [](const auto& a, const auto& b) {
    return a.bytes != b.bytes ? a.bytes > b.bytes : std::tie(a.site, a.scope) < std::tie(b.site, b.scope);
  });
  if (orphan.origins.size() > OrphanRecord::kOrphanOrigins)
    orphan.origins.resize(OrphanRecord::kOrphanOrigins);
  for (auto& [dev, pd] : p.devices) {
    if (pd.group != AllocationTable::kNoGroup) table_.release_group(pd.group);
  }
  orphan.time_ns = realtime_ns();  // once reclaimed: the record's time says when its memory was free again
  if (!orphan.held.empty()) push_bounded(orphans_, orphan, limits_.max_orphan_records);
  p.alive = false;
  retired_anomalies_ += p.anomalies;
  if (limits_.event_history > 0) {
    retired_[p.slot] = Retired{p.name, std::move(p.sites)};
    constexpr std::size_t kRetiredProcesses = 256;
    while (retired_.size() > kRetiredProcesses) retired_.erase(retired_.begin());  // oldest slot
  }
  if (auto it = slot_of_pid_.find(p.pid); it != slot_of_pid_.end() && it->second == p.slot)
    slot_of_pid_.erase(it);
  processes_.erase(p.slot);  // p is gone from here on
  for (Sink* s : sinks_) s->on_process_died(orphan);
  return orphan;
}

}  // namespace ttmem::model
