// The model's names, as ttmemd's adapters use them: the server works on the ledger, it does not own it.
#pragma once

#include "ledger_views.hpp"
#include "registry.hpp"

namespace ttmem::server {

using model::AllocationRecord;
using model::AllocationTable;
using model::Anomalies;
using model::AppliedEvent;
using model::Figures;
using model::HistoryEntry;
using model::LeakRecord;
using model::OrphanRecord;
using model::ProcessDevice;
using model::ProcessState;
using model::Registry;
using model::RegistryLimits;
using model::SlotFigures;
using ttmem::monotonic_ns;
using ttmem::realtime_ns;

}  // namespace ttmem::server
