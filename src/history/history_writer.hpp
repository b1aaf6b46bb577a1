// The writing side of the history: batches handed over by the loop's sink are written by one thread into
// the database, so the event loop never waits for the disk. Owns the state directory's lock.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "ttmem/history.hpp"
#include "ttmem/views.hpp"

namespace ttmem::history {

struct HistoryOptions {
  std::string state_dir;
  std::uint64_t interval_ms = 1000;         ///< how often the timeline is sampled and written
  std::uint64_t lifetime_min_size = 0;      ///< buffers smaller than this get no lifetime row
  std::uint64_t lifetimes_per_s = 200'000;  ///< lifetime rows kept per second at most; more are counted
  std::uint64_t keep_days = 30;             ///< records, lifetimes and hourly points older are deleted
  std::uint64_t max_bytes = 1ull << 30;     ///< past this the oldest lifetimes, then records, are deleted
};

/// A process as the history names it: (pid, start time) tells a reused pid apart.
struct ProcessKey {
  pid_t pid = 0;
  std::uint64_t start_time = 0;
  std::string name;
};

/// One timeline series: a device x slot in all (process 0) or one process's share.
struct SeriesKey {
  std::uint16_t device = 0;
  Slot slot = Slot::DRAM;
  std::uint32_t process = 0;  ///< index + 1 into Batch::processes; 0: the device's total
};

struct Sample {
  std::uint32_t series = 0;  ///< index into Batch::series
  std::uint64_t bytes = 0;
  std::uint64_t peak = 0;
};

struct LifetimeRow {
  std::uint64_t alloc_ns = 0;
  std::uint64_t free_ns = 0;
  std::uint32_t process = 0;  ///< index into Batch::processes
  std::uint32_t label = 0;    ///< index into Batch::labels
  std::uint16_t device = 0;
  std::uint8_t type = 0;
  std::uint8_t kind = 0;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::uint64_t size_per_bank = 0;
};

/// What the loop hands over at once: records to keep, a timeline sample, finished lifetimes.
struct Batch {
  std::uint64_t time_ns = 0;  ///< of the sample (0: records only)
  std::vector<views::HistoryRecord> records;
  std::vector<ProcessKey> processes;
  std::vector<SeriesKey> series;
  std::vector<Sample> samples;
  std::vector<std::pair<std::string, std::string>> labels;  ///< (site, scope)
  std::vector<LifetimeRow> lifetimes;
};

/// What the writer has done, for `ttmem info`, the log and tests.
struct WriterStatus {
  std::string path;
  bool degraded = false;
  std::string error;  ///< the latest write error (empty: none)
  std::uint64_t records_written = 0;
  std::uint64_t samples_written = 0;
  std::uint64_t lifetimes_written = 0;
  std::uint64_t lifetimes_dropped = 0;  ///< over the rate, the queue's bound, or lost to a write error
  std::uint64_t records_pending = 0;    ///< kept in memory until a write succeeds
  std::uint64_t commits = 0;
};

class Writer {
 public:
  /// Creates the state directory and database if needed and takes the directory's lock; throws HistoryError
  /// (another ttmemd uses it, it is read-only, the disk is full, the database is not ttmem's).
  explicit Writer(HistoryOptions options);
  /// Writes what is queued, then stops.
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  /// Never blocks on the disk. Lifetimes past the queue's bound are dropped (and counted); records and
  /// samples are always queued.
  void submit(Batch&& batch);
  /// Waits until everything submitted before the call is committed (or failed); for shutdown and tests.
  void flush();
  WriterStatus status() const;
  /// When the previous ttmemd last wrote (0: never), read at start: where the timeline's gap begins.
  std::uint64_t previous_last_write_ns() const { return previous_last_write_ns_; }
  const HistoryOptions& options() const { return options_; }

 private:
  struct Store;
  void run();
  void write(std::vector<Batch>& batches);
  void prune(std::uint64_t now_ns);

  HistoryOptions options_;
  int lock_fd_ = -1;
  std::unique_ptr<Store> store_;
  std::uint64_t previous_last_write_ns_ = 0;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<Batch> queue_;
  std::size_t queued_lifetimes_ = 0;
  std::uint64_t submitted_ = 0;
  std::uint64_t completed_ = 0;
  bool stopping_ = false;
  WriterStatus status_;
  std::vector<views::HistoryRecord> retry_;  // records of failed writes, written with the next batch
  std::uint64_t last_prune_ns_ = 0;
  std::thread thread_;
};

}  // namespace ttmem::history
