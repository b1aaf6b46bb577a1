#include "history_writer.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <tuple>

#include "sqlite_db.hpp"
#include "store_schema.hpp"
#include "ttmem/units.hpp"

namespace ttmem::history {

namespace {

constexpr std::size_t kMaxQueuedLifetimes = 2'000'000;  // ~130 MB of rows waiting for the disk at most
constexpr std::size_t kMaxRetryRecords = 100'000;
constexpr std::uint64_t kPruneEveryNs = 60 * kSecondNs;

std::string errno_text() {
  return std::strerror(errno);
}

/// What to do about a state directory that cannot be written (full, read-only, not ours).
constexpr const char* kUnwritableHint =
    ": free space or make it writable, give another --state-dir, or run with --no-history";

/// Takes the state directory's lock, or says who holds it.
int take_lock(const std::string& dir) {
  const std::string path = dir + "/ttmemd.lock";
  const int fd = open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    throw HistoryError("cannot write the state directory " + dir + " (" + errno_text() + ")" +
                       kUnwritableHint);
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    [[maybe_unused]] auto n = pread(fd, holder, sizeof holder - 1, 0);
    close(fd);
    throw HistoryError("the state directory " + dir + " is in use by another ttmemd (pid " +
                       std::string(holder) + "): give this one its own --state-dir, or --no-history");
  }
  const std::string pid = std::to_string(getpid());
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    close(fd);
    throw HistoryError("cannot write the state directory " + dir + " (" + errno_text() + ")" +
                       kUnwritableHint);
  }
  return fd;
}

}  // namespace

struct Writer::Store {
  Database db;
  Statement insert_record, insert_process, find_process, insert_series, find_series, upsert_sample,
      insert_label, find_label, insert_lifetime, set_meta;
  std::map<std::pair<pid_t, std::uint64_t>, std::int64_t> process_ids;
  std::map<std::tuple<std::uint16_t, int, std::int64_t>, std::int64_t> series_ids;
  std::map<std::pair<std::string, std::string>, std::int64_t> label_ids;

  explicit Store(const std::string& path) : db(path, false) {
    db.exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA auto_vacuum=INCREMENTAL;");
    db.exec(kCreateSchema);
    {
      auto q = db.prepare("SELECT value FROM meta WHERE key='schema'");
      if (q.step()) {
        if (q.i64(0) != kSchemaVersion)
          throw HistoryError("the history database " + path + " has schema version " +
                             std::to_string(q.i64(0)) + "; this ttmemd reads " +
                             std::to_string(kSchemaVersion) + ": move it aside or give another --state-dir");
      } else {
        db.exec("INSERT INTO meta VALUES('schema', " + std::to_string(kSchemaVersion) + ")");
      }
    }
    insert_record = db.prepare(
        "INSERT INTO records(time_ns, kind, pid, name, command, device, site, scope, bytes, buffers, "
        "summary, "
        "detail) VALUES(?,?,?,?,?,?,?,?,?,?,?,?)");
    insert_process = db.prepare("INSERT INTO processes(pid, start_time, name) VALUES(?,?,?)");
    find_process = db.prepare("SELECT id FROM processes WHERE pid=? AND start_time=?");
    insert_series = db.prepare("INSERT INTO series(device, slot, process) VALUES(?,?,?)");
    find_series = db.prepare("SELECT id FROM series WHERE device=? AND slot=? AND process=?");
    upsert_sample = db.prepare(
        "INSERT INTO samples(tier, series, t, bytes, peak) VALUES(?,?,?,?,?) ON CONFLICT(tier, series, t) "
        "DO UPDATE SET bytes=excluded.bytes, peak=max(peak, excluded.peak)");
    insert_label = db.prepare("INSERT INTO labels(site, scope) VALUES(?,?)");
    find_label = db.prepare("SELECT id FROM labels WHERE site=? AND scope=?");
    insert_lifetime = db.prepare(
        "INSERT INTO lifetimes(alloc_ns, free_ns, process, device, type, kind, id, size, address, "
        "size_per_bank, "
        "label) VALUES(?,?,?,?,?,?,?,?,?,?,?)");
    set_meta =
        db.prepare("INSERT INTO meta VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value");
  }

  std::int64_t process_id(const ProcessKey& p) {
    const auto key = std::make_pair(p.pid, p.start_time);
    if (auto it = process_ids.find(key); it != process_ids.end()) return it->second;
    find_process.bind(1, p.pid).bind(2, p.start_time);
    std::int64_t id = 0;
    if (find_process.step()) {
      id = find_process.i64(0);
      find_process.reset();
    } else {
      find_process.reset();
      insert_process.bind(1, p.pid).bind(2, p.start_time).bind(3, p.name).run();
      id = db.last_insert_rowid();
    }
    return process_ids[key] = id;
  }

