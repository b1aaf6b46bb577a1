// ttmem-emu as users run it: a real process on good and bad scripts; messages, exit codes and --json.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include "subprocess.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

ProcessResult emu(const std::vector<std::string>& args, const std::string& input = {}) {
  std::vector<std::string> argv{bin_dir() + "/ttmem-emu"};
  argv.insert(argv.end(), args.begin(), args.end());
  // These tests are about the emulator; tracking has its own suites.
  return run_process(argv, input, {{"TTMEM_TRACKING", "0"}});
}

TEST(EmuCli, SeedScenarioRunsCleanAndReportsJson) {
  TempDir dir;
  const auto script = dir.write("seed.ttm", R"(# the seed's scenario
mesh t3000
alloc a DRAM 4M site=tensor_a
alloc b DRAM 4M
program add cb=4Kx3
program matmul cb=32Kx2 cb=64K cores=32
run add
run matmul
free a
free b
clear_program_cache
close
)");
  const auto r = emu({"--json", script});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_TRUE(j["error"].is_null());
  ASSERT_EQ(j["meshes"].size(), 1u);
  EXPECT_EQ(j["meshes"][0]["preset"], "t3000");
  ASSERT_EQ(j["buffers"].size(), 2u);
  EXPECT_EQ(j["buffers"][0]["address"], 32);
  EXPECT_EQ(j["buffers"][0]["site"], "tensor_a");
  EXPECT_EQ(j["buffers"][1]["site"], "seed.ttm:4");  // default site: the script line
  EXPECT_EQ(j["buffers"][0]["devices"].size(), 8u);
  EXPECT_EQ(j["buffers"][0]["page_size"], 2048);
  EXPECT_EQ(j["buffers"][0]["freed_at_line"], 9);
  const auto& add = j["programs"][0];
  ASSERT_EQ(add["cbs"].size(), 3u);
  EXPECT_EQ(add["cbs"][0]["address"], 101152);
  EXPECT_EQ(add["cbs"][1]["address"], 105248);
  EXPECT_EQ(add["cbs"][2]["address"], 109344);
  EXPECT_EQ(j["programs"][1]["cbs"][2]["cores"], "{[0-0 - 7-3]}");  // cores=32: the first 4 rows of 8
  EXPECT_EQ(j["programs"][1]["cbs"][2]["num_cores"], 32);
  EXPECT_TRUE(j["live_at_close"].empty());
  // Peaks per device: two 4 MiB tensors at once, and the CBs of both programs at once.
  EXPECT_EQ(j["peak"]["7"]["DRAM"], 2 * 4194304 + 2 * 4096);
  EXPECT_EQ(j["peak"]["0"]["CB"], 3 * 4096 + 2 * 32768 + 65536);
  EXPECT_EQ(j["peak"]["0"]["L1"], 3 * 4096);  // the dispatch control buffers on device 0
  EXPECT_EQ(j["peak"]["1"]["L1"], 0);
}

TEST(EmuCli, BuffersStillLiveAtCloseAreListed) {
  const auto r =
      emu({"--json", "-"}, "mesh n300\nalloc keep L1 8K site=kept\nalloc gone DRAM 4K\nfree gone\nclose\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  ASSERT_EQ(j["live_at_close"].size(), 1u);
  EXPECT_EQ(j["live_at_close"][0]["name"], "keep");
  EXPECT_EQ(j["live_at_close"][0]["site"], "kept");
}

TEST(EmuCli, ReadableLogShowsAddressesAndLeaks) {
  const auto r = emu({"-"}, "mesh n150\nalloc x L1 4K\nprogram p cb=4Kx3\nrun p\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("alloc x: L1 4096 B (page 2048 B) at 1497088 on 1 device [stdin:2]"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("run p: circular buffers at 101152, 105248, 109344"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 buffer was still held when close began"), std::string::npos) << r.out;
}

struct BadScript {
  std::string script;
  int line;
  std::string message;
};

class EmuBadScript : public ::testing::TestWithParam<BadScript> {};

TEST_P(EmuBadScript, StopsWithScriptLineMessageAndExitCode65) {
  const BadScript& bad = GetParam();
  TempDir dir;
  const auto path = dir.write("bad.ttm", bad.script);
  const auto r = emu({path});
  EXPECT_EQ(r.exit_code, 65) << r.err;  // the input is wrong (sysexits EX_DATAERR)
  const std::string prefix = path + ":" + std::to_string(bad.line) + ": ";
  EXPECT_EQ(r.err.rfind(prefix, 0), 0u) << r.err;
  EXPECT_NE(r.err.find(bad.message), std::string::npos) << r.err;
}

