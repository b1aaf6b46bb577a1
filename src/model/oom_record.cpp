// Out-of-memory records and their verdicts; see oom_record.hpp.
#include "oom_record.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "free_space.hpp"
#include "ledger_views.hpp"

namespace ttmem::model {

namespace {

constexpr std::size_t kLargestBuffers = 10;
constexpr std::size_t kFreeBlocks = 32;

std::string holder_text(const views::OomHolder& h) {
  return fmt::format("pid {} ({})", h.pid, h.command.empty() ? h.name : h.command);
}

}  // namespace

void judge(views::OomRecord& r) {
  const std::string what =
      fmt::format("{} of {} on device {}", exact_bytes(r.size), to_string(r.type), r.device);
  if (r.reason == FailureReason::cb_clash) {
    r.verdict = OomVerdict::exhausted;
    r.summary = fmt::format(
        "circular buffers of {} needed {} per core from the start of L1's free range; they would run into "
        "L1 buffers or past the end of L1 ({}): free L1 below the lowest L1 buffer, or shrink the CBs",
        r.site.empty() ? "a program" : r.site, exact_bytes(r.needed_per_bank), r.message);
    return;
  }
  if (!r.space) {
    r.verdict = OomVerdict::unknown;
    r.summary = fmt::format(
        "{} failed; device {} did not announce its {} banks, so ttmemd has no map of "
        "its free space (the runtime said: {})",
        what, r.device, to_string(r.type), r.message);
    return;
  }
  const views::FreeSpace& f = *r.space;
  const std::uint64_t need = r.needed_per_bank;
  const std::string needs =
      fmt::format("{} needs {} per bank over {} banks", what, exact_bytes(need), r.num_banks);
  if (f.free_per_bank >= need && f.largest_free_block < need) {
    r.verdict = OomVerdict::fragmented;
    r.summary = fmt::format(
        "fragmented: {}; {} are free per bank but in {} blocks, the largest {} — free or move buffers "
        "between the blocks (the map: ttmem map -d {} -t {}), or allocate the large buffers first",
        needs, exact_bytes(f.free_per_bank), f.free_blocks, exact_bytes(f.largest_free_block), r.device,
        to_string(r.type));
    return;
  }
  if (f.free_per_bank >= need) {
    r.verdict = OomVerdict::unknown;
    r.summary = fmt::format(
        "{}; ttmemd's map has {} free per bank, the largest block {}, so it should fit: the runtime's "
        "allocator holds memory ttmemd was not told about (the runtime said: {})",
        needs, exact_bytes(f.free_per_bank), exact_bytes(f.largest_free_block), r.message);
    return;
  }
  const std::uint64_t short_by = need - f.free_per_bank;
  const std::string shortfall = fmt::format("{}; {} are free per bank ({} short)", needs,
                                            exact_bytes(f.free_per_bank), exact_bytes(short_by));
  // Who holds the difference: another process, or the runtime's own buffers, can be acted on apart.
  const views::OomHolder* other = nullptr;
  std::uint64_t others = 0, runtime = 0, own = 0;
  for (const auto& h : r.holders) {
    if (h.pid == r.pid) {
      runtime += h.internal_per_bank;
      own += h.per_bank;
      continue;
    }
    others += h.per_bank + h.internal_per_bank;
    if (!other || h.per_bank + h.internal_per_bank > other->per_bank + other->internal_per_bank) other = &h;
  }
  if (others >= short_by && other) {
    r.verdict = OomVerdict::reserved;
    r.summary = fmt::format(
        "reserved: {}; other processes hold {} per bank, most of it {} with {} — without them it would fit",
        shortfall, exact_bytes(others), holder_text(*other),
        exact_bytes(other->per_bank + other->internal_per_bank));
    return;
  }
  if (runtime >= short_by) {
    r.verdict = OomVerdict::reserved;
    r.summary = fmt::format(
        "reserved: {}; the runtime's own buffers (kernel binaries, dispatch and trace buffers) hold {} per "
        "bank — without them it would fit",
        shortfall, exact_bytes(runtime));
    return;
  }
  r.verdict = OomVerdict::exhausted;
  r.summary = fmt::format(
      "exhausted: {}; this process holds {} per bank, the runtime {}, other processes {} — free some of "
      "this process's buffers (the largest are listed) or ask for less",
      shortfall, exact_bytes(own), exact_bytes(runtime), exact_bytes(others));
}

views::OomRecord build_oom_record(const Registry& registry, const ProcessState& p,
                                  const proto::AllocFailure& m, std::uint64_t id) {
  views::OomRecord r;
  r.id = id;
  r.pid = p.pid;
  r.name = p.name;
  r.time_ns = realtime_ns();
  r.device = m.device;
  r.type = m.type;
  r.reason = m.reason;
  r.size = m.size;
  r.page_size = m.page_size;
  r.num_banks = m.num_banks;
  r.needed_per_bank = m.size_per_bank;
  r.site = m.site;
  r.scope = m.scope;
  r.message = m.message;

  std::vector<views::FreeBlock> free;
  r.space = free_space_view(free_space(registry, m.device, m.type, &free));
  if (free.size() > kFreeBlocks) {
    std::nth_element(free.begin(), free.begin() + kFreeBlocks, free.end(),
                     [](const auto& a, const auto& b) { return a.size > b.size; });
    free.resize(kFreeBlocks);
    std::sort(free.begin(), free.end(), [](const auto& a, const auto& b) { return a.address < b.address; });
  }
  r.free_blocks = std::move(free);

  // Holders, the failing process first; and the largest buffers of the type over all of them.
  const std::uint64_t now = monotonic_ns();
  const auto wanted = static_cast<std::uint8_t>(m.type);
  std::vector<views::OomBuffer> largest;  // a min-heap by size while the holders are visited
  auto larger = [](const views::OomBuffer& x, const views::OomBuffer& y) { return x.size > y.size; };
  auto add_holder = [&](const ProcessState& q) {
    auto it = q.devices.find(m.device);
    if (it == q.devices.end()) return;
    const ProcessDevice& pd = it->second;
    views::OomHolder h;
    h.pid = q.pid;
    h.name = q.name;
    h.command = q.command;
    for (std::size_t s = 0; s < kSlots; ++s) h.bytes[s] = pd.usage[s].bytes;
    h.buffers = buffer_count(pd.usage);
    if (pd.group != AllocationTable::kNoGroup) {
      registry.allocations().for_each_in_group(pd.group, [&](const AllocationRecord& a) {
        if (a.type != wanted || !takes_allocator_space(a)) return;
        (a.internal() ? h.internal_per_bank : h.per_bank) += a.size_per_bank;
        views::OomBuffer b{q.pid,     a.id,          a.kind(),      a.size,       a.size_per_bank,
                           a.address, std::string(), std::string(), a.internal(), a.age_ms(now)};
        const auto name = [&] {
          const OriginText where = registry.origin(q, a.label);
          b.site = std::string(where.site);
          b.scope = std::string(where.scope);
        };
        if (largest.size() < kLargestBuffers) {
          name();
          largest.push_back(std::move(b));
          std::push_heap(largest.begin(), largest.end(), larger);
        } else if (a.size > largest.front().size) {
          std::pop_heap(largest.begin(), largest.end(), larger);
          name();
          largest.back() = std::move(b);
          std::push_heap(largest.begin(), largest.end(), larger);
        }
      });
    }
    if (h.buffers == 0 && q.slot != p.slot) return;
    r.holders.push_back(std::move(h));
  };
  add_holder(p);
  for (const auto& [slot, q] : registry.processes()) {
    if (slot != p.slot) add_holder(q);
  }
  std::sort(largest.begin(), largest.end(), [](const auto& x, const auto& y) {
    return x.size != y.size ? x.size > y.size : x.address < y.address;
  });
  r.largest = std::move(largest);
  judge(r);
  return r;
}

}  // namespace ttmem::model
