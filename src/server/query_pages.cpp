// Paged answers; see query_pages.hpp.
#include "query_pages.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <queue>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

#include "ledger_views.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::server {

namespace {

constexpr std::size_t kRowsPerPage = 256;
constexpr std::size_t kChunksPerStep = 32;  // 2,048 records scanned per step
constexpr std::size_t kSortRun = 2048;      // rows sorted per step
constexpr std::size_t kTopHeapLimit = 65'536;
constexpr std::size_t kRecordsPerPage = 500;  // leak, orphan and event records: bigger rows

/// A matching buffer, copied out of the table when the scan passes it.
struct Row {
  std::uint64_t size = 0;
  std::uint64_t id = 0;
  std::uint64_t address = 0;
  std::uint32_t process = 0;
  std::uint32_t label = 0;  ///< its site and op scope (AllocationRecord::label)
  std::uint32_t time_ms = 0;
  pid_t pid = 0;
  std::uint16_t device = 0;
  std::uint8_t type = 0;
  std::uint8_t kind_bits = 0;
};
static_assert(sizeof(Row) == 48);

/// Largest first; among equal sizes, lower ids first (a stable, repeatable order).
bool before(const Row& a, const Row& b) {
  if (a.size != b.size) return a.size > b.size;
  if (a.id != b.id) return a.id < b.id;
  if (a.process != b.process) return a.process < b.process;
  return a.device < b.device;
}

/// A `buffers` query's pass over the table, a slice per step: its filters, with the texts of each
/// (process, label) looked at once, not per record.
class BufferScan {
 public:
  explicit BufferScan(const views::BufferQuery& f) : filter_(f) {}

  /// Calls f(record) for each matching record of the next slice; true once the whole table was passed.
  template <typename F>
  bool step(const Registry& registry, F&& f) {
    if (!started_) {
      started_ = true;
      if (filter_.pid) {
        const ProcessState* p = registry.find_process(*filter_.pid);
        process_ = p ? p->slot : 0;  // no such process: nothing matches (slot 0 is never live)
      }
    }
    const AllocationTable& t = registry.allocations();
    const std::size_t end = cursor_ + kChunksPerStep;
    t.for_each_in_chunks(cursor_, end, [&](const AllocationRecord& r) {
      if (!matches(registry, r)) return;
      ++matched_;
      f(r);
    });
    cursor_ = end;
    return cursor_ >= t.chunk_count();
  }

  std::uint64_t matched() const { return matched_; }
  const views::BufferQuery& query() const { return filter_; }

 private:
  bool matches(const Registry& registry, const AllocationRecord& r) {
    if (process_ && r.process != *process_) return false;
    if (filter_.device && r.device != *filter_.device) return false;
    if (filter_.type && r.type != static_cast<std::uint8_t>(*filter_.type)) return false;
    if (filter_.kind && r.kind() != *filter_.kind) return false;
    if (filter_.site || filter_.scope) {
      const std::uint64_t key = std::uint64_t{r.process} << 32 | r.label;
      auto it = origin_matches_.find(key);
      if (it == origin_matches_.end()) {
        const model::OriginText where = registry.origin(r.process, r.label);
        const bool ok = (!filter_.site || where.site.find(*filter_.site) != std::string_view::npos) &&
                        (!filter_.scope || where.scope.find(*filter_.scope) != std::string_view::npos);
        it = origin_matches_.emplace(key, ok).first;
      }
      if (!it->second) return false;
    }
    return true;
  }

  views::BufferQuery filter_;
  std::optional<std::uint32_t> process_;
  bool started_ = false;
  std::size_t cursor_ = 0;
  std::uint64_t matched_ = 0;
  std::unordered_map<std::uint64_t, bool> origin_matches_;
};

class BuffersQuery final : public PagedQuery {
 public:
  BuffersQuery(const views::BufferQuery& f, PagedQueryLimits limits) : filter_(f), scan_(f), limits_(limits) {
    top_ = f.limit && *f.limit <= kTopHeapLimit;
  }

  bool release_some() override {
    std::vector<Row>().swap(rows_);
    for (int i = 0; i < 16 && !runs_.empty(); ++i) runs_.pop_back();
    return runs_.empty();
  }

  bool step(const Registry& registry, std::string& page) override {
    switch (phase_) {
      case Phase::scan:
        scan(registry);
        return false;
      case Phase::sort:
        sort_run();
        return false;
      case Phase::emit:
        return emit(registry, page);
    }
    return true;
  }

 private:
  enum class Phase { scan, sort, emit };

