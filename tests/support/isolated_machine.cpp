// Every test process is a machine of its own: emulated chips are held one process at a time across the
// machine (chip_lock.hpp), so tests that run at once must not share chip locks. Before main, a test
// process that was not given a machine (TTMEM_EMU_CHIP_DIR) gets a fresh directory; the processes it
// starts inherit it, so they share its chips as processes of one machine do. Removed at exit.
#include <dirent.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

namespace {

std::string& machine_dir() {
  static std::string dir;
  return dir;
}

void remove_machine() {
  const std::string& dir = machine_dir();
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") unlink((dir + "/" + name).c_str());
    }
    closedir(d);
  }
  rmdir(dir.c_str());
}

const bool kIsolated = [] {
  if (std::getenv("TTMEM_EMU_CHIP_DIR")) return false;
  char pattern[] = "/tmp/ttmem-test-machine-XXXXXX";
  if (!mkdtemp(pattern)) return false;
  machine_dir() = pattern;
  setenv("TTMEM_EMU_CHIP_DIR", pattern, 1);
  std::atexit(remove_machine);
  return true;
}();

}  // namespace
