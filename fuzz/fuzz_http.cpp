// Fuzz target: ttmemd's HTTP interface. The input is the bytes one client sends on a connection (request
// lines, headers, parameters, bodies), written to a live ttmemd serving HTTP on loopback, whose event loop
// runs on a thread and holds a device with a few allocations (some in an op) and a history. Each connection
// is read to its end (or 100 ms of silence: a stream stays open) and closed. A crash, a sanitizer report or a
// hang (libFuzzer's -timeout) is a finding.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "server.hpp"

namespace {

struct Live {
  std::unique_ptr<ttmem::server::Server> server;
  std::thread loop;
  int port = 0;
};

std::vector<std::uint8_t> some_state() {
  std::vector<std::uint8_t> b;
  ttmem::proto::Hello h;
  h.role = ttmem::proto::Role::tracked_process;
  ttmem::proto::encode(b, h);
  ttmem::proto::DeviceOpen d;
  d.total_bytes[0] = 12ull << 30;
  d.num_banks[0] = 12;
  ttmem::proto::encode(b, d);
  const std::vector<ttmem::proto::Site> sites{{1, "model.py:3"}, {2, "forward/matmul"}};
  ttmem::proto::encode(b, std::span<const ttmem::proto::Site>(sites));
  std::vector<ttmem::proto::EventRecord> events(8);
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].id = i + 1;
    events[i].size = 4096 * (i + 1);
    events[i].address = 65536 * i;
    events[i].size_per_bank = 4096;
    events[i].num_banks = 12;
    events[i].site = 1;
    events[i].scope = i % 2 ? 2 : 0;
  }
  ttmem::proto::encode(b, std::span<const ttmem::proto::EventRecord>(events));
  return b;
}

Live& live() {
  static Live* l = [] {
    spdlog::set_level(spdlog::level::off);
    ttmem::server::ServerOptions o;
    o.socket_path = "/tmp/ttmem-fuzzh-" + std::to_string(getpid()) + ".sock";
    o.http = ttmem::server::HttpOptions{};  // loopback, any free port
    // A history, so that /api/history and /api/timeline read a real database.
    ttmem::history::HistoryOptions h;
    h.state_dir = "/tmp/ttmem-fuzzh-" + std::to_string(getpid()) + ".state";
    o.history = h;
    static const std::string socket_path = o.socket_path, state_dir = h.state_dir;
    std::atexit([] {  // the server is never stopped: take its files away with the process
      std::error_code ec;
      std::filesystem::remove(socket_path, ec);
      std::filesystem::remove_all(state_dir, ec);
    });
    auto* x = new Live;  // never destroyed: the loop runs until the process ends
    x->server = std::make_unique<ttmem::server::Server>(o);
    x->server->feed(some_state());
    x->port = x->server->http_port();
    x->loop = std::thread([s = x->server.get()] { s->run(); });
    return x;
  }();
  return *l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Live& l = live();
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<std::uint16_t>(l.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval quiet{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quiet, sizeof quiet);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &quiet, sizeof quiet);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0) {
    for (std::size_t sent = 0; sent < size;) {
      const ssize_t n = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
      if (n <= 0) break;  // the server closed on a bad request: what it answered is still read below
      sent += static_cast<std::size_t>(n);
    }
    shutdown(fd, SHUT_WR);
    char buffer[65536];
    while (read(fd, buffer, sizeof buffer) > 0) {
    }
  }
  close(fd);
  return 0;
}