  std::int64_t series_id(std::uint16_t device, Slot slot, std::int64_t process) {
    const auto key = std::make_tuple(device, static_cast<int>(slot), process);
    if (auto it = series_ids.find(key); it != series_ids.end()) return it->second;
    find_series.bind(1, device).bind(2, static_cast<int>(slot)).bind(3, process);
    std::int64_t id = 0;
    if (find_series.step()) {
      id = find_series.i64(0);
      find_series.reset();
    } else {
      find_series.reset();
      insert_series.bind(1, device).bind(2, static_cast<int>(slot)).bind(3, process).run();
      id = db.last_insert_rowid();
    }
    return series_ids[key] = id;
  }

  std::int64_t label_id(const std::pair<std::string, std::string>& label) {
    if (auto it = label_ids.find(label); it != label_ids.end()) return it->second;
    find_label.bind(1, label.first).bind(2, label.second);
    std::int64_t id = 0;
    if (find_label.step()) {
      id = find_label.i64(0);
      find_label.reset();
    } else {
      find_label.reset();
      insert_label.bind(1, label.first).bind(2, label.second).run();
      id = db.last_insert_rowid();
    }
    return label_ids[label] = id;
  }

  void record(const views::HistoryRecord& r) {
    auto& s = insert_record;
    s.bind(1, r.time_ns).bind(2, static_cast<int>(r.kind)).bind(3, r.pid).bind(4, r.name).bind(5, r.command);
    if (r.device) {
      s.bind(6, static_cast<int>(*r.device));
    } else {
      s.bind_null(6);
    }
    s.bind(7, r.site)
        .bind(8, r.scope)
        .bind(9, r.bytes)
        .bind(10, r.buffers)
        .bind(11, r.summary)
        .bind(12, r.detail);
    s.run();
  }

  /// Caches of ids are dropped with a rolled-back transaction: the rows they name may be gone.
  void forget_ids() {
    process_ids.clear();
    series_ids.clear();
    label_ids.clear();
  }
};

Writer::Writer(HistoryOptions options) : options_(std::move(options)) {
  std::error_code ec;
  std::filesystem::create_directories(options_.state_dir, ec);
  if (ec)
    throw HistoryError("cannot create the state directory " + options_.state_dir + ": " + ec.message() +
                       " (give --state-dir DIR, or --no-history)");
  lock_fd_ = take_lock(options_.state_dir);
  status_.path = database_path(options_.state_dir);
  try {
    store_ = std::make_unique<Store>(status_.path);
    auto q = store_->db.prepare("SELECT value FROM meta WHERE key='last_write_ns'");
    if (q.step()) previous_last_write_ns_ = q.u64(0);
    // Tier 0 has a point per write: readers say how fine it is.
    store_->set_meta.bind(1, std::string_view("interval_ns")).bind(2, options_.interval_ms * 1'000'000).run();
  } catch (const HistoryError& e) {
    close(lock_fd_);
    throw HistoryError(std::string(e.what()) + " (state directory " + options_.state_dir + ")" +
                       kUnwritableHint);
  }
  thread_ = std::thread([this] { run(); });
}

Writer::~Writer() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  thread_.join();
  store_.reset();
  if (lock_fd_ >= 0) close(lock_fd_);
}

void Writer::submit(Batch&& batch) {
  {
    std::lock_guard lock(mutex_);
    if (queued_lifetimes_ + batch.lifetimes.size() > kMaxQueuedLifetimes) {
      status_.lifetimes_dropped += batch.lifetimes.size();
      batch.lifetimes.clear();
    }
    queued_lifetimes_ += batch.lifetimes.size();
    queue_.push_back(std::move(batch));
    ++submitted_;
  }
  wake_.notify_one();
}

void Writer::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = submitted_;
  done_.wait(lock, [&] { return completed_ >= target; });
}

WriterStatus Writer::status() const {
  std::lock_guard lock(mutex_);
  WriterStatus s = status_;
  s.records_pending = retry_.size();
  return s;
}

void Writer::run() {
  std::vector<Batch> batches;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batches.swap(queue_);
      queued_lifetimes_ = 0;
    }
    const std::uint64_t taken = batches.size();
    write(batches);
    batches.clear();
    {
      std::lock_guard lock(mutex_);
      completed_ += taken;
    }
    done_.notify_all();
  }
}

