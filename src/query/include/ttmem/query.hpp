// Talking to ttmemd as a tool: connect, ask a query, get its JSON answer, or follow the event stream.
// Used by the `ttmem` command, the Python module and the tests. Schemas: docs/protocol.md, "Queries".
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>

#include "ttmem/protocol.hpp"
#include "ttmem/socket_path.hpp"

namespace ttmem::query {

/// The server could not be reached (message names the socket and how to start ttmemd).
class ConnectError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The server answered with an error, or the connection broke.
class QueryError : public std::runtime_error {
 public:
  explicit QueryError(const std::string& what, std::optional<ErrorCode> code = std::nullopt)
      : std::runtime_error(what), code_(code) {}
  /// The server's code for a failed query: bad_query (change the request), limit_exceeded (narrow it),
  /// internal. Empty when the connection broke or the server's reply was unreadable.
  std::optional<ErrorCode> code() const { return code_; }

 private:
  std::optional<ErrorCode> code_;
};

class QueryClient {
 public:
  /// Connects and says hello as a tool. Throws ConnectError (also when the server runs as a user this
  /// process does not trust: see ttmem/socket_path.hpp).
  explicit QueryClient(const std::string& socket_path = client_socket_path(),
                       std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~QueryClient();
  QueryClient(const QueryClient&) = delete;
  QueryClient& operator=(const QueryClient&) = delete;
  QueryClient(QueryClient&& other) noexcept;
  QueryClient& operator=(QueryClient&&) = delete;

  /// Sends {"type": ..., ...} and returns the answer (the pages of a paged answer joined). Throws
  /// QueryError.
  nlohmann::json query(const nlohmann::json& request);
  /// Sends a query and hands each page of the answer to `on_page` as it arrives (an answer that is not
  /// paged is one page): a caller that keeps less than the whole answer needs less memory.
  void query_pages(const nlohmann::json& request, const std::function<void(nlohmann::json page)>& on_page);
  nlohmann::json stats() { return query({{"type", "stats"}}); }
  nlohmann::json leaks() { return query({{"type", "leaks"}}); }
  nlohmann::json devices() { return query({{"type", "devices"}}); }
  nlohmann::json info() { return query({{"type", "info"}}); }

  /// Switches to the event stream; then call next_event().
  void subscribe();
  /// The next streamed event, or nullopt after `timeout`. Throws QueryError when the connection breaks.
  std::optional<nlohmann::json> next_event(std::chrono::milliseconds timeout);

  const std::string& socket_path() const { return socket_path_; }
  std::uint32_t server_pid() const { return server_pid_; }

 private:
  proto::Frame read_frame(std::chrono::milliseconds timeout, bool* timed_out);
  void write_all(const std::vector<std::uint8_t>& bytes);

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
  int fd_ = -1;
  std::uint32_t next_id_ = 1;
  std::uint32_t server_pid_ = 0;
  proto::FrameReader reader_{proto::kMaxReplyPayload};
};

/// "cannot reach ttmemd at PATH (why); start it with: ttmemd --socket PATH &"
std::string unreachable_message(const std::string& socket_path, const std::string& why);

}  // namespace ttmem::query
