// ttmem-bench-hotpath: what reporting one allocation costs the application thread, per event (median, p99),
// for libttmem and, in the same run, for the prior art's two approaches:
//   (a) the prototype: one blocking send() of a fixed message per event to a Unix socket;
//   (b) the shipped tracker: atomic counter updates in a shared-memory region per event.
// Events are timed with the TSC in groups of kGroup consecutive events (the TSC of a VM may tick only every
// 10 ns); a sample is the per-event average of its group, so median and p99 are over those averages.
// Each approach runs on one thread and on two threads at once (contention is where shared counters lose),
// with the threads left to the scheduler and pinned one per core. The floor beside them is the least a
// report can cost: one 64-byte store into a thread-local array.
// libttmem is measured in bursts that fit its ring, with the sender draining to a real ttmemd between
// bursts: this is the hot path, not the ingest ceiling (ttmem-loadgen measures sustained throughput).
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <x86intrin.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "ttmem/client.hpp"
#include "ttmem/socket_path.hpp"

namespace {

using nlohmann::json;

double tsc_ns_per_tick() {
  const auto t0 = std::chrono::steady_clock::now();
  const std::uint64_t c0 = __rdtsc();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const std::uint64_t c1 = __rdtsc();
  const auto t1 = std::chrono::steady_clock::now();
  return std::chrono::duration<double, std::nano>(t1 - t0).count() / static_cast<double>(c1 - c0);
}

/// Cost of the timing itself (two rdtscp around nothing), in ticks: subtracted from every sample.
std::uint64_t timer_overhead() {
  std::vector<std::uint64_t> v(100000);
  unsigned aux;
  for (auto& x : v) {
    const std::uint64_t a = __rdtscp(&aux);
    const std::uint64_t b = __rdtscp(&aux);
    x = b - a;
  }
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr std::size_t kGroup = 16;

json summarize(std::vector<std::uint64_t>& ticks, std::uint64_t overhead, double ns_per_tick) {
  std::vector<double> ns;
  ns.reserve(ticks.size());
  for (auto t : ticks)
    ns.push_back(static_cast<double>(t > overhead ? t - overhead : 0) * ns_per_tick / kGroup);
  std::sort(ns.begin(), ns.end());
  auto at = [&](double q) { return ns[static_cast<std::size_t>(q * static_cast<double>(ns.size() - 1))]; };
  double sum = 0;
  for (auto v : ns) sum += v;
  return {{"events", ns.size() * kGroup},
          {"median_ns", at(0.5)},
          {"p90_ns", at(0.9)},
          {"p99_ns", at(0.99)},
          {"mean_ns", sum / static_cast<double>(ns.size())}};
}

/// Runs f(i) for i in [0, n), timing each group of kGroup calls.
template <typename F>
void time_groups(std::vector<std::uint64_t>& out, std::size_t n, F&& f) {
  unsigned aux;
  for (std::size_t i = 0; i + kGroup <= n; i += kGroup) {
    const std::uint64_t a = __rdtscp(&aux);
    for (std::size_t k = 0; k < kGroup; ++k) f(i + k);
    const std::uint64_t b = __rdtscp(&aux);
    out.push_back(b - a);
  }
}

/// Whether on_threads pins thread t to core t (of the cores this process may use).
bool g_pinned = false;

void pin_to(int t) {
  cpu_set_t allowed;
  if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) return;
  int seen = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
    if (!CPU_ISSET(cpu, &allowed)) continue;
    if (seen++ == t % CPU_COUNT(&allowed)) {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(cpu, &one);
      sched_setaffinity(0, sizeof one, &one);
      return;
    }
  }
}

/// Runs body(thread, samples) on `threads` threads started together; returns all samples.
template <typename Body>
std::vector<std::uint64_t> on_threads(int threads, Body&& body) {
  std::vector<std::vector<std::uint64_t>> samples(static_cast<std::size_t>(threads));
  std::atomic<int> ready{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&, t] {
      if (g_pinned) pin_to(t);
      ready.fetch_add(1);
      while (ready.load() < threads) {
      }
      body(t, samples[static_cast<std::size_t>(t)]);
    });
  }
  for (auto& th : pool) th.join();
  std::vector<std::uint64_t> all;
  for (auto& s : samples) all.insert(all.end(), s.begin(), s.end());
  return all;
}

