// Process death watch; see death_watch.hpp.
#include "death_watch.hpp"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <vector>

#include "peer.hpp"

namespace ttmem::server {

DeathWatch::DeathWatch(EventLoop& loop, std::uint32_t poll_ms, bool always_poll, OnExit on_exit)
    : loop_(loop),
      always_poll_(always_poll),
      on_exit_(std::move(on_exit)),
      timer_(loop.add_timer([this] { poll(); })),
      poll_ms_(poll_ms) {}

DeathWatch::~DeathWatch() {
  for (auto& [slot, w] : watches_) {
    if (w.pidfd >= 0) {
      loop_.remove(w.pidfd);
      close(w.pidfd);
    }
  }
}

void DeathWatch::watch(std::uint32_t slot, pid_t pid, std::uint64_t start_time, int pidfd) {
  if (watches_.contains(slot)) {
    if (pidfd >= 0) close(pidfd);
    return;
  }
  if (always_poll_ && pidfd >= 0) {
    close(pidfd);
    pidfd = -1;
  }
  if (pidfd >= 0) {
    try {
      loop_.add(pidfd, EventLoop::kReadable, [this, slot](std::uint32_t) { exited(slot); });
    } catch (const std::exception& e) {
      spdlog::warn("cannot watch pid {} by pidfd ({}); polling for its death instead", pid, e.what());
      close(pidfd);
      pidfd = -1;
    }
  }
  watches_[slot] = Watch{pidfd, pid, start_time};
  if (pidfd < 0 && ++polled_ == 1) timer_.arm(poll_ms_);
}

void DeathWatch::forget(std::uint32_t slot) {
  auto it = watches_.find(slot);
  if (it == watches_.end()) return;
  if (it->second.pidfd >= 0) {
    loop_.remove(it->second.pidfd);
    close(it->second.pidfd);
  } else if (--polled_ == 0) {
    timer_.disarm();
  }
  watches_.erase(it);
}

void DeathWatch::exited(std::uint32_t slot) {
  forget(slot);
  on_exit_(slot);
}

void DeathWatch::poll() {
  std::vector<std::uint32_t> dead;
  for (const auto& [slot, w] : watches_) {
    if (w.pidfd >= 0) continue;
    const auto info = read_process_info(w.pid);
    // Gone, a zombie (dead though its parent has not reaped it), or a new process under the same pid.
    if (!info || info->exited || (w.start_time != 0 && info->start_time != w.start_time))
      dead.push_back(slot);
  }
  for (std::uint32_t slot : dead) exited(slot);
}

}  // namespace ttmem::server
