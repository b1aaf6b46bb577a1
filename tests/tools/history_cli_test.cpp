// ttmemd's history as a user meets it: records and the timeline kept on disk, read by `ttmem history` and
// `ttmem timeline` with or without ttmemd running, kept across a clean restart and across kill -9.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "sqlite_db.hpp"
#include "subprocess.hpp"
#include "ttmem/units.hpp"
#include "ttmem/vocab.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

ProcessResult ttmem_history(const std::string& state_dir, std::vector<std::string> args) {
  std::vector<std::string> argv{bin_dir() + "/ttmem"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.insert(argv.end(), {"--state-dir", state_dir});
  return run_process(argv, "", {{"NO_COLOR", "1"}});
}

json records(const std::string& state_dir, const std::string& kinds = "") {
  std::vector<std::string> args{"history", "--json", "-n", "100000"};
  if (!kinds.empty()) args.insert(args.end(), {"--kind", kinds});
  const auto r = ttmem_history(state_dir, args);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out)["records"];
}

/// Waits for ttmemd's writer (it commits on its own thread) until `done` holds, up to 20 s.
template <typename F>
bool eventually(F&& done) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // polling the disk, not standing in for it
  }
  return done();
}

std::size_t count_kind(const json& recs, const std::string& kind) {
  std::size_t n = 0;
  for (const auto& r : recs) n += r["kind"] == kind;
  return n;
}

void run_script(const ServerProcess& server, const std::string& script) {
  const auto r = run_process({bin_dir() + "/ttmem-emu", "-q", std::string(TTMEM_EXAMPLES_DIR) + "/" + script},
                             "", {{"TTMEM_SOCKET", server.socket()}});
  (void)r;  // crash.ttm aborts on purpose
}

