// ttmemd's query service: a QUERY frame answered at once (stats, devices, info, subscribe) or in pages
// between batches of events (buffers, leaks, events); failures carry their code. Part of Server.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "connection.hpp"
#include "history_http.hpp"
#include "metrics_text.hpp"
#include "queries.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::server {

/// What a query produces: an answer at once (its JSON text), or a paged query to run between batches.
struct Server::Answer {
  std::string now;
  std::unique_ptr<PagedQuery> paged;
};

Server::Answer Server::answer(Connection* c, const views::Query& query) {
  struct Visit {
    Server& s;
    Connection* c;
    Answer operator()(const views::StatsQuery&) {
      return {schema::to_json(model::stats_view(s.registry_, &s.free_space_)), {}};
    }
    Answer operator()(const views::BufferQuery& q) { return {{}, buffers_query(q, s.options_.query_limits)}; }
    Answer operator()(const views::LeaksQuery& q) { return {{}, leaks_query(q)}; }
    Answer operator()(const views::DevicesQuery&) {
      return {schema::to_json(views::DeviceList{model::devices_view(s.registry_)}), {}};
    }
    Answer operator()(const views::EventsQuery& q) { return {{}, events_query(s.registry_, q.limit)}; }
    Answer operator()(const views::InfoQuery& q) { return {schema::to_json(s.info_view(q.reset_loop)), {}}; }
    Answer operator()(const views::OomQuery& q) { return {schema::to_json(s.oom_view(q)), {}}; }
    Answer operator()(const views::MapQuery& q) {
      auto d = s.registry_.devices().find(q.device);
      if (d == s.registry_.devices().end() || d->second.banks[index(q.type)].num_banks == 0) {
        throw QueryFailure(ErrorCode::bad_query,
                           fmt::format("device {} did not announce its {} banks (no process opened it with "
                                       "DEVICE_OPEN): ttmemd has no map of it",
                                       q.device, to_string(q.type)));
      }
      return {schema::to_json(model::map_view(s.registry_, q.device, q.type)), {}};
    }
    Answer operator()(const views::OpsQuery& q) {
      return {schema::to_json(model::ops_view(s.registry_, q)), {}};
    }
    Answer operator()(const views::SubscribeQuery&) {
      if (!c)
        throw QueryFailure(ErrorCode::bad_query, "subscribe is a connection's: over HTTP, GET /api/events");
      if (!c->subscriber) s.subscribers_.added();
      c->subscriber = true;
      return {R"({"subscribed":true})", {}};
    }
  };
  return std::visit(Visit{*this, c}, query);
}

void Server::handle_query(Connection& c, const proto::Frame& frame) {
  auto decoded = proto::decode_query(frame.payload);
  if (const auto* e = std::get_if<proto::DecodeError>(&decoded)) return fail(c, e->code, e->message);
  const proto::Query* q = &std::get<proto::Query>(decoded);
  Answer a;
  try {
    a = answer(&c, schema::query_from_json(q->json));
    if (a.paged) {
      // Answered in pages between batches of events; this connection's later frames wait for it.
      c.paged = std::move(a.paged);
      c.paged_query_id = q->query_id;
      paged_.insert(c.id);
      return;
    }
  } catch (const schema::SchemaError& e) {  // the request is not a query we know: say what is wrong
    reply(c, q->query_id, proto::kReplyError, schema::error_json(ErrorCode::bad_query, e.what()));
    return;
  } catch (const QueryFailure& e) {
    reply(c, q->query_id, proto::kReplyError, schema::error_json(e.code(), e.what()));
    return;
  } catch (const std::exception& e) {
    reply(c, q->query_id, proto::kReplyError, schema::error_json(ErrorCode::internal, e.what()));
    return;
  }
  reply(c, q->query_id, proto::kReplyDone, std::move(a.now));
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
              schema::error_json(failure ? failure->code() : ErrorCode::internal, e.what()));
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