INSTANTIATE_TEST_SUITE_P(
    Messages, EmuBadScript,
    ::testing::Values(BadScript{"mesh n150\nfrobnicate x\n", 2, "unknown command 'frobnicate'"},
                      BadScript{"mesh n150\nalloc a DRAM\n", 2, "'alloc' takes 3 arguments"},
                      BadScript{"mesh n150\nalloc a DRAM 12Q\n", 2, "size '12Q' is not a size"},
                      BadScript{"mesh n150\nalloc a HBM 4K\n", 2, "unknown memory type 'HBM'"},
                      BadScript{"mesh n150\nalloc a DRAM 4K color=red\n", 2, "does not take option 'color'"},
                      BadScript{"mesh n150\nfree nope\n", 2, "no live buffer named 'nope'"},
                      BadScript{"alloc a DRAM 4K\n", 1, "no open mesh"},
                      BadScript{"mesh n999\n", 1, "unknown mesh preset 'n999'"},
                      BadScript{"mesh n150 arch=grayskull\n", 1, "unknown arch 'grayskull'"},
                      BadScript{"mesh n150\nrepeat 2\nalloc a DRAM 4K\n", 2, "'repeat' without 'end'"},
                      BadScript{"mesh n150\nend\n", 2, "'end' without 'repeat' or 'op'"},
                      BadScript{"mesh n150\nop matmul\nalloc a DRAM 4K\n", 2, "'op' without 'end'"},
                      BadScript{"mesh n150\nrepeat 2\nalloc a DRAM 4K\nend\n", 3, "buffer 'a' is still live"},
                      BadScript{"mesh n150\nalloc a DRAM 3000 page=2048\n", 2,
                                "not a multiple of the page size"},
                      BadScript{"mesh n150\ntrace t 4K\n", 2, "trace_region_size"},
                      BadScript{"mesh n150\nrun ghost\n", 2, "no program named 'ghost'"},
                      BadScript{"mesh n150\nprogram p\n", 2, "needs at least one cb=SIZE"},
                      BadScript{"mesh n150\nalloc a DRAM 4K site=\"open\n", 2, "unterminated quote"},
                      BadScript{"mesh n150\nmesh n150\n", 2, "a mesh is already open"}),
    [](const ::testing::TestParamInfo<BadScript>& p) { return "Case" + std::to_string(p.index); });

TEST(EmuCli, OutOfMemoryStopsWithTheAllocatorsMessageAndExitCode3) {
  const auto r = emu({"-"}, "mesh n150\nalloc big DRAM 13G page=1M\n");
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(
      r.err.find("stdin:2: Out of Memory: Not enough space to allocate 13958643712 B DRAM buffer across 12 "
                 "banks"),
      std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("largest free block"), std::string::npos);
}

TEST(EmuCli, AMeshOutOfMemoryIsTtMetalsTextWithTheLockstepFiguresOnTheirOwnLine) {
  const auto r = emu({"--json", "-"}, "mesh n300\nalloc big DRAM 13G page=1M\n");
  EXPECT_EQ(r.exit_code, 3);
  const auto j = json::parse(r.out);
  const std::string message = j["error"]["message"];
  EXPECT_EQ(message.rfind("Out of Memory: Not enough space to allocate 13958643712 B DRAM buffer", 0), 0u);
  EXPECT_EQ(message.find("lockstep"), std::string::npos) << message;
  EXPECT_EQ(std::string(j["error"]["detail"]).rfind("lockstep over 2 devices: free on all:", 0), 0u);
  EXPECT_NE(r.err.find("\n  lockstep over 2 devices"), std::string::npos) << r.err;
}

/// The addresses of a program's CBs in a --json report, in CB order.
std::vector<std::uint64_t> cb_addresses(const json& program) {
  std::vector<std::uint64_t> out;
  for (const auto& cb : program["cbs"]) out.push_back(cb["address"].get<std::uint64_t>());
  return out;
}

