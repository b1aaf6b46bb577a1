// Child-process runner for integration tests: fork/exec with three pipes, drained with poll.
#include "subprocess.hpp"

#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace ttmem::test {

namespace {

/// What a child execs, built before the fork: between fork and exec a child of a threaded test may only
/// make async-signal-safe calls. An allocation there waits forever when another thread held the
/// allocator's lock at the fork (the sanitizers' allocators hung on it).
class ExecImage {
 public:
  ExecImage(std::vector<std::string> argv, const Env& env) : args_(std::move(argv)) {
    for (auto& a : args_) argv_.push_back(a.data());
    argv_.push_back(nullptr);
    for (char** e = environ; *e != nullptr; ++e) {
      const std::string_view entry(*e);
      const auto name = entry.substr(0, entry.find('='));
      bool replaced = false;
      for (const auto& [k, v] : env) replaced = replaced || k == name;
      if (!replaced) vars_.emplace_back(entry);
    }
    for (const auto& [k, v] : env) vars_.push_back(k + "=" + v);
    for (auto& v : vars_) envp_.push_back(v.data());
    envp_.push_back(nullptr);
  }
  [[noreturn]] void exec() const {
    execve(argv_[0], argv_.data(), envp_.data());
    _exit(127);
  }

 private:
  std::vector<std::string> args_, vars_;
  std::vector<char*> argv_, envp_;
};

/// In the child, before exec: limits, then the user (groups and gid first, while still root).
void apply_spawn(const Spawn& s) {
  if (s.max_files) {
    const rlimit r{*s.max_files, *s.max_files};
    if (setrlimit(RLIMIT_NOFILE, &r) != 0) _exit(125);
  }
  if (s.uid) {
    if (setgroups(s.groups.size(), s.groups.data()) != 0 || setgid(s.gid) != 0 || setuid(*s.uid) != 0)
      _exit(126);
  }
}

std::vector<std::string> with_wrapper(const Spawn& s, const std::vector<std::string>& argv) {
  std::vector<std::string> all = s.wrapper;
  all.insert(all.end(), argv.begin(), argv.end());
  return all;
}

pid_t spawn_fork(const Spawn& s) {
  return s.pid ? fork_with_pid(s.pid) : fork();
}

int decode_status(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

pid_t fork_with_pid(pid_t want) {
  clone_args args{};
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<std::uintptr_t>(&want);
  args.set_tid_size = 1;
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof args));
}

ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input, const Env& env) {
  int in_pipe[2], out_pipe[2], err_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC) || pipe2(err_pipe, O_CLOEXEC)) {
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  }
  const ExecImage image(argv, env);
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    dup2(err_pipe[1], 2);
    image.exec();
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  close(err_pipe[1]);
  std::size_t written = 0;
  int in_fd = in_pipe[1];
  if (input.empty()) {
    close(in_fd);
    in_fd = -1;
  } else {
    fcntl(in_fd, F_SETFL, O_NONBLOCK);
  }
  ProcessResult result;
  int out_fd = out_pipe[0], err_fd = err_pipe[0];
  char buf[65536];
  while (out_fd >= 0 || err_fd >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out_fd >= 0) fds[n++] = {out_fd, POLLIN, 0};
    if (err_fd >= 0) fds[n++] = {err_fd, POLLIN, 0};
    if (in_fd >= 0) fds[n++] = {in_fd, POLLOUT, 0};
    if (poll(fds, n, -1) < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_fd) {
        const ssize_t w = write(in_fd, input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if (w < 0 || written == input.size()) {
          close(in_fd);
          in_fd = -1;
        }
        continue;
      }
      const ssize_t r = read(fds[i].fd, buf, sizeof buf);
      if (r <= 0) {
        close(fds[i].fd);
        (fds[i].fd == out_fd ? out_fd : err_fd) = -1;
      } else {
        (fds[i].fd == out_fd ? result.out : result.err).append(buf, static_cast<std::size_t>(r));
      }
    }
  }
  if (in_fd >= 0) close(in_fd);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = decode_status(status);
  return result;
}

// Child ------------------------------------------------------------------------------------------------