std::string Server::http_answer(const std::string& path) {
  if (path == "/metrics") {
    const std::uint64_t leaks_total = registry_.leaks().empty() ? 0 : registry_.leaks().front().seq;
    const std::uint64_t orphans_total = registry_.orphans().empty() ? 0 : registry_.orphans().front().seq;
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    const views::Stats stats = model::stats_view(registry_, &free_space_);
    const views::ServerInfo info = info_view(false);
    return metrics_text({stats, info, host, leaks_total, orphans_total});
  }
  if (path == "/api/stats") return schema::to_json(model::stats_view(registry_, &free_space_));
  if (path == "/api/devices") return schema::to_json(views::DeviceList{model::devices_view(registry_)});
  if (path == "/api/info") return schema::to_json(info_view(false));
  if (path == "/api/oom") return schema::to_json(oom_view({}));
  if (path == "/api/leaks") {  // at most the kept records (10,000 leaks, 1,000 orphans): one answer
    views::Leaks leaks;
    for (const auto& l : registry_.leaks()) leaks.leaks.push_back(model::leak_view(l));
    for (const auto& o : registry_.orphans()) leaks.orphans.push_back(model::orphan_view(o));
    return schema::to_json(leaks);
  }
  throw std::invalid_argument("no such path: " + path);
}

// ---- queries over HTTP ---------------------------------------------------------------------------------

namespace {

/// GET /api/NAME?k=v&...: the query {"type": NAME, k: v, ...}, numbers where the schema wants them.
std::string http_query_text(std::string_view type, const HttpParams& params) {
  std::string text = "{\"type\":";
  schema::append_json_string(text, type);
  for (const auto& [key, value] : params) {
    text += ',';
    schema::append_json_string(text, key);
    text += ':';
    const bool number = key == "device" || key == "pid" || key == "limit" || key == "id";
    const bool digits = !value.empty() && value.size() <= 20 &&
                        std::all_of(value.begin() + (value[0] == '-' ? 1 : 0), value.end(),
                                    [](char ch) { return ch >= '0' && ch <= '9'; }) &&
                        value != "-";
    if (number && digits) {
      text += value;
    } else if (number) {
      throw schema::SchemaError("parameter '" + key + "' must be a whole number, not '" + value + "'");
    } else {
      schema::append_json_string(text, value);
    }
  }
  return text + '}';
}

int http_status(ErrorCode code) {
  switch (code) {
    case ErrorCode::bad_query:
      return 400;
    case ErrorCode::limit_exceeded:
      return 413;
    default:
      return 500;
  }
}

}  // namespace

/// One HTTP query as it runs on the loop: its paged query between steps, and the pages so far.
struct Server::HttpJob {
  views::Query query;
  std::unique_ptr<PagedQuery> paged;
  schema::PageJoiner pages;
  bool started = false;
  bool done = false;
  int status = 200;
  std::string body;
};

std::optional<HttpReply> Server::http_reply(const std::string& path, const HttpParams& params) {
  if (is_history_path(path))
    return history_http(options_.history ? options_.history->state_dir : "", path, params);
  if (path.rfind("/api/", 0) == 0 && HttpService::takes_parameters(path)) {
    auto job = std::make_shared<HttpJob>();
    try {
      job->query = schema::query_from_json(http_query_text(path.substr(5), params));
    } catch (const schema::SchemaError& e) {
      return HttpReply{400, schema::error_json(ErrorCode::bad_query, e.what())};
    }
    // Each step is one mailbox call: a query over a million buffers runs in the loop's bounded slices,
    // between batches of events, as a tool's does. The job is shared: a step that times out here may
    // still run on the loop after this thread has given up.
    while (!job->done) {
      auto stepped =
          mailbox_.call([this, job] { return http_step(*job), std::string(); }, std::chrono::seconds(5));
      if (!stepped) return std::nullopt;
    }
    if (job->status != 200) return HttpReply{job->status, std::move(job->body)};
    return HttpReply{200, job->pages.text()};
  }
  auto body = mailbox_.call([this, path] { return http_answer(path); }, std::chrono::seconds(5));
  if (!body) return std::nullopt;
  return HttpReply{200, std::move(*body)};
}

