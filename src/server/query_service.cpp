// ttmemd's query service: a QUERY frame answered at once (stats, devices, info, subscribe) or in pages
// between batches of events (buffers, leaks, events); failures carry their code. Part of Server.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "connection.hpp"
#include "queries.hpp"

namespace ttmem::server {

using nlohmann::json;

namespace {

/// What a query type produces: an answer at once, or a paged query to run between batches of events.
struct Answer {
  json now;
  std::unique_ptr<PagedQuery> paged;
};

}  // namespace

/// The query types, one table: dispatch, and the list an unknown type's error names.
struct Server::QueryType {
  std::string_view name;
  Answer (*answer)(Server& s, Connection& c, const json& request);
};

const std::vector<Server::QueryType>& Server::query_types() {
  static const std::vector<QueryType> types = {
      {"stats",
       [](Server& s, Connection&, const json&) {
         return Answer{stats_json(model::stats_view(s.registry_)), {}};
       }},
      {"buffers",
       [](Server& s, Connection&, const json& r) {
         return Answer{{}, buffers_query(parse_buffer_filter(r), s.options_.query_limits)};
       }},
      {"leaks",
       [](Server&, Connection&, const json&) {
         return Answer{{}, leaks_query()};
       }},
      {"devices",
       [](Server& s, Connection&, const json&) {
         return Answer{devices_json(model::devices_view(s.registry_)), {}};
       }},
      {"events",
       [](Server& s, Connection&, const json& r) {
         const auto limit = r.value("limit", 100);
         if (limit < 0) throw QueryFailure(ErrorCode::bad_query, "field 'limit' must not be negative");
         return Answer{{}, events_query(s.registry_, static_cast<std::size_t>(limit))};
       }},
      {"info",
       [](Server& s, Connection&, const json& r) {
         return Answer{s.info_json(r.value("reset_loop", false)), {}};
       }},
      {"subscribe",
       [](Server& s, Connection& c, const json&) {
         if (!c.subscriber) s.subscribers_.added();
         c.subscriber = true;
         return Answer{{{"subscribed", true}}, {}};
       }},
  };
  return types;
}

void Server::handle_query(Connection& c, const proto::Frame& frame) {
  auto decoded = proto::decode_query(frame.payload);
  if (const auto* e = std::get_if<proto::DecodeError>(&decoded)) return fail(c, e->code, e->message);
  const proto::Query* q = &std::get<proto::Query>(decoded);
  Answer answer;
  try {
    const json request = json::parse(q->json);
    if (!request.is_object() || !request.contains("type") || !request["type"].is_string()) {
      throw QueryFailure(ErrorCode::bad_query, "a query is a JSON object with a string field 'type'");
    }
    const std::string type = request["type"];
    const auto& types = query_types();
    auto it = std::find_if(types.begin(), types.end(), [&](const QueryType& t) { return t.name == type; });
    if (it == types.end()) {
      std::string names;
      for (const auto& t : types) names += (names.empty() ? "" : ", ") + std::string(t.name);
      throw QueryFailure(ErrorCode::bad_query, "unknown query type '" + type + "' (" + names + ")");
    }
    answer = it->answer(*this, c, request);
    if (answer.paged) {
      // Answered in pages between batches of events; this connection's later frames wait for it.
      c.paged = std::move(answer.paged);
      c.paged_query_id = q->query_id;
      paged_.insert(c.id);
      return;
    }
  } catch (const QueryFailure& e) {
    reply(c, q->query_id, proto::kReplyError, to_wire_text(query_error_json(e.code(), e.what())));
    return;
  } catch (const json::exception& e) {  // the request's text is not JSON, or a field has the wrong type
    reply(c, q->query_id, proto::kReplyError,
          to_wire_text(query_error_json(ErrorCode::bad_query, std::string("bad query: ") + e.what())));
    return;
  } catch (const std::exception& e) {
    reply(c, q->query_id, proto::kReplyError, to_wire_text(query_error_json(ErrorCode::internal, e.what())));
    return;
  }
  reply(c, q->query_id, proto::kReplyDone, to_wire_text(answer.now));
}

// ---- paged queries ------------------------------------------------------------------------------------

bool Server::run_paged_queries() {
  std::erase_if(retired_, [](const std::unique_ptr<PagedQuery>& q) { return q->release_some(); });
  if (paged_.empty()) return !retired_.empty();
  const std::uint64_t deadline = monotonic_ns() + kPagedSliceNs;
  bool ready = false;
  do {
    ready = false;
    std::vector<std::uint64_t> turn(paged_.begin(), paged_.end());
    if (turn.size() > options_.max_paged_queries) turn.resize(options_.max_paged_queries);  // the rest wait
    for (std::uint64_t id : turn) {
      auto it = connections_.find(id);
      if (it == connections_.end() || !it->second->paged) continue;
      Connection& c = *it->second;
      if (c.pending() > kPagedWatermark) continue;  // until the client reads what it has
      std::string page;
      bool last = false;
      const std::uint64_t t0 = monotonic_ns();
      try {
        last = c.paged->step(registry_, page);
        longest_paged_step_ns_ = std::max(longest_paged_step_ns_, monotonic_ns() - t0);
      } catch (const std::exception& e) {
        const auto* failure = dynamic_cast<const QueryFailure*>(&e);
        reply(c, c.paged_query_id, proto::kReplyError,
              to_wire_text(query_error_json(failure ? failure->code() : ErrorCode::internal, e.what())));
        if (connections_.contains(id)) finish_paged_query(c);
        continue;
      }
      if (!page.empty())
        reply(c, c.paged_query_id, last ? proto::kReplyDone : proto::kReplyPartial, std::move(page));
      if (!connections_.contains(id)) continue;
      if (last) {
        finish_paged_query(c);
      } else {
        ready = true;
      }
    }
  } while (ready && monotonic_ns() < deadline);
  // More to do now only if some query can go on without waiting for its client.
  for (std::uint64_t id : paged_) {
    auto it = connections_.find(id);
    if (it != connections_.end() && it->second->pending() <= kPagedWatermark) return true;
  }
  return !retired_.empty();
}

void Server::drop_paged_query(Connection& c) {
  if (!c.paged) return;
  if (!c.paged->release_some()) retired_.push_back(std::move(c.paged));  // freed a slice per turn
  c.paged.reset();
  paged_.erase(c.id);
}

void Server::finish_paged_query(Connection& c) {
  const std::uint64_t id = c.id;
  drop_paged_query(c);
  // Frames that waited behind the answer go on now, then reading resumes.
  if (!process_buffered(c) || !connections_.contains(id)) return;
  if (!c.paged) set_reading(c, true);
}

json Server::info_json(bool reset_loop) {
  const Anomalies a = registry_.anomalies();
  json clients = json::array();
  for (const auto& [id, c] : connections_) {
    json row = {{"connection", c->id},
                {"pid", c->peer.pid},
                {"uid", c->peer.uid},
                {"name", c->name},
                {"role", !c->greeted                    ? "handshake"
                         : c->role == proto::Role::tool ? "tool"
                                                        : "tracked"},
                {"events", c->events},
                {"events_per_second", c->events_per_second},
                {"subscriber", c->subscriber},
                {"read_buffer_bytes", c->reader.capacity()},
                {"pending_output_bytes", c->pending()},
                {"connected_s", static_cast<double>(monotonic_ns() - c->connected_ns) / 1e9}};
    if (const ProcessState* p = registry_.process_by_slot(c->process_slot)) {
      const auto& s = p->client_stats;
      json& client = row["client"] = json::object();
#define TTMEM_SHOW(name) client[#name] = s.name;
      TTMEM_CLIENT_STATS(TTMEM_SHOW)
#undef TTMEM_SHOW
    }
    clients.push_back(row);
  }
  const std::string death_watch =
      options_.poll_for_deaths    ? "polling"
      : deaths_.by_polling() == 0 ? "pidfd"
                                  : fmt::format("pidfd, polling for {} process(es)", deaths_.by_polling());
  json answer = {{"version", proto::version_string(kServerVersion)},
                 {"protocol", proto::kProtocolVersion},
                 {"pid", getpid()},
                 {"socket", options_.socket_path},
                 {"uptime_s", static_cast<double>(monotonic_ns() - started_ns_) / 1e9},
                 {"connections", connections_.size()},
                 {"processes", registry_.processes().size()},
                 {"clients", clients},
                 {"events_total", registry_.events_applied()},
                 {"events_per_second", events_per_second_},
                 {"active_allocations", registry_.allocations().size()},
                 {"registry_bytes", registry_.allocations().memory_bytes()},
                 {"death_watch", death_watch},
                 {"loop",
                  {{"longest_busy_ms", static_cast<double>(loop_.longest_busy_ns()) / 1e6},
                   {"longest_busy_cpu_ms", static_cast<double>(loop_.longest_busy_cpu_ns()) / 1e6},
                   {"longest_paged_step_ms", static_cast<double>(longest_paged_step_ns_) / 1e6},
                   {"paged_queries", paged_.size()}}},
                 {"anomalies",
                  {{"free_unknown_id", a.free_unknown_id},
                   {"duplicate_id", a.duplicate_id},
                   {"events_after_close", a.events_after_close},
                   {"pid_mismatch", a.pid_mismatch},
                   {"snapshot_mismatch", a.snapshot_mismatch},
                   {"limit_refused", a.limit_refused},
                   {"device_out_of_range", a.device_out_of_range},
                   {"size_overflow", a.size_overflow},
                   {"site_limit", a.site_limit},
                   {"protocol_errors", decode_errors_},
                   {"refused_connections", refused_connections_},
                   {"handshake_timeouts", handshake_timeouts_},
                   {"refused_identities", refused_identities_},
                   {"descriptor_shortages", descriptor_shortages_}}},
                 {"limits",
                  {{"max_connections", options_.max_connections},
                   {"tool_slots", options_.tool_slots},
                   {"max_handshakes", options_.max_handshakes},
                   {"handshake_timeout_ms", options_.handshake_timeout_ms},
                   {"max_frame_bytes", proto::kMaxRequestPayload},
                   {"max_live_allocations_per_process", options_.limits.max_live_allocations_per_process},
                   {"max_sites_per_process", options_.limits.max_sites_per_process},
                   {"max_site_bytes_per_process", options_.limits.max_site_bytes_per_process},
                   {"max_leak_records", options_.limits.max_leak_records},
                   {"max_orphan_records", options_.limits.max_orphan_records},
                   {"max_pending_output_bytes", options_.max_pending_output},
                   {"write_timeout_ms", options_.write_timeout_ms},
                   {"max_subscriber_backlog_bytes", options_.max_subscriber_backlog},
                   {"max_paged_queries", options_.max_paged_queries},
                   {"max_query_rows", options_.query_limits.max_rows},
                   {"max_device_id", options_.limits.max_device_id}}}};
  if (reset_loop) {
    loop_.reset_longest_busy();
    longest_paged_step_ns_ = 0;
  }
  return answer;
}

}  // namespace ttmem::server
