// `ttmemd --http [ADDR:]PORT`: what the flag means. Loopback unless an address is given; any other address
// must be asked for twice (`--http-remote`), since /metrics shows every process's memory.
#pragma once

#include <optional>
#include <string>

namespace ttmem::server {

struct HttpAddress {
  std::string host;  ///< as given: "127.0.0.1", "::1", "0.0.0.0", a host name
  int port = 0;
};

/// "9464", "127.0.0.1:9464", "[::1]:9464", "0.0.0.0:0". Empty with `error` set when it is none of these.
std::optional<HttpAddress> parse_http_address(const std::string& text, std::string* error);
bool is_loopback(const std::string& host);

}  // namespace ttmem::server
