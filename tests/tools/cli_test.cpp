// The ttmem tools against a real ttmemd and real workloads: JSON schemas, CSV, exit codes, the event
// stream, and `ttmem top` driven through tmux.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "commands.hpp"
#include "output.hpp"
#include "raw_client.hpp"
#include "subprocess.hpp"
#include "top_layout.hpp"
#include "top_model.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

ProcessResult ttmem(const ServerProcess& server, std::vector<std::string> args) {
  std::vector<std::string> argv{bin_dir() + "/ttmem"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, "", {{"TTMEM_SOCKET", server.socket()}, {"NO_COLOR", "1"}});
}

std::unique_ptr<Child> workload(const ServerProcess& server) {
  return std::make_unique<Child>(std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
                                 Env{{"TTMEM_SOCKET", server.socket()}});
}

void run(Child& w, std::initializer_list<const char*> lines) {
  for (const char* l : lines) ASSERT_EQ(w.command(l), "ok") << l;
}

std::vector<std::vector<std::string>> parse_csv(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cells;
    std::string cell;
    std::istringstream l(line);
    while (std::getline(l, cell, ',')) cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

/// A server with one process holding memory on an n300.
struct Scenario {
  ServerProcess server;
  std::unique_ptr<Child> w = workload(server);
  Scenario() {
    run(*w, {"mesh n300", "alloc weights DRAM 64M site=model.py:10", "alloc act L1 1M site=model.py:11",
             "program conv cb=16Kx3", "run conv", "flush"});
  }
};

TEST(Cli, SmiJsonHasTheDocumentedSchema) {
  Scenario s;
  const auto r = ttmem(s.server, {"smi", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["devices"].size(), 2u);
  for (const auto& d : j["devices"]) {
    EXPECT_TRUE(d["id"].is_number_integer());
    EXPECT_EQ(d["arch"], "wormhole_b0");
    for (const char* slot : {"DRAM", "L1", "L1_SMALL", "TRACE", "CB"}) {
      for (const char* f : {"used", "total", "peak"})
        EXPECT_TRUE(d["memory"][slot][f].is_number_unsigned()) << slot << f;
    }
    EXPECT_TRUE(d["buffers"].is_number());
  }
  EXPECT_EQ(j["devices"][1]["memory"]["DRAM"]["used"], (64u << 20) + 4096);  // weights + conv's kernel binary
  EXPECT_EQ(j["devices"][1]["memory"]["DRAM"]["total"], 12ull * ((1ull << 30) - 32));
  EXPECT_EQ(j["devices"][1]["memory"]["CB"]["used"], 3 * 16384);
  ASSERT_EQ(j["processes"].size(), 2u);
  const auto& p = j["processes"][0];
  EXPECT_EQ(p["pid"], s.w->pid());
  EXPECT_EQ(p["name"], "ttmem-emu");
  for (const char* slot : {"DRAM", "L1", "L1_SMALL", "TRACE", "CB"}) EXPECT_TRUE(p[slot].is_number()) << slot;
  EXPECT_TRUE(p["buffers"].is_number());
  EXPECT_EQ(j["active_allocations"], 3 + 2 * (1 + 1 + 1 + 3));
}

TEST(Cli, SmiDeviceFilterKeepsOneDevice) {
  Scenario s;
  const json j = json::parse(ttmem(s.server, {"smi", "--json", "-d", "1"}).out);
  ASSERT_EQ(j["devices"].size(), 1u);
  EXPECT_EQ(j["devices"][0]["id"], 1);
  ASSERT_EQ(j["processes"].size(), 1u);
  EXPECT_EQ(j["processes"][0]["device"], 1);
}

TEST(Cli, SmiCsvMatchesTheJson) {
  Scenario s;
  const json j = json::parse(ttmem(s.server, {"smi", "--json"}).out);
  const auto r = ttmem(s.server, {"smi", "--csv", "--query=id,dram.used,l1.used,cb.used,buffers"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"id", "dram.used", "l1.used", "cb.used", "buffers"}));
  for (std::size_t i = 0; i < 2; ++i) {
    const auto& d = j["devices"][i];
    EXPECT_EQ(rows[i + 1][1], std::to_string(d["memory"]["DRAM"]["used"].get<std::uint64_t>()));
    EXPECT_EQ(rows[i + 1][3], std::to_string(d["memory"]["CB"]["used"].get<std::uint64_t>()));
  }
  const auto procs =
      parse_csv(ttmem(s.server, {"smi", "--csv", "--processes", "--noheader", "--query=pid,dram"}).out);
  ASSERT_EQ(procs.size(), 2u);
  EXPECT_EQ(procs[0],
            (std::vector<std::string>{std::to_string(s.w->pid()), std::to_string((64u << 20) + 4096)}));
}

TEST(Cli, SmiTakesNvidiaSmisSpellings) {
  Scenario s;
  const json j = json::parse(ttmem(s.server, {"smi", "--json"}).out);
  const std::string dram0 = std::to_string(j["devices"][0]["memory"]["DRAM"]["used"].get<std::uint64_t>());
  // --query-gpu with nvidia-smi's field names and --format; the header keeps the names asked for.
  auto r = ttmem(s.server, {"smi", "--query-gpu=index,name,memory.used,memory.total,memory.free",
                            "--format=csv,nounits"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0],
            (std::vector<std::string>{"index", "name", "memory.used", "memory.total", "memory.free"}));
  EXPECT_EQ(rows[1][0], "0");
  EXPECT_EQ(rows[1][1], "wormhole_b0");
  EXPECT_EQ(rows[1][2], dram0);
  EXPECT_FALSE(rows[1][4].empty());  // free DRAM, from ttmemd's address map
  // -i with a device list, noheader, and a timestamp field.
  r = ttmem(s.server, {"smi", "-i", "1", "--query-gpu=timestamp,index", "--format=csv,noheader"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_EQ(rows[0][1], "1");
  EXPECT_EQ(rows[0][0].size(), std::string("2026/12/03 12:39:19.123").size()) << rows[0][0];
  EXPECT_EQ(rows[0][0][4], '/');
  r = ttmem(s.server, {"smi", "-i", "0,1", "--csv", "--noheader", "--query=id"});
  EXPECT_EQ(parse_csv(r.out).size(), 2u) << r.out;
  // --query-compute-apps: the process table, nvidia-smi's names.
  r = ttmem(s.server, {"smi", "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rows = parse_csv(r.out);
  ASSERT_FALSE(rows.empty());
  EXPECT_EQ(rows[0], (std::vector<std::string>{std::to_string(s.w->pid()), "ttmem-emu",
                                               std::to_string((64u << 20) + 4096)}));
  // -lms: a loop in milliseconds, as nvidia-smi spells it.
  r = ttmem(s.server,
            {"smi", "-lms", "20", "--count", "3", "--csv", "--noheader", "--query=timestamp,id", "-d", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(parse_csv(r.out).size(), 3u) << r.out;
  // --processes alone: the process table only; with --json it is accepted.
  r = ttmem(s.server, {"smi", "--processes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("DRAM used / total"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::to_string(s.w->pid())), std::string::npos) << r.out;
  r = ttmem(s.server, {"smi", "--json", "--processes"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(json::parse(r.out)["processes"].empty());
  // A process field asked of the device table says where it is.
  r = ttmem(s.server, {"smi", "--query=pid,dram"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("'pid' is a field of the process table: add --processes"), std::string::npos) << r.err;
  for (std::vector<std::string> bad : {std::vector<std::string>{"smi", "--format=xml"},
                                       {"smi", "--format=noheader"},
                                       {"smi", "--json", "--format=csv"},
                                       {"smi", "--noheader"},
                                       {"smi", "-i", "0,x"},
                                       {"smi", "--query-gpu=index", "--query-compute-apps=pid"}}) {
    r = ttmem(s.server, bad);
    EXPECT_EQ(r.exit_code, 64) << bad.back() << ": " << r.out;
    EXPECT_TRUE(r.out.empty()) << r.out;
  }
}

TEST(Cli, BuffersLeaksAndEventsHaveCsv) {
  Scenario s;
  auto r = ttmem(s.server, {"buffers", "--csv", "-d", "0"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto rows = parse_csv(r.out);
  ASSERT_GE(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0][0], "pid");
  EXPECT_EQ(rows[1][5], std::to_string(64u << 20));  // largest first, in bytes
  EXPECT_EQ(rows[1][8], "model.py:10");
  r = ttmem(s.server, {"buffers", "--csv", "--by", "site"});
  rows = parse_csv(r.out);
  ASSERT_GE(rows.size(), 2u) << r.out;
  EXPECT_EQ(rows[0], (std::vector<std::string>{"key", "name", "type", "bytes", "buffers", "largest",
                                               "devices", "processes"}));
  EXPECT_EQ(rows[1][0], "model.py:10");
  EXPECT_EQ(rows[1][6], "2");  // a mesh tensor: one row, two devices
  r = ttmem(s.server, {"events", "--csv", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  rows = parse_csv(r.out);
  ASSERT_EQ(rows.size(), 4u) << r.out;
  EXPECT_EQ(rows[0][1], "event");
  EXPECT_EQ(rows[3][1], "alloc");
  // Closing with a buffer held makes leaks; a kill -9 an orphan: both are lines.
  run(*s.w, {"close", "flush"});
  ServerProcess& server = s.server;
  auto w2 = workload(server);
  run(*w2, {"mesh n150", "alloc kv L1 8K site=serve.py:3", "flush"});
  const pid_t dead = w2->pid();
  w2->kill(SIGKILL);
  w2->wait();
  // ttmemd reclaims it when the pidfd says it died: ask until the orphan is there.
  ASSERT_TRUE(eventually([&] {
    r = ttmem(server, {"leaks", "--csv"});
    return r.out.find("orphan,") != std::string::npos;
  })) << r.out;
  rows = parse_csv(r.out);
  ASSERT_GE(rows.size(), 3u) << r.out;
  EXPECT_EQ(rows[0][0], "record");
  bool leak = false, orphan = false;
  for (const auto& row : rows) {
    leak = leak || (row[0] == "leak" && row[9] == "model.py:10");
    orphan = orphan || (row[0] == "orphan" && row[2] == std::to_string(dead) && row[5] == "L1");
  }
  EXPECT_TRUE(leak) << r.out;
  EXPECT_TRUE(orphan) << r.out;
  EXPECT_EQ(ttmem(server, {"leaks", "--csv", "--json"}).exit_code, 64);
}

TEST(Cli, BadFlagsAndFieldsAreUsageErrors) {
  Scenario s;
  auto r = ttmem(s.server, {"smi", "--csv", "--query=id,bogus"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("unknown --query field 'bogus'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("dram.used"), std::string::npos);
  r = ttmem(s.server, {"smi", "--frobnicate"});
  EXPECT_EQ(r.exit_code, 64);
  r = ttmem(s.server, {"buffers", "--type", "HBM"});
  EXPECT_EQ(r.exit_code, 64);
  r = ttmem(s.server, {});
  EXPECT_EQ(r.exit_code, 64);
  // An unknown subcommand is named as such, with the known ones.
  r = ttmem(s.server, {"bogus"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("unknown subcommand 'bogus' (one of: smi, buffers"), std::string::npos) << r.err;
  // Flags that cannot go together, or make no sense alone, say so instead of doing something else.
  r = ttmem(s.server, {"smi", "--json", "--csv"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_TRUE(r.out.empty()) << r.out;
  r = ttmem(s.server, {"smi", "--count", "3"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("--count needs a loop"), std::string::npos) << r.err;
  r = ttmem(s.server, {"smi", "-d", "99"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("device 99 is unknown to ttmemd (it knows devices 0, 1)"), std::string::npos) << r.err;
}

TEST(Cli, ASocketPathThatIsNoSocketIsSaidSo) {
  TempDir dir;
  const std::string file = dir.write("plain.txt", "not a socket");
  auto r = run_process({bin_dir() + "/ttmem", "--socket", file, "smi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(file + " is not a socket, not ttmemd's socket"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("start it with"), std::string::npos) << r.err;
  r = run_process({bin_dir() + "/ttmem", "--socket", dir.path(), "buffers"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(dir.path() + " is a directory"), std::string::npos) << r.err;
  r = run_process({bin_dir() + "/ttmem", "--socket", "", "smi"});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("the socket path is empty"), std::string::npos) << r.err;
}

TEST(Cli, ASocketThisUserMayNotUseSaysWhoMay) {
  if (geteuid() != 0 || access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "needs root and setpriv";
  ServerProcess server;
  const std::vector<std::string> as_nobody{
      "/usr/bin/setpriv",   "--reuid=nobody", "--regid=nogroup", "--clear-groups",
      bin_dir() + "/ttmem", "--socket",       server.socket(),   "smi"};
  chmod(server.dir().c_str(), 0755);  // the socket itself is rw for its owner and group only
  auto r = run_process(as_nobody);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(
      r.err.find("permission denied: your user may not connect to " + server.socket() + " (its group is"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("ask to be added to group"), std::string::npos) << r.err;
  chmod(server.dir().c_str(), 0700);
  r = run_process(as_nobody);
  EXPECT_NE(r.err.find("(or to the directory it is in)"), std::string::npos) << r.err;
}

TEST(Cli, EveryBinaryTellsItsVersion) {
  for (const char* binary : {"ttmem", "ttmemd", "ttmem-emu"}) {
    const auto r = run_process({bin_dir() + "/" + binary, "--version"});
    EXPECT_EQ(r.exit_code, 0) << binary << r.err;
    EXPECT_EQ(r.out.rfind(std::string(binary) + " 0.2.0", 0), 0u) << r.out;
  }
}

TEST(Cli, AnUnreachableServerIsOneLineAndExitCode2) {
  TempDir dir;
  const std::string sock = dir.file("nobody.sock");
  for (const char* cmd : {"smi", "buffers", "leaks", "events", "devices", "info", "top"}) {
    const auto r = run_process({bin_dir() + "/ttmem", "--socket", sock, cmd});
    EXPECT_EQ(r.exit_code, 2) << cmd;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("cannot reach ttmemd at " + sock), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("start it with: ttmemd --socket " + sock), std::string::npos) << r.err;
  }
}

TEST(Cli, SmiLoopsAndStopsAfterCount) {
  Scenario s;
  const auto r = ttmem(s.server, {"smi", "--json", "--loop-ms", "50", "--count", "3"});
  ASSERT_EQ(r.exit_code, 0);
  const auto rows = parse_csv(r.out);  // one JSON object per line
  EXPECT_EQ(rows.size(), 3u);
  const auto table = ttmem(s.server, {"smi", "-l", "1", "--count", "1"});
  EXPECT_NE(table.out.find("ttmem-emu"), std::string::npos);
}

TEST(Cli, SmiTableShowsUnitsAndBars) {
  Scenario s;
  const auto r = ttmem(s.server, {"smi"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("64.0 MiB / 12.0 GiB"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("[#         ]"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("48.0 KiB"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\x1b["), std::string::npos);  // NO_COLOR and not a terminal: no escapes
}

TEST(Cli, BuffersAreSortedBySizeAndFiltered) {
  Scenario s;
  const json all = json::parse(ttmem(s.server, {"buffers", "--json", "--all"}).out);
  ASSERT_EQ(all["buffers"].size(), all["total"].get<std::size_t>());
  for (std::size_t i = 1; i < all["buffers"].size(); ++i) {
    EXPECT_GE(all["buffers"][i - 1]["size"].get<std::uint64_t>(),
              all["buffers"][i]["size"].get<std::uint64_t>());
  }
  const json cbs = json::parse(ttmem(s.server, {"buffers", "--json", "-k", "cb", "-d", "0"}).out);
  ASSERT_EQ(cbs["buffers"].size(), 3u);
  EXPECT_EQ(cbs["buffers"][0]["site"].get<std::string>().rfind("program conv/cb", 0), 0u);
  const auto table = ttmem(s.server, {"buffers", "-n", "2"});
  EXPECT_NE(table.out.find("model.py:10"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("showing the 2 largest of"), std::string::npos) << table.out;
}

TEST(Cli, LeaksListsLeaksAtCloseAndOrphans) {
  Scenario s;
  run(*s.w, {"close"});
  auto crash = workload(s.server);
  run(*crash, {"mesh n150", "alloc held L1 8K", "flush"});
  crash->kill(SIGKILL);
  crash->wait();
  json leaks;
  for (int i = 0; i < 500; ++i) {  // the orphan record appears when the server sees the death
    leaks = json::parse(ttmem(s.server, {"leaks", "--json"}).out);
    if (!leaks["orphans"].empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(leaks["leaks"].size(), 4u);  // weights and act, on both devices
  ASSERT_EQ(leaks["orphans"].size(), 1u);
  EXPECT_EQ(leaks["orphans"][0]["pid"], crash->pid());
  const auto text = ttmem(s.server, {"leaks"});
  EXPECT_NE(text.out.find("model.py:10"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("died holding 20480 bytes of L1 on device 0 in 4 buffers"), std::string::npos)
      << text.out;
}

TEST(Cli, OpsAreShownAndFilterBuffersLeaksAndEvents) {
  ServerProcess server;
  auto w = workload(server);
  run(*w, {"mesh n150", "alloc weights DRAM 64M site=model.py:10",
           "op forward\nalloc act DRAM 8M site=model.py:11\nop matmul\nalloc out DRAM 4M "
           "site=model.py:12\nend\nend",
           "flush"});
  const auto table = ttmem(server, {"buffers", "--op", "matmul"});
  EXPECT_NE(table.out.find("forward/matmul"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("model.py:12"), std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("model.py:11"), std::string::npos) << table.out;
  const json act = json::parse(ttmem(server, {"buffers", "--json", "--site", "model.py:11"}).out);
  ASSERT_EQ(act["buffers"].size(), 1u);
  EXPECT_EQ(act["buffers"][0]["scope"], "forward");
  // No buffer has an op: the table has no OP column.
  EXPECT_EQ(ttmem(server, {"buffers", "--site", "model.py:10"}).out.find(" OP"), std::string::npos);

  run(*w, {"close", "flush"});
  const json leaks = json::parse(ttmem(server, {"leaks", "--json", "--op", "forward"}).out);
  ASSERT_EQ(leaks["leaks"].size(), 2u) << leaks.dump();
  for (const auto& l : leaks["leaks"]) EXPECT_EQ(l["scope"].get<std::string>().rfind("forward", 0), 0u);
  const json none = json::parse(ttmem(server, {"leaks", "--json", "-p", "1"}).out);
  EXPECT_TRUE(none["leaks"].empty());
  const auto events = ttmem(server, {"events", "--op", "matmul", "-n", "50"});
  std::istringstream lines(events.out);
  int n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    EXPECT_NE(line.find("op forward/matmul"), std::string::npos) << line;
  }
  EXPECT_EQ(n, 2) << events.out;  // its allocation and the close's free

  // A process killed inside an op: its orphan record says what it held by site and op.
  auto crash = workload(server);
  run(*crash,
      {"mesh n150", "op decode\nalloc kv DRAM 32M site=serve.py:9\nalloc kv2 DRAM 32M site=serve.py:9\nend",
       "alloc small L1 8K site=serve.py:3", "flush"});
  crash->kill(SIGKILL);
  crash->wait();
  json orphans;
  for (int i = 0; i < 500; ++i) {  // the orphan record appears when the server sees the death
    orphans =
        json::parse(ttmem(server, {"leaks", "--json", "-p", std::to_string(crash->pid())}).out)["orphans"];
    if (!orphans.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(orphans.size(), 1u);
  const json& origins = orphans[0]["origins"];
  ASSERT_GE(origins.size(), 2u) << origins.dump();
  EXPECT_EQ(origins[0]["site"], "serve.py:9");
  EXPECT_EQ(origins[0]["scope"], "decode");
  EXPECT_EQ(origins[0]["buffers"], 2);
  EXPECT_EQ(origins[0]["bytes"], 64u << 20);
  const auto text = ttmem(server, {"leaks"});
  EXPECT_NE(text.out.find("64.0 MiB in 2 buffers, site serve.py:9, op decode"), std::string::npos)
      << text.out;
}

TEST(Cli, BuffersByOpAndPerOpPeaks) {
  ServerProcess server;
  auto w = workload(server);
  run(*w, {"mesh t3000", "op prefill\nalloc kv DRAM 8M site=model.py:20\nend",
           "op decode\nalloc x DRAM 1M site=model.py:30\nalloc y DRAM 2M site=model.py:31\nfree x\nend",
           "flush"});
  const auto grouped = ttmem(server, {"buffers", "--by", "op", "-t", "DRAM", "-p", std::to_string(w->pid())});
  ASSERT_EQ(grouped.exit_code, 0) << grouped.err;
  // One row per op: the 8 per-device buffers of the mesh tensor are one row with 8 devices.
  std::istringstream rows(grouped.out);
  std::string header, line;
  std::getline(rows, header);
  EXPECT_EQ(header.rfind("OP", 0), 0u) << grouped.out;
  bool prefill = false;
  while (std::getline(rows, line)) {
    if (line.rfind("prefill", 0) != 0) continue;
    prefill = true;
    EXPECT_NE(line.find("64.0 MiB"), std::string::npos) << line;  // 8 MiB on each of 8 devices
    EXPECT_NE(line.find(" 8 "), std::string::npos) << line;
  }
  EXPECT_TRUE(prefill) << grouped.out;
  const json by_device =
      json::parse(ttmem(server, {"buffers", "--by", "device", "--op", "decode", "--json"}).out);
  ASSERT_EQ(by_device["groups"].size(), 8u) << by_device.dump();
  EXPECT_EQ(by_device["groups"][0]["bytes"], 2u << 20);
  EXPECT_EQ(ttmem(server, {"buffers", "--by", "tensor"}).exit_code, 64);

  const json ops = json::parse(ttmem(server, {"ops", "--json", "-d", "3", "--op", "decode"}).out);
  ASSERT_EQ(ops["ops"].size(), 1u) << ops.dump();
  EXPECT_EQ(ops["ops"][0]["peak"], 3u << 20);
  EXPECT_EQ(ops["ops"][0]["bytes"], 2u << 20);
  EXPECT_EQ(ops["ops"][0]["slot"], "DRAM");
  const auto table = ttmem(server, {"ops", "-d", "0"});
  EXPECT_NE(table.out.find("PEAK"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("prefill"), std::string::npos) << table.out;
  EXPECT_LT(table.out.find("prefill"), table.out.find("decode")) << table.out;  // larger peak first
}

TEST(Cli, EventsShowHistoryAndFollowTheStream) {
  Scenario s;
  const auto recent = ttmem(s.server, {"events", "-n", "3"});
  ASSERT_EQ(recent.exit_code, 0);
  EXPECT_NE(recent.out.find("allocated 16384 bytes of L1 on device 1"), std::string::npos) << recent.out;
  const auto lines = parse_csv(ttmem(s.server, {"events", "--json", "-n", "5"}).out);
  EXPECT_EQ(lines.size(), 5u);
  Child follow({bin_dir() + "/ttmem", "events", "--follow", "--json", "-n", "0"},
               {{"TTMEM_SOCKET", s.server.socket()}});
  // Wait until the follower is subscribed: it is, once the server counts it as a subscriber.
  for (int i = 0; i < 500; ++i) {
    const json info = json::parse(ttmem(s.server, {"info", "--json"}).out);
    bool subscribed = false;
    for (const auto& c : info["clients"]) subscribed |= c["subscriber"].get<bool>();
    if (subscribed) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  run(*s.w, {"alloc late DRAM 4K site=late_site", "flush"});
  json seen;
  for (int i = 0; i < 4; ++i) {  // two devices' allocations
    seen = json::parse(follow.read_line());
    if (seen["site"] == "late_site") break;
  }
  EXPECT_EQ(seen["event"], "alloc");
  EXPECT_EQ(seen["site"], "late_site");
  EXPECT_EQ(seen["pid"], s.w->pid());
}

TEST(Cli, DevicesAndInfo) {
  Scenario s;
  const json devices = json::parse(ttmem(s.server, {"devices", "--json"}).out);
  ASSERT_EQ(devices["devices"].size(), 2u);
  EXPECT_EQ(devices["devices"][0]["processes"][0]["state"], "open");
  const json info = json::parse(ttmem(s.server, {"info", "--json"}).out);
  bool tracked = false;
  for (const auto& c : info["clients"]) {
    if (c["role"] == "tracked") {
      tracked = true;
      EXPECT_TRUE(c.contains("client"));
    }
  }
  EXPECT_TRUE(tracked);
  EXPECT_NE(ttmem(s.server, {"info"}).out.find("anomalies: none"), std::string::npos);
}

// ---- ttmem top through tmux ----

class Tmux {
 public:
  explicit Tmux(const std::string& command) : name_("ttmem-test-" + std::to_string(getpid())) {
    const auto r =
        run_process({"/usr/bin/tmux", "-L", name_, "new-session", "-d", "-x", "160", "-y", "45", command});
    if (r.exit_code != 0) throw std::runtime_error("tmux failed: " + r.err);
  }
  ~Tmux() { run_process({"/usr/bin/tmux", "-L", name_, "kill-server"}); }
  std::string capture() {
    return run_process({"/usr/bin/tmux", "-L", name_, "capture-pane", "-p", "-t", "0"}).out;
  }
  void keys(const std::string& k) { run_process({"/usr/bin/tmux", "-L", name_, "send-keys", "-t", "0", k}); }
  bool alive() { return run_process({"/usr/bin/tmux", "-L", name_, "has-session"}).exit_code == 0; }
  void resize(int cols, int rows) {
    run_process({"/usr/bin/tmux", "-L", name_, "resize-window", "-t", "0", "-x", std::to_string(cols), "-y",
                 std::to_string(rows)});
  }
  /// Polls the screen until it shows `text`.
  bool shows(const std::string& text) {
    for (int i = 0; i < 500; ++i) {
      if (capture().find(text) != std::string::npos) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
  }

 private:
  std::string name_;
};

TEST(CliSmi, ADeviceTwoProcessesHoldOrThatIsOverFullIsFlaggedInSmiInfoAndTop) {
  // Two emulated machines (chip-lock directories) reporting to one ttmemd: both hold device 0, as two
  // TT-Metal processes on one chip never could, and together more DRAM than it has.
  ServerProcess server;
  TempDir machine_a, machine_b;
  auto on = [&](const TempDir& machine) {
    return std::make_unique<Child>(
        std::vector<std::string>{bin_dir() + "/ttmem-emu", "--step", "-q"},
        Env{{"TTMEM_SOCKET", server.socket()}, {"TTMEM_EMU_CHIP_DIR", machine.path()}});
  };
  auto a = on(machine_a);
  auto b = on(machine_b);
  run(*a, {"mesh n150", "alloc w DRAM 8G page=1M", "flush"});
  auto r = ttmem(server, {"smi"});
  EXPECT_EQ(r.out.find("! device 0"), std::string::npos) << r.out;  // one process: nothing wrong
  run(*b, {"mesh n150", "alloc w DRAM 8G page=1M", "flush"});
  const std::string shared = "! device 0: held by 2 processes at once (pids " +
                             std::to_string(std::min(a->pid(), b->pid())) + ", " +
                             std::to_string(std::max(a->pid(), b->pid())) + ")";
  r = ttmem(server, {"smi"});
  EXPECT_NE(r.out.find(shared), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("! device 0: DRAM holds 17179869184 B, more than the device's"), std::string::npos)
      << r.out;
  r = ttmem(server, {"info"});
  EXPECT_NE(r.out.find(shared), std::string::npos) << r.out;
  r = ttmem(server, {"smi", "--json"});
  const auto j = json::parse(r.out);
  ASSERT_EQ(j["devices"][0]["warnings"].size(), 2u) << r.out;
  EXPECT_EQ(j["devices"][0]["warnings"][0]["kind"], "over_full");
  EXPECT_EQ(j["devices"][0]["warnings"][1]["kind"], "shared");
  Tmux tmux("TTMEM_SOCKET=" + server.socket() + " LANG=C.UTF-8 " + bin_dir() +
            "/ttmem top --interval-ms 100");
  ASSERT_TRUE(tmux.shows("! device 0: DRAM holds")) << tmux.capture();
  tmux.keys("q");
  // One of them gone: the device is one process's again.
  run(*b, {"close", "flush"});
  r = ttmem(server, {"smi"});
  EXPECT_EQ(r.out.find("! device 0"), std::string::npos) << r.out;
}

TEST(CliTop, ShowsDevicesSortsOnKeysAndQuits) {
  Scenario s;
  auto other = workload(s.server);
  run(*other, {"mesh n150 devices=2", "alloc big L1 8M", "flush"});
  Tmux tmux("TTMEM_SOCKET=" + s.server.socket() + " LANG=C.UTF-8 " + bin_dir() +
            "/ttmem top --interval-ms 100");
  ASSERT_TRUE(tmux.shows("DEVICES")) << tmux.capture();
  const std::string screen = tmux.capture();
  EXPECT_NE(screen.find("0 wormhole_b0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("1 wormhole_b0"), std::string::npos) << screen;
  EXPECT_NE(screen.find("sorted by DRAM (descending)"), std::string::npos) << screen;
  tmux.keys("l");
  ASSERT_TRUE(tmux.shows("sorted by L1 (descending)")) << tmux.capture();
  {
    // Largest L1 first: the process with 8 MiB of L1 is listed before the other.
    const std::string shot = tmux.capture();
    EXPECT_LT(shot.find(std::to_string(other->pid())), shot.find(std::to_string(s.w->pid()))) << shot;
  }
  tmux.keys("p");
  ASSERT_TRUE(tmux.shows("sorted by PID (ascending)")) << tmux.capture();
  tmux.keys("h");
  ASSERT_TRUE(tmux.shows("ttmem top: keys")) << tmux.capture();
  tmux.keys("h");
  // A smaller terminal: the view is laid out again to fit it. Drawn for 160 columns, the title's key help
  // would be cut off at 90; laid out again, it ends the first line.
  tmux.resize(90, 30);
  bool relaid = false;
  for (int i = 0; i < 500 && !relaid; ++i) {
    std::string first = tmux.capture();
    first = first.substr(0, first.find('\n'));
    first.erase(first.find_last_not_of(' ') + 1);
    relaid = first.size() >= 6 && first.compare(first.size() - 6, 6, "q quit") == 0;
    if (!relaid) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(relaid) << tmux.capture();
  EXPECT_NE(tmux.capture().find("DEVICES"), std::string::npos);
  // The sizes people have: processes first, each device's figures whole (the L1 figure of an n300 device
  // is the last thing on its line, where a terminal would cut it).
  for (auto [cols, rows] : {std::pair{80, 24}, std::pair{120, 40}, std::pair{200, 50}}) {
    tmux.resize(cols, rows);
    const std::string l1 = "1.0 MiB/";
    bool whole = false;
    std::string shot;
    for (int i = 0; i < 500 && !whole; ++i) {
      shot = tmux.capture();
      const auto first_line = shot.substr(0, shot.find('\n'));
      whole = first_line.find("q quit") != std::string::npos &&
              static_cast<int>(first_line.find_last_not_of(' ') + 1) <= cols &&
              shot.find(l1) != std::string::npos &&
              shot.substr(shot.find(l1) + l1.size(), 12).find(" MiB") != std::string::npos;
      if (!whole) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_TRUE(whole) << cols << "x" << rows << ":\n" << shot;
    EXPECT_LT(shot.find("PROCESSES"), shot.find("DEVICES")) << shot;
    EXPECT_NE(shot.find(std::to_string(s.w->pid())), std::string::npos) << shot;
  }
  tmux.keys("q");
  for (int i = 0; i < 500 && tmux.alive(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_FALSE(tmux.alive());  // q ended ttmem top, and with it the session
}

// ---- pieces ----

TEST(CliOutput, BinaryUnitsCsvQuotingAndWidths) {
  EXPECT_EQ(cli::human_bytes(0), "0 B");
  EXPECT_EQ(cli::human_bytes(1023), "1023 B");
  EXPECT_EQ(cli::human_bytes(4096), "4.0 KiB");
  EXPECT_EQ(cli::human_bytes(12ull << 30), "12.0 GiB");
  EXPECT_EQ(cli::csv_line({"a", "b,c", "say \"hi\""}), "a,\"b,c\",\"say \"\"hi\"\"\"");
  EXPECT_EQ(cli::visible_width("\x1b[31mred\x1b[0m"), 3u);
  EXPECT_EQ(cli::visible_width("\u2581\u2582"), 2u);
  // A cut ends in "...", within the width, and with at_space before the number rather than inside it.
  EXPECT_EQ(cli::abbreviated("python3 serve.py --port 8080", 20), "python3 serve.py ...");
  EXPECT_EQ(cli::abbreviated("held 4096 bytes", 12, true), "held...");
  EXPECT_EQ(cli::abbreviated("\u2581\u2582\u2583\u2584\u2585", 4), "\u2581...");
  EXPECT_EQ(cli::abbreviated("abcdef", 2), "..");
  cli::Style plain;
  EXPECT_EQ(cli::bar(1, 1000, 10, plain), "[#         ]");
  EXPECT_EQ(cli::bar(0, 1000, 4, plain), "[    ]");
  EXPECT_EQ(cli::bar(1000, 1000, 4, plain), "[####]");
}

/// A galaxy with 8 busy devices and 24 idle, 40 process rows with long command lines, and a leak.
cli::TopModel busy_galaxy() {
  cli::TopModel model(10);
  views::Stats stats;
  for (std::uint16_t id = 0; id < 32; ++id) {
    views::DeviceUsage& d = stats.devices.emplace_back();
    d.id = id;
    d.arch = Arch::wormhole_b0;
    d.memory[index(Slot::DRAM)].total = 12ull << 30;
    d.memory[index(Slot::L1)].total = 1'433'600ull * 64;
    if (id < 8) {
      d.memory[index(Slot::DRAM)].used = (1ull << 30) * (id + 1) + 12345;
      d.memory[index(Slot::L1)].used = 1ull << 20;
      d.processes = 5;
      d.buffers = 10;
    }
  }
  for (int i = 0; i < 40; ++i) {
    views::ProcessUsage& p = stats.processes.emplace_back();
    p.pid = 100000 + i;
    p.name = "python3";
    p.command =
        "python3 -m pytest tests/ttnn/unit_tests/operations/test_matmul.py -k test_" + std::to_string(i);
    p.device = static_cast<std::uint16_t>(i % 8);
    p.bytes[index(Slot::DRAM)] = (1ull << 30) + static_cast<std::uint64_t>(i) * 4'000'000;
    p.bytes[index(Slot::L1)] = 123'456;
    p.buffers = 7;
  }
  views::Leaks leaks;
  views::Leak& l = leaks.leaks.emplace_back();
  l.pid = 100001;
  l.name = "python3";
  l.size = 4096;
  l.site = "conftest.py:88";
  model.update(stats, leaks);
  return model;
}

TEST(CliTopLayout, FitsEveryTerminalSizeProcessesFirstNothingCut) {
  const cli::TopModel model = busy_galaxy();
  for (auto [cols, rows] : {std::pair{80, 24}, std::pair{120, 40}, std::pair{200, 50}, std::pair{40, 10}}) {
    cli::TopScreen screen;
    screen.cols = cols;
    screen.rows = rows;
    screen.socket = "/run/ttmem/ttmemd.sock";
    int scroll = 0;
    const auto lines = cli::layout_top(model, screen, scroll);
    SCOPED_TRACE(std::to_string(cols) + "x" + std::to_string(rows));
    ASSERT_LE(lines.size(), static_cast<std::size_t>(rows));
    std::string text;
    for (const auto& line : lines) {
      EXPECT_LE(cli::line_width(line), static_cast<std::size_t>(cols));
      for (const auto& seg : line) text += seg.text;
      text += '\n';
    }
    const auto processes = text.find("PROCESSES"), devices = text.find("DEVICES");
    ASSERT_NE(processes, std::string::npos) << text;
    if (rows >= 24) {
      ASSERT_NE(devices, std::string::npos) << text;
      EXPECT_LT(processes, devices) << text;  // the process table comes first
      // Idle devices take one line; the shown rows carry whole figures; hidden rows are counted.
      EXPECT_NE(text.find("idle, nothing allocated: 24 devices (8-31)"), std::string::npos) << text;
      EXPECT_NE(text.find(cli::human_bytes(model.processes()[0].bytes[index(Slot::DRAM)])),
                std::string::npos);
      EXPECT_NE(text.find("more process rows"), std::string::npos) << text;
      EXPECT_NE(text.find("LEAK"), std::string::npos) << text;
    }
    if (cols >= 200) {
      EXPECT_NE(text.find("COMMAND"), std::string::npos) << text;
    }
    // No figure cut: every "x.y GiB/z.w GiB" pair on a device line is whole.
    for (std::size_t at = text.find("GiB/"); at != std::string::npos; at = text.find("GiB/", at + 1))
      EXPECT_NE(text.find("GiB", at + 4), std::string::npos);
  }
  // Scrolled past the end: clamped, and the last process is on the screen.
  cli::TopScreen screen;
  int scroll = 1000;
  std::string text;
  for (const auto& line : cli::layout_top(model, screen, scroll))
    for (const auto& seg : line) text += seg.text + "\n";
  EXPECT_LT(scroll, 40);
  EXPECT_GT(scroll, 0);
  EXPECT_NE(text.find(std::to_string(model.processes().back().pid)), std::string::npos) << text;
  EXPECT_NE(text.find("above"), std::string::npos) << text;
}

TEST(CliTopModel, SortsKeepsBoundedHistoryAndDrawsSparklines) {
  cli::TopModel model(3);
  auto stats = [](std::uint64_t dram) {
    views::Stats out;
    views::DeviceUsage& d = out.devices.emplace_back();
    for (auto& m : d.memory) m.total = 100;
    d.memory[index(Slot::DRAM)].used = dram;
    views::ProcessUsage p1{5, "b", "", 0, {}, 1}, p2{3, "a", "", 0, {}, 9};
    p1.bytes[index(Slot::DRAM)] = 10;
    p1.bytes[index(Slot::L1)] = 99;
    p2.bytes[index(Slot::DRAM)] = 20;
    p2.bytes[index(Slot::L1)] = 1;
    out.processes = {p1, p2};
    out.active_allocations = 10;
    return out;
  };
  for (std::uint64_t i = 1; i <= 5; ++i) model.update(stats(i * 10), {});
  ASSERT_EQ(model.history(0).size(), 3u);
  EXPECT_EQ(model.history(0).front().dram, 30u);
  EXPECT_EQ(model.processes()[0].pid, 3);  // DRAM descending
  EXPECT_TRUE(model.key('l'));
  EXPECT_EQ(model.processes()[0].pid, 5);
  EXPECT_TRUE(model.key('n'));
  EXPECT_EQ(model.processes()[0].name, "a");
  EXPECT_TRUE(model.key('r'));
  EXPECT_EQ(model.processes()[0].name, "b");
  EXPECT_FALSE(model.key('z'));
  EXPECT_EQ(cli::sparkline({0, 50, 100}, 100, 5, false), "   +@");
  EXPECT_EQ(cli::sparkline({100}, 100, 1, true), "\u2588");
}

}  // namespace
}  // namespace ttmem::test

namespace ttmem::test {
namespace {

TEST(Cli, OomListsTheRefusedAllocationAndShowsOneInFull) {
  ServerProcess server;
  auto w = workload(server);
  run(*w, {"mesh n150", "alloc a DRAM 6G site=model.py:10"});
  EXPECT_EQ(w->command("alloc b DRAM 6G site=model.py:11").rfind("error: ", 0), 0u);
  run(*w, {"flush"});

  const auto list = ttmem(server, {"oom"});
  ASSERT_EQ(list.exit_code, 0) << list.err;
  EXPECT_NE(list.out.find("exhausted"), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("512.0 MiB"), std::string::npos) << list.out;

  const auto one = ttmem(server, {"oom", "1"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  for (const char* want : {"Out-of-memory record 1", "536,870,912 B in each of 12 banks", "model.py:11",
                           "Out of Memory: Not enough space", "Holders on device 0", "Largest DRAM buffers",
                           "model.py:10", "Free blocks of one bank"}) {
    EXPECT_NE(one.out.find(want), std::string::npos) << want << "\n" << one.out;
  }
  const auto j = json::parse(ttmem(server, {"oom", "--json"}).out);
  ASSERT_EQ(j["records"].size(), 1u);
  EXPECT_EQ(j["records"][0]["needed_per_bank"], 536870912u);
  EXPECT_EQ(j["records"][0]["verdict"], "exhausted");

  const auto missing = ttmem(server, {"oom", "9"});
  EXPECT_EQ(missing.exit_code, cli::kExitServerError);
  EXPECT_NE(missing.err.find("no out-of-memory record 9"), std::string::npos) << missing.err;
  EXPECT_EQ(ttmem(server, {"oom", "0"}).exit_code, cli::kExitUsage);

  const auto events = ttmem(server, {"events"});
  EXPECT_NE(events.out.find("OOM pid " + std::to_string(w->pid())), std::string::npos) << events.out;
}

TEST(Cli, SmiShowsTheLargestFreeBlockAndCsvHasTheFreeSpaceFields) {
  Scenario s;
  const auto table = ttmem(s.server, {"smi"});
  EXPECT_NE(table.out.find("DRAM LARGEST"), std::string::npos) << table.out;
  const auto csv = ttmem(s.server, {"smi", "--csv", "--noheader", "--query",
                                    "id,dram.free,dram.largest_free_block,dram.free_blocks,cb.used"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  const auto rows = parse_csv(csv.out);
  ASSERT_EQ(rows.size(), 2u);  // an n300
  const auto stats = json::parse(ttmem(s.server, {"smi", "--json"}).out);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const auto& dram = stats["devices"][i]["memory"]["DRAM"];
    EXPECT_EQ(rows[i][1], std::to_string(dram["free"].get<std::uint64_t>()));
    EXPECT_EQ(rows[i][2], std::to_string(dram["largest_free_block"].get<std::uint64_t>()));
    EXPECT_EQ(rows[i][3], std::to_string(dram["free_blocks"].get<std::uint64_t>()));
  }
  EXPECT_EQ(ttmem(s.server, {"smi", "--csv", "--query", "cb.free"}).exit_code, cli::kExitUsage);
}

TEST(Cli, TopShowsTheLatestOutOfMemoryRecordFirst) {
  cli::TopModel model(3);
  views::Leaks leaks;
  leaks.leaks.push_back({});
  views::OomList ooms;
  views::OomRecord r;
  r.id = 4;
  r.pid = 9;
  r.name = "train.py";
  r.size = 6ull << 30;
  r.verdict = OomVerdict::fragmented;
  ooms.records.push_back(r);
  model.update({}, leaks, ooms);
  const auto lines = model.recent_records(5);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0], "OOM pid 9 (train.py) refused 6.0 GiB of DRAM on device 0: fragmented (ttmem oom 4)");
  EXPECT_EQ(lines[1].rfind("LEAK", 0), 0u);
}

TEST(Cli, TopKeepsTheRecordsItHasAndAddsOnlyNewerOnes) {
  cli::TopModel model(3);
  auto leak = [](std::uint64_t seq) {
    views::Leak l;
    l.seq = seq;
    l.size = seq * 100;
    return l;
  };
  views::Leaks first;
  first.leaks = {leak(2), leak(1)};
  model.update({}, first);
  EXPECT_EQ(model.last_leak_seq(), 2u);
  views::Leaks next;  // what a fetch after seq 2 brings, and one it already has (a race): dropped
  next.leaks = {leak(4), leak(3), leak(2)};
  model.update({}, next);
  ASSERT_EQ(model.records().leaks.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(model.records().leaks[i].seq, 4 - i);
  model.update({}, {});  // nothing new: the records stay
  EXPECT_EQ(model.records().leaks.size(), 4u);
  views::Leaks many;
  for (std::uint64_t s = 1000; s > 4; --s) many.leaks.push_back(leak(s));
  model.update({}, many);
  EXPECT_EQ(model.records().leaks.size(), cli::TopModel::kKeptRecords);
  EXPECT_EQ(model.last_leak_seq(), 1000u);
  model.forget_records();
  EXPECT_EQ(model.last_leak_seq(), 0u);
}

TEST(Cli, ProcessesAreShownWithTheirCommandLine) {
  Scenario s;
  const auto j = json::parse(ttmem(s.server, {"smi", "--json"}).out);
  ASSERT_FALSE(j["processes"].empty());
  EXPECT_NE(j["processes"][0]["command"].get<std::string>().find("ttmem-emu --step -q"), std::string::npos);
  const auto table = ttmem(s.server, {"smi"});
  EXPECT_NE(table.out.find("COMMAND"), std::string::npos) << table.out;
  const auto csv = ttmem(s.server, {"smi", "--csv", "--processes", "--noheader", "--query", "pid,command"});
  EXPECT_NE(csv.out.find("ttmem-emu --step -q"), std::string::npos) << csv.out;
}

TEST(Cli, DevicesShowTheFreeSpaceOfEachDevice) {
  Scenario s;
  const auto r = ttmem(s.server, {"devices"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("DRAM FREE (LARGEST/BANK)"), std::string::npos) << r.out;
  const auto stats = json::parse(ttmem(s.server, {"smi", "--json"}).out);
  const auto largest = stats["devices"][0]["memory"]["L1"]["largest_free_block"].get<std::uint64_t>();
  EXPECT_NE(r.out.find("(" + cli::human_bytes(largest) + ")"), std::string::npos) << r.out;
}

TEST(Cli, MapDrawsTheBankAndListsItsBlocks) {
  Scenario s;
  const auto r = ttmem(s.server, {"map", "-d", "0", "-t", "L1", "-w", "80", "--all"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* want : {"Device 0 L1: one bank of", "free", "circular buffers", "model.py:11", "cb"}) {
    EXPECT_NE(r.out.find(want), std::string::npos) << want << "\n" << r.out;
  }
  const auto j = json::parse(ttmem(s.server, {"map", "-t", "DRAM", "--json"}).out);
  std::uint64_t covered = 0;
  for (const auto& b : j["blocks"]) covered += b["size"].get<std::uint64_t>();
  EXPECT_EQ(covered, j["space"]["bank_size"].get<std::uint64_t>());  // the blocks cover the bank
  const auto unknown = ttmem(s.server, {"map", "-d", "9"});
  EXPECT_EQ(unknown.exit_code, cli::kExitServerError);
  EXPECT_NE(unknown.err.find("device 9 did not announce"), std::string::npos) << unknown.err;
}

}  // namespace
}  // namespace ttmem::test
