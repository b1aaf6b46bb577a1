// Tool-side connection to ttmemd; see ttmem/query.hpp.
#include <grp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ttmem/query.hpp"
#include "ttmem/schema.hpp"
#include "ttmem/units.hpp"

namespace ttmem::query {

namespace {
std::uint64_t now_ms() {
  return monotonic_ns() / 1'000'000;
}
}  // namespace

std::string unreachable_message(const std::string& socket_path, const std::string& why) {
  return "cannot reach ttmemd at " + socket_path + " (" + why + "); start it with: ttmemd --socket " +
         socket_path + " &   (or set TTMEM_SOCKET)";
}

namespace {

/// Why connect() to `path` failed with `err`, said so that the person knows what to do: "start ttmemd"
/// only when that is the remedy.
std::string connect_failure(const std::string& path, int err) {
  struct stat st {};
  const bool exists = ::stat(path.c_str(), &st) == 0;
  if (exists && !S_ISSOCK(st.st_mode)) {
    return path + " is " + (S_ISDIR(st.st_mode) ? "a directory" : "not a socket") +
           ", not ttmemd's socket: give the socket's path (--socket PATH, or TTMEM_SOCKET)";
  }
  if (err == EACCES || err == EPERM) {
    std::string group_name;
    if (exists) {
      const struct group* g = ::getgrgid(st.st_gid);
      group_name = g ? g->gr_name : std::to_string(st.st_gid);
    }
    return "permission denied: your user may not connect to " + path +
           (group_name.empty()
                ? " (or to the directory it is in)"
                : " (its group is " + group_name + "): ask to be added to group " + group_name) +
           ", or start your own ttmemd (ttmemd --socket PATH; ttmemd --group GROUP sets who may connect)";
  }
  return unreachable_message(path, std::strerror(err));
}

}  // namespace

QueryClient::QueryClient(const std::string& socket_path, std::chrono::milliseconds timeout)
    : socket_path_(socket_path), timeout_(timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof addr.sun_path) {
    throw ConnectError(unreachable_message(socket_path, "socket path too long"));
  }
  std::memcpy(addr.sun_path, socket_path.c_str(), socket_path.size() + 1);
  fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) {
    const int err = errno;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    throw ConnectError(connect_failure(socket_path, err));
  }
  ucred server{};
  socklen_t len = sizeof server;
  if (getsockopt(fd_, SOL_SOCKET, SO_PEERCRED, &server, &len) == 0 && !trusted_server_uid(server.uid)) {
    ::close(fd_);
    fd_ = -1;
    throw ConnectError("ttmem: " + untrusted_server_message(socket_path, server.uid));
  }
  proto::Hello hello;
  hello.role = proto::Role::tool;
  hello.client_version = proto::kTtmemVersion;
  hello.claimed_pid = static_cast<std::uint32_t>(getpid());
  hello.process_name = "ttmem";
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, hello);
  try {
    write_all(bytes);
    bool timed_out = false;
    proto::Frame f = read_frame(timeout_, &timed_out);
    if (timed_out) throw QueryError("ttmemd did not answer the handshake");
    if (f.type == proto::MessageType::error) {
      auto e = proto::decode_error(f.payload);
      throw QueryError(proto::ok(e) ? std::get<proto::ErrorMessage>(e).text
                                    : "ttmemd refused the connection");
    }
    auto ack = proto::decode_hello_ack(f.payload);
    if (f.type != proto::MessageType::hello_ack || !proto::ok(ack)) {
      throw QueryError(proto::ok(ack) ? "unexpected handshake reply"
                                      : std::get<proto::DecodeError>(ack).message);
    }
    server_pid_ = std::get<proto::HelloAck>(ack).server_pid;
  } catch (const QueryError& e) {
    ::close(fd_);
    fd_ = -1;
    throw ConnectError(unreachable_message(socket_path, e.what()));
  }
}

QueryClient::QueryClient(QueryClient&& other) noexcept
    : socket_path_(std::move(other.socket_path_)),
      timeout_(other.timeout_),
      fd_(other.fd_),
      next_id_(other.next_id_),
      server_pid_(other.server_pid_),
      reader_(std::move(other.reader_)) {
  other.fd_ = -1;
}

QueryClient::~QueryClient() {
  if (fd_ >= 0) ::close(fd_);
}

void QueryClient::write_all(const std::vector<std::uint8_t>& bytes) {
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw QueryError(std::string("lost ttmemd: ") + std::strerror(errno));
    }
    sent += static_cast<std::size_t>(n);
  }
}

proto::Frame QueryClient::read_frame(std::chrono::milliseconds timeout, bool* timed_out) {
  const std::uint64_t deadline = now_ms() + static_cast<std::uint64_t>(timeout.count());
  *timed_out = false;
  for (;;) {
    auto next = reader_.next();
    if (auto* f = std::get_if<proto::Frame>(&next)) return *f;
    if (auto* e = std::get_if<proto::DecodeError>(&next))
      throw QueryError("bad reply from ttmemd: " + e->message);
    const std::uint64_t now = now_ms();
    if (now >= deadline) {
      *timed_out = true;
      return {};
    }
    pollfd p{fd_, POLLIN, 0};
    const int r = ::poll(&p, 1, static_cast<int>(deadline - now));
    if (r < 0 && errno != EINTR) throw QueryError(std::string("poll: ") + std::strerror(errno));
    if (r <= 0) continue;
    std::uint8_t buf[64 * 1024];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) throw QueryError("ttmemd closed the connection");
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      throw QueryError(std::string("lost ttmemd: ") + std::strerror(errno));
    }
    reader_.append({buf, static_cast<std::size_t>(n)});
  }
}

