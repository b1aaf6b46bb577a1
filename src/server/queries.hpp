// JSON answers to tool queries, built from the registry (schemas: docs/protocol.md, "Queries"); the
// large ones are answered in pages (query_pages.hpp).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "ledger.hpp"

namespace ttmem::server {

struct BufferFilter {
  std::optional<std::uint16_t> device;
  std::optional<pid_t> pid;
  std::optional<proto::BufferType> type;
  std::optional<proto::AllocKind> kind;
  std::optional<std::size_t> limit;
};

/// Parses the filter fields of a `buffers` query; throws std::invalid_argument naming a bad field.
BufferFilter parse_buffer_filter(const nlohmann::json& query);

nlohmann::json stats_json(const model::Stats& stats);
nlohmann::json devices_json(const std::vector<model::DeviceInfo>& devices);
nlohmann::json leak_json(const LeakRecord& leak);
nlohmann::json orphan_json(const OrphanRecord& orphan);
nlohmann::json event_json(const AppliedEvent& event);
/// One entry of the event history: as event_json, with the time it was applied.
nlohmann::json history_entry_json(const Registry& registry, const HistoryEntry& entry);

/// Serialises an answer for the wire. Strings from clients (sites, names, query text) may hold invalid
/// UTF-8: it is replaced, never allowed to throw (a throw here would take the server down).
std::string to_wire_text(const nlohmann::json& j);

}  // namespace ttmem::server
