// See ttmem/replay/op_analysis.hpp.
#include "ttmem/replay/op_analysis.hpp"

#include <algorithm>

namespace ttmem::replay {

namespace {

bool in_l1(const bridge::Allocation& a) {
  return a.program || a.type == BufferType::L1 || a.type == BufferType::L1_SMALL;
}
bool in_dram(const bridge::Allocation& a) {
  return !a.program && (a.type == BufferType::DRAM || a.type == BufferType::TRACE);
}
/// What it puts on each core it is on.
std::uint64_t bytes_per_core(const bridge::Allocation& a) {
  if (a.program) return a.tensor_backed ? 0 : a.size;
  return a.size_per_bank;
}
std::uint64_t key_of(const bridge::Allocation& a) {
  return (std::uint64_t{a.chip} << 48) ^ a.id;
}

}  // namespace

void OpAnalysis::function_started(std::string_view name, std::string_view op) {
  OpFiguresRow row;
  row.name = std::string(name);
  row.op = std::string(op);
  row.depth = static_cast<int>(open_.size());
  row.start_node = node_;
  figures_.ops.push_back(std::move(row));
  peak_seq_.push_back(0);
  open_.push_back({figures_.ops.size() - 1, entries_.size()});
}

void OpAnalysis::function_ended(std::string_view, std::string_view) {
  if (open_.empty()) return;
  const Open o = open_.back();
  open_.pop_back();
  OpFiguresRow& row = figures_.ops[o.row];
  row.end_node = node_;
  row.ended = true;
  row.allocations = entries_.size() - o.first_entry;
  std::uint64_t last_id = 0;
  bool any = false;
  for (std::size_t i = o.first_entry; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    if (e.allocation.program || e.release_seq != UINT64_MAX) continue;
    if (any && e.allocation.id == last_id) continue;  // the same buffer on the next chip of its mesh
    any = true;
    last_id = e.allocation.id;
    row.outlived.push_back({e.allocation.id, e.allocation.type, e.allocation.size, e.allocation.address,
                            std::string(e.allocation.site), e.node});
  }
}

bool OpAnalysis::on_every_core(const bridge::Allocation& a) {
  if (!a.cores) return true;
  for (const bridge::CoreRange& r : a.cores->ranges)
    if (r.end.x >= kGrid || r.end.y >= kGrid) return true;
  return false;
}

void OpAnalysis::apply(Entry& e, int sign) {
  const bridge::Allocation& a = e.allocation;
  Chip& chip = chips_[a.chip];
  const auto delta = [sign](std::uint64_t& v, std::uint64_t by) { v = sign > 0 ? v + by : v - by; };
  if (in_dram(a)) {
    delta(chip.dram, a.size);
    return;
  }
  if (!in_l1(a)) return;
  const std::uint64_t bytes = bytes_per_core(a);
  const auto tt = static_cast<std::int64_t>(a.program ? a.size : a.size_per_bank) * sign;
  if (!a.program) {
    chip.tt_l1 += tt;
  } else if (!a.tensor_backed) {
    switch (*a.program) {
      case bridge::ProgramBufferKind::circular_buffer:
        chip.tt_cb += tt;
        break;
      case bridge::ProgramBufferKind::dataflow_buffer:
        chip.tt_dfb += tt;
        break;
      case bridge::ProgramBufferKind::scratchpad:
        chip.tt_scratch += tt;
        break;
    }
  }
  if (bytes == 0) return;
  if (on_every_core(a)) {
    delta(chip.uniform, bytes);
    if (a.program) delta(chip.uniform_program, bytes);
    if (!a.program && a.num_banks > 0 && a.layout != BufferLayout::interleaved)
      delta(chip.uniform_unknown_grid, bytes);
    return;
  }
  for (const bridge::CoreRange& r : a.cores->ranges) {
    chip.width = std::max(chip.width, r.end.x + 1);
    chip.height = std::max(chip.height, r.end.y + 1);
    for (std::uint32_t y = r.start.y; y <= r.end.y; ++y) {
      for (std::uint32_t x = r.start.x; x <= r.end.x; ++x) {
        delta(chip.cores[y * kGrid + x], bytes);
        if (a.program) delta(chip.cores_program[y * kGrid + x], bytes);
      }
    }
  }
}

void OpAnalysis::update_peaks(std::uint16_t id) {
  const Chip& chip = chips_[id];
  std::uint64_t best = 0;
  std::optional<bridge::CoreCoord> core;
  for (std::uint32_t y = 0; y < chip.height; ++y) {
    for (std::uint32_t x = 0; x < chip.width; ++x) {
      const std::uint64_t v = chip.cores[y * kGrid + x];
      if (v > best) {
        best = v;
        core = bridge::CoreCoord{x, y};
      }
    }
  }
  const std::uint64_t per_core = chip.uniform + best;
  const auto raise = [&](L1Peak& peak) {
    if (per_core <= peak.per_core) return false;
    peak.per_core = per_core;
    peak.program = chip.uniform_program + (core ? chip.cores_program[core->y * kGrid + core->x] : 0);
    peak.chip = id;
    peak.core = core;
    peak.upper_bound = chip.uniform_unknown_grid > 0;
    peak.node = node_;
    return true;
  };
  if (raise(figures_.l1)) capture_peak_seq_ = seq_;
  for (const Open& o : open_)
    if (raise(figures_.ops[o.row].l1)) peak_seq_[o.row] = seq_;
  if (chip.dram > figures_.peak_dram) {
    figures_.peak_dram = chip.dram;
    figures_.dram_chip = id;
  }
  for (const Open& o : open_) {
    OpFiguresRow& row = figures_.ops[o.row];
    if (chip.dram > row.peak_dram) {
      row.peak_dram = chip.dram;
      row.dram_chip = id;
    }
  }
  TtMetalPeaks& tt = figures_.tt_metal;
  const auto at_least_zero = [](std::int64_t v) {
    return static_cast<std::uint64_t>(std::max<std::int64_t>(v, 0));
  };
  tt.peak_cb = std::max(tt.peak_cb, at_least_zero(chip.tt_cb));
  tt.peak_l1 = std::max(tt.peak_l1, at_least_zero(chip.tt_l1));
  tt.peak_dataflow_buffer = std::max(tt.peak_dataflow_buffer, at_least_zero(chip.tt_dfb));
  tt.peak_scratchpad = std::max(tt.peak_scratchpad, at_least_zero(chip.tt_scratch));
  tt.peak_total =
      std::max(tt.peak_total, at_least_zero(chip.tt_cb + chip.tt_l1 + chip.tt_dfb + chip.tt_scratch));
}

void OpAnalysis::allocated(const bridge::Allocation& a) {
  Entry e;
  e.allocation = a;
  e.node = node_;
  e.alloc_seq = seq_;
  entries_.push_back(std::move(e));
  const std::size_t index = entries_.size() - 1;
  live_[key_of(a)] = index;
  log_.emplace_back(index, true);
  ++seq_;
  apply(entries_[index], +1);
  update_peaks(a.chip);
}

void OpAnalysis::released(const bridge::Allocation& a, ReleaseReason) {
  const auto it = live_.find(key_of(a));
  if (it == live_.end()) return;
  Entry& e = entries_[it->second];
  e.release_seq = seq_;
  log_.emplace_back(it->second, false);
  live_.erase(it);
  ++seq_;
  apply(e, -1);
}

std::vector<PeakPart> OpAnalysis::parts_at(const L1Peak& peak, const std::vector<std::size_t>& live) const {
  std::vector<PeakPart> parts;
  for (std::size_t i : live) {
    const Entry& e = entries_[i];
    const bridge::Allocation& a = e.allocation;
    if (a.chip != peak.chip || !in_l1(a)) continue;
    const std::uint64_t bytes = bytes_per_core(a);
    if (bytes == 0 && !a.tensor_backed) continue;
    if (!on_every_core(a) && !(peak.core && a.cores->contains(*peak.core))) continue;
    PeakPart part;
    part.id = a.id;
    part.type = a.type;
    part.program = a.program;
    part.bytes = bytes;
    part.size = a.size;
    part.address = a.address;
    if (a.cores) {
      part.cores = a.cores->str();
    } else {
      part.cores = a.layout == BufferLayout::interleaved ? "all" : "all?";
    }
    part.site = std::string(a.site);
    part.op = std::string(a.op);
    part.node = e.node;
    parts.push_back(std::move(part));
  }
  std::stable_sort(parts.begin(), parts.end(),
                   [](const PeakPart& x, const PeakPart& y) { return x.bytes > y.bytes; });
  return parts;
}

CaptureFigures OpAnalysis::finish() {
  for (const Open& o : open_) {
    OpFiguresRow& row = figures_.ops[o.row];
    row.end_node = node_;
    row.allocations = entries_.size() - o.first_entry;
  }
  // One sweep over the allocations in order, stopping at each peak to list what was live.
  std::vector<PendingPeak> pending;
  if (figures_.l1.per_core > 0) pending.push_back({&figures_.l1, capture_peak_seq_});
  for (std::size_t r = 0; r < figures_.ops.size(); ++r)
    if (figures_.ops[r].l1.per_core > 0) pending.push_back({&figures_.ops[r].l1, peak_seq_[r]});
  std::stable_sort(pending.begin(), pending.end(),
                   [](const PendingPeak& a, const PendingPeak& b) { return a.seq < b.seq; });
  std::vector<std::size_t> live;
  std::vector<std::size_t> position(entries_.size(), 0);
  std::uint64_t applied = 0;
  for (const PendingPeak& p : pending) {
    for (; applied < p.seq && applied < log_.size(); ++applied) {
      const auto [entry, allocated] = log_[applied];
      if (allocated) {
        position[entry] = live.size();
        live.push_back(entry);
      } else {
        const std::size_t at = position[entry];
        live[at] = live.back();
        position[live[at]] = at;
        live.pop_back();
      }
    }
    p.peak->parts = parts_at(*p.peak, live);
  }
  CaptureFigures out = std::move(figures_);
  figures_ = {};
  return out;
}

}  // namespace ttmem::replay
