// The data behind `ttmem top`, apart from drawing: the latest snapshot, per-device usage history, process
// sort order. Plain C++ so it is tested without a terminal.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ttmem/views.hpp"

namespace ttmem::cli {

enum class SortKey { dram, l1, l1_small, trace, cb, buffers, pid, name, device };
const char* sort_key_name(SortKey key);
/// The memory slot a key sorts by, if it sorts by one.
std::optional<Slot> sort_slot(SortKey key);

struct UsageSample {
  std::uint64_t dram = 0;
  std::uint64_t l1 = 0;
};

class TopModel {
 public:
  explicit TopModel(std::size_t history_samples) : history_samples_(history_samples) {}

  /// Takes a new stats answer and out-of-memory answer, and the leak and orphan records newer than the
  /// ones held (asked with last_leak_seq / last_orphan_seq: top fetches only what is new); appends a
  /// history sample per device. The newest kKeptRecords of each kind are kept.
  void update(views::Stats stats, views::Leaks new_records, views::OomList ooms = {});
  /// Drops the records held (a new connection: the next fetch asks for everything again).
  void forget_records();
  std::uint64_t last_leak_seq() const { return leaks_.leaks.empty() ? 0 : leaks_.leaks.front().seq; }
  std::uint64_t last_orphan_seq() const { return leaks_.orphans.empty() ? 0 : leaks_.orphans.front().seq; }
  const views::Leaks& records() const { return leaks_; }
  static constexpr std::size_t kKeptRecords = 256;  // more lines than any terminal shows
  /// Key press: 'd' DRAM, 'l' L1, 's' L1_SMALL, 't' TRACE, 'c' CB, 'b' buffers, 'p' pid, 'n' name, 'v'
  /// device, 'r' reverses. Returns false for keys it does not handle.
  bool key(int ch);

  const views::Stats& stats() const { return stats_; }
  /// Process rows in display order.
  std::vector<views::ProcessUsage> processes() const;
  /// The latest out-of-memory record, then the newest leak and orphan lines, newest first.
  std::vector<std::string> recent_records(std::size_t n) const;
  const std::deque<UsageSample>& history(int device) const;
  SortKey sort_key() const { return key_; }
  bool descending() const { return descending_; }

 private:
  std::size_t history_samples_;
  views::Stats stats_;
  views::Leaks leaks_;
  views::OomList ooms_;
  std::map<int, std::deque<UsageSample>> history_;
  SortKey key_ = SortKey::dram;
  bool descending_ = true;
};

/// A one-line chart of values scaled to `max`, `width` cells, newest at the right; Unicode blocks or ASCII.
std::string sparkline(const std::vector<std::uint64_t>& values, std::uint64_t max, std::size_t width,
                      bool unicode);

}  // namespace ttmem::cli
