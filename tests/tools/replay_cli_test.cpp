// `ttmem replay` as a user runs it: a TT-Metal capture into a real ttmemd (the capture's leaks at close,
// its memory held while --keep-open runs), offline without a server, and every input error with its exit
// code.
#include <gtest/gtest.h>

#include <csignal>
#include <nlohmann/json.hpp>

#include "raw_client.hpp"
#include "subprocess.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

const std::string kMatmul = std::string(TTMEM_TEST_DATA_DIR) + "/traces/matmul_normal_mode.json";

ProcessResult ttmem(const std::string& socket, std::vector<std::string> args) {
  std::vector<std::string> argv{bin_dir() + "/ttmem"};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, "", {{"TTMEM_SOCKET", socket}, {"NO_COLOR", "1"}});
}

TEST(Replay, ACaptureIntoTtmemdEndsWithItsLeaksAtClose) {
  ServerProcess server;
  const auto r = ttmem(server.socket(), {"replay", kMatmul, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = json::parse(r.out);
  EXPECT_EQ(report["peak"]["l1"]["per_core"], 806912);
  // The program buffer is the one allocation the capture never released: a leak of its op at close.
  const json leaks = json::parse(ttmem(server.socket(), {"leaks", "--json"}).out);
  ASSERT_EQ(leaks["leaks"].size(), 1u) << leaks.dump();
  EXPECT_EQ(leaks["leaks"][0]["size"], 22528);
  EXPECT_EQ(leaks["leaks"][0]["type"], "DRAM");
  EXPECT_EQ(leaks["leaks"][0]["site"], "MatmulDeviceOperation");
  EXPECT_EQ(leaks["leaks"][0]["scope"], "ttnn.matmul/MatmulDeviceOperation");
  const auto text = ttmem(server.socket(), {"replay", kMatmul});
  EXPECT_NE(text.out.find("every event applied; at close it reported 1 leak (22.0 KiB)"), std::string::npos)
      << text.out;
}

TEST(Replay, EveryCaptureOfTTMetalReplaysIntoTtmemd) {
  // What each leaves at the end, by hand: the NORMAL matmul its 22528-B program buffer; the NO_DISPATCH
  // matmul nothing (its output is released, its CBs go with the program cache at close); the sharded add
  // nothing (its output is released, its CBs are tensor-backed).
  const std::vector<std::pair<std::string, std::size_t>> captures = {
      {"matmul_normal_mode.json", 1}, {"matmul_l1_out.json", 0}, {"sharded_add.json", 0}};
  for (const auto& [name, leaks] : captures) {
    SCOPED_TRACE(name);
    ServerProcess server;
    const auto r = ttmem(server.socket(), {"replay", std::string(TTMEM_TEST_DATA_DIR) + "/traces/" + name});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find("every event applied"), std::string::npos) << r.out;
    EXPECT_EQ(json::parse(ttmem(server.socket(), {"leaks", "--json"}).out)["leaks"].size(), leaks);
    EXPECT_TRUE(json::parse(ttmem(server.socket(), {"buffers", "--json"}).out)["buffers"].empty());
  }
}

TEST(Replay, KeepOpenHoldsTheCapturesMemoryUntilInterrupted) {
  ServerProcess server;
  Child replay({bin_dir() + "/ttmem", "replay", "--keep-open", kMatmul}, {{"TTMEM_SOCKET", server.socket()}});
  json buffers;
  ASSERT_TRUE(eventually([&] {
    buffers =
        json::parse(ttmem(server.socket(), {"buffers", "--json", "-p", std::to_string(replay.pid())}).out);
    return buffers["buffers"].size() == 4u;
  })) << buffers.dump();
  std::uint64_t cb = 0;
  for (const auto& b : buffers["buffers"])
    if (b["kind"] == "cb") cb += b["size"].get<std::uint64_t>();
  EXPECT_EQ(cb, 786432u);
  replay.kill(SIGINT);
  EXPECT_EQ(replay.wait(), 0);
  const json after = json::parse(ttmem(server.socket(), {"buffers", "--json"}).out);
  EXPECT_TRUE(after["buffers"].empty()) << after.dump();
}

TEST(Replay, OfflineNeedsNoServer) {
  const auto r = ttmem("/nonexistent/ttmemd.sock", {"replay", "--offline", kMatmul});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("peak L1 per core: 788.0 KiB (806912 B)"), std::string::npos) << r.out;
  const auto no_server = ttmem("/nonexistent/ttmemd.sock", {"replay", kMatmul});
  EXPECT_EQ(no_server.exit_code, 2);
  EXPECT_NE(no_server.err.find("ttmemd"), std::string::npos) << no_server.err;
}

