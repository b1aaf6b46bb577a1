// ttmemd's HTTP adapter; see http_service.hpp.
#include "http_service.hpp"

#include <httplib.h>
#include <spdlog/spdlog.h>

#include <optional>
#include <stdexcept>

namespace ttmem::server {

const char* const HttpService::kPaths[] = {"/metrics",   "/api/stats", "/api/devices",
                                           "/api/leaks", "/api/info",  nullptr};

namespace {

std::string paths_list() {
  std::string out;
  for (const char* const* p = HttpService::kPaths; *p; ++p) out += std::string(out.empty() ? "" : ", ") + *p;
  return out;
}

}  // namespace

HttpService::HttpService(const HttpOptions& options, Build build)
    : http_(std::make_unique<httplib::Server>()) {
  // Hostile or slow clients cost a bounded number of threads and bytes, never the event loop.
  http_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  http_->set_read_timeout(5, 0);
  http_->set_write_timeout(5, 0);
  http_->set_keep_alive_max_count(100);
  http_->set_keep_alive_timeout(5);
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
    const std::optional<std::string> body = build(req.path);
    if (!body) {
      res.status = 503;
      res.set_content("ttmemd is too busy to answer now; try again\n", "text/plain");
      return;
    }
    const bool metrics = req.path == "/metrics";
    res.set_content(*body, metrics ? "text/plain; version=0.0.4; charset=utf-8" : "application/json");
  };
  for (const char* const* p = kPaths; *p; ++p) http_->Get(*p, serve);
  http_->set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404) {
      res.set_content("ttmemd serves " + paths_list() + " (GET); not " + req.path + "\n", "text/plain");
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
  spdlog::info("HTTP on http://{}:{}/ ({})", options.address, port_, paths_list());
}

HttpService::~HttpService() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace ttmem::server
