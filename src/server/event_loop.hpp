// The server's single event loop: epoll over non-blocking descriptors, each with a callback, timers, and
// deferred work that runs in bounded slices between batches of events. The only file that sees epoll: its
// users watch for the loop's own readiness bits.
// Callbacks run on the loop's thread, one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace ttmem::server {

class EventLoop {
 public:
  /// What a descriptor is watched for, and what its handler is told (the loop's own bits: no other file
  /// sees epoll's).
  static constexpr std::uint32_t kReadable = 1, kWritable = 2, kPeerClosed = 4, kHangup = 8, kError = 16;
  using Handler = std::function<void(std::uint32_t events)>;  // k* bits

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Watches fd for `events` (kReadable, kWritable, kPeerClosed). Throws std::system_error on failure.
  void add(int fd, std::uint32_t events, Handler handler);
  void modify(int fd, std::uint32_t events);
  /// Stops watching fd (it is not closed). Safe to call from inside fd's own handler.
  void remove(int fd);

  /// A timer made once (its descriptor reserved up front) and armed or disarmed at will.
  class Timer {
   public:
    Timer() = default;
    Timer(Timer&& other) noexcept : loop_(other.loop_), fd_(other.fd_) { other.fd_ = -1; }
    Timer& operator=(Timer&& other) noexcept;
    ~Timer() { reset(); }
    /// Fires every interval_ms from now.
    void arm(std::uint32_t interval_ms);
    /// Fires once, after delay_ms.
    void arm_once(std::uint32_t delay_ms);
    void disarm();

   private:
    friend class EventLoop;
    void reset();
    EventLoop* loop_ = nullptr;
    int fd_ = -1;
  };
  /// Throws std::system_error when no timer can be made.
  Timer add_timer(std::function<void()> tick);

  /// Called after each batch of events while it returns true ("more to do"); the loop does not block
  /// while it has more to do. Each call should do a bounded slice of work.
  void set_background(std::function<bool()> work) { background_ = std::move(work); }

  /// Runs until stop(). Returns after the current batch of events is handled.
  void run();
  void stop() { running_ = false; }

  /// Counts the loop's turns (one wait and the handlers after it): lets a handler keep a budget per turn.
  std::uint64_t turn() const { return turn_; }

  /// The longest stretch the loop spent between two waits (handlers and background work), in ns, since
  /// the last reset.
  std::uint64_t longest_busy_ns() const { return longest_busy_ns_; }
  /// The same stretch in CPU time of the loop's thread: what the loop itself spent, without the time it
  /// was not running (on a loaded machine the two differ).
  std::uint64_t longest_busy_cpu_ns() const { return longest_busy_cpu_ns_; }
  void reset_longest_busy() { longest_busy_ns_ = longest_busy_cpu_ns_ = 0; }

 private:
  int epoll_fd_;
  bool running_ = false;
  bool more_background_ = false;
  std::function<bool()> background_;
  std::unordered_map<int, std::shared_ptr<Handler>> handlers_;
  std::uint64_t longest_busy_ns_ = 0;
  std::uint64_t longest_busy_cpu_ns_ = 0;
  std::uint64_t turn_ = 0;
};

}  // namespace ttmem::server
