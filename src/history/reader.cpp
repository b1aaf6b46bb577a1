// Reading the history back: records, the timeline at the tier its span needs, buffer lifetimes.
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <string>

#include "sqlite_db.hpp"
#include "store_schema.hpp"
#include "ttmem/history.hpp"
#include "ttmem/units.hpp"

namespace ttmem::history {

struct Reader::Impl {
  Database db;
  explicit Impl(const std::string& path) : db(path, true) {}
};

Reader::Reader(const std::string& state_dir) : path_(database_path(state_dir)) {
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0)
    throw HistoryError("no history at " + path_ +
                       ": ttmemd keeps it in its --state-dir ($TTMEM_STATE_DIR); give the same one here");
  impl_ = std::make_unique<Impl>(path_);
  auto q = impl_->db.prepare("SELECT value FROM meta WHERE key='schema'");
  if (!q.step() || q.i64(0) != kSchemaVersion)
    throw HistoryError(path_ + " is not a history this ttmem reads (schema version " +
                       std::to_string(kSchemaVersion) + ")");
}

Reader::~Reader() = default;

namespace {

/// Whether a ttmemd writes this state directory now: the pid in its lock file is alive and is ttmemd.
/// (Taking the lock to find out would make a ttmemd starting at that moment think the directory is used.)
bool writer_running(const std::string& db_path) {
  const std::string dir = db_path.substr(0, db_path.rfind('/'));
  std::ifstream lock(dir + "/ttmemd.lock");
  long pid = 0;
  if (!(lock >> pid) || pid <= 0) return false;
  if (kill(static_cast<pid_t>(pid), 0) != 0 && errno != EPERM) return false;
  std::ifstream comm("/proc/" + std::to_string(pid) + "/comm");
  std::string name;
  return !(comm >> name) || name == "ttmemd";  // no /proc: trust the live pid
}

}  // namespace

views::HistoryList Reader::records(const RecordFilter& f) const {
  std::string sql =
      "SELECT seq, time_ns, kind, pid, name, command, device, site, scope, bytes, buffers, summary, detail "
      "FROM records WHERE time_ns >= ?1 AND time_ns <= ?2";
  // A record of several devices (an orphan that held memory on each) has no device of its own; it is one
  // of each device it lists as held.
  if (f.device)
    sql +=
        " AND (device = ?3 OR (device IS NULL AND json_valid(detail) AND EXISTS (SELECT 1 FROM "
        "json_each(detail, '$.held') WHERE json_extract(value, '$.device') = ?3)))";
  if (f.pid) sql += " AND pid = ?4";
  if (!f.site.empty()) sql += " AND instr(site, ?5) > 0";
  if (!f.op.empty()) sql += " AND instr(scope, ?6) > 0";
  if (!f.kinds.empty()) {
    sql += " AND kind IN (";
    for (std::size_t i = 0; i < f.kinds.size(); ++i)
      sql += (i ? "," : "") + std::to_string(static_cast<int>(f.kinds[i]));
    sql += ")";
  }
  sql += " ORDER BY seq DESC LIMIT ?7";
  auto q = impl_->db.prepare(sql);
  q.bind(1, f.since_ns).bind(2, std::min<std::uint64_t>(f.until_ns, INT64_MAX));
  if (f.device) q.bind(3, static_cast<int>(*f.device));
  if (f.pid) q.bind(4, *f.pid);
  if (!f.site.empty()) q.bind(5, f.site);
  if (!f.op.empty()) q.bind(6, f.op);
  q.bind(7, static_cast<std::uint64_t>(f.limit) + 1);
  views::HistoryList out;
  while (q.step()) {
    if (out.records.size() == f.limit) {
      out.truncated = true;
      break;
    }
    views::HistoryRecord r;
    r.seq = q.u64(0);
    r.time_ns = q.u64(1);
    r.kind = enum_from<HistoryKind>(static_cast<std::uint8_t>(q.i64(2))).value_or(HistoryKind::anomaly);
    r.pid = static_cast<pid_t>(q.i64(3));
    r.name = q.text(4);
    r.command = q.text(5);
    if (!q.is_null(6)) r.device = static_cast<std::uint16_t>(q.i64(6));
    r.site = q.text(7);
    r.scope = q.text(8);
    r.bytes = q.u64(9);
    r.buffers = q.u64(10);
    r.summary = q.text(11);
    r.detail = q.text(12);
    out.records.push_back(std::move(r));
  }
  std::reverse(out.records.begin(), out.records.end());
  return out;
}

