// Fuzz target: ttmemd's connection handler fed the whole input as one connection's byte stream (handshake,
// reports, queries, garbage), against one server whose state carries over from input to input.
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server.hpp"

namespace {
ttmem::server::Server& server() {
  static ttmem::server::Server* s = [] {
    spdlog::set_level(spdlog::level::off);
    ttmem::server::ServerOptions o;
    o.socket_path = "/tmp/ttmem-fuzz-" + std::to_string(getpid()) + ".sock";
    o.limits.event_history = 1000;
    return new ttmem::server::Server(o);  // lives for the whole fuzzing run
  }();
  return *s;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  server().feed({data, size});
  return 0;
}
