// Chaos: workers (ttmem-emu --step, real processes) allocate and free at random while the test kills some of
// them with SIGKILL at random moments and restarts ttmemd mid-run (twice or more). Every killed worker must
// leave an orphan record with exactly what it held, no allocation of a dead process may remain, and at the
// end the server's totals per process and device equal the survivors' ground truth exactly.
// Size from the environment: TTMEM_CHAOS_WORKERS, TTMEM_CHAOS_STEPS, TTMEM_CHAOS_KILLS,
// TTMEM_CHAOS_RESTARTS, TTMEM_CHAOS_SEED (make soak runs it long).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>

#include "json_client.hpp"
#include "subprocess.hpp"
#include "ttmem/query.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v ? std::atoi(v) : fallback;
}

struct Worker {
  std::unique_ptr<Child> process;
  std::uint32_t chip = 0;  // each on a chip of its own, as processes on one machine are
  std::map<std::string, std::pair<bool, std::uint64_t>> live;  // name -> (is DRAM, bytes)
  int next_name = 0;

  std::uint64_t bytes(bool dram) const {
    std::uint64_t n = 0;
    for (const auto& [name, b] : live) n += b.first == dram ? b.second : 0;
    return n;
  }
  std::uint64_t count(bool dram) const {
    std::uint64_t n = 0;
    for (const auto& [name, b] : live) n += b.first == dram ? 1 : 0;
    return n;
  }
};

constexpr std::uint64_t kControlL1 = 3 * 4096;  // the dispatch control buffers of every worker's device 0

