// The address map of one memory type, rebuilt from the live records; see free_space.hpp.
#include "free_space.hpp"

#include <algorithm>
#include <array>

namespace ttmem::model {

namespace {

struct Extent {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  const AllocationRecord* record = nullptr;
};

/// Sorts by begin address (ties in any order): an LSD radix sort over the bytes that differ, so the usual
/// addresses (below 4 GiB) take four passes over the extents instead of n log n comparisons.
void sort_by_begin(std::vector<Extent>& v, std::vector<Extent>& scratch) {
  if (v.size() < 256) {
    std::sort(v.begin(), v.end(), [](const Extent& a, const Extent& b) { return a.begin < b.begin; });
    return;
  }
  std::array<std::array<std::size_t, 256>, 8> counts{};
  for (const Extent& e : v) {
    for (int d = 0; d < 8; ++d) ++counts[d][(e.begin >> (8 * d)) & 0xff];
  }
  scratch.resize(v.size());
  for (int d = 0; d < 8; ++d) {
    auto& c = counts[d];
    if (c[(v.front().begin >> (8 * d)) & 0xff] == v.size()) continue;  // every key has this byte
    std::size_t at = 0;
    for (auto& n : c) {
      const std::size_t here = n;
      n = at;
      at += here;
    }
    for (const Extent& e : v) scratch[c[(e.begin >> (8 * d)) & 0xff]++] = e;
    v.swap(scratch);
  }
}

/// The extents of one computation. Kept between computations (per thread) with their capacity: a fresh
/// vector of a million extents costs more in page faults than the sort itself.
struct Collected {
  std::vector<Extent> buffers;
  std::vector<Extent> cbs;
  std::vector<Extent> scratch;
  void clear() {
    buffers.clear();
    cbs.clear();
  }
};

/// The live records of `type` on `device` that have a place in [base, base + bank_size); the others are
/// counted in `f`.
const Collected& collect(const Registry& registry, std::uint16_t device, BufferType type, bool with_cbs,
                         FreeSpaceFigures& f) {
  thread_local Collected out;
  out.clear();
  const std::uint64_t limit = f.base + f.bank_size;
  const auto wanted = static_cast<std::uint8_t>(type);
  for (const auto& [slot, p] : registry.processes()) {
    auto it = p.devices.find(device);
    if (it == p.devices.end() || it->second.group == AllocationTable::kNoGroup) continue;
    registry.allocations().for_each_in_group(it->second.group, [&](const AllocationRecord& r) {
      if (r.type != wanted) return;
      const bool cb = r.kind() == AllocKind::circular_buffer;
      if (!takes_allocator_space(r) && !(cb && with_cbs)) return;
      if (r.size_per_bank == 0) {
        if (r.size > 0 && !cb) ++f.unplaced_buffers;
        return;
      }
      if (r.address < f.base || r.address > limit || r.size_per_bank > limit - r.address) {
        if (!cb) ++f.outside_buffers;
        return;
      }
      (cb ? out.cbs : out.buffers).push_back({r.address, r.address + r.size_per_bank, &r});
    });
  }
  if (!std::is_sorted(out.buffers.begin(), out.buffers.end(),
                      [](const Extent& a, const Extent& b) { return a.begin < b.begin; }))
    sort_by_begin(out.buffers, out.scratch);
  // CBs are listed, so their order is shown: by address, then size.
  std::sort(out.cbs.begin(), out.cbs.end(), [](const Extent& a, const Extent& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  return out;
}

FreeSpaceFigures geometry(const Registry& registry, std::uint16_t device, BufferType type) {
  FreeSpaceFigures f;
  auto it = registry.devices().find(device);
  if (it == registry.devices().end()) return f;
  const BankGeometry& g = it->second.banks[index(type)];
  if (g.num_banks == 0 || g.bank_size == 0) return f;
  f.known = true;
  f.base = g.base;
  f.bank_size = g.bank_size;
  f.num_banks = g.num_banks;
  return f;
}

void add_free(FreeSpaceFigures& f, std::uint64_t size) {
  f.free_per_bank += size;
  ++f.free_blocks;
  f.largest_free_block = std::max(f.largest_free_block, size);
}

}  // namespace

FreeSpaceFigures free_space(const Registry& registry, std::uint16_t device, BufferType type,
                            std::vector<views::FreeBlock>* gaps) {
  FreeSpaceFigures f = geometry(registry, device, type);
  if (!f.known) return f;
  const Collected& c = collect(registry, device, type, false, f);
  auto gap = [&](std::uint64_t address, std::uint64_t size) {
    add_free(f, size);
    if (gaps) gaps->push_back({address, size});
  };
  std::uint64_t covered = f.base;  // everything below is held by some buffer or counted free
  for (const Extent& e : c.buffers) {
    if (e.begin > covered) gap(covered, e.begin - covered);
    if (e.begin < covered) f.overlapping_bytes += std::min(e.end, covered) - e.begin;
    covered = std::max(covered, e.end);
  }
  if (f.base + f.bank_size > covered) gap(covered, f.base + f.bank_size - covered);
  return f;
}

const FreeSpaceFigures& FreeSpaceCache::get(const Registry& registry, std::uint16_t device, BufferType type) {
  auto d = registry.devices().find(device);
  const std::uint64_t changes = d == registry.devices().end() ? 0 : d->second.changes[index(type)];
  const std::uint32_t key = static_cast<std::uint32_t>(device) << 8 | static_cast<std::uint32_t>(type);
  auto [it, added] = entries_.try_emplace(key);
  if (added || it->second.changes != changes) it->second = {changes, free_space(registry, device, type)};
  return it->second.figures;
}

FreeSpaceMap free_space_map(const Registry& registry, std::uint16_t device, BufferType type, bool with_cbs) {
  FreeSpaceMap map;
  FreeSpaceFigures& f = map.figures;
  f = geometry(registry, device, type);
  if (!f.known) return map;
  const Collected& c = collect(registry, device, type, with_cbs && type == BufferType::L1, f);

  // Sweep the buffers' begin and end points: between two points the number of buffers over the range says
  // what it is (0 free, 1 that buffer, more an overlap).
  struct Point {
    std::uint64_t at;
    bool begins;
    const AllocationRecord* record;
  };
  std::vector<Point> points;
  points.reserve(c.buffers.size() * 2);
  for (const Extent& e : c.buffers) {
    points.push_back({e.begin, true, e.record});
    points.push_back({e.end, false, e.record});
  }
  std::sort(points.begin(), points.end(), [](const Point& a, const Point& b) {
    return a.at != b.at ? a.at < b.at : (!a.begins && b.begins);  // ends first: touching is not overlapping
  });
  std::vector<const AllocationRecord*> active;
  std::uint64_t at = f.base;
  auto emit = [&](std::uint64_t end) {
    if (end <= at) return;
    SpaceBlock b{at, end - at, BlockUse::free, nullptr, static_cast<std::uint32_t>(active.size())};
    if (active.empty()) {
      add_free(f, end - at);
    } else if (active.size() == 1) {
      b.use = BlockUse::buffer;
      b.record = active.front();
    } else {
      b.use = BlockUse::overlap;
      f.overlapping_bytes += end - at;
    }
    map.blocks.push_back(b);
    at = end;
  };
  for (const Point& p : points) {
    emit(p.at);
    if (p.begins) {
      active.push_back(p.record);
    } else {
      active.erase(std::find(active.begin(), active.end(), p.record));
    }
  }
  emit(f.base + f.bank_size);
  for (const Extent& e : c.cbs) {
    map.circular_buffers.push_back({e.begin, e.end - e.begin, BlockUse::circular_buffer, e.record, 1});
  }
  return map;
}

}  // namespace ttmem::model
