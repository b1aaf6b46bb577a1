// The ttmem subcommands. Each returns the process exit status (ttmem/exit_codes.hpp: 0 fine, 1 the server
// answered with an error, 2 the server cannot be reached, 64 a usage error, 65 an input whose content is
// wrong, 66 an input file that cannot be opened).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "ttmem/exit_codes.hpp"
#include "ttmem/query.hpp"

namespace ttmem::cli {

inline constexpr int kExitServerError = exit_status::failure;
inline constexpr int kExitUnreachable = exit_status::unreachable;
inline constexpr int kExitUsage = exit_status::usage;
inline constexpr int kExitBadInput = exit_status::bad_input;
inline constexpr int kExitNoInput = exit_status::no_input;

struct Common {
  std::string socket;
  bool json = false;
};

/// Connects as a tool, or prints the reason and how to start ttmemd, then exits with kExitUnreachable.
query::QueryClient connect_or_exit(const std::string& socket);

struct SmiOptions {
  bool csv = false;
  bool noheader = false;
  bool processes = false;           ///< the process table instead of the device table
  std::vector<std::string> query;   ///< CSV fields, canonical names
  std::vector<std::string> header;  ///< the same as the user named them (nvidia-smi's names kept)
  std::vector<int> devices;         ///< empty: all
  std::uint32_t loop_ms = 0;        ///< 0: once
  std::uint32_t count = 0;          ///< with a loop: stop after this many reports (0: until interrupted)
};
int run_smi(const Common& common, const SmiOptions& options);
/// smi's flags as typed, nvidia-smi's spellings among them, before they become SmiOptions.
struct SmiFlags {
  std::string format;      ///< --format=csv,noheader,nounits
  std::string query;       ///< --query
  std::string query_gpu;   ///< --query-gpu (device fields)
  std::string query_apps;  ///< --query-compute-apps (process fields; implies --processes)
  std::string devices;     ///< -d/-i "0,1"
};
/// Fills `o` from the flags; returns a usage error's sentence, or "".
std::string apply_smi_flags(const SmiFlags& flags, const Common& common, SmiOptions& o);
/// Valid --query fields of the device and process tables.
const std::vector<std::string>& smi_device_fields();
const std::vector<std::string>& smi_process_fields();

/// Which records a listing keeps (-p, -d, --site, --op): a site or op matches when it contains the text.
struct OriginFilter {
  std::optional<int> device;
  std::optional<int> pid;
  std::optional<std::string> site;
  std::optional<std::string> op;
  bool any() const { return device || pid || site || op; }
  bool keeps(pid_t pid, std::uint16_t device, std::string_view site, std::string_view scope) const;
  /// An orphan is a whole process: kept by pid and by a device it held memory on, never by site or op.
  bool keeps(const views::Orphan& orphan) const;
};

struct BufferOptions {
  OriginFilter origin;
  std::optional<std::string> type;
  std::optional<std::string> kind;
  std::optional<std::string> by;  ///< op, site, pid or device: one row per key and memory type
  std::size_t limit = 50;
  bool all = false;
  bool csv = false;  ///< CSV: raw numbers (bytes, ms), one line per buffer or group
};
int run_buffers(const Common& common, const BufferOptions& options);

struct OpsOptions {
  OriginFilter origin;  ///< -p, -d, --op (sites do not apply: an op's figures span its sites)
  std::size_t limit = 50;
};
int run_ops(const Common& common, const OpsOptions& options);

struct LeakOptions {
  OriginFilter origin;
  std::size_t limit = 100;
  bool csv = false;  ///< one line per leak, and per device x type an orphan held
};
int run_leaks(const Common& common, const LeakOptions& options);

struct EventOptions {
  OriginFilter origin;
  bool follow = false;
  std::size_t last = 20;
  bool csv = false;  ///< allocations and frees only (the records have `leaks --csv` and `oom`)
};
int run_events(const Common& common, const EventOptions& options);

/// Every kept out-of-memory record, or the one with `id` in full.
int run_oom(const Common& common, std::optional<std::uint64_t> id);

struct MapOptions {
  int device = 0;
  std::string type = "L1";
  int width = 0;  ///< 0: the terminal's
  int rows = 4;
  std::size_t limit = 40;
  bool all = false;
};
/// One bank's address map: drawn, then its blocks.
int run_map(const Common& common, const MapOptions& options);

int run_devices(const Common& common);
int run_info(const Common& common);

struct TopOptions {
  std::uint32_t interval_ms = 1000;
  std::uint32_t history_s = 300;
};
int run_top(const Common& common, const TopOptions& options);

struct ReplayOptions {
  std::string file;
  bool offline = false;    ///< the report only; no server
  bool keep_open = false;  ///< hold the capture's memory (and the devices open) until interrupted
  std::optional<std::string> arch;
  std::vector<std::string> meshes;  ///< "MESH=CHIP,CHIP"
  std::size_t limit = 200;
  std::string op;
  bool check = false;               ///< the address check against the emulator (NORMAL captures)
  std::optional<std::string> grid;  ///< "XxY" worker cores, for the check
  std::optional<std::uint64_t> l1_base;
};
/// A ttnn graph capture: into ttmemd as a tracked process (unless offline), and its per-op report.
int run_replay(const Common& common, const ReplayOptions& options);

/// Where the history is read from: --state-dir, else $TTMEM_STATE_DIR, else ttmemd's default.
struct HistorySource {
  std::string state_dir;
  std::string since;  ///< "1h", seconds since the epoch, or "2026-12-02T10:00:00"
  std::string until;
};

struct HistoryOptions {
  HistorySource source;
  OriginFilter origin;
  std::string kinds;  ///< "leak,orphan" (empty: all)
  std::size_t limit = 200;
  bool csv = false;
};
/// What ttmemd kept: records since a time, filtered.
int run_history(const Common& common, const HistoryOptions& options);

struct TimelineOptions {
  HistorySource source;
  int device = 0;
  std::string slot;  ///< empty: every slot with points
  std::optional<int> pid;
  bool processes = false;  ///< each process's series too
  bool csv = false;
  int width = 0;  ///< chart columns (0: the terminal's)
};
/// Memory over time on one device: a chart per slot, or CSV / JSON points.
int run_timeline(const Common& common, const TimelineOptions& options);

struct ExportOptions {
  HistorySource source;
  std::optional<int> device;
  std::string perfetto;    ///< Chrome trace JSON file
  std::string memory_viz;  ///< PyTorch memory_viz pickle
};
int run_export(const Common& common, const ExportOptions& options);

}  // namespace ttmem::cli