/// Polls until pred() holds (asynchronous: a server restart, reconnects).
template <typename Pred>
bool eventually(Pred pred, std::chrono::seconds within = std::chrono::seconds(30)) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      if (pred()) return true;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(Chaos, KillsAndServerRestartsLeaveExactTotals) {
  const int workers_n = env_int("TTMEM_CHAOS_WORKERS", 8);
  const int steps = env_int("TTMEM_CHAOS_STEPS", 3000);
  const int kills = env_int("TTMEM_CHAOS_KILLS", 4);
  const int restarts = env_int("TTMEM_CHAOS_RESTARTS", 3);
  std::mt19937 rng(static_cast<unsigned>(env_int("TTMEM_CHAOS_SEED", 12345)));
  ASSERT_LT(kills, workers_n);

  ServerProcess server;
  std::vector<Worker> workers(static_cast<std::size_t>(workers_n));
  for (std::size_t i = 0; i < workers.size(); ++i) {
    Worker& w = workers[i];
    w.chip = static_cast<std::uint32_t>(i);
    w.process = std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
                                        Env{{"TTMEM_SOCKET", server.socket()}});
    ASSERT_EQ(w.process->command("mesh n150 devices=" + std::to_string(w.chip)), "ok");
  }
  auto watcher = std::make_unique<test::JsonClient>(server.socket());
  watcher->subscribe();

  // Kill and restart points spread over the run.
  std::map<int, char> plan;
  for (int k = 0; k < kills; ++k) plan[static_cast<int>(rng() % static_cast<unsigned>(steps))] = 'k';
  for (int r = 1; r <= restarts; ++r) plan[steps * r / (restarts + 1)] = 'r';

  std::vector<std::size_t> alive(workers.size());
  for (std::size_t i = 0; i < alive.size(); ++i) alive[i] = i;
  bool server_up = true;
  int orphans_checked = 0;

  for (int step = 0; step < steps; ++step) {
    Worker& w = workers[alive[rng() % alive.size()]];
    // Frees a third of the time, and always past 40 live buffers, so a long soak never fills the devices.
    if (!w.live.empty() && (w.live.size() >= 40 || rng() % 3 == 0)) {
      auto it = std::next(w.live.begin(), static_cast<long>(rng() % w.live.size()));
      ASSERT_EQ(w.process->command("free " + it->first), "ok");
      w.live.erase(it);
    } else {
      const bool dram = rng() % 2 == 0;
      const std::uint64_t bytes = 2048 * (1 + rng() % 64);
      const std::string name = "b" + std::to_string(w.next_name++);
      ASSERT_EQ(w.process->command("alloc " + name + (dram ? " DRAM " : " L1 ") + std::to_string(bytes)),
                "ok");
      w.live[name] = {dram, bytes};
    }

    auto action = plan.find(step);
    if (action == plan.end()) continue;
    if (action->second == 'r') {
      // Restart the server: SIGKILL, a moment of work without it, then start again on the same socket.
      server.kill9();
      server_up = false;
      for (int i = 0; i < 10; ++i) {
        Worker& busy = workers[alive[rng() % alive.size()]];
        const std::string name = "d" + std::to_string(busy.next_name++);
        ASSERT_EQ(busy.process->command("alloc " + name + " DRAM 2048"), "ok");
        busy.live[name] = {true, 2048};
      }
      server.start();
      server_up = true;
      // Every survivor reconnects on its own and resynchronises from a snapshot of its runtime.
      ASSERT_TRUE(eventually([&] {
        test::JsonClient q(server.socket());
        const json stats = q.stats();
        for (std::size_t i : alive) {
          const Worker& s = workers[i];
          bool found = false;
          for (const auto& row : stats["processes"]) {
            if (row["pid"] == s.process->pid() && row["DRAM"] == s.bytes(true) &&
                row["L1"] == s.bytes(false) + kControlL1) {
              found = true;
            }
          }
          if (!found) return false;
        }
        return true;
      })) << server.log();
      watcher = std::make_unique<test::JsonClient>(server.socket());
      watcher->subscribe();
    } else if (alive.size() > 1 && server_up) {
      // Kill a worker while it is quiet (everything it did has been applied) and check its orphan record.
      const std::size_t pick = rng() % alive.size();
      Worker& victim = workers[alive[pick]];
      ASSERT_EQ(victim.process->command("flush"), "ok");
      const pid_t pid = victim.process->pid();
      victim.process->kill(SIGKILL);
      victim.process->wait();
      std::optional<json> orphan;
      while (auto e = watcher->next_event(std::chrono::seconds(10))) {
        if ((*e)["event"] == "orphan" && (*e)["pid"] == pid) {
          orphan = *e;
          break;
        }
      }
      ASSERT_TRUE(orphan) << "no orphan record for pid " << pid << "\n" << server.log();
      std::uint64_t dram = 0, l1 = 0, dram_n = 0, l1_n = 0;
      for (const auto& h : (*orphan)["held"]) {
        EXPECT_EQ(h["device"], victim.chip);
        if (h["type"] == "DRAM") {
          dram += h["bytes"].get<std::uint64_t>();
          dram_n += h["buffers"].get<std::uint64_t>();
        } else if (h["type"] == "L1") {
          l1 += h["bytes"].get<std::uint64_t>();
          l1_n += h["buffers"].get<std::uint64_t>();
        }
      }
      EXPECT_EQ(dram, victim.bytes(true)) << "pid " << pid;
      EXPECT_EQ(dram_n, victim.count(true));
      EXPECT_EQ(l1, victim.bytes(false) + kControlL1);
      EXPECT_EQ(l1_n, victim.count(false) + 3);
      ++orphans_checked;
      alive.erase(alive.begin() + static_cast<long>(pick));
    }
  }
  EXPECT_GT(orphans_checked, 0);

  // The end: survivors' ground truth, exactly; nothing of the dead.
  for (std::size_t i : alive) ASSERT_EQ(workers[i].process->command("flush"), "ok");
  test::JsonClient q(server.socket());
  const json stats = q.stats();
  std::uint64_t expected_live = 0;
  for (std::size_t i : alive) {
    const Worker& s = workers[i];
    expected_live += s.live.size() + 3;
    int rows = 0;
    for (const auto& row : stats["processes"]) {
      if (row["pid"] != s.process->pid()) continue;
      ++rows;
      EXPECT_EQ(row["device"], s.chip);
      EXPECT_EQ(row["DRAM"], s.bytes(true));
      EXPECT_EQ(row["L1"], s.bytes(false) + kControlL1);
      EXPECT_EQ(row["buffers"], s.live.size() + 3);
    }
    EXPECT_EQ(rows, 1) << "pid " << s.process->pid();
  }
  EXPECT_EQ(stats["active_allocations"], expected_live);
  EXPECT_EQ(stats["processes"].size(), alive.size());
  for (const auto& w : workers) {
    if (std::find_if(alive.begin(), alive.end(), [&](std::size_t i) { return &workers[i] == &w; }) !=
        alive.end())
      continue;
    EXPECT_TRUE(q.query({{"type", "buffers"}, {"pid", w.process->pid()}})["buffers"].empty());
  }
  const json info = q.info();
  EXPECT_EQ(info["anomalies"]["free_unknown_id"], 0);
  EXPECT_EQ(info["anomalies"]["duplicate_id"], 0);
}

}  // namespace
}  // namespace ttmem::test