TEST(Replay, CheckComparesEveryAddressWithTheEmulator) {
  const auto r = ttmem("/nonexistent.sock", {"replay", "--offline", "--check", kMatmul});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("5 of 5 match, 0 differ, 0 not placed"), std::string::npos) << r.out;
  const auto j = ttmem("/nonexistent.sock", {"replay", "--offline", "--check", "--json", kMatmul});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_EQ(json::parse(j.out)["address_check"]["matched"], 5);
  const auto no_dispatch = ttmem(
      "/nonexistent.sock",
      {"replay", "--offline", "--check", std::string(TTMEM_TEST_DATA_DIR) + "/traces/matmul_l1_out.json"});
  EXPECT_EQ(no_dispatch.exit_code, 65);
  EXPECT_NE(no_dispatch.err.find("NO_DISPATCH"), std::string::npos) << no_dispatch.err;
  EXPECT_EQ(
      ttmem("/nonexistent.sock", {"replay", "--offline", "--check", "--grid", "11by10", kMatmul}).exit_code,
      64);
  EXPECT_EQ(ttmem("/nonexistent.sock", {"replay", "--offline", "--grid", "11x10", kMatmul}).exit_code, 64);
  const auto given =
      ttmem("/nonexistent.sock", {"replay", "--offline", "--check", "--grid", "13x10", kMatmul});
  EXPECT_NE(given.out.find("13x10 worker cores (given)"), std::string::npos) << given.out;
  EXPECT_NE(given.out.find("DIFFERS"), std::string::npos)
      << given.out;  // 130 banks: 8 pages per bank, not 10
}

TEST(Replay, InputErrorsSayWhatIsWrongWithTheirExitCodes) {
  TempDir dir;
  const auto missing = ttmem("/nonexistent.sock", {"replay", "--offline", dir.file("none.json")});
  EXPECT_EQ(missing.exit_code, 66);
  const auto directory = ttmem("/nonexistent.sock", {"replay", "--offline", dir.path()});
  EXPECT_EQ(directory.exit_code, 66);
  EXPECT_NE(directory.err.find("is a directory, not a capture"), std::string::npos) << directory.err;
  EXPECT_NE(missing.err.find("none.json: cannot be read"), std::string::npos) << missing.err;
  const std::string bad = dir.write("bad.json", R"([{"counter": 0, "node_type": "capture_start"},
                                                   {"counter": 2, "node_type": "capture_end"}])");
  const auto malformed = ttmem("/nonexistent.sock", {"replay", "--offline", bad});
  EXPECT_EQ(malformed.exit_code, 65);
  EXPECT_NE(malformed.err.find("bad.json: node 1: \"counter\" is 2"), std::string::npos) << malformed.err;
  const auto arch = ttmem("/nonexistent.sock", {"replay", "--offline", "--arch", "grayskull", kMatmul});
  EXPECT_EQ(arch.exit_code, 64);
  EXPECT_NE(arch.err.find("unknown --arch 'grayskull' (one of: wormhole_b0, blackhole)"), std::string::npos);
  const auto mesh = ttmem("/nonexistent.sock", {"replay", "--offline", "--mesh", "1:0", kMatmul});
  EXPECT_EQ(mesh.exit_code, 64);
  EXPECT_NE(mesh.err.find("--mesh '1:0' is not MESH=CHIP"), std::string::npos) << mesh.err;
  const auto both = ttmem("/nonexistent.sock", {"replay", "--offline", "--keep-open", kMatmul});
  EXPECT_EQ(both.exit_code, 64);
  const auto no_file = ttmem("/nonexistent.sock", {"replay"});
  EXPECT_EQ(no_file.exit_code, 64);
}

}  // namespace
}  // namespace ttmem::test
