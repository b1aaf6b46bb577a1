// Tests of the wire format read answers as the JSON the server sent, not as views: JsonClient is the query
// client with each answer parsed as JSON (the schema's own tests check views against that JSON).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "ttmem/query.hpp"

namespace ttmem::test {

class JsonClient : public query::QueryClient {
 public:
  using query::QueryClient::QueryClient;
  using json = nlohmann::json;

  json query(const json& request) { return json::parse(query_text(request.dump())); }
  json stats() { return query({{"type", "stats"}}); }
  json leaks() { return query({{"type", "leaks"}}); }
  json devices() { return query({{"type", "devices"}}); }
  json info() { return query({{"type", "info"}}); }
  std::optional<json> next_event(std::chrono::milliseconds timeout) {
    auto text = next_event_text(timeout);
    if (!text) return std::nullopt;
    return json::parse(*text);
  }
};

}  // namespace ttmem::test
