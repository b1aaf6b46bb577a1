// ttmemd's HTTP adapter; see http_service.hpp.
#include "http_service.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <optional>
#include <stdexcept>

#include "web_assets.hpp"

namespace ttmem::server {

const char* const HttpService::kPaths[] = {
    "/metrics",     "/api/stats", "/api/devices", "/api/leaks",   "/api/info",     "/api/oom", "/api/events",
    "/api/buffers", "/api/ops",   "/api/map",     "/api/history", "/api/timeline", nullptr};

bool HttpService::takes_parameters(std::string_view path) {
  return path == "/api/buffers" || path == "/api/ops" || path == "/api/map" || path == "/api/history" ||
         path == "/api/timeline";
}

/// One /api/events client: what the loop published for it, until its HTTP thread writes it out.
struct HttpService::Stream {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<std::string> events;
  std::size_t bytes = 0;
  std::uint64_t dropped = 0;
  bool ended = false;
  bool each = false;  // every applied event, not `changes` notes
};

namespace {

std::string paths_list() {
  std::string out;
  for (const char* const* p = HttpService::kPaths; *p; ++p) out += std::string(out.empty() ? "" : ", ") + *p;
  return out;
}

}  // namespace

HttpService::HttpService(const HttpOptions& options, Build build, Subscribe subscribe)
    : http_(std::make_unique<httplib::Server>()), subscribe_(std::move(subscribe)) {
  // Hostile or slow clients cost a bounded number of threads and bytes, never the event loop. A
  // connection holds a thread while it is kept alive, and each stream while it lasts: the pool has room
  // for the streams and for a browser's six connections to one host (a dashboard fetches its views in
  // parallel), with a short keep-alive so that idle connections give their thread back.
  http_->new_task_queue = [] { return new httplib::ThreadPool(kMaxStreams + kRequestThreads); };
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  http_->set_keep_alive_max_count(100);
  http_->set_keep_alive_timeout(2);
  http_->set_payload_max_length(4096);  // read-only: no request needs a body; a big one is refused unread
  const std::string token = options.bearer_token;
  auto authorised = [token](const httplib::Request& req, httplib::Response& res) {
    if (token.empty() || req.get_header_value("Authorization") == "Bearer " + token) return true;
    res.status = 401;
    res.set_header("WWW-Authenticate", "Bearer");
    res.set_content(
        "ttmemd: this endpoint needs \"Authorization: Bearer <token>\" (ttmemd --http-token-file)\n",
        "text/plain");
    return false;
  };
  auto serve = [build, authorised](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    HttpParams params;
    for (const auto& [key, value] : req.params) params[key] = value;  // a repeated parameter: the last
    if (!params.empty() && !takes_parameters(req.path) && req.path != "/metrics") {
      res.status = 400;
      res.set_content(
          req.path +
              " takes no parameters (/api/buffers, /api/ops, /api/map, /api/history and /api/timeline do)\n",
          "text/plain");
      return;
    }
    const std::optional<HttpReply> reply = build(req.path, params);
    if (!reply) {
      res.status = 503;
      res.set_content("ttmemd is too busy to answer now; try again\n", "text/plain");
      return;
    }
    res.status = reply->status;
    const bool metrics = req.path == "/metrics";
    res.set_content(reply->body, metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
  };
  for (const char* const* p = kPaths; *p; ++p) {
    if (std::string_view(*p) != "/api/events") http_->Get(*p, serve);
  }
  http_->Get("/api/events", [this, authorised](const httplib::Request& req, httplib::Response& res) {
    if (!authorised(req, res)) return;
    auto stream = std::make_shared<Stream>();
    for (const auto& [key, value] : req.params) {
      if (key != "each" || (value != "0" && value != "1")) {
        res.status = 400;
        res.set_content("/api/events takes one parameter, each=0|1 (1: every applied event), not " + key +
                            "=" + value + "\n",
                        "text/plain");
        return;
      }
      stream->each = value == "1";
    }
    {
      std::lock_guard lock(streams_mutex_);
      if (stopping_ || streams_.size() >= kMaxStreams) {
        res.status = 503;
        res.set_content("ttmemd serves at most " + std::to_string(kMaxStreams) + " event streams at once\n",
                        "text/plain");
        return;
      }
      streams_.push_back(stream);
    }
    auto forget = [this, stream] {
      std::lock_guard lock(streams_mutex_);
      std::erase(streams_, stream);
    };
    if (!subscribe_(true, stream->each)) {
      forget();
      res.status = 503;
      res.set_content("ttmemd is too busy to start a stream now; try again\n", "text/plain");
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [this, stream](std::size_t, httplib::DataSink& sink) { return serve_stream(*stream, sink); },
        [this, forget, each = stream->each](bool) {
          forget();
          subscribe_(false, each);
        });
  });
  // The dashboard: files built into the binary, served without the loop. It loads nothing from elsewhere.
  for (const WebAsset& asset : web_assets()) {
    http_->Get(std::string(asset.path),
               [&asset, authorised](const httplib::Request& req, httplib::Response& res) {
                 if (!authorised(req, res)) return;
                 res.set_header("Content-Security-Policy", "default-src 'self'");
                 res.set_header("X-Content-Type-Options", "nosniff");
                 res.set_content(asset.body.data(), asset.body.size(),
                                 std::string(asset.content_type) + "; charset=utf-8");
               });
  }
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty()) {  // no such path (a path's own 404 says why itself)
      res.set_content(
          "ttmemd serves the dashboard at /, and " + paths_list() + " (GET); not " + req.path + "\n",
          "text/plain");
    } else if (res.body.empty()) {
      res.set_content("ttmemd: HTTP " + std::to_string(res.status) + "\n", "text/plain");
    }
  });
  auto read_only = [](const httplib::Request&, httplib::Response& res) {
    res.status = 405;
    res.set_header("Allow", "GET");
    res.set_content("ttmemd's HTTP interface is read-only: GET only\n", "text/plain");
  };
  http_->Post(".*", read_only);
  http_->Put(".*", read_only);
  http_->Delete(".*", read_only);
  http_->Patch(".*", read_only);
  if (options.port == 0) {
    port_ = http_->bind_to_any_port(options.address);
  } else {
    port_ = http_->bind_to_port(options.address, options.port) ? options.port : -1;
  }
  if (port_ <= 0)
    throw std::runtime_error("cannot serve HTTP on " + options.address + ":" + std::to_string(options.port) +
                             " (in use, or not an address of this host)");
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  spdlog::info("HTTP on http://{}:{}/ (the dashboard; {})", options.address, port_, paths_list());
}

