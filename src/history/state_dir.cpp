// Where the history lives, and the times people type for it.
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <ctime>

#include "ttmem/history.hpp"

namespace ttmem::history {

std::string default_state_dir() {
  if (const char* dir = std::getenv("TTMEM_STATE_DIR"); dir && *dir) return dir;
  if (geteuid() == 0) return "/var/lib/ttmem";
  if (const char* state = std::getenv("XDG_STATE_HOME"); state && *state)
    return std::string(state) + "/ttmem";
  if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.local/state/ttmem";
  return "/tmp/ttmem-state-" + std::to_string(geteuid());
}

std::string database_path(const std::string& state_dir) {
  return state_dir + "/history.sqlite";
}

std::optional<std::uint64_t> parse_duration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::uint64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p == text.data() || end - p != 1) return std::nullopt;
  std::uint64_t unit = 0;
  switch (*p) {
    case 's':
      unit = 1;
      break;
    case 'm':
      unit = 60;
      break;
    case 'h':
      unit = 3600;
      break;
    case 'd':
      unit = 86400;
      break;
    default:
      return std::nullopt;
  }
  if (n > UINT64_MAX / (unit * kSecondNs)) return std::nullopt;
  return n * unit * kSecondNs;
}

std::optional<std::uint64_t> parse_time(std::string_view text, std::uint64_t now_ns) {
  if (auto d = parse_duration(text)) return *d > now_ns ? 0 : now_ns - *d;
  std::uint64_t seconds = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (ec == std::errc() && p == text.data() + text.size() && !text.empty()) {
    if (seconds > UINT64_MAX / kSecondNs) return std::nullopt;
    return seconds * kSecondNs;
  }
  std::tm tm{};
  const std::string s(text);
  const char* rest = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!rest) rest = strptime(s.c_str(), "%Y-%m-%d %H:%M:%S", &tm);
  if (!rest || *rest != '\0') return std::nullopt;
  const time_t t = timegm(&tm);
  if (t < 0) return std::nullopt;
  return static_cast<std::uint64_t>(t) * kSecondNs;
}

}  // namespace ttmem::history
