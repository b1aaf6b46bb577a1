// ttmemd over HTTP (`--http ADDR:PORT`): read-only, on threads of its own so that serving it never runs on
// the event loop. Each answer is built on the loop (the model is the loop's alone) through a LoopMailbox;
// the HTTP threads only parse requests and write answers.
//
//   GET /metrics       Prometheus text (metrics_text.hpp)
//   GET /api/stats, /api/devices, /api/leaks, /api/info
//                      the views as JSON: the schema of `ttmem ... --json` and docs/protocol.md
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace ttmem::server {

struct HttpOptions {
  std::string address = "127.0.0.1";
  int port = 0;              ///< 0: any free port (the one taken is logged and returned by port())
  std::string bearer_token;  ///< non-empty: every request must carry "Authorization: Bearer TOKEN"
};

class HttpService {
 public:
  /// An answer built on the loop: the body, or nothing when the loop could not answer in time.
  using Build = std::function<std::optional<std::string>(const std::string& path)>;

  /// Binds and starts serving. Throws std::runtime_error saying why it cannot bind.
  HttpService(const HttpOptions& options, Build build);
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  int port() const { return port_; }
  /// The paths served, for the 404 answer and the docs.
  static const char* const kPaths[];

 private:
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ttmem::server