void Server::http_step(HttpJob& job) {
  if (job.done) return;
  try {
    if (!job.started) {
      job.started = true;
      Answer a = answer(nullptr, job.query);
      if (!a.paged) {
        job.pages.add(a.now);
        job.done = true;
        return;
      }
      job.paged = std::move(a.paged);
    }
    std::string page;
    const bool last = job.paged->step(registry_, page);
    if (!page.empty()) job.pages.add(page);
    if (!last) return;
  } catch (const std::exception& e) {
    const auto* failure = dynamic_cast<const QueryFailure*>(&e);
    job.status = http_status(failure ? failure->code() : ErrorCode::internal);
    job.body = schema::error_json(failure ? failure->code() : ErrorCode::internal, e.what());
  }
  job.done = true;
  if (job.paged && !job.paged->release_some()) retired_.push_back(std::move(job.paged));
  job.paged.reset();
}

views::OomList Server::oom_view(const views::OomQuery& q) const {
  views::OomList out;
  out.total = registry_.oom_total();
  for (const auto& r : registry_.ooms()) {
    if (!q.id || r.id == *q.id) out.records.push_back(r);
  }
  if (q.id && out.records.empty()) {
    throw QueryFailure(
        ErrorCode::bad_query,
        *q.id > out.total
            ? fmt::format("there is no out-of-memory record {} (there are {})", *q.id, out.total)
            : fmt::format("out-of-memory record {} is no longer kept (the newest "
                          "{} are)",
                          *q.id, registry_.ooms().size()));
  }
  return out;
}

views::ServerInfo Server::info_view(bool reset_loop) {
  views::ServerInfo info;
  for (const auto& [id, c] : connections_) {
    views::ClientInfo& row = info.clients.emplace_back();
    row.connection = c->id;
    row.pid = c->peer.pid;
    row.uid = c->peer.uid;
    row.name = c->name;
    row.role = !c->greeted ? "handshake" : std::string(to_string(c->role));
    row.events = c->events;
    row.events_per_second = c->events_per_second;
    row.subscriber = c->subscriber;
    row.read_buffer_bytes = c->reader.capacity();
    row.pending_output_bytes = c->pending();
    row.connected_s = static_cast<double>(monotonic_ns() - c->connected_ns) / 1e9;
    if (const ProcessState* p = registry_.process_by_slot(c->process_slot)) row.client = p->client_stats;
  }
  info.version = proto::version_string(kServerVersion);
  info.protocol = proto::kProtocolVersion;
  info.pid = getpid();
  info.socket = options_.socket_path;
  info.uptime_s = static_cast<double>(monotonic_ns() - started_ns_) / 1e9;
  info.connections = connections_.size();
  info.processes = registry_.processes().size();
  info.events_total = registry_.events_applied();
  info.events_per_second = events_per_second_;
  info.active_allocations = registry_.allocations().size();
  info.registry_bytes = registry_.allocations().memory_bytes();
  info.oom_records = registry_.oom_total();
  info.death_watch = options_.poll_for_deaths ? "polling"
                     : deaths_.by_polling() == 0
                         ? "pidfd"
                         : fmt::format("pidfd, polling for {} process(es)", deaths_.by_polling());
  info.loop = {static_cast<double>(loop_.longest_busy_ns()) / 1e6,
               static_cast<double>(loop_.longest_busy_cpu_ns()) / 1e6,
               static_cast<double>(longest_paged_step_ns_) / 1e6, paged_.size()};
  const Anomalies a = registry_.anomalies();
#define TTMEM_COPY(name) info.anomalies.name = a.name;
  TTMEM_LEDGER_ANOMALIES(TTMEM_COPY)
#undef TTMEM_COPY
  info.anomalies.protocol_errors = decode_errors_;
  info.anomalies.refused_connections = refused_connections_;
  info.anomalies.handshake_timeouts = handshake_timeouts_;
  info.anomalies.refused_identities = refused_identities_;
  info.anomalies.descriptor_shortages = descriptor_shortages_;
  if (history_writer_) {
    const history::WriterStatus s = history_writer_->status();
    info.history = views::HistoryStatus{s.path,
                                        s.degraded,
                                        s.error,
                                        s.records_written,
                                        s.records_pending,
                                        s.lifetimes_written,
                                        s.lifetimes_dropped};
  }
  info.limits = {{"max_connections", options_.max_connections},
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
                 {"max_device_id", options_.limits.max_device_id}};
  if (reset_loop) {
    loop_.reset_longest_busy();
    longest_paged_step_ns_ = 0;
  }
  return info;
}

}  // namespace ttmem::server
