// ttmem-loadgen: N producer processes x M threads report allocations to ttmemd through libttmem as fast as
// they can; the run checks at the end that the server's totals equal the producers' ground truth (a lost
// event fails it) and prints one JSON object with the figures.
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <deque>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "ttmem/client.hpp"
#include "ttmem/query.hpp"
#include "ttmem/socket_path.hpp"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string socket;
  int processes = 4;
  int threads = 1;
  std::uint64_t events = 2'000'000;  // per thread
  std::uint64_t live = 1000;         // live allocations each thread keeps (then frees the oldest per new one)
  int devices = 8;
  std::uint64_t hold = 0;    // extra allocations held per thread at the end (for memory figures)
  bool hostile_ids = false;  // ids that differ only in their high bits (they flooded an unkeyed hash)
  std::uint64_t max_stall_ms = 10'000;
  /// Announce each device (a Wormhole's DRAM: 12 banks of 1 GiB) and place the held buffers in its banks,
  /// so that ttmemd keeps a free-space map of every device (what a scrape of real devices costs).
  bool announce = false;
};

constexpr std::uint32_t kAnnouncedBanks = 12;
constexpr std::uint64_t kAnnouncedBankBytes = std::uint64_t{1} << 30;
constexpr std::uint64_t kHeldPerBank = 2048;  // a 4096-B buffer in 2048-B pages over 12 banks: one page each

struct Truth {
  std::uint64_t live = 0;
  std::uint64_t bytes = 0;
  std::uint64_t events = 0;
};

void write_all(int fd, const void* p, std::size_t n) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w <= 0) _exit(3);
    c += w;
    n -= static_cast<std::size_t>(w);
  }
}

void read_all(int fd, void* p, std::size_t n) {
  char* c = static_cast<char*>(p);
  while (n > 0) {
    const ssize_t r = ::read(fd, c, n);
    if (r <= 0) _exit(3);
    c += r;
    n -= static_cast<std::size_t>(r);
  }
}

