// What each op scope of a process holds on each device and memory type, and the most it held at once: the
// per-op peaks. Kept apart from the allocation records (they stay 48 bytes) and only for allocations made
// in an op, so a program that pushes none pays one branch per event.
#pragma once

#include <cstdint>
#include <unordered_map>

#include "ttmem/vocab.hpp"

namespace ttmem::model {

struct OpKey {
  std::uint32_t scope = 0;  ///< the op path's site id
  std::uint16_t device = 0;
  Slot slot = Slot::DRAM;
};

struct OpTally {
  std::uint64_t bytes = 0;
  std::uint64_t buffers = 0;
  std::uint64_t peak = 0;
};

class OpFigures {
 public:
  /// Adds (or, with negative figures, takes away) an allocation of op `k`.
  void apply(const OpKey& k, std::int64_t bytes, std::int64_t buffers) {
    const std::uint64_t key = pack(k);
    if (key != last_key_ || !last_) {  // allocations come in runs of one op: look it up once a run
      last_ = &tallies_[key];
      last_key_ = key;
    }
    OpTally& t = *last_;
    t.bytes = static_cast<std::uint64_t>(static_cast<std::int64_t>(t.bytes) + bytes);
    t.buffers = static_cast<std::uint64_t>(static_cast<std::int64_t>(t.buffers) + buffers);
    if (t.bytes > t.peak) t.peak = t.bytes;
  }

  /// Calls f(const OpKey&, const OpTally&) for every op seen (held memory now or before).
  template <typename F>
  void for_each(F&& f) const {
    for (const auto& [key, tally] : tallies_) f(unpack(key), tally);
  }
  std::size_t size() const { return tallies_.size(); }

 private:
  static std::uint64_t pack(const OpKey& k) {
    return std::uint64_t{k.scope} << 32 | std::uint64_t{k.device} << 8 | static_cast<std::uint8_t>(k.slot);
  }
  static OpKey unpack(std::uint64_t key) {
    return {static_cast<std::uint32_t>(key >> 32), static_cast<std::uint16_t>(key >> 8),
            static_cast<Slot>(key & 0xff)};
  }

  std::unordered_map<std::uint64_t, OpTally> tallies_;  // node-based: `last_` stays valid as it grows
  std::uint64_t last_key_ = 0;
  OpTally* last_ = nullptr;
};

}  // namespace ttmem::model
