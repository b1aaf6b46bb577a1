// Fuzz target: the query path — the input is the JSON of one QUERY from a tool, after a valid handshake,
// against a server that holds a few allocations.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "server.hpp"

namespace {
std::vector<std::uint8_t> hello(ttmem::proto::Role role) {
  std::vector<std::uint8_t> b;
  ttmem::proto::Hello h;
  h.role = role;
  ttmem::proto::encode(b, h);
  return b;
}

ttmem::server::Server& server() {
  static ttmem::server::Server* s = [] {
    spdlog::set_level(spdlog::level::off);
    ttmem::server::ServerOptions o;
    o.socket_path = "/tmp/ttmem-fuzzq-" + std::to_string(getpid()) + ".sock";
    auto* srv = new ttmem::server::Server(o);
    // Something to answer about: a device, some allocations, a leak.
    auto b = hello(ttmem::proto::Role::tracked_process);
    ttmem::proto::DeviceOpen d;
    ttmem::proto::encode(b, d);
    std::vector<ttmem::proto::EventRecord> events(8);
    for (std::size_t i = 0; i < events.size(); ++i) {
      events[i].id = i + 1;
      events[i].size = 4096 * (i + 1);
      events[i].kind = static_cast<ttmem::proto::AllocKind>(i % 5);
    }
    ttmem::proto::encode(b, std::span<const ttmem::proto::EventRecord>(events));
    srv->feed(b);
    return srv;
  }();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  auto bytes = hello(ttmem::proto::Role::tool);
  ttmem::proto::Query q;
  q.query_id = 1;
  q.json.assign(reinterpret_cast<const char*>(data), size);
  ttmem::proto::encode(bytes, q);
  server().feed(bytes);
  return 0;
}