  void scan(const Registry& registry) {
    const bool scanned = scan_.step(registry, [&](const AllocationRecord& r) {
      if (r.process != last_process_) {  // a group's records are together: look the owner up once a run
        last_process_ = r.process;
        const ProcessState* p = registry.process_by_slot(r.process);
        last_pid_ = p ? p->pid : 0;
      }
      const Row row{r.size,    r.id,      r.address, r.process, r.label,
                    r.time_ms, last_pid_, r.device,  r.type,    r.kind_bits};
      if (top_) {
        // A bounded heap whose top is the row that would be dropped next.
        if (rows_.size() < *filter_.limit) {
          rows_.push_back(row);
          std::push_heap(rows_.begin(), rows_.end(), before);
        } else if (!rows_.empty() && before(row, rows_.front())) {
          std::pop_heap(rows_.begin(), rows_.end(), before);
          rows_.back() = row;
          std::push_heap(rows_.begin(), rows_.end(), before);
        }
      } else {
        if (scan_.matched() > limits_.max_rows) {
          throw QueryFailure(
              ErrorCode::limit_exceeded,
              fmt::format(
                  "more than {} buffers match; narrow the query (device, pid, type, kind) or ask for a limit",
                  limits_.max_rows));
        }
        // Rows go into runs of fixed capacity: no vector ever grows by copying a million rows at once.
        if (runs_.empty() || runs_.back().size() == kSortRun) {
          runs_.emplace_back();
          runs_.back().reserve(kSortRun);
        }
        runs_.back().push_back(row);
      }
    });
    if (scanned) {
      phase_ = Phase::sort;
      if (top_) {
        std::sort_heap(rows_.begin(), rows_.end(), before);
        runs_.push_back(std::move(rows_));
        phase_ = Phase::emit;
      }
    }
  }

  void sort_run() {
    if (sorted_ < runs_.size()) {
      std::sort(runs_[sorted_].begin(), runs_[sorted_].end(), before);
      ++sorted_;
    }
    if (sorted_ >= runs_.size()) phase_ = Phase::emit;
  }

  /// The next row in order: a merge of the sorted runs.
  const Row* next_row() {
    if (!merge_started_) {
      merge_started_ = true;
      next_in_run_.assign(runs_.size(), 0);
      for (std::size_t i = 0; i < runs_.size(); ++i) {
        if (!runs_[i].empty()) heap_.push({i});
      }
    }
    if (heap_.empty()) return nullptr;
    const std::size_t run = heap_.top().run;
    heap_.pop();
    const Row* row = &runs_[run][next_in_run_[run]++];
    if (next_in_run_[run] < runs_[run].size()) heap_.push({run});
    return row;
  }

  /// The row's site and op scope as JSON string literals (empty when it has neither).
  const std::pair<std::string, std::string>& origin_json(const Registry& registry, const Row& r) {
    static const std::pair<std::string, std::string> kNone;
    if (r.label == 0) return kNone;
    const std::uint64_t key = static_cast<std::uint64_t>(r.process) << 32 | r.label;
    auto it = escaped_origins_.find(key);
    if (it == escaped_origins_.end()) {
      const model::OriginText where = registry.origin(r.process, r.label);
      std::pair<std::string, std::string> text;
      schema::append_json_string(text.first, where.site);
      if (!where.scope.empty()) schema::append_json_string(text.second, where.scope);
      it = escaped_origins_.emplace(key, std::move(text)).first;
    }
    return it->second;
  }

  std::string_view process_name(const Registry& registry, const Row& r) {
    auto it = escaped_names_.find(r.process);
    if (it == escaped_names_.end()) {
      std::string text;
      schema::append_json_string(text, registry.process_name(r.process));
      it = escaped_names_.emplace(r.process, std::move(text)).first;
    }
    return it->second;
  }

  bool emit(const Registry& registry, std::string& page) {
    const std::uint64_t wanted = filter_.limit.value_or(scan_.matched());
    const std::uint64_t now = monotonic_ns();
    schema::BufferPageWriter out(page);
    for (std::size_t n = 0; n < kRowsPerPage && emitted_ < wanted; ++n) {
      const Row* r = next_row();
      if (!r) break;
      AllocationRecord rec;
      rec.time_ms = r->time_ms;
      rec.kind_bits = r->kind_bits;
      const auto& [site, scope] = origin_json(registry, *r);
      out.row({r->pid, process_name(registry, *r), r->device, static_cast<BufferType>(r->type), rec.kind(),
               r->id, r->size, r->address, site, scope, rec.internal(), rec.age_ms(now)});
      ++emitted_;
    }
    const bool last = emitted_ >= wanted || heap_.empty();
    out.end(last ? std::optional<std::uint64_t>(scan_.matched()) : std::nullopt);
    return last;
  }

