// Learns when watched processes die: a pidfd per process where one can be had (at once, no polling), and
// polling /proc for the others (kernels without pidfd, no descriptor left, or --poll-deaths). The choice is
// per process: one process that cannot get a pidfd never moves the others to polling. The polling timer
// is created up front, so falling back needs no new descriptor.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <map>

#include "event_loop.hpp"

namespace ttmem::server {

class DeathWatch {
 public:
  using OnExit = std::function<void(std::uint32_t slot)>;
  DeathWatch(EventLoop& loop, std::uint32_t poll_ms, bool always_poll, OnExit on_exit);
  ~DeathWatch();
  DeathWatch(const DeathWatch&) = delete;
  DeathWatch& operator=(const DeathWatch&) = delete;

  /// Watches the process in registry slot `slot`. Takes ownership of `pidfd` (may be -1: polled).
  void watch(std::uint32_t slot, pid_t pid, std::uint64_t start_time, int pidfd);
  /// Stops watching (the process was reclaimed some other way).
  void forget(std::uint32_t slot);
  bool watching(std::uint32_t slot) const { return watches_.contains(slot); }

  std::size_t by_pidfd() const { return watches_.size() - polled_; }
  std::size_t by_polling() const { return polled_; }

 private:
  struct Watch {
    int pidfd = -1;
    pid_t pid = 0;
    std::uint64_t start_time = 0;
  };
  void poll();
  void exited(std::uint32_t slot);

  EventLoop& loop_;
  bool always_poll_;
  OnExit on_exit_;
  EventLoop::Timer timer_;
  std::uint32_t poll_ms_;
  std::map<std::uint32_t, Watch> watches_;
  std::size_t polled_ = 0;
};

}  // namespace ttmem::server