void Writer::write(std::vector<Batch>& batches) {
  Store& st = *store_;
  std::vector<views::HistoryRecord> retry;
  {
    std::lock_guard lock(mutex_);
    retry.swap(retry_);
  }
  std::uint64_t records = 0, samples = 0, lifetimes = 0, last_time = 0;
  try {
    st.db.exec("BEGIN");
    for (const auto& r : retry) st.record(r), ++records;
    for (const Batch& b : batches) {
      for (const auto& r : b.records) st.record(r), ++records;
      std::vector<std::int64_t> process_ids(b.processes.size());
      for (std::size_t i = 0; i < b.processes.size(); ++i) process_ids[i] = st.process_id(b.processes[i]);
      if (b.time_ns) last_time = std::max(last_time, b.time_ns);
      for (const Sample& s : b.samples) {
        const SeriesKey& k = b.series[s.series];
        const std::int64_t series =
            st.series_id(k.device, k.slot, k.process ? process_ids[k.process - 1] : 0);
        // Tier 0 at the sample's time; the coarser tiers at the start of their bucket, rolled up in place.
        for (int tier = 0; tier < 3; ++tier) {
          const std::uint64_t res = kTiers[tier].resolution_ns;
          const std::uint64_t t = tier == 0 ? b.time_ns : b.time_ns / res * res;
          st.upsert_sample.bind(1, tier).bind(2, series).bind(3, t).bind(4, s.bytes).bind(5, s.peak).run();
        }
        ++samples;
      }
      std::vector<std::int64_t> label_ids(b.labels.size());
      for (std::size_t i = 0; i < b.labels.size(); ++i) label_ids[i] = st.label_id(b.labels[i]);
      for (const LifetimeRow& l : b.lifetimes) {
        st.insert_lifetime.bind(1, l.alloc_ns)
            .bind(2, l.free_ns)
            .bind(3, process_ids[l.process])
            .bind(4, static_cast<int>(l.device))
            .bind(5, static_cast<int>(l.type))
            .bind(6, static_cast<int>(l.kind))
            .bind(7, l.id)
            .bind(8, l.size)
            .bind(9, l.address)
            .bind(10, l.size_per_bank)
            .bind(11, label_ids[l.label]);
        st.insert_lifetime.run();
        ++lifetimes;
      }
    }
    if (last_time) st.set_meta.bind(1, std::string_view("last_write_ns")).bind(2, last_time).run();
    st.db.exec("COMMIT");
  } catch (const HistoryError& e) {
    // A full disk or a vanished directory: what is stored stays; records wait in memory for a write that
    // succeeds, samples and lifetimes of this write are lost (and counted).
    sqlite3_exec(st.db.handle(), "ROLLBACK", nullptr, nullptr, nullptr);
    st.forget_ids();
    std::lock_guard lock(mutex_);
    status_.degraded = true;
    status_.error = e.what();
    for (auto& r : retry)
      if (retry_.size() < kMaxRetryRecords) retry_.push_back(std::move(r));
    for (auto& b : batches) {
      for (auto& r : b.records)
        if (retry_.size() < kMaxRetryRecords) retry_.push_back(std::move(r));
      status_.lifetimes_dropped += b.lifetimes.size();
    }
    return;
  }
  {
    std::lock_guard lock(mutex_);
    status_.degraded = false;
    status_.records_written += records;
    status_.samples_written += samples;
    status_.lifetimes_written += lifetimes;
    ++status_.commits;
  }
  const std::uint64_t now = realtime_ns();
  if (now - last_prune_ns_ >= kPruneEveryNs) {
    last_prune_ns_ = now;
    prune(now);
  }
}

void Writer::prune(std::uint64_t now_ns) {
  Store& st = *store_;
  try {
    for (int tier = 0; tier < 2; ++tier) {
      const std::uint64_t keep = kTiers[tier].keep_ns;
      auto q = st.db.prepare("DELETE FROM samples WHERE tier=? AND t<?");
      q.bind(1, tier).bind(2, now_ns > keep ? now_ns - keep : 0).run();
    }
    const std::uint64_t keep = options_.keep_days * 86400 * kSecondNs;
    const std::uint64_t cut = now_ns > keep ? now_ns - keep : 0;
    st.db.prepare("DELETE FROM samples WHERE tier=2 AND t<?").bind(1, cut).run();
    st.db.prepare("DELETE FROM records WHERE time_ns<?").bind(1, cut).run();
    st.db.prepare("DELETE FROM lifetimes WHERE free_ns<?").bind(1, cut).run();
    // Over the size bound: the oldest tenth of the lifetimes goes first (they are most of the bytes), then
    // the oldest tenth of the records.
    auto size = [&] {
      auto q = st.db.prepare(
          "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM "
          "pragma_freelist_count()),"
          " (SELECT page_size FROM pragma_page_size())");
      q.step();
      return q.u64(0) * q.u64(1);
    };
    for (int round = 0; round < 10 && size() > options_.max_bytes; ++round) {
      auto n = st.db.prepare("SELECT count(*) FROM lifetimes");
      n.step();
      if (n.u64(0) > 0) {
        st.db
            .prepare(
                "DELETE FROM lifetimes WHERE rowid IN (SELECT rowid FROM lifetimes ORDER BY free_ns LIMIT ?)")
            .bind(1, std::max<std::uint64_t>(1, n.u64(0) / 10))
            .run();
      } else {
        auto r = st.db.prepare("SELECT count(*) FROM records");
        r.step();
        st.db.prepare("DELETE FROM records WHERE seq IN (SELECT seq FROM records ORDER BY seq LIMIT ?)")
            .bind(1, std::max<std::uint64_t>(1, r.u64(0) / 10))
            .run();
      }
    }
    st.db.exec("PRAGMA incremental_vacuum");
  } catch (const HistoryError& e) {
    std::lock_guard lock(mutex_);
    status_.degraded = true;
    status_.error = e.what();
  }
}

}  // namespace ttmem::history
