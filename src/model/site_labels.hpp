// What a live allocation record keeps of where it was made: one 32-bit label for its (site, op scope) pair,
// so the record stays 48 bytes. An allocation without a scope is labelled by its site id itself (no lookup
// on that path); a pair with a scope gets a label with the top bit set, interned per process.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

namespace ttmem::model {

struct SiteAndScope {
  std::uint32_t site = 0;
  std::uint32_t scope = 0;
  bool operator==(const SiteAndScope&) const = default;
};

class SiteLabels {
 public:
  static constexpr std::uint32_t kPairBit = 0x8000'0000u;

  /// The label of (site, scope). Site ids with the top bit set are not ones libttmem gives: they are kept
  /// as "no site". When `max_pairs` pairs are interned, a new pair keeps only its site.
  std::uint32_t label(std::uint32_t site, std::uint32_t scope, std::size_t max_pairs) {
    if (site & kPairBit) site = 0;
    if (scope == 0) return site;
    const std::uint64_t key = std::uint64_t{site} << 32 | scope;
    if (key == last_key_ && last_label_ != 0) return last_label_;  // runs of one op and site are the rule
    auto it = ids_.find(key);
    if (it == ids_.end()) {
      if (pairs_.size() >= max_pairs) return site;
      pairs_.push_back({site, scope});
      it = ids_.emplace(key, kPairBit | static_cast<std::uint32_t>(pairs_.size())).first;
    }
    last_key_ = key;
    last_label_ = it->second;
    return it->second;
  }

  SiteAndScope at(std::uint32_t label) const {
    if (!(label & kPairBit)) return {label, 0};
    const std::uint32_t i = label & ~kPairBit;
    return i >= 1 && i <= pairs_.size() ? pairs_[i - 1] : SiteAndScope{};
  }

  std::size_t pairs() const { return pairs_.size(); }

 private:
  std::vector<SiteAndScope> pairs_;
  std::unordered_map<std::uint64_t, std::uint32_t> ids_;
  std::uint64_t last_key_ = 0;
  std::uint32_t last_label_ = 0;
};

}  // namespace ttmem::model
