// JSON answers to tool queries, built from the registry (schemas: docs/protocol.md, "Queries").
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "registry.hpp"

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

nlohmann::json stats_json(const Registry& registry);
nlohmann::json buffers_json(const Registry& registry, const BufferFilter& filter);
nlohmann::json leaks_json(const Registry& registry);
nlohmann::json devices_json(const Registry& registry);
nlohmann::json leak_json(const LeakRecord& leak);
nlohmann::json orphan_json(const OrphanRecord& orphan);
nlohmann::json event_json(const AppliedEvent& event);
/// {"events": [...]} — the newest `limit` events, oldest first, each as event_json plus "time_ns".
nlohmann::json history_json(const Registry& registry, std::size_t limit);
std::string_view arch_name(std::uint8_t arch);

/// Serialises an answer for the wire. Strings from clients (sites, names, query text) may hold invalid
/// UTF-8: it is replaced, never allowed to throw (a throw here would take the server down).
std::string to_wire_text(const nlohmann::json& j);

}  // namespace ttmem::server