  struct HeapEntry {
    std::size_t run;
  };
  const Row& head(std::size_t run) const { return runs_[run][next_in_run_[run]]; }
  struct HeapOrder {
    const BuffersQuery* q;
    bool operator()(const HeapEntry& a, const HeapEntry& b) const {
      // std::priority_queue keeps the greatest on top: "greater" is the row that comes first.
      return before(q->head(b.run), q->head(a.run));
    }
  };

  views::BufferQuery filter_;
  BufferScan scan_;
  PagedQueryLimits limits_;
  bool top_ = false;
  Phase phase_ = Phase::scan;
  std::uint32_t last_process_ = 0;
  pid_t last_pid_ = 0;
  std::vector<Row> rows_;               // the bounded heap of a query with a small limit
  std::vector<std::vector<Row>> runs_;  // matching rows, kSortRun to a run, each sorted in one step
  std::size_t sorted_ = 0;
  std::vector<std::size_t> next_in_run_;
  bool merge_started_ = false;
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, HeapOrder> heap_{HeapOrder{this}};
  std::uint64_t emitted_ = 0;
  std::unordered_map<std::uint64_t, std::pair<std::string, std::string>> escaped_origins_;
  std::unordered_map<std::uint32_t, std::string> escaped_names_;
};

/// `buffers --by KEY`: the matching buffers summed per key and memory type, scanned in the same slices as
/// a listing. Groups are few (bounded by the sites, processes and devices ttmemd keeps), so the answer is
/// one page.
class GroupedBuffersQuery final : public PagedQuery {
 public:
  explicit GroupedBuffersQuery(const views::BufferQuery& f) : scan_(f), by_(*f.by) {}

  bool step(const Registry& registry, std::string& page) override {
    const bool scanned = scan_.step(registry, [&](const AllocationRecord& r) {
      const Slot slot = slot_of(static_cast<proto::BufferType>(r.type), r.kind());
      Group& g = groups_[group_of(registry, r) * kSlots + index(slot)];
      g.bytes += r.size;
      ++g.buffers;
      g.largest = std::max(g.largest, r.size);
      g.devices.insert(r.device);
      g.processes.insert(r.process);
    });
    if (!scanned) return false;
    emit(page);
    return true;
  }

 private:
  struct Group {
    std::uint64_t bytes = 0, buffers = 0, largest = 0;
    std::unordered_set<std::uint16_t> devices;
    std::unordered_set<std::uint32_t> processes;
  };
  struct Key {
    std::string text;
    pid_t pid = 0;
    std::string name;
    std::uint16_t device = 0;
  };

  /// The record's key, numbered in order of first sight; texts are looked at once per (process, label).
  std::uint64_t group_of(const Registry& registry, const AllocationRecord& r) {
    std::uint64_t cache_key = 0;
    switch (by_) {
      case GroupBy::op:
      case GroupBy::site:
        cache_key = std::uint64_t{r.process} << 32 | r.label;
        break;
      case GroupBy::pid:
        cache_key = r.process;
        break;
      case GroupBy::device:
        cache_key = r.device;
        break;
    }
    if (auto it = key_of_.find(cache_key); it != key_of_.end()) return it->second;
    Key k;
    switch (by_) {
      case GroupBy::op:
        k.text = std::string(registry.origin(r.process, r.label).scope);
        break;
      case GroupBy::site:
        k.text = std::string(registry.origin(r.process, r.label).site);
        break;
      case GroupBy::pid: {
        const ProcessState* p = registry.process_by_slot(r.process);
        k.pid = p ? p->pid : 0;
        k.name = std::string(registry.process_name(r.process));
        k.text = std::to_string(k.pid);
        break;
      }
      case GroupBy::device:
        k.device = r.device;
        k.text = std::to_string(r.device);
        break;
    }
    // Ops and sites with the same text in several processes are one group.
    auto [at, added] = index_of_text_.emplace(k.text, keys_.size());
    if (added) keys_.push_back(std::move(k));
    key_of_.emplace(cache_key, at->second);
    return at->second;
  }

