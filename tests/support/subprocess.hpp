// Runs a real child process with optional standard input and captures its output and exit status.
#pragma once

#include <string>
#include <vector>

namespace ttmem::test {

struct ProcessResult {
  int exit_code = -1;  ///< Exit status, or 128 + signal number when killed by a signal.
  std::string out;
  std::string err;
};

/// Runs argv[0] (a path) with the given arguments; blocks until it exits.
ProcessResult run_process(const std::vector<std::string>& argv, const std::string& input = {});

/// Directory of the test binaries' sibling tools (build/bin), from TTMEM_BIN_DIR set by CMake.
std::string bin_dir();

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

}  // namespace ttmem::test