void QueryClient::query_pages(std::string_view request_json,
                              const std::function<void(std::string_view page)>& on_page) {
  proto::Query q;
  q.query_id = next_id_++;
  q.json = request_json;
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, q);
  write_all(bytes);
  for (;;) {
    bool timed_out = false;
    proto::Frame f = read_frame(timeout_ * 6, &timed_out);
    if (timed_out) throw QueryError("ttmemd did not answer the query in time");
    if (f.type == proto::MessageType::event_notify) continue;  // a subscriber's stream may interleave
    if (f.type == proto::MessageType::error) {
      auto e = proto::decode_error(f.payload);
      throw QueryError(proto::ok(e) ? std::get<proto::ErrorMessage>(e).text : "ttmemd reported an error");
    }
    auto reply = proto::decode_query_reply(f.payload);
    if (f.type != proto::MessageType::query_reply || !proto::ok(reply))
      throw QueryError("unexpected reply from ttmemd");
    const proto::QueryReply& r = std::get<proto::QueryReply>(reply);
    if (r.query_id != q.query_id) continue;
    if (r.status == proto::kReplyError) {
      const schema::ErrorAnswer e = schema::error_from_json(r.json);
      throw QueryError(e.text, e.code);
    }
    on_page(r.json);
    if (r.status == proto::kReplyDone) return;
  }
}

std::string QueryClient::query_text(std::string_view request_json) {
  schema::PageJoiner answer;
  query_pages(request_json, [&](std::string_view page) {
    try {
      answer.add(page);
    } catch (const schema::SchemaError& e) {
      throw QueryError(std::string("ttmemd sent a reply that is not JSON: ") + e.what());
    }
  });
  return answer.text();
}

namespace {

template <typename View>
void add_page(View& to, View&& page) {
  if constexpr (requires { schema::append_page(to, std::move(page)); }) {
    schema::append_page(to, std::move(page));
  } else {
    to = std::move(page);
  }
}

}  // namespace

template <typename View>
View QueryClient::typed(const views::Query& q) {
  View answer{};
  query_pages(schema::to_json(q), [&](std::string_view page) {
    try {
      add_page(answer, schema::from_json<View>(page));
    } catch (const schema::SchemaError& e) {
      throw QueryError(std::string("ttmemd's answer is not what this tool expects (versions differ?): ") +
                       e.what());
    }
  });
  return answer;
}

views::Stats QueryClient::stats() {
  return typed<views::Stats>(views::StatsQuery{});
}
views::DeviceList QueryClient::devices() {
  return typed<views::DeviceList>(views::DevicesQuery{});
}
views::BufferList QueryClient::buffers(const views::BufferQuery& query) {
  return typed<views::BufferList>(query);
}
views::Leaks QueryClient::leaks(std::uint64_t after_leak, std::uint64_t after_orphan) {
  return typed<views::Leaks>(views::LeaksQuery{after_leak, after_orphan});
}
views::EventList QueryClient::events(std::uint64_t limit) {
  return typed<views::EventList>(views::EventsQuery{limit});
}
views::OomList QueryClient::oom(std::optional<std::uint64_t> id) {
  return typed<views::OomList>(views::OomQuery{id});
}
views::AddressMap QueryClient::map(std::uint16_t device, BufferType type) {
  return typed<views::AddressMap>(views::MapQuery{device, type});
}

views::OpList QueryClient::ops(const views::OpsQuery& query) {
  return typed<views::OpList>(query);
}
views::ServerInfo QueryClient::info(bool reset_loop) {
  return typed<views::ServerInfo>(views::InfoQuery{reset_loop});
}

void QueryClient::subscribe() {
  query_pages(schema::to_json(views::Query(views::SubscribeQuery{})), [](std::string_view) {});
}

std::optional<std::string> QueryClient::next_event_text(std::chrono::milliseconds timeout) {
  bool timed_out = false;
  proto::Frame f = read_frame(timeout, &timed_out);
  if (timed_out) return std::nullopt;
  if (f.type != proto::MessageType::event_notify) throw QueryError("unexpected message in the event stream");
  auto n = proto::decode_event_notify(f.payload);
  if (!proto::ok(n)) throw QueryError("ttmemd sent an unreadable event");
  return std::move(std::get<proto::EventNotify>(n).json);
}

std::optional<views::StreamEvent> QueryClient::next_event(std::chrono::milliseconds timeout) {
  auto text = next_event_text(timeout);
  if (!text) return std::nullopt;
  try {
    return schema::from_json<views::StreamEvent>(*text);
  } catch (const schema::SchemaError& e) {
    throw QueryError(std::string("ttmemd sent an event this tool cannot read: ") + e.what());
  }
}

}  // namespace ttmem::query
