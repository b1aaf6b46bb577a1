#include "history_sink.hpp"

#include <fmt/format.h>

#include "ledger_views.hpp"
#include "ttmem/schema.hpp"
#include "ttmem/units.hpp"

namespace ttmem::history {

namespace {

std::uint64_t series_key(std::uint32_t process_slot, std::uint16_t device, Slot slot) {
  return (static_cast<std::uint64_t>(process_slot) << 24) | (static_cast<std::uint64_t>(device) << 8) |
         static_cast<std::uint64_t>(slot);
}

}  // namespace

HistorySink::HistorySink(model::Registry& registry, Writer& writer)
    : registry_(registry),
      writer_(writer),
      min_size_(writer.options().lifetime_min_size),
      per_interval_(std::max<std::uint64_t>(
          1, writer.options().lifetimes_per_s * writer.options().interval_ms / 1000)) {
  anomalies_ = registry_.anomalies();
  clock_offset_ns_ = realtime_ns() - monotonic_ns();
}

void HistorySink::on_event(const model::AppliedEvent& a) {
  const proto::EventRecord& e = a.event;
  if (e.op == proto::EventOp::alloc) {
    const std::uint32_t slot = a.process->slot;
    if (slot >= seen_.size() || !seen_[slot]) process_seen(*a.process);
    return;
  }
  if (e.size < min_size_ || e.size == 0) return;  // size 0: a free of an id never seen
  if (!take_lifetime()) return;
  const auto freed_ms = static_cast<std::uint32_t>(e.timestamp_ns / 1'000'000);
  // The client stamps with the host's CLOCK_MONOTONIC: in wall-clock time that is exact to the nanosecond,
  // where the batch's time is shared by every event of the batch. A stamp far from now is not trusted.
  std::uint64_t freed_ns = e.timestamp_ns + clock_offset_ns_;
  if (e.timestamp_ns == 0 || freed_ns > a.time_ns + kSecondNs || freed_ns + 3600 * kSecondNs < a.time_ns)
    freed_ns = a.time_ns;
  lifetimes_.push_back({freed_ns, freed_ms - a.allocated_ms, a.process->slot, e.site, e.scope, e.device,
                        static_cast<std::uint8_t>(e.type), static_cast<std::uint8_t>(e.kind), e.id, e.size,
                        e.address, e.size_per_bank});
}

bool HistorySink::take_lifetime() {
  if (lifetimes_.size() < per_interval_) return true;
  ++dropped_;
  return false;
}

void HistorySink::keep(views::HistoryRecord&& r) {
  Batch b;
  b.records.push_back(std::move(r));
  writer_.submit(std::move(b));
}

views::HistoryRecord HistorySink::process_record(HistoryKind kind, const model::ProcessState& p) const {
  views::HistoryRecord r;
  r.time_ns = realtime_ns();
  r.kind = kind;
  r.pid = p.pid;
  r.name = p.name;
  r.command = p.command;
  return r;
}

void HistorySink::process_seen(const model::ProcessState& p) {
  if (p.slot >= seen_.size()) seen_.resize(p.slot + 1);
  seen_[p.slot] = true;
  names_[p.slot] = {p.pid, p.start_time, p.name};
  auto r = process_record(HistoryKind::process_start, p);
  r.summary = fmt::format("pid {} ({}) started using devices: {}", p.pid, p.name,
                          p.command.empty() ? p.name : p.command);
  keep(std::move(r));
}

void HistorySink::on_device_open(const model::ProcessState& p, const proto::DeviceOpen& m) {
  if (p.slot >= seen_.size() || !seen_[p.slot]) process_seen(p);
  auto r = process_record(HistoryKind::device_open, p);
  r.device = m.device;
  const auto arch = enum_from<Arch>(m.arch);
  r.summary = fmt::format("pid {} ({}) opened device {} ({})", p.pid, p.name, m.device,
                          arch ? to_string(*arch) : "?");
  keep(std::move(r));
}

void HistorySink::on_device_close(const model::ProcessState& p, const proto::DeviceClose& m) {
  if (m.phase != proto::ClosePhase::end) return;  // the end says it is gone; the begin only starts the sweep
  auto r = process_record(HistoryKind::device_close, p);
  r.device = m.device;
  r.summary = fmt::format("pid {} ({}) closed device {}", p.pid, p.name, m.device);
  keep(std::move(r));
}

views::HistoryRecord HistorySink::buffer_record(HistoryKind kind, std::uint64_t time_ns, pid_t pid,
                                                const std::string& name, std::uint16_t device,
                                                const std::string& site, const std::string& scope,
                                                std::uint64_t bytes) const {
  views::HistoryRecord r;
  r.time_ns = time_ns;
  r.kind = kind;
  r.pid = pid;
  r.name = name;
  if (const auto* p = registry_.find_process(pid)) r.command = p->command;
  r.device = device;
  r.site = site;
  r.scope = scope;
  r.bytes = bytes;
  r.buffers = 1;
  return r;
}

void HistorySink::on_leak(const model::LeakRecord& l) {
  auto r =
      buffer_record(HistoryKind::leak, l.time_ns, l.pid, l.process_name, l.device, l.site, l.scope, l.size);
  r.summary = fmt::format("pid {} ({}) left {} of {} on device {} at close (buffer {}, site {}{}{})", l.pid,
                          l.process_name, human_bytes(l.size), to_string(l.type), l.device, l.id,
                          l.site.empty() ? "-" : l.site, l.scope.empty() ? "" : ", op ", l.scope);
  r.detail = schema::to_json(views::StreamEvent{model::leak_view(l)});
  keep(std::move(r));
  // The close ended the buffer's life: it is a lifetime like a freed one, with the texts the record has.
  const model::ProcessState* p = registry_.find_process(l.pid);
  if (!p || l.size < min_size_ || !take_lifetime()) return;
  texts_.emplace_back(l.site, l.scope);
  lifetimes_.push_back({l.time_ns, static_cast<std::uint32_t>(l.age_ns / 1'000'000), p->slot, kTextLabel,
                        static_cast<std::uint32_t>(texts_.size() - 1), l.device,
                        static_cast<std::uint8_t>(l.type), static_cast<std::uint8_t>(l.kind), l.id, l.size,
                        l.address, 0});
}

void HistorySink::on_process_died(const model::OrphanRecord& o) {
  const model::ProcessState* p = registry_.find_process(o.pid);
  views::HistoryRecord exit;
  exit.time_ns = o.time_ns;
  exit.kind = HistoryKind::process_exit;
  exit.pid = o.pid;
  exit.name = o.process_name;
  if (p) exit.command = p->command;
  exit.bytes = o.total_bytes;
  exit.buffers = o.total_buffers;
  exit.summary = o.held.empty()
                     ? fmt::format("pid {} ({}) exited holding no device memory", o.pid, o.process_name)
                     : fmt::format("pid {} ({}) exited holding {} in {} buffers", o.pid, o.process_name,
                                   human_bytes(o.total_bytes), o.total_buffers);
  if (!o.held.empty()) {
    views::HistoryRecord orphan = exit;
    orphan.kind = HistoryKind::orphan;
    if (o.held.size() == 1) orphan.device = o.held.front().device;
    if (!o.origins.empty()) {
      orphan.site = o.origins.front().site;
      orphan.scope = o.origins.front().scope;
    }
    const auto lines = o.lines();
    orphan.summary =
        lines.size() == 1 ? lines.front() : fmt::format("{} (and {} more)", lines.front(), lines.size() - 1);
    orphan.detail = schema::to_json(views::StreamEvent{model::orphan_view(o)});
    keep(std::move(orphan));
  }
  keep(std::move(exit));
}

void HistorySink::on_oom(const views::OomRecord& o) {
  auto r = buffer_record(HistoryKind::oom, o.time_ns, o.pid, o.name, o.device, o.site, o.scope, o.size);
  r.summary = fmt::format("pid {} ({}) was refused {} of {} on device {}: {}", o.pid, o.name,
                          human_bytes(o.size), to_string(o.type), o.device, o.summary);
  r.detail = schema::to_json(views::StreamEvent{o});
  keep(std::move(r));
}

void HistorySink::server_started(const std::string& text) {
  views::HistoryRecord r;
  r.time_ns = realtime_ns();
  r.kind = HistoryKind::server_start;
  r.summary = text;
  // Where the timeline's gap began: the previous ttmemd's last write (it may have been killed).
  r.bytes = writer_.previous_last_write_ns();
  keep(std::move(r));
}

void HistorySink::server_stopping() {
  tick();
  views::HistoryRecord r;
  r.time_ns = realtime_ns();
  r.kind = HistoryKind::server_stop;
  r.summary = "ttmemd stopped";
  keep(std::move(r));
}

void HistorySink::note_anomalies(std::uint64_t now_ns) {
  const model::Anomalies now = registry_.anomalies();
  std::string what;
  std::uint64_t total = 0;
#define TTMEM_ANOMALY_DIFF(name)                                                                 \
  if (now.name > anomalies_.name) {                                                              \
    what += fmt::format("{}{} {}", what.empty() ? "" : ", ", now.name - anomalies_.name, #name); \
    total += now.name - anomalies_.name;                                                         \
  }
  TTMEM_LEDGER_ANOMALIES(TTMEM_ANOMALY_DIFF)
#undef TTMEM_ANOMALY_DIFF
  anomalies_ = now;
  if (what.empty()) return;
  views::HistoryRecord r;
  r.time_ns = now_ns;
  r.kind = HistoryKind::anomaly;
  r.buffers = total;
  r.summary = "the ledger refused or found odd: " + what + " (ttmem info has them per process)";
  keep(std::move(r));
}

std::uint32_t HistorySink::process_index(Batch& b, std::uint32_t slot,
                                         std::unordered_map<std::uint32_t, std::uint32_t>& index) {
  if (auto it = index.find(slot); it != index.end()) return it->second;
  ProcessKey key;
  if (auto it = names_.find(slot); it != names_.end()) {
    key = {it->second.pid, it->second.start_time, it->second.name};
  } else if (const auto* p = registry_.process_by_slot(slot)) {
    key = {p->pid, p->start_time, p->name};
  } else {
    key = {0, slot, std::string(registry_.process_name(slot))};
  }
  b.processes.push_back(std::move(key));
  return index[slot] = static_cast<std::uint32_t>(b.processes.size() - 1);
}

void HistorySink::tick() {
  const std::uint64_t now = realtime_ns();
  clock_offset_ns_ = now - monotonic_ns();  // follows changes of the wall clock
  note_anomalies(now);
  Batch b;
  b.time_ns = now;
  std::unordered_map<std::uint32_t, std::uint32_t> process_of_slot;
  for (auto& [key, w] : written_) w.seen = false;
  auto sample = [&](std::uint32_t process_slot, std::uint16_t device, Slot slot, const model::Figures& f) {
    Written& w = written_[series_key(process_slot, device, slot)];
    w.seen = true;
    // Only what changed is written: a series stays at its last point's bytes until the next one.
    if (w.bytes == f.bytes && w.peak == f.bytes && f.interval_peak == f.bytes) return;
    const std::uint32_t process = process_slot ? process_index(b, process_slot, process_of_slot) + 1 : 0;
    b.series.push_back({device, slot, process});
    b.samples.push_back(
        {static_cast<std::uint32_t>(b.series.size() - 1), f.bytes, std::max(f.interval_peak, f.bytes)});
    w.bytes = f.bytes;
    w.peak = f.bytes;
  };
  for (const auto& [id, d] : registry_.devices()) {
    for (Slot s : enum_values<Slot>()) sample(0, id, s, d.usage[index(s)]);
  }
  for (const auto& [slot, p] : registry_.processes()) {
    if (!p.alive) continue;
    for (const auto& [dev, pd] : p.devices) {
      for (Slot s : enum_values<Slot>()) sample(slot, dev, s, pd.usage[index(s)]);
    }
  }
  // A series no one reports any more (its process is gone) ends at zero.
  for (auto it = written_.begin(); it != written_.end();) {
    if (it->second.seen) {
      ++it;
      continue;
    }
    if (it->second.bytes != 0) {
      const auto process_slot = static_cast<std::uint32_t>(it->first >> 24);
      const auto device = static_cast<std::uint16_t>((it->first >> 8) & 0xffff);
      const auto slot = static_cast<Slot>(it->first & 0xff);
      const std::uint32_t process = process_slot ? process_index(b, process_slot, process_of_slot) + 1 : 0;
      b.series.push_back({device, slot, process});
      b.samples.push_back({static_cast<std::uint32_t>(b.series.size() - 1), 0, 0});
    }
    it = written_.erase(it);
  }
  registry_.begin_interval();

  // Lifetimes: site and op texts are looked up once per distinct (process, site, op) of the interval.
  struct LabelKey {
    std::uint32_t process_slot, site, scope;
    bool operator==(const LabelKey&) const = default;
  };
  struct LabelHash {
    std::size_t operator()(const LabelKey& k) const {
      return std::hash<std::uint64_t>{}((static_cast<std::uint64_t>(k.process_slot) << 32 | k.site) * 31 +
                                        k.scope);
    }
  };
  std::unordered_map<LabelKey, std::uint32_t, LabelHash> label_of;
  std::unordered_map<std::string, std::uint32_t> label_text;
  auto label_for = [&](std::string site, std::string scope) {
    std::string joined = site + '\0' + scope;
    if (auto t = label_text.find(joined); t != label_text.end()) return t->second;
    b.labels.emplace_back(std::move(site), std::move(scope));
    return label_text[joined] = static_cast<std::uint32_t>(b.labels.size() - 1);
  };
  b.lifetimes.reserve(lifetimes_.size());
  for (const PendingLifetime& l : lifetimes_) {
    std::uint32_t label = 0;
    if (l.site == kTextLabel) {
      label = label_for(texts_[l.scope].first, texts_[l.scope].second);
    } else if (auto it = label_of.find({l.process_slot, l.site, l.scope}); it != label_of.end()) {
      label = it->second;
    } else {
      label =
          label_for(std::string(registry_.site_text(l.process_slot, l.site)),
                    std::string(l.scope ? registry_.site_text(l.process_slot, l.scope) : std::string_view()));
      label_of[{l.process_slot, l.site, l.scope}] = label;
    }
    LifetimeRow row;
    row.free_ns = l.free_ns;
    row.alloc_ns = l.free_ns - std::min<std::uint64_t>(l.free_ns, std::uint64_t{l.lifetime_ms} * 1'000'000);
    row.process = process_index(b, l.process_slot, process_of_slot);
    row.label = label;
    row.device = l.device;
    row.type = l.type;
    row.kind = l.kind;
    row.id = l.id;
    row.size = l.size;
    row.address = l.address;
    row.size_per_bank = l.size_per_bank;
    b.lifetimes.push_back(row);
  }
  lifetimes_.clear();
  texts_.clear();
  if (dropped_) {
    views::HistoryRecord r;
    r.time_ns = now;
    r.kind = HistoryKind::lifetimes_dropped;
    r.buffers = dropped_;
    r.summary = fmt::format(
        "{} buffer lifetimes not kept in this interval: more than {} per second were freed "
        "(ttmemd --history-lifetimes-per-s)",
        dropped_, writer_.options().lifetimes_per_s);
    b.records.push_back(std::move(r));
    dropped_ = 0;
  }
  writer_.submit(std::move(b));
}

}  // namespace ttmem::history