HttpService::~HttpService() {
  end_streams();
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpService::end_streams() {
  std::lock_guard lock(streams_mutex_);
  stopping_ = true;
  for (auto& s : streams_) {
    std::lock_guard stream_lock(s->mutex);
    s->ended = true;
    s->ready.notify_all();
  }
}

void HttpService::publish(const std::string& json, bool applied_event) {
  std::lock_guard lock(streams_mutex_);
  for (auto& s : streams_) {
    if (applied_event && !s->each) continue;
    std::lock_guard stream_lock(s->mutex);
    if (s->bytes + json.size() > kMaxStreamBacklog) {
      ++s->dropped;
      continue;
    }
    s->bytes += json.size();
    s->events.push_back(json);
    s->ready.notify_one();
  }
}

bool HttpService::serve_stream(Stream& stream, httplib::DataSink& sink) {
  std::string out;
  {
    std::unique_lock lock(stream.mutex);
    // Idle streams send a comment each second: a client that went away is found by the failed write.
    stream.ready.wait_for(lock, std::chrono::seconds(1),
                          [&] { return stream.ended || !stream.events.empty() || stream.dropped; });
    if (stream.ended) {
      sink.done();
      return true;
    }
    if (stream.dropped) {
      out += "data: {\"count\":" + std::to_string(stream.dropped) + ",\"event\":\"dropped\"}\n\n";
      stream.dropped = 0;
    }
    for (auto& e : stream.events) {
      out += "data: ";
      out += e;
      out += "\n\n";
    }
    stream.events.clear();
    stream.bytes = 0;
  }
  if (out.empty()) out = ": idle\n\n";
  return sink.write(out.data(), out.size());
}

}  // namespace ttmem::server