  void emit(std::string& page) {
    std::vector<views::BufferGroup> out;
    out.reserve(groups_.size());
    for (const auto& [at, g] : groups_) {
      const Key& k = keys_[at / kSlots];
      out.push_back({k.text, k.pid, k.name, k.device, static_cast<Slot>(at % kSlots), g.bytes, g.buffers,
                     g.largest, static_cast<std::uint32_t>(g.devices.size()),
                     static_cast<std::uint32_t>(g.processes.size())});
    }
    std::sort(out.begin(), out.end(), [](const views::BufferGroup& a, const views::BufferGroup& b) {
      if (a.bytes != b.bytes) return a.bytes > b.bytes;
      return std::tie(a.key, a.slot) < std::tie(b.key, b.slot);
    });
    const std::uint64_t total_groups = out.size();
    if (const auto& limit = scan_.query().limit; limit && out.size() > *limit) out.resize(*limit);
    schema::BufferPageWriter(page).end(scan_.matched(), out, total_groups);
  }

  BufferScan scan_;
  GroupBy by_;
  std::unordered_map<std::uint64_t, std::uint64_t> key_of_;
  std::unordered_map<std::string, std::uint64_t> index_of_text_;
  std::vector<Key> keys_;
  std::unordered_map<std::uint64_t, Group> groups_;  // key index * kSlots + slot
};

/// Leak records, then orphan records, newest first, from the newest at the query's start down: the record
/// numbers (seq) keep the place while newer records arrive and old ones are dropped.
class LeaksQuery final : public PagedQuery {
 public:
  explicit LeaksQuery(const views::LeaksQuery& q)
      : after_leak_(q.after_leak), after_orphan_(q.after_orphan) {}
  bool step(const Registry& registry, std::string& page) override {
    if (!started_) {
      started_ = true;
      next_leak_ = registry.leaks().empty() ? 0 : registry.leaks().front().seq;
      next_orphan_ = registry.orphans().empty() ? 0 : registry.orphans().front().seq;
    }
    views::Leaks out;
    std::size_t n = 0;
    for (; n < kRecordsPerPage && next_leak_ > after_leak_; --next_leak_, ++n) {
      const auto& q = registry.leaks();
      if (q.empty() || next_leak_ > q.front().seq) continue;
      const std::uint64_t at = q.front().seq - next_leak_;
      if (at >= q.size()) {
        next_leak_ = 0;  // older records were dropped (the cap) while paging
        break;
      }
      out.leaks.push_back(model::leak_view(q[at]));
    }
    for (; n < kRecordsPerPage && next_orphan_ > after_orphan_; --next_orphan_, ++n) {
      const auto& q = registry.orphans();
      if (q.empty() || next_orphan_ > q.front().seq) continue;
      const std::uint64_t at = q.front().seq - next_orphan_;
      if (at >= q.size()) {
        next_orphan_ = 0;
        break;
      }
      out.orphans.push_back(model::orphan_view(q[at]));
    }
    page += schema::to_json(out);
    return next_leak_ <= after_leak_ && next_orphan_ <= after_orphan_;
  }

 private:
  const std::uint64_t after_leak_, after_orphan_;
  bool started_ = false;
  std::uint64_t next_leak_ = 0;
  std::uint64_t next_orphan_ = 0;
};

/// The history's newest entries, copied when the query starts (fixed-size entries: a plain copy).
class EventsQuery final : public PagedQuery {
 public:
  EventsQuery(const Registry& registry, std::size_t limit) : entries_(registry.recent_events(limit)) {}

  bool step(const Registry& registry, std::string& page) override {
    views::EventList out;
    for (std::size_t n = 0; n < kRecordsPerPage && next_ < entries_.size(); ++n, ++next_)
      out.events.push_back(model::event_view(registry, entries_[next_]));
    page += schema::to_json(out);
    return next_ >= entries_.size();
  }

 private:
  std::vector<HistoryEntry> entries_;
  std::size_t next_ = 0;
};

}  // namespace

std::unique_ptr<PagedQuery> buffers_query(const views::BufferQuery& filter, PagedQueryLimits limits) {
  if (filter.by) return std::make_unique<GroupedBuffersQuery>(filter);
  return std::make_unique<BuffersQuery>(filter, limits);
}

std::unique_ptr<PagedQuery> leaks_query(const views::LeaksQuery& q) {
  return std::make_unique<LeaksQuery>(q);
}

std::unique_ptr<PagedQuery> events_query(const Registry& registry, std::uint64_t limit) {
  return std::make_unique<EventsQuery>(registry,
                                       static_cast<std::size_t>(std::min<std::uint64_t>(limit, SIZE_MAX)));
}

std::vector<std::string> run_paged_query(PagedQuery& query, const Registry& registry) {
  std::vector<std::string> pages;
  for (bool last = false; !last;) {
    std::string page;
    last = query.step(registry, page);
    if (!page.empty()) pages.push_back(std::move(page));
  }
  return pages;
}

}  // namespace ttmem::server
