// The ledger seen through the typed views of ttmem/views.hpp: what each query answers, filled from the
// registry. The schema (src/schema) turns views into JSON; the model never sees JSON.
#pragma once

#include "free_space.hpp"
#include "registry.hpp"
#include "ttmem/views.hpp"

namespace ttmem::model {

/// Usage, with the free space of announced devices (from `cache`, or computed afresh without one).
views::Stats stats_view(const Registry& registry, FreeSpaceCache* cache = nullptr);
/// What is wrong with a device's picture: a memory type over its total, or several live processes (the
/// pids holding memory there or with the device open) at once.
std::vector<views::DeviceWarning> device_warnings(const views::DeviceUsage& usage,
                                                  std::vector<pid_t> holders);
/// The address map of one bank of `type` on `device` (CBs listed for L1). Empty blocks when the device did
/// not announce the type's banks.
views::AddressMap map_view(const Registry& registry, std::uint16_t device, BufferType type);
/// The per-op figures of live processes that match `q`, peak descending, at most q.limit of them.
views::OpList ops_view(const Registry& registry, const views::OpsQuery& q);
/// The view of computed free-space figures (empty when the device did not announce the type).
std::optional<views::FreeSpace> free_space_view(const FreeSpaceFigures& f);
std::vector<views::DeviceInfo> devices_view(const Registry& registry);
views::Leak leak_view(const LeakRecord& leak);
views::Orphan orphan_view(const OrphanRecord& orphan);
/// An event as it is applied (CLOCK_REALTIME now).
views::EventRow event_view(const AppliedEvent& event);
/// One entry of the event history.
views::EventRow event_view(const Registry& registry, const HistoryEntry& entry);

}  // namespace ttmem::model
