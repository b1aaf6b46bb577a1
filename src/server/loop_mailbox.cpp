// Jobs for the loop's thread; see loop_mailbox.hpp.
#include "loop_mailbox.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <system_error>

namespace ttmem::server {

struct LoopMailbox::Pending {
  std::function<std::string()> job;
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  std::optional<std::string> result;

  void finish(std::optional<std::string> r) {
    {
      std::lock_guard lock(mutex);
      result = std::move(r);
      done = true;
    }
    done_cv.notify_all();
  }
};

LoopMailbox::LoopMailbox(EventLoop& loop) : loop_(loop) {
  fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (fd_ < 0) throw std::system_error(errno, std::generic_category(), "eventfd");
  loop_.add(fd_, EventLoop::kReadable, [this](std::uint32_t) { drain(); });
}

LoopMailbox::~LoopMailbox() {
  close();
  loop_.remove(fd_);
  ::close(fd_);
}

std::optional<std::string> LoopMailbox::call(std::function<std::string()> job,
                                             std::chrono::milliseconds timeout) {
  auto p = std::make_shared<Pending>();
  p->job = std::move(job);
  {
    std::lock_guard lock(mutex_);
    if (closed_ || jobs_.size() >= max_waiting) return std::nullopt;
    jobs_.push_back(p);
  }
  const std::uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = write(fd_, &one, sizeof one);  // a full counter still wakes the loop
  std::unique_lock lock(p->mutex);
  if (!p->done_cv.wait_for(lock, timeout, [&] { return p->done; })) return std::nullopt;
  return std::move(p->result);
}

void LoopMailbox::close() {
  std::deque<std::shared_ptr<Pending>> left;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    left.swap(jobs_);
  }
  for (auto& p : left) p->finish(std::nullopt);
}

void LoopMailbox::drain() {
  std::uint64_t count = 0;
  [[maybe_unused]] const ssize_t n = read(fd_, &count, sizeof count);
  for (;;) {
    std::shared_ptr<Pending> p;
    {
      std::lock_guard lock(mutex_);
      if (jobs_.empty()) return;
      p = std::move(jobs_.front());
      jobs_.pop_front();
    }
    std::optional<std::string> r;
    try {
      r = p->job();
    } catch (const std::exception&) {
      r.reset();  // the caller answers "unavailable"; the loop goes on
    }
    p->finish(std::move(r));
  }
}

}  // namespace ttmem::server