TEST(History, RecordsAndTheTimelineSurviveKill9) {
  TempDir state;
  const std::string dir = state.file("state");
  ServerProcess server({"--state-dir", dir, "--history-interval-ms", "100"});
  run_script(server, "leaky.ttm");
  run_script(server, "crash.ttm");
  ASSERT_TRUE(eventually([&] {
    const json r = records(dir);
    return count_kind(r, "leak") > 0 && count_kind(r, "orphan") > 0;
  }));
  // The timeline has the orphan's 16 MiB of DRAM on device 0 (an n150's only chip).
  ASSERT_TRUE(eventually([&] {
    const auto t = ttmem_history(dir, {"timeline", "-d", "0", "--json", "--since", "10m"});
    if (t.exit_code != 0) return false;
    const json timeline = json::parse(t.out);
    for (const auto& s : timeline["series"])
      for (const auto& p : s["points"])
        if (s["slot"] == "DRAM" && p[2].get<std::uint64_t>() >= (16u << 20)) return true;
    return false;
  })) << ttmem_history(dir, {"timeline", "-d", "0", "--csv", "--since", "10m"}).out;
  const json before = records(dir);
  // A tick was written after every record shown: the kill comes at least one write interval later.
  const std::uint64_t shown_ns = realtime_ns();
  ASSERT_TRUE(eventually([&] {
    const auto t = ttmem_history(dir, {"timeline", "-d", "0", "--csv", "--since", "10m"});
    return t.exit_code == 0;
  }));
  const std::uint64_t killed_ns = realtime_ns();
  server.kill9();
  // ttmemd is down: the history still answers.
  const json while_down = records(dir);
  EXPECT_EQ(while_down, before);
  // ... and its timeline says since when nothing is known.
  const auto down = ttmem_history(dir, {"timeline", "-d", "0", "--json", "--since", "10m"});
  ASSERT_EQ(down.exit_code, 0) << down.err;
  const json down_gaps = json::parse(down.out)["gaps"];
  ASSERT_EQ(down_gaps.size(), 1u) << down.out;
  EXPECT_LE(down_gaps[0]["from_ns"].get<std::uint64_t>(), killed_ns);
  EXPECT_EQ(down_gaps[0]["to_ns"], json::parse(down.out)["until_ns"]);

  server.start();
  ASSERT_TRUE(eventually([&] { return count_kind(records(dir, "server_start"), "server_start") == 2; }));
  const json after = records(dir);
  for (const auto& r : before) {
    bool found = false;
    for (const auto& a : after) found = found || a == r;
    EXPECT_TRUE(found) << "lost after kill -9: " << r.dump();
  }
  // The gap starts at the killed ttmemd's last write: within a second (ten intervals) of the kill.
  const auto t = ttmem_history(dir, {"timeline", "-d", "0", "--json", "--since", "10m"});
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const json gaps = json::parse(t.out)["gaps"];
  ASSERT_EQ(gaps.size(), 1u) << t.out;
  const auto from = gaps[0]["from_ns"].get<std::uint64_t>();
  EXPECT_LE(from, killed_ns);
  EXPECT_GE(from + 1'000'000'000ull, killed_ns) << "the timeline lost more than a second before the kill";
  EXPECT_GE(from + 1'000'000'000ull, shown_ns);
  const auto chart = ttmem_history(dir, {"timeline", "-d", "0", "--since", "10m", "--width", "40"});
  EXPECT_NE(chart.out.find("ttmemd not running from"), std::string::npos) << chart.out;
}

TEST(History, ACleanRestartKeepsCountingAndSaysItStopped) {
  TempDir state;
  const std::string dir = state.file("state");
  ServerProcess server({"--state-dir", dir});
  run_script(server, "leaky.ttm");
  ASSERT_TRUE(eventually([&] { return count_kind(records(dir), "leak") > 0; }));
  EXPECT_EQ(server.stop(), 0);
  const json stopped = records(dir);
  EXPECT_EQ(stopped.back()["kind"], "server_stop");
  server.start();
  run_script(server, "leaky.ttm");
  ASSERT_TRUE(eventually(
      [&] { return count_kind(records(dir, "leak"), "leak") == 2 * count_kind(stopped, "leak"); }));
  const json all = records(dir);
  for (std::size_t i = 1; i < all.size(); ++i) EXPECT_LT(all[i - 1]["seq"], all[i]["seq"]);
  // Filters: by kind, pid and site; CSV has a header and a line per record.
  const json leaks = records(dir, "leak");
  ASSERT_FALSE(leaks.empty());
  EXPECT_EQ(leaks[0]["site"], "model.py:10");
  EXPECT_TRUE(leaks[0]["detail"].is_object());
  const auto by_site = ttmem_history(dir, {"history", "--site", "model.py:10", "--json"});
  EXPECT_EQ(json::parse(by_site.out)["records"].size(), leaks.size());
  const auto csv = ttmem_history(dir, {"history", "--kind", "leak", "--csv"});
  EXPECT_EQ(static_cast<std::size_t>(std::count(csv.out.begin(), csv.out.end(), '\n')), leaks.size() + 1);
}

TEST(History, AStateDirInUseOrUnusableStopsTtmemdWithTheReason) {
  TempDir state;
  const std::string dir = state.file("state");
  ServerProcess first({"--state-dir", dir});
  const auto second =
      run_process({bin_dir() + "/ttmemd", "--socket", state.file("other.sock"), "--state-dir", dir});
  EXPECT_EQ(second.exit_code, 1);
  EXPECT_NE(second.err.find("is in use by another ttmemd (pid " + std::to_string(first.pid()) + ")"),
            std::string::npos)
      << second.err;
  const auto file = run_process({"/bin/sh", "-c", "echo x > " + state.file("plain")});
  ASSERT_EQ(file.exit_code, 0);
  const auto bad = run_process({bin_dir() + "/ttmemd", "--socket", state.file("third.sock"), "--state-dir",
                                state.file("plain") + "/sub"});
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.err.find("cannot create the state directory"), std::string::npos) << bad.err;
  const auto both = run_process(
      {bin_dir() + "/ttmemd", "--socket", state.file("4.sock"), "--no-history", "--state-dir", dir});
  EXPECT_EQ(both.exit_code, 64) << both.err;
  const auto pointless = run_process(
      {bin_dir() + "/ttmemd", "--socket", state.file("5.sock"), "--no-history", "--history-keep-days", "3"});
  EXPECT_EQ(pointless.exit_code, 64);
  EXPECT_NE(pointless.err.find("--history-keep-days has no effect with --no-history"), std::string::npos)
      << pointless.err;
}

std::uint64_t query_u64(const std::string& dir, const std::string& sql) {
  history::Database db(dir + "/history.sqlite", true);
  auto q = db.prepare(sql);
  return q.step() ? q.u64(0) : 0;
}

std::uint64_t lifetimes_in(const std::string& dir) {
  return query_u64(dir, "SELECT count(*) FROM lifetimes");
}

std::uint64_t used_bytes(const std::string& dir) {
  return query_u64(dir,
                   "SELECT ((SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM "
                   "pragma_freelist_count())) * (SELECT page_size FROM pragma_page_size())");
}

// Retention, as docs/history.md says: what is older than --history-keep-days goes, and past
// --history-max-mb the oldest lifetimes go first while the records stay. The writer prunes at its first
// write after a start (and once a minute after), so a restart with tighter bounds applies them at once.
TEST(History, RetentionDeletesByAgeAndBySize) {
  TempDir state;
  const std::string dir = state.file("state");
  const std::string churn =
      state.write("churn.ttm", "mesh n150\nrepeat 40000\nalloc t DRAM 4K\nfree t\nend\n");
  {
    ServerProcess server(
        {"--state-dir", dir, "--history-interval-ms", "50", "--history-lifetimes-per-s", "10000000"});
    run_script(server, "leaky.ttm");
    const auto r =
        run_process({bin_dir() + "/ttmem-emu", "-q", churn}, "", {{"TTMEM_SOCKET", server.socket()}});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    ASSERT_TRUE(eventually([&] { return lifetimes_in(dir) >= 40000; })) << lifetimes_in(dir);
    EXPECT_EQ(server.stop(), 0);
  }
  ASSERT_GT(used_bytes(dir), 1u << 20);  // over the bound the restart gives
  const std::size_t leaks = count_kind(records(dir, "leak"), "leak");
  ASSERT_GT(leaks, 0u);
  {  // The leaks, as if kept 40 days ago.
    history::Database db(dir + "/history.sqlite", false);
    db.exec("UPDATE records SET time_ns = time_ns - 40 * 86400 * 1000000000 WHERE kind = " +
            std::to_string(static_cast<int>(HistoryKind::leak)));
  }
  const std::size_t starts = count_kind(records(dir, "server_start"), "server_start");
  ServerProcess again({"--state-dir", dir, "--history-keep-days", "30", "--history-max-mb", "1"});
  ASSERT_TRUE(eventually([&] { return count_kind(records(dir, "leak"), "leak") == 0; }));
  ASSERT_TRUE(eventually([&] { return used_bytes(dir) <= (1u << 20); })) << used_bytes(dir);
  // The newest lifetimes stay, and so does every record younger than the bound.
  EXPECT_GT(lifetimes_in(dir), 0u);
  EXPECT_LT(lifetimes_in(dir), 40000u);
  EXPECT_EQ(count_kind(records(dir, "server_start"), "server_start"), starts + 1);
  EXPECT_EQ(query_u64(dir, "SELECT min(alloc_ns) > 0 FROM lifetimes"), 1u);
}

json info(const ServerProcess& server) {
  const auto r = run_process({bin_dir() + "/ttmem", "--socket", server.socket(), "info", "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

// A full disk at run time, made real with RLIMIT_FSIZE on the running ttmemd: every write of its history
// fails (EFBIG) as on a full file system. Live tracking goes on, `ttmem info` says so, nothing stored is
// lost, and the records made meanwhile are written once the disk takes them again.
TEST(History, AFullDiskAtRunTimeIsADegradedStateThatLosesNothing) {
  TempDir state;
  const std::string dir = state.file("state");
  ServerProcess server({"--state-dir", dir, "--history-interval-ms", "50"});
  run_script(server, "leaky.ttm");
  ASSERT_TRUE(eventually([&] { return count_kind(records(dir), "leak") > 0; }));
  const json stored = records(dir);
  const std::size_t leaks = count_kind(stored, "leak");

  rlimit original{};
  rlimit full{0, RLIM_INFINITY};
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, nullptr, &original), 0);
  full.rlim_max = original.rlim_max;
  ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &full, nullptr), 0);
  run_script(server, "leaky.ttm");
  ASSERT_TRUE(eventually([&] {
    const json i = info(server);
    return i["history"]["degraded"] == true && i["history"]["records_pending"].get<std::uint64_t>() > 0;
  })) << info(server).dump();
  const json degraded = info(server)["history"];
  EXPECT_NE(degraded["error"].get<std::string>(), "");
  const auto text =
      run_process({bin_dir() + "/ttmem", "--socket", server.socket(), "info"}, "", {{"NO_COLOR", "1"}});
  EXPECT_NE(text.out.find("history DEGRADED: writes fail"), std::string::npos) << text.out;
  // Live tracking goes on: the second run's leaks are in ttmemd's answers, not yet on disk.
  const auto live = run_process({bin_dir() + "/ttmem", "--socket", server.socket(), "leaks", "--json"});
  ASSERT_EQ(live.exit_code, 0) << live.err;
  EXPECT_EQ(json::parse(live.out)["leaks"].size(), 2 * leaks);
  EXPECT_EQ(records(dir), stored);

  ASSERT_EQ(prlimit(server.pid(), RLIMIT_FSIZE, &original, nullptr), 0);
  ASSERT_TRUE(eventually([&] {
    const json i = info(server);
    return i["history"]["degraded"] == false && i["history"]["records_pending"] == 0;
  })) << info(server).dump();
  const json after = records(dir);
  EXPECT_EQ(count_kind(after, "leak"), 2 * leaks);
  for (std::size_t i = 0; i < stored.size(); ++i) EXPECT_EQ(after[i], stored[i]);
}