TEST(EmuCli, CircularBuffersTakeCoreRangesPerBuffer) {
  // Row 0, row 1, then rows 0-1 (compact and TT-Metal spellings): TT-Metal's per-range CB allocators.
  const auto r = emu({"--json", "-"},
                     "mesh n150\nprogram p cb=100@0-0:7-0 cb=100@0-1:7-1 \"cb=100@{[0-0 - 7-1]}\"\n"
                     "program q cb=2Kx2 cores=12\nrun p\nrun q\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(cb_addresses(j["programs"][0]), (std::vector<std::uint64_t>{101152, 101152, 101280}));
  EXPECT_EQ(j["programs"][0]["cbs"][2]["cores"], "{[0-0 - 7-1]}");
  EXPECT_EQ(j["programs"][1]["cbs"][0]["cores"], "{[0-0 - 7-0], [0-1 - 3-1]}");  // the first 12 cores
  const auto bad = emu({"-"}, "mesh n150\nprogram p cb=100@0-0\n");
  EXPECT_EQ(bad.exit_code, 65);
  EXPECT_NE(bad.err.find("cb cores: \"0-0\" is not a count"), std::string::npos) << bad.err;
  const auto outside = emu({"-"}, "mesh n150\nprogram p cb=100@0-0:8-0\n");
  EXPECT_EQ(outside.exit_code, 65);
  EXPECT_NE(outside.err.find("outside the 8x8 worker grid"), std::string::npos) << outside.err;
}

// Chips are held as UMD holds them (CHIP_IN_USE_<id>_PCIe): one process at a time on the machine.
Child stepper(const Env& env = {}) {
  Env e{{"TTMEM_TRACKING", "0"}};
  e.insert(e.end(), env.begin(), env.end());
  Spawn merged;  // its stderr into the pipe read here
  merged.wrapper = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1"};
  return Child({bin_dir() + "/ttmem-emu", "--step", "-q"}, e, merged);
}

TEST(EmuCli, ASecondProcessWaitsForAChipInUseAsTtMetalDoes) {
  Child first = stepper();
  ASSERT_EQ(first.command("mesh n150"), "ok");
  Child second = stepper();
  second.send_line("mesh n150");
  // tt-umd's RobustMutex::lock line, naming the holder; then it waits.
  EXPECT_EQ(second.read_line(),
            "UMD | Waiting for lock 'CHIP_IN_USE_0_PCIe' which is currently held by thread TID: " +
                std::to_string(first.pid()) + ", PID: " + std::to_string(first.pid()));
  ASSERT_EQ(first.command("close"), "ok");
  EXPECT_EQ(second.read_line(), "ok");  // it has the chip now
  ASSERT_EQ(second.command("alloc a DRAM 4K"), "ok");
}

TEST(EmuCli, AChipHeldByAProcessThatDiedIsFreeAtOnce) {
  Child first = stepper();
  ASSERT_EQ(first.command("mesh n300"), "ok");
  Child second = stepper();
  second.send_line("mesh n150 devices=1");
  EXPECT_NE(second.read_line().find("'CHIP_IN_USE_1_PCIe'"), std::string::npos);
  first.kill(SIGKILL);
  first.wait();
  EXPECT_EQ(second.read_line(), "ok");
}

TEST(EmuCli, RefusingInsteadOfWaitingNamesTheHolder) {
  Child first = stepper();
  ASSERT_EQ(first.command("mesh n150"), "ok");
  const auto r = run_process({bin_dir() + "/ttmem-emu", "-"}, "mesh n300\n",
                             {{"TTMEM_TRACKING", "0"}, {"TTMEM_EMU_CHIP_WAIT", "0"}});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("stdin:1: chip 0 is in use: lock 'CHIP_IN_USE_0_PCIe' is held by thread TID: " +
                       std::to_string(first.pid()) + ", PID: " + std::to_string(first.pid())),
            std::string::npos)
      << r.err;
  // Other chips are free: chips 1 and 2 of the machine, as this process's devices 0 and 1.
  const auto other = run_process({bin_dir() + "/ttmem-emu", "--json", "-"}, "mesh n300 devices=1,2\nclose\n",
                                 {{"TTMEM_TRACKING", "0"}, {"TTMEM_EMU_CHIP_WAIT", "0"}});
  EXPECT_EQ(other.exit_code, 0) << other.err;
}

