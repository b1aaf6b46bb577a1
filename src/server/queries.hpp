// JSON answers to tool queries, built from the registry (schemas: docs/protocol.md, "Queries"); the
// large ones are answered in pages (query_pages.hpp).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>

#include "ledger.hpp"

namespace ttmem::server {

struct BufferFilter {
  std::optional<std::uint16_t> device;
  std::optional<pid_t> pid;
  std::optional<proto::BufferType> type;
  std::optional<proto::AllocKind> kind;
  std::optional<std::size_t> limit;
};

/// A query that cannot be answered, with the code its error reply carries: `bad_query` (the request is
/// wrong: say what to change), `limit_exceeded` (too large an answer: narrow it), `internal`.
class QueryFailure : public std::runtime_error {
 public:
  QueryFailure(ErrorCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

/// The error reply's JSON: {"error": text, "code": name}.
nlohmann::json query_error_json(ErrorCode code, std::string_view text);

/// Parses the filter fields of a `buffers` query; throws QueryFailure (bad_query) naming a bad field.
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