// SIGXFSZ is ignored from exec on (ttmemd ignores it itself once it runs; a sanitizer runtime writes a file
// before main, and would be killed by the signal rather than see EFBIG).
TEST(History, AFullDiskAtStartStopsTtmemdWithTheReason) {
  TempDir state;
  const auto r = run_process({"/bin/sh", "-c",
                              "trap '' XFSZ; ulimit -f 0; exec " + bin_dir() + "/ttmemd --socket " +
                                  state.file("s.sock") + " --state-dir " + state.file("state")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("ttmemd: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(state.file("state")), std::string::npos) << r.err;
}

TEST(History, ToolsSayWhatIsWrong) {
  TempDir state;
  const auto none = ttmem_history(state.file("nothing"), {"history"});
  EXPECT_EQ(none.exit_code, 66);
  EXPECT_NE(none.err.find("no history at"), std::string::npos) << none.err;
  const auto since = ttmem_history(state.file("nothing"), {"history", "--since", "yesterday"});
  EXPECT_EQ(since.exit_code, 64);
  EXPECT_NE(since.err.find("is not a time"), std::string::npos) << since.err;
  const auto kind = ttmem_history(state.file("nothing"), {"history", "--kind", "leak,bogus"});
  EXPECT_EQ(kind.exit_code, 64);
  EXPECT_NE(kind.err.find("unknown --kind 'bogus'"), std::string::npos) << kind.err;
  const auto both = ttmem_history(state.file("nothing"), {"export"});
  EXPECT_EQ(both.exit_code, 64);
}

}  // namespace
}  // namespace ttmem::test
