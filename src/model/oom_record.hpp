// The out-of-memory record of a refused allocation: the device as it was at that instant (who holds what,
// the largest buffers, the free-space map of the type) and a verdict a person can act on. Built by the
// registry when ALLOC_FAILURE arrives, after every event the process reported before the failure.
#pragma once

#include "registry.hpp"
#include "ttmem/views.hpp"

namespace ttmem::model {

/// The record of `failure` reported by `p` (its id is `id`); O(n log n) in the device's live buffers.
views::OomRecord build_oom_record(const Registry& registry, const ProcessState& p,
                                  const proto::AllocFailure& failure, std::uint64_t id);

/// The verdict and its sentence from the figures (the record's space, holders and needs); the rest of
/// the record is left as it is. Split out so the rule is tested on its own.
void judge(views::OomRecord& record);

}  // namespace ttmem::model
