// ttmemd's view of one client connection, and the loop's budgets: shared by the files that make up the
// Server (server.cpp: connections and processes; ingest.cpp: frames; query_service.cpp: queries;
// output.cpp: replies and notifications). Private to src/server.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "server.hpp"

namespace ttmem::server {

inline constexpr std::size_t kScratchBytes =
    128 * 1024;  // one frame of libttmem's size (kSendEventsPerFrame)
/// Read per wake-up from one connection (one read), so a busy client holds the loop for a few thousand
/// events at most; the loop reports it again at once if it has more.
inline constexpr std::size_t kReadBudget = kScratchBytes;
/// Read per turn of the loop from all connections together: the bound on how long the loop goes without
/// a wait (and without giving paged answers their slice). Connections left out are served next turn.
inline constexpr std::size_t kTurnReadBudget = kScratchBytes;
/// A connection's read buffer is given back once empty if it grew past this.
inline constexpr std::size_t kKeepReadBuffer = 64 * 1024;
/// A paged query waits while its connection has this much unread output.
inline constexpr std::size_t kPagedWatermark = 256 * 1024;
/// Time given to paged queries after each batch of events.
inline constexpr std::uint64_t kPagedSliceNs = 500'000;

struct Server::Connection {
  int fd = -1;
  std::uint64_t id = 0;
  PeerIdentity peer;  ///< bound at accept; its pidfd goes to the death watch or is closed at HELLO
  bool greeted = false;
  proto::Role role = proto::Role::tool;
  std::uint32_t process_slot = 0;  // registry slot; 0 until a tracked process says hello
  bool detached = false;           // its process had exited before HELLO: reclaimed when this closes
  std::string name;
  proto::FrameReader reader{proto::kMaxRequestPayload};
  std::vector<std::uint8_t> out;
  std::size_t out_offset = 0;
  std::uint64_t out_progress_ns = 0;  // when output last drained (or became pending)
  std::uint32_t interest = 0;         // EventLoop bits asked for
  bool reading = true;                // false while frames wait behind a paged query
  bool closing = false;               // a protocol error: close once `out` is flushed, ignore input
  bool write_failed = false;          // the peer stopped taking replies: drop them, keep reading its input
  bool subscriber = false;
  bool dying = false;  // its process died: read to the end, then the process is reclaimed
  std::uint64_t dropped_notifications = 0;
  std::unique_ptr<PagedQuery> paged;
  std::uint32_t paged_query_id = 0;
  std::uint64_t frames = 0;
  std::uint64_t events = 0;
  std::uint64_t events_at_last_tick = 0;
  double events_per_second = 0;
  std::uint64_t connected_ns = 0;

  ~Connection() {
    if (peer.pidfd >= 0) ::close(peer.pidfd);
  }
  std::size_t pending() const { return out.size() - out_offset; }
};

}  // namespace ttmem::server
