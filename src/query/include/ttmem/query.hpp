// Talking to ttmemd as a tool: connect, ask a query, get its answer as a typed view (ttmem/views.hpp), or
// follow the event stream. Used by the `ttmem` command, the Python module and the tests. The JSON on the
// wire is the schema's business (ttmem/schema.hpp; docs/protocol.md, "Queries").
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ttmem/protocol.hpp"
#include "ttmem/socket_path.hpp"
#include "ttmem/views.hpp"

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

  views::Stats stats();
  views::DeviceList devices();
  /// The matching buffers, largest first (all pages of the answer).
  views::BufferList buffers(const views::BufferQuery& query = {});
  /// Leak and orphan records, newest first; only those numbered above the bounds (a watcher's last seen).
  views::Leaks leaks(std::uint64_t after_leak = 0, std::uint64_t after_orphan = 0);
  views::EventList events(std::uint64_t limit = 100);
  /// Out-of-memory records: every kept one (newest first), or the one with `id` (none if not kept).
  views::OomList oom(std::optional<std::uint64_t> id = std::nullopt);
  views::AddressMap map(std::uint16_t device, BufferType type);
  views::OpList ops(const views::OpsQuery& query = {});
  views::ServerInfo info(bool reset_loop = false);

  /// Any query, untyped: the request's JSON text in, the answer's JSON text out (the pages of a paged
  /// answer joined). For tools that pass JSON through (the Python module, tests of the wire format).
  std::string query_text(std::string_view request_json);
  /// Sends a query and hands each page's JSON text to `on_page` as it arrives (an answer that is not
  /// paged is one page): a caller that keeps less than the whole answer needs less memory.
  void query_pages(std::string_view request_json, const std::function<void(std::string_view page)>& on_page);

  /// Switches to the event stream; then call next_event().
  void subscribe();
  /// The next streamed event, or nullopt after `timeout`. Throws QueryError when the connection breaks
  /// or the event cannot be read.
  std::optional<views::StreamEvent> next_event(std::chrono::milliseconds timeout);
  /// The same, as the server's JSON text.
  std::optional<std::string> next_event_text(std::chrono::milliseconds timeout);

  const std::string& socket_path() const { return socket_path_; }
  std::uint32_t server_pid() const { return server_pid_; }

 private:
  proto::Frame read_frame(std::chrono::milliseconds timeout, bool* timed_out);
  template <typename View>
  View typed(const views::Query& q);
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
