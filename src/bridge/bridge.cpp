// See ttmem/bridge/bridge.hpp.
#include "ttmem/bridge/bridge.hpp"

#include <algorithm>
#include <limits>

namespace ttmem::bridge {

std::string_view to_string(ProgramBufferKind kind) {
  switch (kind) {
    case ProgramBufferKind::circular_buffer:
      return "cb";
    case ProgramBufferKind::dataflow_buffer:
      return "dataflow_buffer";
    case ProgramBufferKind::scratchpad:
      return "scratchpad";
  }
  return "?";
}

std::string_view Bridge::intern(std::string_view text) {
  if (text.empty()) return {};
  return *strings_.emplace(text).first;
}

void Bridge::add_chip(const ChipInfo& chip) {
  std::lock_guard lock(mutex_);
  chips_[chip.id] = chip;
  sink_.chip_added(chip);
}

void Bridge::add_mesh(TtDeviceId mesh, std::vector<TtDeviceId> chips) {
  std::lock_guard lock(mutex_);
  meshes_[mesh] = std::move(chips);
}

std::vector<std::uint16_t> Bridge::chips_of(TtDeviceId device) {
  std::lock_guard lock(mutex_);
  return resolve(device);
}

std::vector<std::uint16_t> Bridge::resolve(TtDeviceId device) {
  std::vector<TtDeviceId> ids;
  if (auto m = meshes_.find(device); m != meshes_.end()) {
    ids = m->second;
  } else {
    ids.push_back(device);
  }
  std::vector<std::uint16_t> out;
  out.reserve(ids.size());
  for (TtDeviceId id : ids) {
    if (id > std::numeric_limits<std::uint16_t>::max()) {
      ++stats_.devices_out_of_range;
      continue;
    }
    if (!chips_.contains(id)) {
      ChipInfo chip;
      chip.id = id;
      if (meshes_.contains(device)) chip.mesh = device;
      chips_[id] = chip;
      ++stats_.implicit_chips;
      sink_.chip_added(chip);
    }
    out.push_back(static_cast<std::uint16_t>(id));
  }
  return out;
}

const Bridge::Frame* Bridge::current_frame() const {
  const auto it = frames_.find(std::this_thread::get_id());
  if (it == frames_.end() || it->second.empty()) return nullptr;
  return &it->second.back();
}

void Bridge::stamp(Allocation& a) const {
  if (const Frame* f = current_frame()) {
    a.site = f->name;
    a.op = f->op;
  }
}

void Bridge::function_start(std::string_view name) {
  std::lock_guard lock(mutex_);
  auto& stack = frames_[std::this_thread::get_id()];
  const std::string_view site = intern(name.empty() ? std::string_view("?") : name);
  const std::string_view op =
      stack.empty() ? site : intern(std::string(stack.back().op) + "/" + std::string(site));
  stack.push_back({site, op});
  sink_.function_started(site, op);
}

void Bridge::function_end() {
  std::lock_guard lock(mutex_);
  auto it = frames_.find(std::this_thread::get_id());
  if (it == frames_.end() || it->second.empty()) {
    ++stats_.unmatched_function_ends;
    return;
  }
  const Frame f = it->second.back();
  it->second.pop_back();
  if (it->second.empty()) frames_.erase(it);
  sink_.function_ended(f.name, f.op);
}

void Bridge::allocate(const BufferInfo& b) {
  std::lock_guard lock(mutex_);
  if (!b.owns_data) {
    ++stats_.views_skipped;
    return;
  }
  if (auto old = buffers_.find(b.unique_id); old != buffers_.end()) {
    // TT-Metal gives each buffer one id for life: a second allocation means the first release was missed.
    ++stats_.duplicate_allocations;
    for (std::uint16_t chip : old->second.chips) {
      Allocation a = old->second.allocation;
      a.chip = chip;
      sink_.released(a, ReleaseReason::explicit_free);
    }
    buffers_.erase(old);
  }
  LiveBuffer live;
  live.chips = resolve(b.device);
  Allocation& a = live.allocation;
  a.mesh = meshes_.contains(b.device) ? b.device : 0;
  a.type = b.type;
  a.kind = b.type == BufferType::TRACE ? AllocKind::trace : AllocKind::owning;
  a.id = b.unique_id;
  a.size = b.size;
  a.address = b.address;
  a.page_size = b.page_size;
  a.layout = b.layout;
  a.size_per_bank = b.max_size_per_bank;
  const bool sharded = b.num_cores > 0;
  if (sharded) {
    a.num_banks = b.num_cores;
    if (b.shard_grid) a.cores = std::make_shared<const CoreRangeSet>(*b.shard_grid);
  } else if (!live.chips.empty()) {
    const ChipInfo& chip = chips_.at(live.chips.front());
    const auto t = static_cast<std::size_t>(b.type);
    if (chip.has_geometry && t < kBufferTypes && chip.num_banks[t] > 0) {
      a.num_banks = chip.num_banks[t];
    } else if (b.max_size_per_bank > 0) {
      // Without the chip's bank count, the fewest banks that hold it (a lower bound).
      a.num_banks = static_cast<std::uint32_t>((b.size + b.max_size_per_bank - 1) / b.max_size_per_bank);
    }
  }
  if (a.size_per_bank == 0 && a.num_banks > 0) a.size_per_bank = (b.size + a.num_banks - 1) / a.num_banks;
  a.timestamp_ns = b.timestamp_ns;
  stamp(a);
  ++stats_.buffers_allocated;
  for (std::uint16_t chip : live.chips) {
    Allocation per_chip = a;
    per_chip.chip = chip;
    sink_.allocated(per_chip);
  }
  buffers_.emplace(b.unique_id, std::move(live));
}

void Bridge::deallocate(const BufferInfo& b) {
  std::lock_guard lock(mutex_);
  if (!b.owns_data) return;  // never allocated as memory (counted at its allocation)
  auto it = buffers_.find(b.unique_id);
  if (it == buffers_.end()) {
    ++stats_.untracked_releases;
    stats_.untracked_release_bytes += b.size;
    return;
  }
  for (std::uint16_t chip : it->second.chips) {
    Allocation a = it->second.allocation;
    a.chip = chip;
    sink_.released(a, ReleaseReason::explicit_free);
  }
  buffers_.erase(it);
  ++stats_.buffers_released;
}

void Bridge::allocate_program_buffer(const ProgramBufferInfo& b) {
  std::lock_guard lock(mutex_);
  const auto chips = resolve(b.device);
  Allocation a;
  a.mesh = meshes_.contains(b.device) ? b.device : 0;
  a.type = BufferType::L1;
  a.kind = AllocKind::circular_buffer;
  a.id = kProgramIdBit | ++next_program_id_;
  a.size = b.size;
  a.address = b.address;
  a.page_size = b.size;
  a.num_banks = static_cast<std::uint32_t>(b.cores.num_cores());
  a.size_per_bank = b.size;
  a.program = b.kind;
  a.cores = std::make_shared<const CoreRangeSet>(b.cores);
  a.tensor_backed = b.tensor_backed;
  a.timestamp_ns = b.timestamp_ns;
  stamp(a);
  ++stats_.program_buffers;
  if (b.tensor_backed) ++stats_.tensor_backed;
  for (std::uint16_t chip : chips) {
    a.chip = chip;
    program_buffers_[chip].push_back(a);
    sink_.allocated(a);
  }
}

void Bridge::release_program_buffers(std::uint16_t chip, ReleaseReason reason) {
  auto it = program_buffers_.find(chip);
  if (it == program_buffers_.end()) return;
  for (const Allocation& a : it->second) {
    sink_.released(a, reason);
    ++stats_.program_buffers_released;
  }
  program_buffers_.erase(it);
}

void Bridge::deallocate_program_buffers(TtDeviceId device) {
  std::lock_guard lock(mutex_);
  for (std::uint16_t chip : resolve(device)) release_program_buffers(chip, ReleaseReason::explicit_free);
}

void Bridge::close_device(TtDeviceId device) {
  std::lock_guard lock(mutex_);
  for (std::uint16_t chip : resolve(device)) {
    sink_.chip_closing(chip, ClosePhase::begin);
    release_program_buffers(chip, ReleaseReason::close_internal);
    sink_.chip_closing(chip, ClosePhase::end);
    // What the chip still held went with it: the sink has heard the close and counts it as leaked.
    for (auto it = buffers_.begin(); it != buffers_.end();) {
      auto& chips = it->second.chips;
      chips.erase(std::remove(chips.begin(), chips.end(), chip), chips.end());
      it = chips.empty() ? buffers_.erase(it) : std::next(it);
    }
  }
}

void Bridge::snapshot(const std::function<void()>& begin, const std::function<void(const ChipInfo&)>& chip,
                      const std::function<void(const Allocation&)>& allocation) const {
  std::lock_guard lock(mutex_);
  begin();
  for (const auto& [id, info] : chips_) chip(info);
  for (const auto& [id, live] : buffers_) {
    for (std::uint16_t c : live.chips) {
      Allocation a = live.allocation;
      a.chip = c;
      allocation(a);
    }
  }
  for (const auto& [c, list] : program_buffers_)
    for (const Allocation& a : list) allocation(a);
}

BridgeStats Bridge::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

}  // namespace ttmem::bridge
