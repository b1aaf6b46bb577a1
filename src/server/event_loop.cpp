// epoll event loop; see event_loop.hpp.
#include "event_loop.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>

namespace ttmem::server {

namespace {
[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}
}  // namespace

EventLoop::EventLoop() : epoll_fd_(epoll_create1(EPOLL_CLOEXEC)) {
  if (epoll_fd_ < 0) fail("epoll_create1");
}

EventLoop::~EventLoop() {
  for (auto& [fd, h] : handlers_) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(epoll_fd_);
}

void EventLoop::add(int fd, std::uint32_t events, Handler handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl(ADD)");
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
}

void EventLoop::modify(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0) fail("epoll_ctl(MOD)");
}

void EventLoop::remove(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

int EventLoop::add_timer(std::uint32_t interval_ms, std::function<void()> tick) {
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) fail("timerfd_create");
  itimerspec spec{};
  spec.it_interval.tv_sec = interval_ms / 1000;
  spec.it_interval.tv_nsec = static_cast<long>(interval_ms % 1000) * 1'000'000;
  spec.it_value = spec.it_interval;
  if (timerfd_settime(fd, 0, &spec, nullptr) < 0) fail("timerfd_settime");
  add(fd, EPOLLIN, [fd, tick = std::move(tick)](std::uint32_t) {
    std::uint64_t expirations = 0;
    if (read(fd, &expirations, sizeof expirations) == sizeof expirations) tick();
  });
  return fd;
}

void EventLoop::run() {
  running_ = true;
  epoll_event events[128];
  while (running_) {
    const int n = epoll_wait(epoll_fd_, events, 128, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    for (int i = 0; i < n; ++i) {
      // A handler may remove itself or others; keep it alive while it runs and skip removed ones.
      auto it = handlers_.find(events[i].data.fd);
      if (it == handlers_.end()) continue;
      std::shared_ptr<Handler> handler = it->second;
      (*handler)(events[i].events);
    }
  }
}

}  // namespace ttmem::server