/// `in_op`: every event is reported inside an op scope (stamped with its id from the thread's scope).
json bench_ttmem(const std::string& socket, std::size_t events, int threads, std::uint64_t overhead,
                 double npt, bool in_op = false) {
  ttmem::client::Options o;
  o.socket_path = socket;
  ttmem::client::Client client(o);
  if (!client.wait_for_first_attempt(std::chrono::seconds(5)))
    throw std::runtime_error("no ttmemd at " + socket);
  constexpr std::size_t kBurst = 4096;  // within a ring: the application never waits
  auto ticks = on_threads(threads, [&](int t, std::vector<std::uint64_t>& out) {
    std::optional<ttmem::client::OpScope> model, op;
    if (in_op) {
      model.emplace("model.forward", client);
      op.emplace("ttnn::matmul", client);
    }
    ttmem::client::AllocationReport a;
    a.size = 4096;
    a.timestamp_ns = 1;
    std::uint64_t id = static_cast<std::uint64_t>(t) << 40;
    for (std::size_t done = 0; done < events; done += kBurst) {
      const std::uint64_t first = id + 1;
      time_groups(out, kBurst / 2, [&](std::size_t) {
        a.id = ++id;
        a.device = static_cast<std::uint16_t>(id & 7);
        client.report_alloc(a);
      });
      time_groups(out, kBurst / 2, [&](std::size_t i) {
        client.report_free(static_cast<std::uint16_t>((first + i) & 7), first + i);
      });
      client.flush();  // untimed: the sender drains between bursts
    }
  });
  json j = summarize(ticks, overhead, npt);
  j["stall_ns"] = client.counters().stall_ns;
  return j;
}

/// The floor's thread-local array and its index (as ttmem's ring is reached: a thread-local pointer).
struct alignas(64) FloorRecord {
  std::uint64_t words[8];
};
constexpr std::size_t kFloorRecords = 8192;  // as large as ttmem's ring
thread_local FloorRecord* t_floor = nullptr;
thread_local std::size_t t_floor_at = 0;

/// The floor: what any per-event record costs at least — one 64-byte store into a thread-local array and
/// an index bump, the record taken from the same report ttmem is given.
json bench_floor(std::size_t events, int threads, std::uint64_t overhead, double npt) {
  auto ticks = on_threads(threads, [&](int, std::vector<std::uint64_t>& out) {
    auto array = std::make_unique<FloorRecord[]>(kFloorRecords);
    t_floor = array.get();
    ttmem::client::AllocationReport a;
    a.size = 4096;
    a.timestamp_ns = 1;
    for (std::size_t done = 0; done < events; done += kFloorRecords) {
      time_groups(out, kFloorRecords, [&](std::size_t) {
        ++a.id;
        FloorRecord& r = t_floor[t_floor_at++ & (kFloorRecords - 1)];
        r = FloorRecord{
            {a.id, a.size, a.address, a.size_per_bank, a.timestamp_ns, a.device, a.num_banks, a.site}};
        asm volatile("" : : "r"(&r) : "memory");  // the store happens, as a ring's would
      });
    }
    t_floor = nullptr;
  });
  return summarize(ticks, overhead, npt);
}

/// What a tracked process that reports nothing pays: this process's CPU time (every thread: the sender's
/// is the only one awake) and its voluntary context switches while the main thread sleeps, after one
/// allocation and its free were reported and flushed.
json bench_idle(const std::string& socket, double seconds) {
  ttmem::client::Options o;
  o.socket_path = socket;
  ttmem::client::Client client(o);
  if (!client.wait_for_first_attempt(std::chrono::seconds(5)))
    throw std::runtime_error("no ttmemd at " + socket);
  ttmem::client::AllocationReport a;
  a.id = 1;
  a.size = 4096;
  client.report_alloc(a);
  client.report_free(0, 1);
  client.flush();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the sender's last cycle before it idles
  auto usage = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u;
  };
  auto cpu_ns = [](const rusage& u) {
    return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e9 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e3;
  };
  const rusage before = usage();
  const auto t0 = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const rusage after = usage();
  const double cpu = (cpu_ns(after) - cpu_ns(before)) / 1e9;
  return {{"seconds", wall},
          {"cpu_ms_per_s", cpu * 1e3 / wall},
          {"core_percent", cpu * 100 / wall},
          {"wakeups_per_s", static_cast<double>(after.ru_nvcsw - before.ru_nvcsw) / wall},
          {"connected", client.active()}};
}

