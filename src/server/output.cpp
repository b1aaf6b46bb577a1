// ttmemd's output: frames queued on a connection and written as the socket takes them, replies,
// notifications to subscribers; bounded per connection. Part of Server.
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "connection.hpp"
#include "queries.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::server {

// ---- output -------------------------------------------------------------------------------------------

template <typename Encode>
void Server::send_encoded(Connection& c, Encode&& encode) {
  if (c.write_failed) return;
  const std::uint64_t id = c.id;
  if (c.pending() == 0) c.out_progress_ns = monotonic_ns();
  encode(c.out);  // straight into the connection's output: no copy of a page on its way
  flush_output(c);
  if (connections_.contains(id) && c.pending() > options_.max_pending_output) {
    spdlog::warn("connection {} of pid {} does not read its replies ({} pending); closing it", c.id,
                 c.peer.pid, human_bytes(c.pending()));
    close_connection(c.id);
  }
}

void Server::reply(Connection& c, std::uint32_t query_id, std::uint8_t status, std::string text) {
  proto::QueryReply r;
  r.query_id = query_id;
  r.status = status;
  r.json = std::move(text);
  send_encoded(c, [&](std::vector<std::uint8_t>& out) { proto::encode(out, r); });
}

void Server::send(Connection& c, const std::vector<std::uint8_t>& bytes) {
  send_encoded(c, [&](std::vector<std::uint8_t>& out) { out.insert(out.end(), bytes.begin(), bytes.end()); });
}

void Server::flush_output(Connection& c) {
  while (c.out_offset < c.out.size() && !c.write_failed) {
    // At most 16 KiB a call: larger sends make the kernel look for high-order pages for the socket buffer,
    // which on a fragmented host can mean direct compaction inside the call (seen: 6 ms for 100 KB).
    const std::size_t chunk = std::min<std::size_t>(c.out.size() - c.out_offset, 16 * 1024);
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_offset, chunk, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      // The peer takes no more replies (it may have exited). Its input is still to be applied: drop the
      // output, keep reading until the end of what it sent.
      c.write_failed = true;
      break;
    }
    c.out_offset += static_cast<std::size_t>(n);
    c.out_progress_ns = monotonic_ns();
  }
  if (c.write_failed || c.out_offset == c.out.size()) {
    if (c.out.capacity() > kKeepReadBuffer && !c.paged) {
      std::vector<std::uint8_t>().swap(c.out);  // a big answer's buffer is given back once it is over
    } else {
      c.out.clear();
    }
    c.out_offset = 0;
    if (c.subscriber && c.dropped_notifications > 0 && !c.write_failed) {
      std::vector<std::uint8_t> bytes;
      proto::encode(bytes, proto::EventNotify{
                               schema::to_json(views::StreamEvent(views::Dropped{c.dropped_notifications}))});
      c.dropped_notifications = 0;
      c.out = std::move(bytes);
      return flush_output(c);
    }
    if (c.closing) {
      close_connection(c.id);
      return;
    }
  } else if (c.out_offset > (1u << 20)) {
    c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_offset));
    c.out_offset = 0;
  }
  set_reading(c, c.reading);  // asks for EventLoop::kWritable exactly while output is pending
}

void Server::notify(const views::StreamEvent& event) {
  // A `changes` stream hears of what was applied before a record, then of the record.
  if (change_streams_ && !std::holds_alternative<views::EventRow>(event)) note_changes();
  const std::string text = schema::to_json(event);
  if (http_) http_->publish(text, std::holds_alternative<views::EventRow>(event));
  std::vector<std::uint8_t> bytes;
  proto::encode(bytes, proto::EventNotify{text});
  std::vector<std::uint64_t> ids;
  for (auto& [id, c] : connections_) {
    if (c->subscriber && !c->write_failed) ids.push_back(id);
  }
  for (std::uint64_t id : ids) {
    auto it = connections_.find(id);
    if (it == connections_.end()) continue;
    Connection& c = *it->second;
    if (c.pending() + bytes.size() > options_.max_subscriber_backlog) {
      ++c.dropped_notifications;  // a slow subscriber loses notifications (and is told how many), never
                                  // the server
      continue;
    }
    send(c, bytes);
  }
}

}  // namespace ttmem::server
