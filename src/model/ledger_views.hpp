// The ledger seen through the typed views of ttmem/views.hpp: what each query answers, filled from the
// registry. The schema (src/schema) turns views into JSON; the model never sees JSON.
#pragma once

#include "registry.hpp"
#include "ttmem/views.hpp"

namespace ttmem::model {

views::Stats stats_view(const Registry& registry);
std::vector<views::DeviceInfo> devices_view(const Registry& registry);
views::Leak leak_view(const LeakRecord& leak);
views::Orphan orphan_view(const OrphanRecord& orphan);
/// An event as it is applied (CLOCK_REALTIME now).
views::EventRow event_view(const AppliedEvent& event);
/// One entry of the event history.
views::EventRow event_view(const Registry& registry, const HistoryEntry& entry);

}  // namespace ttmem::model
