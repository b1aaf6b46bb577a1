// ttmemd over HTTP (`--http ADDR:PORT`): read-only, on threads of its own so that serving it never runs on
// the event loop. Each answer is built on the loop (the model is the loop's alone) through a LoopMailbox;
// the HTTP threads only parse requests and write answers.
//
//   GET /              the dashboard (web/, built in: web_assets.hpp), and its /assets/...
//   GET /metrics       Prometheus text (metrics_text.hpp)
//   GET /api/stats, /api/devices, /api/leaks, /api/info
//                      the views as JSON: the schema of `ttmem ... --json` and docs/protocol.md
//   GET /api/buffers, /api/ops, /api/map
//                      queries with parameters: ?device=0&pid=..&buffer_type=L1&kind=..&site=..&scope=..
//                      &by=op&limit=N (buffers), ?pid&device&scope&limit (ops), ?device&buffer_type (map)
//   GET /api/history, /api/timeline
//                      the history's records and timeline (history_http.hpp), read off the loop
//   GET /api/events    server-sent events (the subscribe stream's JSON, one `data:` line each): leaks,
//                      orphans and OOM records as they happen, and a `changes` note at most every 100 ms
//                      while events are applied; ?each=1 sends every applied event instead (what
//                      `ttmem events --follow` gets, which costs the loop a JSON text per event)
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace httplib {
class Server;
class DataSink;
}  // namespace httplib

namespace ttmem::server {

/// A request's query parameters, by name.
using HttpParams = std::map<std::string, std::string>;

struct HttpReply {
  int status = 200;
  std::string body;
};

struct HttpOptions {
  std::string address = "127.0.0.1";
  int port = 0;              ///< 0: any free port (the one taken is logged and returned by port())
  std::string bearer_token;  ///< non-empty: every request must carry "Authorization: Bearer TOKEN"
};

class HttpService {
 public:
  /// An answer built on the loop: the reply, or nothing when the loop could not answer in time.
  using Build = std::function<std::optional<HttpReply>(const std::string& path, const HttpParams& params)>;
  /// Run on the loop: a stream subscriber comes (add) or goes, one that wants every event (each) or not.
  /// False: refused.
  using Subscribe = std::function<bool(bool add, bool each)>;

  /// Binds and starts serving. Throws std::runtime_error saying why it cannot bind.
  HttpService(const HttpOptions& options, Build build, Subscribe subscribe);
  ~HttpService();
  HttpService(const HttpService&) = delete;
  HttpService& operator=(const HttpService&) = delete;

  int port() const { return port_; }
  /// From the loop: one streamed event's JSON, for every /api/events client (an applied event's only for
  /// those that asked for each). A client that does not read loses events (and is told how many), never
  /// the server.
  void publish(const std::string& json, bool applied_event = false);
  /// Streams at once, and bytes a stream may have waiting.
  static constexpr std::size_t kMaxStreams = 4;
  static constexpr std::size_t kMaxStreamBacklog = 4u << 20;
  /// Threads for requests other than streams.
  static constexpr std::size_t kRequestThreads = 12;
  /// The paths served, for the 404 answer and the docs.
  static const char* const kPaths[];
  /// Paths that are queries with parameters (/api/buffers?by=op&device=0 ...).
  static bool takes_parameters(std::string_view path);

 private:
  struct Stream;
  bool serve_stream(Stream& stream, httplib::DataSink& sink);
  void end_streams();

  std::unique_ptr<httplib::Server> http_;
  Subscribe subscribe_;
  std::mutex streams_mutex_;
  std::vector<std::shared_ptr<Stream>> streams_;
  bool stopping_ = false;  // under streams_mutex_
  std::thread thread_;
  int port_ = 0;
};

}  // namespace ttmem::server