/// One producer process: connect, wait for the start signal, report, flush, send the ground truth, then
/// hold its live allocations until told to exit.
[[noreturn]] void producer(const Config& cfg, int index, int to_parent, int from_parent) {
  ttmem::client::Options o;
  o.socket_path = cfg.socket;
  o.ring_events = 16384;
  // Measures saturated ingest: producers wait for the server (backpressure) rather than drop and resync.
  o.max_stall = std::chrono::milliseconds(cfg.max_stall_ms);
  ttmem::client::Client client(o);
  if (!client.wait_for_first_attempt(std::chrono::seconds(10))) _exit(2);
  if (cfg.announce) {
    for (int d = 0; d < cfg.devices; ++d) {
      ttmem::client::DeviceReport r;
      r.device = static_cast<std::uint16_t>(d);
      const auto dram = static_cast<std::size_t>(ttmem::proto::BufferType::DRAM);
      r.total_bytes[dram] = kAnnouncedBanks * kAnnouncedBankBytes;
      r.num_banks[dram] = kAnnouncedBanks;
      client.device_open(r);
    }
  }
  char go = 0;
  write_all(to_parent, &go, 1);   // ready
  read_all(from_parent, &go, 1);  // start
  std::vector<Truth> truths(static_cast<std::size_t>(cfg.threads));
  std::vector<std::thread> threads;
  for (int t = 0; t < cfg.threads; ++t) {
    threads.emplace_back([&, t] {
      Truth& truth = truths[static_cast<std::size_t>(t)];
      std::deque<std::pair<std::uint64_t, std::uint16_t>> live;
      std::uint64_t next_id =
          (static_cast<std::uint64_t>(index) << 48) | (static_cast<std::uint64_t>(t) << 40);
      std::uint64_t hostile_counter = 0;
      const std::uint64_t hostile_low =
          static_cast<std::uint64_t>(index) << 8 | static_cast<std::uint64_t>(t);
      auto new_id = [&] { return cfg.hostile_ids ? (++hostile_counter << 44) | hostile_low : ++next_id; };
      ttmem::client::AllocationReport a;
      a.type = ttmem::proto::BufferType::DRAM;
      a.size = 4096;
      a.timestamp_ns = 1;  // a fixed stamp: the producer measures the library, not the clock
      std::uint64_t sent = 0;
      while (sent < cfg.events) {
        a.id = new_id();
        a.device = static_cast<std::uint16_t>(sent % static_cast<std::uint64_t>(cfg.devices));
        client.report_alloc(a);
        live.emplace_back(a.id, a.device);
        ++sent;
        if (live.size() > cfg.live && sent < cfg.events) {
          client.report_free(live.front().second, live.front().first);
          live.pop_front();
          ++sent;
        }
      }
      const auto devices = static_cast<std::uint64_t>(cfg.devices);
      const std::uint64_t per_device = cfg.hold / devices + 1;
      const auto producer_thread = static_cast<std::uint64_t>(index * cfg.threads + t);
      for (std::uint64_t h = 0; h < cfg.hold; ++h) {
        a.id = new_id();
        a.device = cfg.hostile_ids ? 0 : static_cast<std::uint16_t>(h % devices);
        if (cfg.announce) {  // each producer thread its own run of addresses on each device
          a.num_banks = kAnnouncedBanks;
          a.size_per_bank = kHeldPerBank;
          a.address = (producer_thread * per_device + h / devices) * kHeldPerBank % kAnnouncedBankBytes;
        }
        client.report_alloc(a);
        live.emplace_back(a.id, a.device);
        ++sent;
      }
      truth.live = live.size();
      truth.bytes = live.size() * a.size;
      truth.events = sent;
    });
  }
  for (auto& th : threads) th.join();
  const bool flushed = client.flush(std::chrono::seconds(120));
  Truth total;
  for (const auto& t : truths) {
    total.live += t.live;
    total.bytes += t.bytes;
    total.events += t.events;
  }
  const auto counters = client.counters();
  struct Report {
    Truth truth;
    std::uint64_t stall_ns, superseded, flushed;
  } report{total, counters.stall_ns, counters.superseded_events + counters.dropped_events, flushed ? 1u : 0u};
  write_all(to_parent, &report, sizeof report);
  read_all(from_parent, &go, 1);  // exit
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "ttmem-loadgen: N processes x M threads reporting to ttmemd; checks totals against ground truth"};
  Config cfg;
  cfg.socket = ttmem::client_socket_path();
  app.add_option("--socket", cfg.socket, "ttmemd's socket");
  app.add_option("-p,--processes", cfg.processes, "Producer processes")->check(CLI::Range(1, 64));
  app.add_option("-t,--threads", cfg.threads, "Threads per process")->check(CLI::Range(1, 64));
  app.add_option("-n,--events", cfg.events, "Events per thread");
  app.add_option("--live", cfg.live, "Live allocations each thread keeps while it runs");
  app.add_option("--hold", cfg.hold, "Allocations each thread adds and holds at the end");
  app.add_option("--devices", cfg.devices, "Devices the allocations spread over")->check(CLI::Range(1, 4096));
  app.add_flag(
      "--announce", cfg.announce,
      "Open each device (12 DRAM banks of 1 GiB) and place held buffers in its banks: ttmemd then keeps "
      "a free-space map of each");
  app.add_flag("--hostile-ids", cfg.hostile_ids,
               "Ids that differ only in their high bits (all on device 0 when held): a hash-flooding probe");
  app.add_option("--max-stall-ms", cfg.max_stall_ms, "libttmem's max_stall in the producers");
  bool keep = false;
  app.add_flag("--keep", keep, "Keep the producers alive (holding their allocations) until stdin closes");
  CLI11_PARSE(app, argc, argv);

  struct Child {
    pid_t pid;
    int to_child, from_child;
  };
  std::vector<Child> children;
  for (int i = 0; i < cfg.processes; ++i) {
    int up[2], down[2];
    if (pipe(up) || pipe(down)) return 1;
    const pid_t pid = fork();  // before any client exists in this process
    if (pid == 0) {
      close(up[0]);
      close(down[1]);
      producer(cfg, i, up[1], down[0]);
    }
    close(up[1]);
    close(down[0]);
    children.push_back({pid, down[1], up[0]});
  }
  auto dram_used = [](const ttmem::views::Stats& stats) {
    std::uint64_t bytes = 0;
    for (const auto& d : stats.devices) bytes += d.memory[ttmem::index(ttmem::Slot::DRAM)].used;
    return bytes;
  };
  ttmem::views::Stats before;
  ttmem::views::ServerInfo info_before;
  {
    ttmem::query::QueryClient q(cfg.socket);
    before = q.stats();
    info_before = q.info();
  }
  char byte = 0;
  for (auto& c : children) read_all(c.from_child, &byte, 1);
  const auto start = Clock::now();
  for (auto& c : children) write_all(c.to_child, &byte, 1);
  Truth truth;
  std::uint64_t stall_ns = 0, superseded = 0, flushed = 1;
  for (auto& c : children) {
    struct {
      Truth truth;
      std::uint64_t stall_ns, superseded, flushed;
    } r{};
    read_all(c.from_child, &r, sizeof r);
    truth.live += r.truth.live;
    truth.bytes += r.truth.bytes;
    truth.events += r.truth.events;
    stall_ns += r.stall_ns;
    superseded += r.superseded;
    flushed &= r.flushed;
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();

  ttmem::query::QueryClient q(cfg.socket);
  const ttmem::views::Stats stats = q.stats();
  const ttmem::views::ServerInfo info = q.info();
  // Exact: what the server gained equals what the producers hold, and nothing odd happened on the way.
  const std::uint64_t server_live = stats.active_allocations - before.active_allocations;
  const std::uint64_t server_bytes = dram_used(stats) - dram_used(before);
  std::uint64_t anomalies = 0;  // new ones, during this run
  json all_anomalies = json::object();
#define TTMEM_COUNT(name)                                        \
  anomalies += info.anomalies.name - info_before.anomalies.name; \
  all_anomalies[#name] = info.anomalies.name;
  TTMEM_LEDGER_ANOMALIES(TTMEM_COUNT)
  TTMEM_SERVER_ANOMALIES(TTMEM_COUNT)
#undef TTMEM_COUNT
  const bool exact = flushed && superseded == 0 && anomalies == 0 && server_live == truth.live &&
                     server_bytes == truth.bytes;
  json out = {{"processes", cfg.processes},
              {"threads_per_process", cfg.threads},
              {"events", truth.events},
              {"seconds", seconds},
              {"events_per_second", static_cast<double>(truth.events) / seconds},
              {"producer_stall_ms", static_cast<double>(stall_ns) / 1e6},
              {"truth_live", truth.live},
              {"truth_bytes", truth.bytes},
              {"server_live", server_live},
              {"server_dram_bytes", server_bytes},
              {"anomalies", all_anomalies},
              {"new_anomalies", anomalies},
              {"flushed", flushed == 1},
              {"superseded", superseded},
              {"registry_bytes", info.registry_bytes},
              {"exact", exact},
              {"producer_pids", [&] {
                 std::vector<int> pids;
                 for (const auto& c : children) pids.push_back(c.pid);
                 return pids;
               }()}};
  if (!exact) {
    // Whose buffers the server holds beyond the truth: a producer's (a report lost on its way) or
    // another process's (counted in the difference by mistake).
    auto by_pid = [](const ttmem::views::Stats& s) {
      std::map<std::string, std::uint64_t> counts;  // rows are per (pid, device)
      for (const auto& row : s.processes) counts[std::to_string(row.pid)] += row.buffers;
      return counts;
    };
    out["server_buffers_by_pid"] = by_pid(stats);
    out["before_buffers_by_pid"] = by_pid(before);
  }
  std::cout << out.dump() << std::endl;
  if (keep) {
    std::string line;
    while (std::getline(std::cin, line)) {
    }
  }
  // Release the producers; some may have been killed on purpose (the reclaim benchmark): ignore those.
  signal(SIGPIPE, SIG_IGN);
  for (auto& c : children) [[maybe_unused]] auto n = ::write(c.to_child, &byte, 1);
  for (auto& c : children) waitpid(c.pid, nullptr, 0);
  return exact ? 0 : 1;
}
