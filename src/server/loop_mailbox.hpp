// Work handed to the event loop's thread from another thread (the HTTP service's): the model is the loop's
// alone, so a reader elsewhere asks the loop to build its answer and waits for it. An eventfd wakes the
// loop; the jobs run between batches of events, one at a time.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

#include "event_loop.hpp"

namespace ttmem::server {

class LoopMailbox {
 public:
  /// Registers its descriptor with `loop`. Throws std::system_error when no eventfd can be made.
  explicit LoopMailbox(EventLoop& loop);
  ~LoopMailbox();
  LoopMailbox(const LoopMailbox&) = delete;
  LoopMailbox& operator=(const LoopMailbox&) = delete;

  /// From any thread but the loop's: runs `job` on the loop and returns what it built, or nothing when
  /// the loop did not get to it within `timeout` (or the server is stopping). At most `max_waiting` jobs
  /// wait at once; past that, nothing (a flood of requests cannot grow the queue).
  std::optional<std::string> call(std::function<std::string()> job, std::chrono::milliseconds timeout);

  /// On the loop's thread, when it stops: jobs still waiting are answered with nothing.
  void close();

  static constexpr std::size_t max_waiting = 64;

 private:
  struct Pending;
  void drain();

  EventLoop& loop_;
  int fd_ = -1;
  std::mutex mutex_;
  std::deque<std::shared_ptr<Pending>> jobs_;
  bool closed_ = false;
};

}  // namespace ttmem::server
