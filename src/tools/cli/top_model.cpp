// Data model of `ttmem top`; see top_model.hpp.
#include "top_model.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "output.hpp"
#include "ttmem/units.hpp"

namespace ttmem::cli {

const char* sort_key_name(SortKey key) {
  switch (key) {
    case SortKey::dram:
      return "DRAM";
    case SortKey::l1:
      return "L1";
    case SortKey::l1_small:
      return "L1_SMALL";
    case SortKey::trace:
      return "TRACE";
    case SortKey::cb:
      return "CB";
    case SortKey::buffers:
      return "BUFFERS";
    case SortKey::pid:
      return "PID";
    case SortKey::name:
      return "NAME";
    case SortKey::device:
      return "DEV";
  }
  return "?";
}

std::optional<Slot> sort_slot(SortKey key) {
  switch (key) {
    case SortKey::dram:
      return Slot::DRAM;
    case SortKey::l1:
      return Slot::L1;
    case SortKey::l1_small:
      return Slot::L1_SMALL;
    case SortKey::trace:
      return Slot::TRACE;
    case SortKey::cb:
      return Slot::CB;
    case SortKey::buffers:
    case SortKey::pid:
    case SortKey::name:
    case SortKey::device:
      break;
  }
  return std::nullopt;
}

namespace {
/// Puts `newer` (newest first, numbered above what `held` has) in front of `held`, keeping the newest
/// `keep`. Records without a number (seq 0) are taken as they come.
template <typename Record>
void prepend_newer(std::vector<Record>& held, std::vector<Record>&& newer, std::size_t keep) {
  const std::uint64_t last = held.empty() ? 0 : held.front().seq;
  std::erase_if(newer, [&](const Record& r) { return r.seq != 0 && r.seq <= last; });
  newer.insert(newer.end(), std::make_move_iterator(held.begin()), std::make_move_iterator(held.end()));
  if (newer.size() > keep) newer.resize(keep);
  held = std::move(newer);
}
}  // namespace

void TopModel::update(views::Stats stats, views::Leaks new_records, views::OomList ooms) {
  stats_ = std::move(stats);
  prepend_newer(leaks_.leaks, std::move(new_records.leaks), kKeptRecords);
  prepend_newer(leaks_.orphans, std::move(new_records.orphans), kKeptRecords);
  ooms_ = std::move(ooms);
  for (const auto& d : stats_.devices) {
    auto& h = history_[d.id];
    h.push_back({d.memory[index(Slot::DRAM)].used, d.memory[index(Slot::L1)].used});
    while (h.size() > history_samples_) h.pop_front();
  }
}

void TopModel::forget_records() {
  leaks_ = {};
}

bool TopModel::key(int ch) {
  SortKey k;
  switch (ch) {
    case 'd':
      k = SortKey::dram;
      break;
    case 'l':
      k = SortKey::l1;
      break;
    case 's':
      k = SortKey::l1_small;
      break;
    case 't':
      k = SortKey::trace;
      break;
    case 'c':
      k = SortKey::cb;
      break;
    case 'b':
      k = SortKey::buffers;
      break;
    case 'p':
      k = SortKey::pid;
      break;
    case 'n':
      k = SortKey::name;
      break;
    case 'v':
      k = SortKey::device;
      break;
    case 'r':
      descending_ = !descending_;
      return true;
    default:
      return false;
  }
  // Sizes read best largest first; names and ids in natural order.
  descending_ = k != SortKey::pid && k != SortKey::name && k != SortKey::device;
  key_ = k;
  return true;
}

std::vector<views::ProcessUsage> TopModel::processes() const {
  std::vector<views::ProcessUsage> rows = stats_.processes;
  const std::optional<Slot> slot = sort_slot(key_);
  auto field = [&](const views::ProcessUsage& r) -> std::uint64_t {
    if (slot) return r.bytes[index(*slot)];
    switch (key_) {
      case SortKey::buffers:
        return r.buffers;
      case SortKey::pid:
        return static_cast<std::uint64_t>(r.pid);
      case SortKey::device:
        return r.device;
      default:
        return 0;
    }
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const views::ProcessUsage& a, const views::ProcessUsage& b) {
    if (key_ == SortKey::name) return descending_ ? a.name > b.name : a.name < b.name;
    return descending_ ? field(a) > field(b) : field(a) < field(b);
  });
  return rows;
}

std::vector<std::string> TopModel::recent_records(std::size_t n) const {
  // A device whose picture is wrong (over full, held by two processes) comes before any record.
  std::vector<std::string> out = device_warning_lines(stats_);
  if (!ooms_.records.empty()) {
    const auto& r = ooms_.records.front();
    out.push_back(fmt::format("OOM pid {} ({}) refused {} of {} on device {}: {} (ttmem oom {})", r.pid,
                              r.name, ttmem::human_bytes(r.size), to_string(r.type), r.device,
                              to_string(r.verdict), r.id));
  }
  for (const auto& o : leaks_.orphans) {
    for (const auto& m : o.messages) out.push_back("ORPHAN " + m);
  }
  for (const auto& l : leaks_.leaks) {
    out.push_back(fmt::format("LEAK pid {} ({}) held {} B of {} on device {} at close, site {}", l.pid,
                              l.name, l.size, to_string(l.type), l.device, l.site.empty() ? "-" : l.site));
  }
  if (out.size() > n) out.resize(n);
  return out;
}

const std::deque<UsageSample>& TopModel::history(int device) const {
  static const std::deque<UsageSample> none;
  auto it = history_.find(device);
  return it == history_.end() ? none : it->second;
}

std::string sparkline(const std::vector<std::uint64_t>& values, std::uint64_t max, std::size_t width,
                      bool unicode) {
  static const char* blocks[] = {" ",      "\u2581", "\u2582", "\u2583", "\u2584",
                                 "\u2585", "\u2586", "\u2587", "\u2588"};
  static const char ascii[] = " .:-=+*#%@";
  std::string out;
  const std::size_t shown = std::min(values.size(), width);
  for (std::size_t i = 0; i < width - shown; ++i) out += ' ';
  for (std::size_t i = values.size() - shown; i < values.size(); ++i) {
    const double f = max ? std::min(1.0, static_cast<double>(values[i]) / static_cast<double>(max)) : 0.0;
    if (unicode) {
      int level = static_cast<int>(f * 8 + 0.5);
      if (values[i] > 0 && level == 0) level = 1;
      out += blocks[level];
    } else {
      int level = static_cast<int>(f * 9 + 0.5);
      if (values[i] > 0 && level == 0) level = 1;
      out += ascii[level];
    }
  }
  return out;
}

}  // namespace ttmem::cli
