// ttmemd's history on disk (docs/history.md): where it lives, and reading it back — kept records, the
// timeline, buffer lifetimes — for `ttmem history`, `ttmem timeline`, the exports and Python. The writing
// side (the sink and its writer thread) is ttmemd's: history_sink.hpp.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "ttmem/views.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::history {

/// A history that cannot be opened, read or written; the text says what and what to do.
class HistoryError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// $TTMEM_STATE_DIR; else /var/lib/ttmem for root; else $XDG_STATE_HOME/ttmem (~/.local/state/ttmem).
std::string default_state_dir();
/// The database in a state directory.
std::string database_path(const std::string& state_dir);

/// "1h", "30m", "2d", "90s" (that long before `now_ns`), or seconds since the epoch, or
/// "2026-12-02T10:00:00" (UTC). Empty when it is none of these.
std::optional<std::uint64_t> parse_time(std::string_view text, std::uint64_t now_ns);
/// What parse_time takes, for the error that says a time is not one.
inline constexpr const char* kTimeForms = "90s, 30m, 2h, 7d, seconds since the epoch or 2026-12-02T10:00:00";
/// "1h" -> nanoseconds; empty when not a duration.
std::optional<std::uint64_t> parse_duration(std::string_view text);

/// How the timeline keeps detail: each tier's resolution and how long its points are kept.
struct Tier {
  std::uint64_t resolution_ns;
  std::uint64_t keep_ns;
};
inline constexpr std::uint64_t kSecondNs = 1'000'000'000ull;
/// Tier 0's resolution is the write interval (1 s by default); tiers 1 and 2 are rolled up from it.
inline constexpr Tier kTiers[] = {
    {kSecondNs, 3600 * kSecondNs},            // the last hour, per second
    {60 * kSecondNs, 7 * 86400 * kSecondNs},  // the last week, per minute
    {3600 * kSecondNs, 0},                    // per hour, as long as the retention keeps records
};

struct RecordFilter {
  std::uint64_t since_ns = 0;
  std::uint64_t until_ns = UINT64_MAX;
  std::optional<std::uint16_t> device;
  std::optional<pid_t> pid;
  std::string site;                ///< records whose site contains this
  std::string op;                  ///< records whose op scope contains this
  std::vector<HistoryKind> kinds;  ///< empty: all
  std::size_t limit = 1000;        ///< the newest this many
};

struct TimelineQuery {
  std::uint16_t device = 0;
  std::uint64_t since_ns = 0;
  std::uint64_t until_ns = UINT64_MAX;
  std::optional<Slot> slot;  ///< empty: every slot
  bool per_process = false;  ///< also each process's series
  std::optional<pid_t> pid;  ///< only this process's series (implies per_process)
};

/// One buffer's life as kept: allocated at alloc_ns, freed at free_ns.
struct Lifetime {
  std::uint64_t alloc_ns = 0;
  std::uint64_t free_ns = 0;
  pid_t pid = 0;
  std::string name;
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::uint64_t size_per_bank = 0;
  std::string site;
  std::string scope;
};

struct LifetimeQuery {
  std::uint64_t since_ns = 0;
  std::uint64_t until_ns = UINT64_MAX;
  std::optional<std::uint16_t> device;
  std::size_t limit = 1'000'000;
};

/// A read-only view of a history database; several may be open while ttmemd writes it.
class Reader {
 public:
  /// Throws HistoryError when there is no history at `state_dir` or it cannot be read.
  explicit Reader(const std::string& state_dir);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  views::HistoryList records(const RecordFilter& f) const;
  views::Timeline timeline(const TimelineQuery& q) const;
  std::vector<Lifetime> lifetimes(const LifetimeQuery& q, bool* truncated = nullptr) const;
  /// The devices the timeline has points for.
  std::vector<std::uint16_t> devices() const;
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

/// A span of the history to export, on one device or all.
struct ExportWindow {
  std::uint64_t since_ns = 0;
  std::uint64_t until_ns = UINT64_MAX;
  std::optional<std::uint16_t> device;
};

/// Chrome trace JSON that Perfetto and chrome://tracing open: per device a process with counter tracks of
/// memory in use (per slot, and per process), buffer lifetimes and op spans as async slices, and leaks,
/// orphans and out-of-memory records as instant events.
std::string perfetto_trace(const Reader& reader, const ExportWindow& window);

/// The snapshot `torch.cuda.memory._snapshot()` returns, as JSON: `segments` and `device_traces`, one
/// memory_viz "device" per TT device x slot (listed in `ttmem_devices`). Pickled by Python's own pickle
/// (protocol 4), it opens in pytorch.org/memory_viz.
std::string memory_viz_snapshot(const Reader& reader, const ExportWindow& window);

}  // namespace ttmem::history
