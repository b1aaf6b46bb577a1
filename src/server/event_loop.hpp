// The server's single event loop: epoll over non-blocking descriptors, each with a callback. The only file
// that touches epoll. Callbacks run on the loop's thread, one at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <unordered_map>

namespace ttmem::server {

class EventLoop {
 public:
  using Handler = std::function<void(std::uint32_t events)>;  // EPOLLIN / EPOLLOUT / EPOLLHUP / EPOLLERR bits

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  /// Watches fd for `events` (EPOLLIN, EPOLLOUT...). Throws std::system_error on failure.
  void add(int fd, std::uint32_t events, Handler handler);
  void modify(int fd, std::uint32_t events);
  /// Stops watching fd (it is not closed). Safe to call from inside fd's own handler.
  void remove(int fd);
  /// Calls `tick` every interval_ms on the loop; returns the timer's descriptor.
  int add_timer(std::uint32_t interval_ms, std::function<void()> tick);

  /// Runs until stop(). Returns after the current batch of events is handled.
  void run();
  void stop() { running_ = false; }

 private:
  int epoll_fd_;
  bool running_ = false;
  std::unordered_map<int, std::shared_ptr<Handler>> handlers_;
};

}  // namespace ttmem::server
