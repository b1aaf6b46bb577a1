// libttmem's inside, shared by its files: the client's state (Client::Impl) and what its parts use.
// recorder.cpp: what reporting threads run (rings, fences, sites, snapshots); sender.cpp: the sender
// thread (drain, cycle, flush barriers, the loop); connection.cpp: the socket (handshake, refusals, resync,
// replies); client.cpp: construction, options and the public calls that wait. Private to src/client.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "ttmem/client.hpp"
#include "ttmem/units.hpp"

namespace ttmem::client {

inline constexpr std::uint32_t kClientVersion = proto::kTtmemVersion;

/// Each Client gets its own id: a thread's ring binding names the client it belongs to.
inline std::atomic<std::uint64_t> g_next_client_id{1};

struct Client::Impl {
  Impl(Client& c, Options o);
  ~Impl();

  Client& client;
  Options options;

  std::mutex rings_mutex;
  std::vector<std::shared_ptr<detail::Ring>> rings;

  std::mutex sites_mutex;
  std::unordered_map<std::string, SiteId> site_ids;
  std::vector<proto::Site> all_sites;
  std::vector<proto::Site> pending_sites;

  std::mutex control_mutex;
  std::map<std::uint32_t, std::vector<std::uint8_t>> control_frames;  // fence number -> encoded frame

  std::mutex resync_mutex;
  ResyncCallback resync;

  std::thread sender;
  int wake_fd = -1;              // eventfd: written to wake the sender, polled with the socket while it waits
  bool barrier_capable = false;  // membarrier(PRIVATE_EXPEDITED) registered: the sender may sleep unbounded
  // Producers whose ring is full sleep here; the sender wakes them after it has drained.
  std::mutex space_mutex;
  std::condition_variable space_cv;
  std::atomic<int> sleepers{0};
  std::atomic<bool> stopping{false};
  bool forked = false;

  std::mutex flush_mutex;
  std::condition_variable flush_cv;
  std::uint64_t flush_requested = 0;
  std::uint64_t flush_acked = 0;
  std::uint64_t flush_failed_below = 0;  // tokens up to here failed (disconnect)
  std::uint64_t barrier_sent = 0;

  // Owned by the sender thread.
  int fd = -1;
  bool connected = false;
  bool permanent_failure = false;
  bool warned = false;
  std::uint64_t connections = 0;
  std::uint64_t snapshot_seq = 0;
  std::uint64_t last_stats_ns = 0;
  bool stats_dirty = false;  // records went out since the last CLIENT_STATS
  std::vector<std::uint8_t> out;
  std::vector<proto::EventRecord> batch;      // snapshot records
  proto::EventFrameWriter* frames = nullptr;  // while draining: the frame being written
  proto::FrameReader reader{proto::kMaxReplyPayload};
  std::vector<proto::DeviceOpen> snap_devices;
  std::vector<proto::EventRecord> snap_allocs;

  std::mutex path_mutex;
  std::string requested_path;  // set by set_socket_path, taken by the sender
  std::uint64_t requested_generation = 0;
  std::uint64_t path_generation = 0;       // generation of options.socket_path (sender thread)
  std::uint64_t attempted_generation = 0;  // generation of the latest finished connection attempt

  std::mutex first_mutex;
  std::condition_variable first_cv;
  bool first_attempt_done = false;

  std::atomic<std::uint64_t> events{0}, bytes{0}, batches{0}, reconnects{0}, snapshots{0}, superseded{0},
      flushes{0}, gaps{0}, send_cycles{0};

  /// Wakes the sender thread (a flush, a fence, a half-full ring, a new socket path, a first record
  /// while it was idle).
  void notify_sender();

  // ---- the sender thread (sender.cpp) --------------------------------------------------------------

  /// The loop: connect (with backoff), resync, then cycle until stopped.
  void run();
  /// One round: drain, add sites, statistics and a barrier if a flush asked for one, send, read. Returns
  /// whether it had anything to do (records, a barrier, a fence).
  bool cycle();
  /// Waits up to timeout_ms (-1: no bound) for a wake-up or for the server to say something.
  void wait_for_work(int timeout_ms);
  /// After a cycle with nothing to do: sleeps until a producer writes, a flush or fence asks, or the
  /// server speaks (see Client::publish for why no record is missed).
  void idle();
  /// A flush, a stop or a new socket path is waiting for the sender.
  bool urgent();
  /// Puts a CLIENT_STATS frame in `out`.
  void send_stats();
  /// Every ring empty (nothing written that the sender has not taken).
  bool rings_empty();
  /// Moves every record written before this call's epoch into `out`, as EVENTS frames; returns how many.
  std::uint64_t drain_all();
  /// Moves ring i's records with epoch < limit into the output, honouring fences: before fence F goes
  /// out, every record of every ring written before F (epoch < F) goes out first.
  void drain_ring(std::size_t i, std::uint32_t limit);
  /// Ends the EVENTS frame being written straight from the rings (drain_all counts them at the end).
  void close_frame() { frames->close(); }
  /// Encodes the snapshot's records (`batch`) as EVENTS frames.
  void emit_batch();
  void wake_sleepers();
  /// Drops everything recorded so far (the server is away, or a snapshot is about to cover it).
  void discard_all();
  void first_attempt_over();
  /// Applies a pending set_socket_path: the next attempt goes to the new server, right away.
  bool take_new_path();
  void warn_once(const std::string& text);

  // ---- the connection (connection.cpp) -------------------------------------------------------------

  /// Connects and says HELLO; false (and tracking stays off) when there is no server to trust.
  bool handshake();
  /// After a connect: the snapshot (or a clean slate) and every site, so the server is exact again.
  void resynchronise();
  bool send_all();
  /// Reads what the server sent; waits up to wait_ms for readability first.
  void read_replies(int wait_ms);
  void disconnect(const std::string& why);
};

}  // namespace ttmem::client