json bench_blocking_send(std::size_t events, int threads, std::uint64_t overhead, double npt) {
  // The prototype: one connection per process, a blocking send per event under a mutex, and a server
  // thread per client that reads and drops.
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) throw std::runtime_error("socketpair");
  std::thread reader([fd = fds[1]] {
    char buf[65536];
    while (read(fd, buf, sizeof buf) > 0) {
    }
  });
  struct Message {  // the prototype's fixed message (its 112-byte variant)
    std::uint8_t type;
    std::uint8_t pad[7];
    std::int32_t device_id;
    std::uint64_t size, buffer_type, pid, buffer_id, timestamp;
    std::uint8_t rest[56];
  };
  static_assert(sizeof(Message) == 112);
  std::mutex send_mutex;
  auto ticks = on_threads(threads, [&](int, std::vector<std::uint64_t>& out) {
    Message msg{};
    time_groups(out, events, [&](std::size_t i) {
      msg.buffer_id = i;
      std::lock_guard lock(send_mutex);
      if (send(fds[0], &msg, sizeof msg, 0) != sizeof msg) std::abort();
    });
  });
  close(fds[0]);
  reader.join();
  close(fds[1]);
  return summarize(ticks, overhead, npt);
}

json bench_shm_atomics(std::size_t events, int threads, std::uint64_t overhead, double npt) {
  // One region per chip: totals per memory type and 64 per-process slots (the shipped tracker's layout).
  struct Region {
    std::atomic<std::uint64_t> totals[5];
    struct Slot {
      std::atomic<std::int32_t> pid;
      std::atomic<std::uint64_t> bytes[5];
    } slots[64];
  };
  const std::string name = "/ttmem-bench-" + std::to_string(getpid());
  const int fd = shm_open(name.c_str(), O_CREAT | O_RDWR, 0600);
  if (fd < 0 || ftruncate(fd, sizeof(Region)) != 0) throw std::runtime_error("shm_open");
  auto* region =
      static_cast<Region*>(mmap(nullptr, sizeof(Region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
  auto ticks = on_threads(threads, [&](int t, std::vector<std::uint64_t>& out) {
    const auto slot = static_cast<std::size_t>((getpid() + t) % 64);  // threads stand for processes
    time_groups(out, events, [&](std::size_t i) {
      const std::size_t type = i % 5;
      region->totals[type].fetch_add(4096, std::memory_order_relaxed);
      region->slots[slot].bytes[type].fetch_add(4096, std::memory_order_relaxed);
    });
  });
  munmap(region, sizeof(Region));
  close(fd);
  shm_unlink(name.c_str());
  return summarize(ticks, overhead, npt);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ttmem-bench-hotpath: per-event cost on the application thread, ttmem vs the prior art"};
  std::string socket = ttmem::client_socket_path();
  std::size_t events = 1'000'000;
  app.add_option("--socket", socket, "ttmemd's socket");
  double idle_seconds = 5;
  app.add_option("-n,--events", events, "Events per approach");
  app.add_option("--idle-seconds", idle_seconds, "How long the idle process is watched")
      ->check(CLI::Range(0.1, 600.0));
  CLI11_PARSE(app, argc, argv);
  const double npt = tsc_ns_per_tick();
  const std::uint64_t overhead = timer_overhead();
  json out;
  // Unpinned first (the keys without a suffix), then the same with every thread pinned to its own core.
  for (bool pinned : {false, true}) {
    g_pinned = pinned;
    const std::string pin = pinned ? "_pinned" : "";
    for (int threads : {1, 2}) {
      const std::string suffix = (threads == 1 ? "" : "_2threads") + pin;
      out["floor" + suffix] = bench_floor(events, threads, overhead, npt);
      out["ttmem" + suffix] = bench_ttmem(socket, events, threads, overhead, npt);
      if (threads == 1 && !pinned)
        out["ttmem_in_op"] = bench_ttmem(socket, events, threads, overhead, npt, true);
      if (!pinned)
        out["blocking_send" + suffix] =
            bench_blocking_send(std::min<std::size_t>(events, 200'000), threads, overhead, npt);
      out["shm_atomics" + suffix] = bench_shm_atomics(events, threads, overhead, npt);
      for (const char* base : {"blocking_send", "shm_atomics"}) {
        if (!out.contains(base + suffix)) continue;
        out["ratio_median_" + std::string(base) + "_over_ttmem" + suffix] =
            out[base + suffix]["median_ns"].get<double>() /
            std::max(0.01, out["ttmem" + suffix]["median_ns"].get<double>());
      }
      out["ratio_median_ttmem_over_floor" + suffix] =
          out["ttmem" + suffix]["median_ns"].get<double>() /
          std::max(0.01, out["floor" + suffix]["median_ns"].get<double>());
    }
  }
  out["idle"] = bench_idle(socket, idle_seconds);
  out["timer_overhead_ns"] = static_cast<double>(overhead) * npt;
  out["tsc_ns_per_tick"] = npt;
  out["group"] = kGroup;
  std::cout << out.dump() << std::endl;
  return 0;
}
