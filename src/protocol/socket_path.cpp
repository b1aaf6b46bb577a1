// Socket locations and whom to trust there; see ttmem/socket_path.hpp.
#include "ttmem/socket_path.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace ttmem {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : std::string();
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

std::string personal_socket_path() {
  if (geteuid() == 0) return kSystemSocketPath;
  const std::string runtime = env("XDG_RUNTIME_DIR");
  if (!runtime.empty()) return runtime + "/ttmemd.sock";
  return "/tmp/ttmem-" + std::to_string(geteuid()) + "/ttmemd.sock";
}

}  // namespace

std::string server_socket_path() {
  const std::string explicit_path = env("TTMEM_SOCKET");
  return explicit_path.empty() ? personal_socket_path() : explicit_path;
}

std::string client_socket_path() {
  const std::string explicit_path = env("TTMEM_SOCKET");
  if (!explicit_path.empty()) return explicit_path;
  const std::string personal = personal_socket_path();
  if (exists(personal) || !exists(kSystemSocketPath)) return personal;
  return kSystemSocketPath;
}

bool trusted_server_uid(uid_t server_uid) {
  if (server_uid == 0 || server_uid == geteuid()) return true;
  const std::string allowed = env("TTMEM_SERVER_UID");
  if (allowed.empty()) return false;
  char* end = nullptr;
  const unsigned long v = std::strtoul(allowed.c_str(), &end, 10);
  return end && *end == '\0' && v == server_uid;
}

std::string untrusted_server_message(const std::string& path, uid_t server_uid) {
  return "the server on " + path + " runs as uid " + std::to_string(server_uid) +
         ", not as root or as you (uid " + std::to_string(geteuid()) +
         "): another user may be squatting the socket; not sending it anything (set TTMEM_SERVER_UID=" +
         std::to_string(server_uid) + " if you trust it)";
}

}  // namespace ttmem