TEST(EmuCli, VisibleDevicesMapAProcesssDevicesOntoChips) {
  Child first = stepper();
  ASSERT_EQ(first.command("mesh n150"), "ok");  // chip 0
  // TT_VISIBLE_DEVICES=3,1: this process's device 0 is chip 3, device 1 chip 1; chip 0 is not touched.
  const auto r =
      run_process({bin_dir() + "/ttmem-emu", "--json", "-"}, "mesh n300\nalloc a DRAM 4K\nclose\n",
                  {{"TTMEM_TRACKING", "0"}, {"TTMEM_EMU_CHIP_WAIT", "0"}, {"TT_VISIBLE_DEVICES", "3,1"}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["buffers"][0]["devices"], json::array({3, 1}));
  const auto bad = run_process({bin_dir() + "/ttmem-emu", "-"}, "mesh n300\n",
                               {{"TTMEM_TRACKING", "0"}, {"TT_VISIBLE_DEVICES", "3"}});
  EXPECT_EQ(bad.exit_code, 65);
  EXPECT_NE(bad.err.find("device 1 is not visible: TT_VISIBLE_DEVICES='3' makes 1 device visible"),
            std::string::npos)
      << bad.err;
}

TEST(EmuCli, AScriptOpensTheChipOfTheRealBlackholeCapture) {
  // The real NORMAL-mode matmul capture (tests/data/traces): a p150b with 11x10 workers and CBs from
  // 111616. Its L1 buffer (1024 pages of 2048 B over 110 banks, 20480 B per bank) sits at 1552384 and its
  // three CBs at 111616, 242688, 373760 -- the capture's addresses.
  const auto r = emu({"--json", "-"},
                     "mesh p150 grid=11x10 l1_base=111616\nalloc out L1 2M page=2K\n"
                     "program mm cb=128K@0-0:1-1 cb=128K@0-0:1-1 cb=512K@0-0:1-1\nrun mm\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = json::parse(r.out);
  EXPECT_EQ(j["buffers"][0]["address"], 1552384);
  EXPECT_EQ(cb_addresses(j["programs"][0]), (std::vector<std::uint64_t>{111616, 242688, 373760}));
  const auto bad = emu({"-"}, "mesh p150 grid=11\n");
  EXPECT_EQ(bad.exit_code, 65);
  EXPECT_NE(bad.err.find("grid=11: give the worker grid as XxY"), std::string::npos) << bad.err;
}

TEST(EmuCli, AnImpossibleSizeIsOutOfMemoryNotAWrappedSmallBuffer) {
  // It once succeeded "at 32": rounding 2^64 - 1 up to the alignment wrapped to 0.
  const auto r = emu({"-"}, "mesh n150\nalloc huge DRAM 18446744073709551615\n");
  EXPECT_EQ(r.exit_code, 3) << r.out;
  EXPECT_NE(r.err.find("stdin:2: Out of Memory: Not enough space to allocate 18446744073709551615 B DRAM"),
            std::string::npos)
      << r.err;
}

TEST(EmuCli, CircularBufferClashExitsWith3AndJsonCarriesTheError) {
  const auto r =
      emu({"--json", "-"}, "mesh n150\nalloc big L1 80000K page=1250K\nprogram p cb=200K\nrun p\n");
  EXPECT_EQ(r.exit_code, 3) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["error"]["line"], 4);
  EXPECT_NE(j["error"]["message"].get<std::string>().find("clash with L1 buffers"), std::string::npos);
  EXPECT_EQ(j["live_at_close"].size(), 1u);  // the run stopped; the mesh was closed with `big` still held
}

TEST(EmuCli, RepeatRunsItsBodyNTimes) {
  const auto r = emu({"--json", "-"}, "mesh n150\nrepeat 5\nalloc t DRAM 4K\nfree t\nend\nclose\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["buffers"].size(), 5u);
}

TEST(EmuCli, MissingScriptAndBadFlagsAreClearErrors) {
  auto r = emu({});
  EXPECT_EQ(r.exit_code, 64);
  EXPECT_NE(r.err.find("no SCRIPT given"), std::string::npos);
  r = emu({"/nonexistent/x.ttm"});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("cannot read /nonexistent/x.ttm"), std::string::npos);
  r = emu({"--frob"});
  EXPECT_EQ(r.exit_code, 64);
  TempDir dir;
  r = emu({dir.path()});
  EXPECT_EQ(r.exit_code, 66);
  EXPECT_NE(r.err.find("it is a directory"), std::string::npos) << r.err;
}

TEST(EmuCli, ListPresets) {
  const auto r = emu({"--list-presets"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("galaxy  8x4 wormhole_b0  32 device(s)"), std::string::npos) << r.out;
}

TEST(EmuCli, SuffixesAndAllocAtAndAbortWork) {
  auto r = emu({"--json", "-"}, "mesh p150\nalloc_at fixed L1 4K 200000 device=0\nalloc s L1 1KiB\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["buffers"][0]["kind"], "preallocated");
  EXPECT_EQ(j["buffers"][0]["address"], 200000);
  EXPECT_EQ(j["buffers"][1]["size"], 1024);
  r = emu({"-"}, "mesh n150\nalloc a DRAM 4K\nabort\nalloc b DRAM 4K\n");
  EXPECT_EQ(r.exit_code, 128 + 9);  // killed, like a crash: nothing after abort runs
  EXPECT_EQ(r.out.find("alloc b"), std::string::npos);
}

TEST(EmuCli, TheLogIsWrittenLineByLineIntoAPipe) {
  // A script that sleeps after its allocations: what it did is readable before it ends.
  TempDir dir;
  const std::string script = dir.write("hold.ttm", "mesh n150\nalloc weights DRAM 4M\nsleep 20000\n");
  Child emu({bin_dir() + "/ttmem-emu", script}, Env{{"TTMEM_TRACKING", "0"}});
  EXPECT_NE(emu.read_line(std::chrono::seconds(5)).find("mesh n150"), std::string::npos);
  EXPECT_NE(emu.read_line(std::chrono::seconds(5)).find("alloc weights"), std::string::npos);
  emu.kill(SIGKILL);
  emu.wait();
}

}  // namespace
}  // namespace ttmem::test
