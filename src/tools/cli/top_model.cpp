// Data model of `ttmem top`; see top_model.hpp.
#include "top_model.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ttmem::cli {

using nlohmann::json;

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

void TopModel::update(const json& stats, const json& leaks) {
  stats_ = stats;
  leaks_ = leaks;
  for (const auto& d : stats["devices"]) {
    auto& h = history_[d["id"].get<int>()];
    h.push_back(
        {d["memory"]["DRAM"]["used"].get<std::uint64_t>(), d["memory"]["L1"]["used"].get<std::uint64_t>()});
    while (h.size() > history_samples_) h.pop_front();
  }
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

std::vector<json> TopModel::processes() const {
  std::vector<json> rows;
  if (stats_.contains("processes")) rows.assign(stats_["processes"].begin(), stats_["processes"].end());
  auto field = [&](const json& r) -> std::uint64_t {
    switch (key_) {
      case SortKey::dram:
        return r["DRAM"];
      case SortKey::l1:
        return r["L1"];
      case SortKey::l1_small:
        return r["L1_SMALL"];
      case SortKey::trace:
        return r["TRACE"];
      case SortKey::cb:
        return r["CB"];
      case SortKey::buffers:
        return r["buffers"];
      case SortKey::pid:
        return r["pid"];
      case SortKey::device:
        return r["device"];
      case SortKey::name:
        return 0;
    }
    return 0;
  };
  std::stable_sort(rows.begin(), rows.end(), [&](const json& a, const json& b) {
    if (key_ == SortKey::name) {
      const auto na = a["name"].get<std::string>(), nb = b["name"].get<std::string>();
      return descending_ ? na > nb : na < nb;
    }
    return descending_ ? field(a) > field(b) : field(a) < field(b);
  });
  return rows;
}

std::vector<std::string> TopModel::recent_records(std::size_t n) const {
  std::vector<std::string> out;
  if (leaks_.contains("orphans")) {
    for (const auto& o : leaks_["orphans"]) {
      for (const auto& m : o["messages"]) out.push_back("ORPHAN " + m.get<std::string>());
    }
  }
  if (leaks_.contains("leaks")) {
    for (const auto& l : leaks_["leaks"]) {
      out.push_back(fmt::format(
          "LEAK pid {} ({}) held {} B of {} on device {} at close, site {}", l["pid"].get<int>(),
          l["name"].get<std::string>(), l["size"].get<std::uint64_t>(), l["type"].get<std::string>(),
          l["device"].get<int>(), l["site"].get<std::string>().empty() ? "-" : l["site"].get<std::string>()));
    }
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
