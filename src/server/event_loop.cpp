// epoll event loop; see event_loop.hpp.
#include "event_loop.hpp"

#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <system_error>

namespace ttmem::server {

namespace {
[[noreturn]] void fail(const char* what) {
  throw std::system_error(errno, std::generic_category(), what);
}

std::uint64_t clock_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<std::uint64_t>(ts.tv_nsec);
}

timespec ms(std::uint32_t v) {
  timespec t{};
  t.tv_sec = v / 1000;
  t.tv_nsec = static_cast<long>(v % 1000) * 1'000'000;
  if (v == 0) t.tv_nsec = 1;  // 0 would disarm
  return t;
}

std::uint32_t to_epoll(std::uint32_t events) {
  return (events & EventLoop::kReadable ? EPOLLIN : 0u) | (events & EventLoop::kWritable ? EPOLLOUT : 0u) |
         (events & EventLoop::kPeerClosed ? EPOLLRDHUP : 0u);
}

std::uint32_t from_epoll(std::uint32_t events) {
  return (events & EPOLLIN ? EventLoop::kReadable : 0u) | (events & EPOLLOUT ? EventLoop::kWritable : 0u) |
         (events & EPOLLRDHUP ? EventLoop::kPeerClosed : 0u) | (events & EPOLLHUP ? EventLoop::kHangup : 0u) |
         (events & EPOLLERR ? EventLoop::kError : 0u);
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
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) < 0) fail("epoll_ctl(ADD)");
  handlers_[fd] = std::make_shared<Handler>(std::move(handler));
}

void EventLoop::modify(int fd, std::uint32_t events) {
  epoll_event ev{};
  ev.events = to_epoll(events);
  ev.data.fd = fd;
  if (epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev) < 0) fail("epoll_ctl(MOD)");
}

void EventLoop::remove(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  handlers_.erase(fd);
}

EventLoop::Timer EventLoop::add_timer(std::function<void()> tick) {
  const int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (fd < 0) fail("timerfd_create");
  try {
    add(fd, kReadable, [fd, tick = std::move(tick)](std::uint32_t) {
      std::uint64_t expirations = 0;
      if (read(fd, &expirations, sizeof expirations) == sizeof expirations) tick();
    });
  } catch (...) {
    close(fd);
    throw;
  }
  Timer t;
  t.loop_ = this;
  t.fd_ = fd;
  return t;
}

EventLoop::Timer& EventLoop::Timer::operator=(Timer&& other) noexcept {
  if (this != &other) {
    reset();
    loop_ = other.loop_;
    fd_ = other.fd_;
    other.fd_ = -1;
  }
  return *this;
}

void EventLoop::Timer::reset() {
  if (fd_ < 0) return;
  loop_->remove(fd_);
  close(fd_);
  fd_ = -1;
}

void EventLoop::Timer::arm(std::uint32_t interval_ms) {
  itimerspec spec{};
  spec.it_interval = ms(interval_ms);
  spec.it_value = spec.it_interval;
  timerfd_settime(fd_, 0, &spec, nullptr);
}

void EventLoop::Timer::arm_once(std::uint32_t delay_ms) {
  itimerspec spec{};
  spec.it_value = ms(delay_ms);
  timerfd_settime(fd_, 0, &spec, nullptr);
}

void EventLoop::Timer::disarm() {
  itimerspec spec{};
  timerfd_settime(fd_, 0, &spec, nullptr);
}

void EventLoop::run() {
  running_ = true;
  epoll_event events[128];
  while (running_) {
    const int n = epoll_wait(epoll_fd_, events, 128, more_background_ ? 0 : -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("epoll_wait");
    }
    const std::uint64_t woke = clock_ns(CLOCK_MONOTONIC);
    const std::uint64_t woke_cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
    ++turn_;
    for (int i = 0; i < n; ++i) {
      // A handler may remove itself or others; keep it alive while it runs and skip removed ones.
      auto it = handlers_.find(events[i].data.fd);
      if (it == handlers_.end()) continue;
      std::shared_ptr<Handler> handler = it->second;
      (*handler)(from_epoll(events[i].events));
    }
    more_background_ = background_ && running_ && background_();
    longest_busy_ns_ = std::max(longest_busy_ns_, clock_ns(CLOCK_MONOTONIC) - woke);
    longest_busy_cpu_ns_ = std::max(longest_busy_cpu_ns_, clock_ns(CLOCK_THREAD_CPUTIME_ID) - woke_cpu);
  }
}

}  // namespace ttmem::server