Child::Child(const std::vector<std::string>& argv, const Env& env, const Spawn& spawn) {
  int in_pipe[2], out_pipe[2];
  if (pipe2(in_pipe, O_CLOEXEC) || pipe2(out_pipe, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  const ExecImage image(with_wrapper(spawn, argv), env);
  pid_ = spawn_fork(spawn);
  if (pid_ < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid_ == 0) {
    dup2(in_pipe[0], 0);
    dup2(out_pipe[1], 1);
    apply_spawn(spawn);
    image.exec();
  }
  close(in_pipe[0]);
  close(out_pipe[1]);
  in_ = in_pipe[1];
  out_ = out_pipe[0];
}

Child::~Child() {
  if (in_ >= 0) close(in_);
  if (out_ >= 0) close(out_);
  if (!reaped_) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
}

void Child::send_line(const std::string& line) {
  const std::string data = line + "\n";
  std::size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = write(in_, data.data() + sent, data.size() - sent);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("child's stdin is closed");
    }
    sent += static_cast<std::size_t>(n);
  }
}

std::string Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    const auto nl = buffered_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buffered_.substr(0, nl);
      buffered_.erase(0, nl + 1);
      return line;
    }
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) throw std::runtime_error("timed out waiting for the child's output");
    pollfd p{out_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    char buf[4096];
    const ssize_t n = read(out_, buf, sizeof buf);
    if (n == 0) throw std::runtime_error("the child closed its output (it exited?)");
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error("read from child failed");
    }
    buffered_.append(buf, static_cast<std::size_t>(n));
  }
}

void Child::close_stdin() {
  if (in_ >= 0) close(in_);
  in_ = -1;
}

void Child::kill(int signal) {
  ::kill(pid_, signal);
}

int Child::wait() {
  if (!reaped_) {
    int status = 0;
    while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    reaped_ = true;
    status_ = decode_status(status);
  }
  return status_;
}

// ServerProcess ----------------------------------------------------------------------------------------

ServerProcess::ServerProcess(std::vector<std::string> extra_args, Spawn spawn)
    : socket_(dir_.file("ttmemd.sock")),
      log_path_(dir_.file("ttmemd.log")),
      extra_(std::move(extra_args)),
      spawn_(std::move(spawn)) {
  if (spawn_.uid && chown(dir_.path().c_str(), *spawn_.uid, spawn_.gid) != 0)
    throw std::runtime_error("cannot give the server's directory to its user");
  start();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      ADD_FAILURE() << "ttmemd died during the test (status " << decode_status(status) << "); its log:\n"
                    << log();
    } else {
      ::kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  // A sanitizer report in the server is a failure of the test that drove it.
  const std::string text = log();
  if (text.find("Sanitizer") != std::string::npos || text.find("runtime error:") != std::string::npos) {
    ADD_FAILURE() << "ttmemd reported a sanitizer error; its log:\n" << text;
  }
}

void ServerProcess::start() {
  int ready[2];
  if (pipe2(ready, O_CLOEXEC)) throw std::runtime_error("pipe failed");
  std::vector<std::string> argv{bin_dir() + "/ttmemd", "--socket", socket_, "--ready-fd",
                                std::to_string(ready[1])};
  // Each server keeps its history in its own directory, unless the test says where (or none).
  const bool history_given = std::find_if(extra_.begin(), extra_.end(), [](const std::string& a) {
                               return a == "--state-dir" || a == "--no-history";
                             }) != extra_.end();
  if (!history_given) argv.insert(argv.end(), {"--state-dir", dir_.file("state")});
  argv.insert(argv.end(), extra_.begin(), extra_.end());
  const ExecImage image(with_wrapper(spawn_, argv), {});
  pid_ = spawn_fork(spawn_);
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    close(ready[0]);
    fcntl(ready[1], F_SETFD, 0);  // keep it across exec
    const int log = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(log, 1);
    dup2(log, 2);
    apply_spawn(spawn_);
    image.exec();
  }
  close(ready[1]);
  char byte = 0;
  pollfd p{ready[0], POLLIN, 0};
  const bool ok = poll(&p, 1, 10'000) == 1 && read(ready[0], &byte, 1) == 1;
  close(ready[0]);
  if (!ok) throw std::runtime_error("ttmemd did not start; its log:\n" + log());
}

int ServerProcess::stop() {
  if (pid_ <= 0) return -1;
  ::kill(pid_, SIGTERM);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return decode_status(status);
}

void ServerProcess::kill9() {
  if (pid_ <= 0) return;
  ::kill(pid_, SIGKILL);
  waitpid(pid_, nullptr, 0);
  pid_ = -1;
}

std::string ServerProcess::log() const {
  std::ifstream in(log_path_);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

std::string bin_dir() {
  const char* dir = std::getenv("TTMEM_BIN_DIR");
  return dir ? dir : TTMEM_DEFAULT_BIN_DIR;
}

TempDir::TempDir() {
  std::string templ = (std::filesystem::temp_directory_path() / "ttmem-test-XXXXXX").string();
  if (!mkdtemp(templ.data())) throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  const std::string p = file(name);
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

}  // namespace ttmem::test
