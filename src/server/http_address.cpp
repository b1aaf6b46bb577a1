// Parsing `--http`; see http_address.hpp.
#include "http_address.hpp"

#include <arpa/inet.h>

#include <charconv>

namespace ttmem::server {

std::optional<HttpAddress> parse_http_address(const std::string& text, std::string* error) {
  HttpAddress a{"127.0.0.1", 0};
  std::string port = text;
  if (const auto colon = text.rfind(':'); colon != std::string::npos) {
    a.host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (a.host.size() >= 2 && a.host.front() == '[' && a.host.back() == ']')
      a.host = a.host.substr(1, a.host.size() - 2);
    if (a.host.empty()) {
      *error = "no address before ':' in '" + text + "' (e.g. 127.0.0.1:9464, or just 9464 for loopback)";
      return std::nullopt;
    }
  }
  const auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), a.port);
  if (ec != std::errc() || end != port.data() + port.size() || a.port < 0 || a.port > 65535) {
    *error = "'" + port + "' is not a port number (0..65535; 0 picks a free one) in --http " + text;
    return std::nullopt;
  }
  return a;
}

bool is_loopback(const std::string& host) {
  if (host == "localhost") return true;
  in_addr v4{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) return IN6_IS_ADDR_LOOPBACK(&v6);
  return false;
}

}  // namespace ttmem::server