views::Timeline Reader::timeline(const TimelineQuery& query) const {
  const std::uint64_t now = realtime_ns();
  views::Timeline out;
  out.device = query.device;
  out.since_ns = query.since_ns;
  out.until_ns = std::min(query.until_ns, now);
  // The finest tier that still holds the start of the span (a minute of slack: "1h" asked a moment ago is
  // still the last hour, and the writer prunes once a minute).
  int tier = 2;
  for (int t = 0; t < 2; ++t) {
    if (now - std::min(now, query.since_ns) <= kTiers[t].keep_ns + 60 * kSecondNs) {
      tier = t;
      break;
    }
  }
  out.resolution_ns = kTiers[tier].resolution_ns;
  if (tier == 0) {
    auto interval = impl_->db.prepare("SELECT value FROM meta WHERE key='interval_ns'");
    if (interval.step() && interval.u64(0) > 0) out.resolution_ns = interval.u64(0);
  }
  const bool per_process = query.per_process || query.pid;
  std::string sql =
      "SELECT s.id, s.slot, coalesce(p.pid, 0), coalesce(p.name, '') FROM series s LEFT JOIN processes p ON "
      "p.id = s.process WHERE s.device = ?1";
  if (!per_process) sql += " AND s.process = 0";
  if (query.pid) sql += " AND p.pid = ?2";
  if (query.slot) sql += " AND s.slot = ?3";
  sql += " ORDER BY s.process, s.slot";
  auto series = impl_->db.prepare(sql);
  series.bind(1, static_cast<int>(query.device));
  if (query.pid) series.bind(2, *query.pid);
  if (query.slot) series.bind(3, static_cast<int>(*query.slot));
  auto before = impl_->db.prepare(
      "SELECT t, bytes, peak FROM samples WHERE tier <= ?1 AND series = ?2 AND t < ?3 ORDER BY t DESC LIMIT "
      "1");
  auto points = impl_->db.prepare(
      "SELECT t, bytes, peak FROM samples WHERE tier = ?1 AND series = ?2 AND t >= ?3 AND t <= ?4 ORDER BY "
      "t");
  while (series.step()) {
    views::TimelineSeries s;
    const std::int64_t id = series.i64(0);
    s.slot = enum_from<Slot>(static_cast<std::uint8_t>(series.i64(1))).value_or(Slot::DRAM);
    s.pid = static_cast<pid_t>(series.i64(2));
    s.name = series.text(3);
    // The figure when the span begins: the latest point before it, at the span's start.
    before.bind(1, tier).bind(2, id).bind(3, out.since_ns);
    if (before.step() && before.u64(1) != 0) s.points.push_back({out.since_ns, before.u64(1), before.u64(1)});
    before.reset();
    points.bind(1, tier).bind(2, id).bind(3, out.since_ns).bind(4, out.until_ns);
    while (points.step()) s.points.push_back({points.u64(0), points.u64(1), points.u64(2)});
    points.reset();
    if (!s.points.empty()) out.series.push_back(std::move(s));
  }
  // Gaps: each start of ttmemd says when the one before it last wrote.
  auto starts = impl_->db.prepare(
      "SELECT time_ns, bytes FROM records WHERE kind = ?1 AND time_ns >= ?2 AND time_ns <= ?3 ORDER BY "
      "time_ns");
  starts.bind(1, static_cast<int>(HistoryKind::server_start)).bind(2, out.since_ns).bind(3, out.until_ns);
  while (starts.step()) {
    if (starts.u64(1) != 0) out.gaps.push_back({starts.u64(1), starts.u64(0)});
  }
  // And when no ttmemd writes now, from the last write on.
  auto last = impl_->db.prepare("SELECT value FROM meta WHERE key='last_write_ns'");
  if (last.step() && last.u64(0) < out.until_ns && !writer_running(path_))
    out.gaps.push_back({std::max(last.u64(0), out.since_ns), out.until_ns});
  return out;
}

std::vector<Lifetime> Reader::lifetimes(const LifetimeQuery& q, bool* truncated) const {
  std::string sql =
      "SELECT l.alloc_ns, l.free_ns, p.pid, p.name, l.device, l.type, l.kind, l.id, l.size, l.address, "
      "l.size_per_bank, b.site, b.scope FROM lifetimes l JOIN processes p ON p.id = l.process JOIN labels b "
      "ON "
      "b.id = l.label WHERE l.free_ns >= ?1 AND l.alloc_ns <= ?2";
  if (q.device) sql += " AND l.device = ?3";
  sql += " ORDER BY l.alloc_ns LIMIT ?4";
  auto s = impl_->db.prepare(sql);
  s.bind(1, q.since_ns).bind(2, std::min<std::uint64_t>(q.until_ns, INT64_MAX));
  if (q.device) s.bind(3, static_cast<int>(*q.device));
  s.bind(4, static_cast<std::uint64_t>(q.limit) + 1);
  std::vector<Lifetime> out;
  if (truncated) *truncated = false;
  while (s.step()) {
    if (out.size() == q.limit) {
      if (truncated) *truncated = true;
      break;
    }
    Lifetime l;
    l.alloc_ns = s.u64(0);
    l.free_ns = s.u64(1);
    l.pid = static_cast<pid_t>(s.i64(2));
    l.name = s.text(3);
    l.device = static_cast<std::uint16_t>(s.i64(4));
    l.type = enum_from<BufferType>(static_cast<std::uint8_t>(s.i64(5))).value_or(BufferType::DRAM);
    l.kind = enum_from<AllocKind>(static_cast<std::uint8_t>(s.i64(6))).value_or(AllocKind::owning);
    l.id = s.u64(7);
    l.size = s.u64(8);
    l.address = s.u64(9);
    l.size_per_bank = s.u64(10);
    l.site = s.text(11);
    l.scope = s.text(12);
    out.push_back(std::move(l));
  }
  return out;
}

std::vector<std::uint16_t> Reader::devices() const {
  auto q = impl_->db.prepare("SELECT DISTINCT device FROM series ORDER BY device");
  std::vector<std::uint16_t> out;
  while (q.step()) out.push_back(static_cast<std::uint16_t>(q.i64(0)));
  return out;
}

}  // namespace ttmem::history
