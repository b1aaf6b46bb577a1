// Per-op figures of TT-Metal's own captures, checked against figures worked out by hand from their nodes
// (tests/data/traces/README.md says what each holds), and the per-core model on cases built here: CBs on
// disjoint cores, shards of unknown grid, tensor-backed CBs, frees of buffers from before the capture.
#include "ttmem/replay/op_analysis.hpp"

#include <gtest/gtest.h>

#include <random>

#include "capture_text.hpp"
#include "ttmem/replay/replay.hpp"
#include "ttmem/replay/report.hpp"

namespace ttmem::replay {
namespace {

using test::CaptureText;

struct Analysed {
  Capture capture;
  ReplaySetup setup;
  bridge::BridgeStats stats;
  CaptureFigures figures;
};

Analysed analyse(Capture capture) {
  Analysed out;
  out.capture = std::move(capture);
  OpAnalysis analysis;
  bridge::Bridge bridge(analysis);
  out.setup = announce(out.capture, bridge);
  feed(out.capture, bridge, analysis);
  out.stats = bridge.stats();
  out.figures = analysis.finish();
  return out;
}

Analysed analyse_file(const std::string& name) {
  return analyse(read_capture(std::string(TTMEM_TEST_DATA_DIR) + "/traces/" + name));
}

const OpFiguresRow& row(const Analysed& a, const std::string& op) {
  for (const OpFiguresRow& r : a.figures.ops)
    if (r.op == op) return r;
  throw std::runtime_error("no op " + op);
}

std::vector<std::uint64_t> part_bytes(const L1Peak& p) {
  std::vector<std::uint64_t> out;
  for (const PeakPart& part : p.parts) out.push_back(part.bytes);
  return out;
}

constexpr const char* kMatmul = "ttnn.matmul/MatmulDeviceOperation";
constexpr const char* kCreate = "ttnn.matmul/MatmulDeviceOperation/tt::tt_metal::create_device_tensor";

TEST(OpFigures, NormalModeMatmulByHand) {
  const Analysed a = analyse_file("matmul_normal_mode.json");
  // The chips: MeshDevice 1 is chip 0; CBs (chip 0) and buffers (mesh 1) land on the same chip.
  EXPECT_EQ(a.setup.chips, (std::vector<TtDeviceId>{0}));
  EXPECT_TRUE(a.setup.arch_assumed);
  // The two inputs are one DRAM buffer (the same tensor twice), allocated before the capture.
  EXPECT_EQ(a.setup.buffers_before_capture, 1u);
  EXPECT_EQ(a.setup.bytes_before_capture[static_cast<std::size_t>(BufferType::DRAM)], 2097152u);

  ASSERT_EQ(a.figures.ops.size(), 4u);
  const OpFiguresRow& matmul = row(a, kMatmul);
  EXPECT_EQ(matmul.start_node, 2u);
  EXPECT_EQ(matmul.end_node, 17u);
  EXPECT_EQ(matmul.depth, 1);
  // Per core on the CBs' cores {[0-0 - 1-1]}: 131072 + 131072 + 524288 of CBs + 20480 of the output's bank.
  EXPECT_EQ(matmul.l1.per_core, 806912u);
  EXPECT_EQ(matmul.l1.program, 786432u);
  EXPECT_EQ(matmul.l1.node, 14u);
  ASSERT_TRUE(matmul.l1.core);
  EXPECT_EQ(*matmul.l1.core, (bridge::CoreCoord{0, 0}));
  EXPECT_FALSE(matmul.l1.upper_bound);
  EXPECT_EQ(part_bytes(matmul.l1), (std::vector<std::uint64_t>{524288, 131072, 131072, 20480}));
  EXPECT_EQ(matmul.l1.parts[3].node, 8u);
  EXPECT_EQ(matmul.l1.parts[3].address, 1552384u);
  EXPECT_EQ(matmul.l1.parts[3].cores, "all");
  EXPECT_EQ(matmul.l1.parts[0].address, 373760u);
  EXPECT_EQ(matmul.l1.parts[0].cores, "{[0-0 - 1-1]}");
  // The program binary: 22528 B of DRAM (NORMAL mode only).
  EXPECT_EQ(matmul.peak_dram, 22528u);
  // Both buffers it made outlive it: the output tensor (released later by Tensor::deallocate) and the
  // program buffer (never released in the capture).
  ASSERT_EQ(matmul.outlived.size(), 2u);
  EXPECT_EQ(matmul.outlived[0].size, 2097152u);
  EXPECT_EQ(matmul.outlived[0].node, 8u);
  EXPECT_EQ(matmul.outlived[1].size, 22528u);
  EXPECT_EQ(matmul.allocations, 5u);

  const OpFiguresRow& create = row(a, kCreate);
  EXPECT_EQ(create.l1.per_core, 20480u);
  EXPECT_EQ(create.l1.program, 0u);
  EXPECT_FALSE(create.l1.core);  // interleaved: the same on every core
  EXPECT_EQ(create.outlived.size(), 1u);
  EXPECT_EQ(row(a, "ttnn.matmul").l1.per_core, 806912u);
  EXPECT_EQ(row(a, "Tensor::deallocate").l1.per_core, 0u);
  EXPECT_TRUE(row(a, "Tensor::deallocate").outlived.empty());

  EXPECT_EQ(a.figures.l1.per_core, 806912u);
  EXPECT_EQ(a.figures.peak_dram, 22528u);
  // TT-Metal's extract_resource_usage_per_core on this capture (upstream's README: 768 KB, 20 KB, 788 KB).
  EXPECT_EQ(a.figures.tt_metal.peak_cb, 786432u);
  EXPECT_EQ(a.figures.tt_metal.peak_l1, 20480u);
  EXPECT_EQ(a.figures.tt_metal.peak_total, 806912u);
  EXPECT_EQ(a.stats.untracked_releases, 0u);
}

TEST(OpFigures, NoDispatchMatmulHasTheSameSizesAndNoProgramBuffer) {
  const Analysed a = analyse_file("matmul_l1_out.json");
  EXPECT_EQ(a.setup.chips, (std::vector<TtDeviceId>{0}));  // here the CBs name the mesh: still chip 0
  const OpFiguresRow& matmul = row(a, kMatmul);
  EXPECT_EQ(matmul.l1.per_core, 806912u);
  EXPECT_EQ(matmul.l1.program, 786432u);
  EXPECT_EQ(matmul.peak_dram, 0u);
  EXPECT_EQ(matmul.outlived.size(), 1u);
  EXPECT_EQ(a.figures.tt_metal.peak_total, 806912u);
}

TEST(OpFigures, ShardedAddCountsTheShardOnItsGridAndTensorBackedCBsNotAtAll) {
  const Analysed a = analyse_file("sharded_add.json");
  // Both inputs were allocated before the capture: 2 x 2 MiB of L1 the figures cannot include.
  EXPECT_EQ(a.setup.buffers_before_capture, 2u);
  EXPECT_EQ(a.setup.bytes_before_capture[static_cast<std::size_t>(BufferType::L1)], 4194304u);
  const OpFiguresRow& add = row(a, "ttnn.add/BinaryNgDeviceOperation");
  EXPECT_EQ(add.l1.per_core, 32768u);  // the output's shard
  EXPECT_EQ(add.l1.program, 0u);       // its three CBs are the operands' shards
  ASSERT_TRUE(add.l1.core);
  EXPECT_EQ(*add.l1.core, (bridge::CoreCoord{0, 0}));
  ASSERT_EQ(add.l1.parts.size(), 1u);
  EXPECT_EQ(add.l1.parts[0].cores, "{[0-0 - 7-7]}");
  EXPECT_EQ(a.stats.tensor_backed, 3u);
  EXPECT_EQ(a.figures.tt_metal.peak_cb, 0u);
  EXPECT_EQ(a.figures.tt_metal.peak_l1, 32768u);
  EXPECT_EQ(a.figures.tt_metal.peak_total, 32768u);
}

TEST(OpFigures, CBsOnDisjointCoresDoNotAddUpOnOneCore) {
  CaptureText t;
  t.node("capture_start", nullptr)
      .start("op")
      .node("circular_buffer_deallocate_all", {{"device_id", 0}})
      .cb(100 << 10, "{[0-0 - 0-0]}")
      .cb(200 << 10, "{[1-0 - 1-0]}")
      .cb(50 << 10, "{[0-0 - 1-0]}")
      .end("op")
      .node("capture_end", nullptr);
  const Analysed a = analyse(parse_capture(t.text(), "t.json"));
  // Core (1,0) holds 200 + 50 KiB; core (0,0) 100 + 50. TT-Metal's sum ignores cores: 350 KiB.
  EXPECT_EQ(a.figures.l1.per_core, 250u << 10);
  EXPECT_EQ(*a.figures.l1.core, (bridge::CoreCoord{1, 0}));
  EXPECT_EQ(part_bytes(a.figures.l1), (std::vector<std::uint64_t>{200 << 10, 50 << 10}));
  EXPECT_EQ(a.figures.tt_metal.peak_cb, 350u << 10);
}

TEST(OpFigures, DeallocateAllEndsTheLastProgramsCBs) {
  CaptureText t;
  t.node("circular_buffer_deallocate_all", {{"device_id", 0}})
      .cb(300 << 10, "{[0-0 - 0-0]}")
      .node("circular_buffer_deallocate_all", {{"device_id", 0}})
      .cb(100 << 10, "{[0-0 - 0-0]}")
      .cb(100 << 10, "{[0-0 - 0-0]}");
  const Analysed a = analyse(parse_capture(t.text(), "t.json"));
  EXPECT_EQ(a.figures.l1.per_core, 300u << 10);  // never 500: the first program's CB was gone
  EXPECT_EQ(a.figures.tt_metal.peak_cb, 300u << 10);
}

TEST(OpFigures, AShardOfUnknownGridIsAnUpperBound) {
  CaptureText t;
  t.buffer(64 * 4096).l1("buffer_allocate", 0, 4096, 64).cb(8192, "{[5-5 - 5-5]}");
  const Analysed a = analyse(parse_capture(t.text(), "t.json"));
  EXPECT_EQ(a.figures.l1.per_core, 4096u + 8192u);
  EXPECT_TRUE(a.figures.l1.upper_bound);
  ASSERT_EQ(a.figures.l1.parts.size(), 2u);
  EXPECT_EQ(a.figures.l1.parts[1].cores, "all?");
}

TEST(OpFigures, AFreeOfABufferFromBeforeTheCaptureSubtractsNothing) {
  // TT-Metal's own extractor underflows here (upstream's README, gotcha 11): 2^64 - 32768.
  CaptureText t;
  t.buffer(64 * 65536).buffer(64 * 32768).l1("buffer_deallocate", 0, 65536).l1("buffer_allocate", 1, 32768);
  const Analysed a = analyse(parse_capture(t.text(), "t.json"));
  EXPECT_EQ(a.stats.untracked_releases, 1u);
  EXPECT_EQ(a.figures.tt_metal.peak_l1, 32768u);
  EXPECT_EQ(a.figures.l1.per_core, 32768u);
}

// Thousands of ops (sizes and core rows drawn from a seeded generator), each: a program of one CB on its
// core range, then an L1 output; the previous op's output is released after the op ends. While op i runs, a
// core of its CB range holds the previous output, its own output and its CB; outside the range, only the two
// outputs.
TEST(OpFigures, ThousandsOfOpsEachPeakAsWorkedOut) {
  for (const int ops : {1000, 2500, 5000}) {
    SCOPED_TRACE(ops);
    std::mt19937_64 rng(static_cast<std::uint64_t>(ops));
    CaptureText t;
    t.node("capture_start", nullptr);
    std::vector<std::uint64_t> out(ops), cb(ops);
    std::vector<std::uint32_t> row(ops);
    std::optional<std::size_t> previous;
    for (int i = 0; i < ops; ++i) {
      out[i] = 1024 * (1 + rng() % 64);
      cb[i] = 1024 * (1 + rng() % 512);
      row[i] = static_cast<std::uint32_t>(rng() % 8);
      t.start("op" + std::to_string(i));
      t.node("circular_buffer_deallocate_all", {{"device_id", 0}});
      t.cb(cb[i], "{[0-" + std::to_string(row[i]) + " - 7-" + std::to_string(row[i]) + "]}");
      const std::size_t buffer = t.size();
      t.buffer(out[i] * 64).l1("buffer_allocate", buffer, out[i]);
      t.end("op" + std::to_string(i));
      if (previous) t.l1("buffer_deallocate", *previous, out[i - 1]);
      previous = buffer;
    }
    const Analysed a = analyse(parse_capture(t.text(), "many.json"));
    ASSERT_EQ(a.figures.ops.size(), static_cast<std::size_t>(ops));
    std::uint64_t capture_peak = 0;
    for (int i = 0; i < ops; ++i) {
      const OpFiguresRow& r = a.figures.ops[i];
      const std::uint64_t before = i > 0 ? out[i - 1] : 0;
      ASSERT_EQ(r.l1.per_core, before + out[i] + cb[i]) << "op " << i;
      ASSERT_EQ(r.l1.program, cb[i]) << "op " << i;
      ASSERT_TRUE(r.l1.core.has_value() && r.l1.core->y == row[i]) << "op " << i;
      ASSERT_EQ(r.outlived.size(), 1u) << "op " << i;  // its output
      capture_peak = std::max(capture_peak, r.l1.per_core);
    }
    EXPECT_EQ(a.figures.l1.per_core, capture_peak);
  }
}

TEST(OpFigures, TheReportSaysItAllInTextAndJson) {
  const Analysed a = analyse_file("matmul_normal_mode.json");
  const ReportInput in{a.capture, a.setup, a.stats, a.figures};
  std::ostringstream text;
  write_text(text, in, {200, "create_device_tensor"});
  const std::string t = text.str();
  EXPECT_NE(t.find("24 nodes, 2025+ schema, NORMAL (real addresses)"), std::string::npos) << t;
  EXPECT_NE(t.find("before the capture: 1 buffer (2.0 MiB DRAM)"), std::string::npos) << t;
  EXPECT_NE(t.find("peak L1 per core: 788.0 KiB (806912 B) on chip 0, core (0,0), at node 14"),
            std::string::npos)
      << t;
  EXPECT_NE(t.find("peak_cb 786432 B, peak_l1 20480 B, peak_total 806912 B"), std::string::npos) << t;
  EXPECT_NE(t.find("peak L1 20.0 KiB per core on every core"), std::string::npos) << t;
  const auto json = nlohmann::json::parse(to_json(in));
  EXPECT_EQ(json["mode"], "NORMAL");
  EXPECT_EQ(json["peak"]["l1"]["per_core"], 806912);
  EXPECT_EQ(json["peak"]["l1"]["parts"].size(), 4u);
  EXPECT_EQ(json["ops"].size(), 4u);
  EXPECT_EQ(json["ops"][1]["op"], kMatmul);
  EXPECT_EQ(json["ops"][1]["outlived"].size(), 2u);
  EXPECT_EQ(json["tt_metal_rules"]["peak_total"], 806912);
  EXPECT_EQ(json["before_capture"]["bytes"]["DRAM"], 2097152);
}

}  // namespace
}  // namespace ttmem::replay
