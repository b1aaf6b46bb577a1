// Runs a real child process with optional standard input and captures its output and exit status.
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ttmem::test {

struct ProcessResult {
  int exit_code = -1;  ///< Exit status, or 128 + signal number when killed by a signal.
  std::string out;
  std::string err;
};

/// A fresh temporary directory, removed at destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  /// Writes a file and returns its path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

using Env = std::vector<std::pair<std::string, std::string>>;

/// How to start a child beyond argv and environment (root only for the user and pid parts).
struct Spawn {
  std::optional<uid_t> uid;  ///< run as this user (with gid and no supplementary groups)
  gid_t gid = 0;
  std::vector<gid_t> groups;         ///< supplementary groups when uid is set
  std::optional<rlim_t> max_files;   ///< RLIMIT_NOFILE, soft and hard
  pid_t pid = 0;                     ///< this exact pid (clone3 set_tid); 0: any
  std::vector<std::string> wrapper;  ///< argv prefix, e.g. {"/usr/bin/unshare", "--pid", "--fork"}
};

/// Forks as fork() does, but the child gets pid `want` (clone3 with set_tid, root only); -1 with errno set.
pid_t fork_with_pid(pid_t want);

/// Runs argv[0] (a path) with the given arguments and extra environment; blocks until it exits.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {},
                          const Env& env = {});

/// A running child with line-oriented stdin/stdout (stderr is inherited). Killed at destruction.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const Env& env = {}, const Spawn& spawn = {});
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  void send_line(const std::string& line);
  /// The next line of output; throws std::runtime_error on timeout or end of output.
  std::string read_line(std::chrono::milliseconds timeout = std::chrono::seconds(20));
  /// send_line + read_line.
  std::string command(const std::string& line) {
    send_line(line);
    return read_line();
  }
  void close_stdin();
  void kill(int signal);
  /// Waits for exit; returns the status like ProcessResult::exit_code.
  int wait();

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::string buffered_;
  bool reaped_ = false;
  int status_ = -1;
};

/// ttmemd on a private socket in its own temporary directory; ready when constructed.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> extra_args = {}, Spawn spawn = {});
  ~ServerProcess();
  const std::string& socket() const { return socket_; }
  pid_t pid() const { return pid_; }
  /// SIGTERM and wait; returns the exit status.
  int stop();
  void kill9();
  /// Starts again on the same socket (after stop or kill9).
  void start();
  /// Everything the server logged so far.
  std::string log() const;
  /// The directory holding the socket and the log.
  const std::string& dir() const { return dir_.path(); }

 private:
  TempDir dir_;
  std::string socket_;
  std::string log_path_;
  std::vector<std::string> extra_;
  Spawn spawn_;
  pid_t pid_ = -1;
};

/// A connected Unix stream socket to `path`, or -1.
int connect_unix(const std::string& path);

/// Directory of the test binaries' sibling tools (build/bin), from TTMEM_BIN_DIR set by CMake.
std::string bin_dir();

}  // namespace ttmem::test
