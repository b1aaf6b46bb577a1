// Reading ttnn graph captures: TT-Metal's own captures (both run modes), the 2024 schema of string params,
// the report file, and every way a file can be wrong, each with the node and what is wrong.
#include "ttmem/replay/capture.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <fstream>
#include <sstream>

#include "capture_text.hpp"

namespace ttmem::replay {
namespace {

using test::CaptureText;

std::string data(const std::string& name) {
  return std::string(TTMEM_TEST_DATA_DIR) + "/traces/" + name;
}

std::string error_of(const std::string& text) {
  try {
    parse_capture(text, "t.json");
  } catch (const CaptureError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Capture, ReadsTheNormalModeMatmul) {
  const Capture c = read_capture(data("matmul_normal_mode.json"));
  EXPECT_EQ(c.nodes.size(), 24u);
  EXPECT_TRUE(c.integer_params);
  EXPECT_FALSE(c.no_dispatch);
  EXPECT_EQ(c.count(NodeKind::function_start), 4u);
  EXPECT_EQ(c.count(NodeKind::buffer_allocate), 2u);
  EXPECT_EQ(c.count(NodeKind::buffer_deallocate), 1u);
  EXPECT_EQ(c.count(NodeKind::circular_buffer_allocate), 3u);
  EXPECT_EQ(c.count(NodeKind::circular_buffer_deallocate_all), 1u);
  EXPECT_TRUE(c.unknown_types.empty());
  // The MeshDevice (1) and its chip (0), from the tensors' device_tensors.
  EXPECT_EQ(c.meshes, (std::map<TtDeviceId, std::vector<TtDeviceId>>{{1, {0}}}));
  const Node& output = c.nodes[8];
  EXPECT_EQ(output.kind, NodeKind::buffer_allocate);
  EXPECT_EQ(output.buffer.unique_id, 7u);  // its `buffer` node
  EXPECT_EQ(output.buffer.device, 1u);
  EXPECT_EQ(output.buffer.address, 1552384u);
  EXPECT_EQ(output.buffer.type, BufferType::L1);
  EXPECT_EQ(output.buffer.max_size_per_bank, 20480u);
  EXPECT_EQ(output.buffer.page_size, 2048u);
  EXPECT_EQ(c.nodes[21].buffer.unique_id, 7u);  // its release names the same buffer
  const Node& cb = c.nodes[14];
  EXPECT_EQ(cb.program.device, 0u);  // the chip, in NORMAL mode
  EXPECT_EQ(cb.program.size, 524288u);
  EXPECT_EQ(cb.program.address, 373760u);
  EXPECT_EQ(cb.program.cores.num_cores(), 4u);
  EXPECT_FALSE(cb.program.tensor_backed);
  EXPECT_EQ(c.nodes[16].buffer.address, 4278185984u);
}

TEST(Capture, ReadsNoDispatchModeAndTheShardGrid) {
  const Capture l1 = read_capture(data("matmul_l1_out.json"));
  EXPECT_TRUE(l1.no_dispatch);
  EXPECT_EQ(l1.nodes.size(), 22u);
  const Capture add = read_capture(data("sharded_add.json"));
  EXPECT_TRUE(add.no_dispatch);
  EXPECT_EQ(add.meshes, (std::map<TtDeviceId, std::vector<TtDeviceId>>{{3, {0}}}));
  const Node& output = add.nodes[9];
  EXPECT_EQ(output.buffer.layout, BufferLayout::height_sharded);
  EXPECT_EQ(output.buffer.num_cores, 64u);
  ASSERT_TRUE(output.buffer.shard_grid);  // printed on the tensor nodes of its buffer, after it
  EXPECT_EQ(output.buffer.shard_grid->str(), "{[0-0 - 7-7]}");
  EXPECT_TRUE(add.nodes[13].program.tensor_backed);
  EXPECT_EQ(add.nodes[13].program.cores.num_cores(), 110u);
}

TEST(Capture, ShardGridsInBothSpellings) {
  EXPECT_EQ(shard_grid_of(
                "MemoryConfig(memory_layout=TensorMemoryLayout::HEIGHT_SHARDED,shard_spec=ShardSpec{grid=[{"
                "\"start\":{\"x\":0,\"y\":0},\"end\":{\"x\":7,\"y\":7}},{\"start\":{\"x\":0,\"y\":8},"
                "\"end\":{\"x\":3,\"y\":8}}], shape=[32, 512]})")
                ->str(),
            "{[0-0 - 7-7], [0-8 - 3-8]}");
  EXPECT_EQ(shard_grid_of("ShardSpec(grid={[(x=0,y=0) - (x=1,y=3)]},shape={32, 64})")->str(),
            "{[0-0 - 1-3]}");
  EXPECT_FALSE(
      shard_grid_of("MemoryConfig(memory_layout=TensorMemoryLayout::INTERLEAVED,shard_spec=std::nullopt)"));
}

TEST(Capture, ReadsThe2024SchemaOfStringParams) {
  // 2024: every param a string, no page size or per-bank figure, no `buffer` node to pair on.
  CaptureText t;
  t.node("capture_start", nullptr)
      .start("ttnn::add")
      .node("buffer_allocate", {{"size", "4096"},
                                {"address", "1024"},
                                {"type", "L1"},
                                {"layout", "INTERLEAVED"},
                                {"device_id", "0"}})
      .node("buffer_allocate", {{"size", "4096"},
                                {"address", "9216"},
                                {"type", "DRAM"},
                                {"layout", "INTERLEAVED"},
                                {"device_id", "0"}})
      .node("circular_buffer_allocate",
            {{"size", "2048"}, {"address", "0"}, {"core_range_set", "{[0-0 - 7-7]}"}, {"device_id", "0"}})
      .node("buffer_deallocate", {{"size", "4096"},
                                  {"address", "1024"},
                                  {"type", "L1"},
                                  {"layout", "INTERLEAVED"},
                                  {"device_id", "0"}})
      .end("ttnn::add")
      .node("capture_end", nullptr);
  const Capture c = parse_capture(t.text(), "old.json");
  EXPECT_FALSE(c.integer_params);
  EXPECT_EQ(c.nodes[2].buffer.size, 4096u);
  EXPECT_EQ(c.nodes[2].buffer.type, BufferType::L1);
  EXPECT_FALSE(c.nodes[2].has_max_size_per_bank);
  EXPECT_EQ(c.nodes[3].buffer.type, BufferType::DRAM);
  // Without a buffer node, device, type, address and size pair the release with its allocation.
  EXPECT_EQ(c.nodes[5].buffer.unique_id, c.nodes[2].buffer.unique_id);
  EXPECT_NE(c.nodes[3].buffer.unique_id, c.nodes[2].buffer.unique_id);
}

TEST(Capture, ReadsTheReportFile) {
  CaptureText t;
  t.node("capture_start", nullptr).cb(4096, "{[0-0 - 0-0]}").node("capture_end", nullptr);
  const std::string report = R"({"version": 1, "graph": )" + t.text() +
                             R"(, "devices": [{"device_id": 0, "arch": "BLACKHOLE", "l1_num_banks": 110,
                                "l1_bank_size": 1400000, "num_dram_channels": 8}],
                                "metadata": {"capture_timestamp_ns": 1}})";
  const Capture c = parse_capture(report, "report.json");
  EXPECT_EQ(c.nodes.size(), 3u);
  ASSERT_EQ(c.devices.size(), 1u);
  EXPECT_EQ(c.devices[0].arch, Arch::blackhole);
  EXPECT_EQ(c.devices[0].l1_num_banks, 110u);
  EXPECT_EQ(c.devices[0].l1_bank_size, 1400000u);
  EXPECT_EQ(c.devices[0].num_dram_channels, 8u);
}

TEST(Capture, ABufferNodeNeedsOnlyItsSize) {
  // A `buffer` node is a buffer's identity; its bytes count among those allocated before the capture.
  CaptureText t;
  t.node("buffer", {{"size", 4096}});
  const Capture c = parse_capture(t.text(), "t.json");
  EXPECT_EQ(c.nodes[0].buffer.size, 4096u);
  CaptureText no_size;
  no_size.node("buffer", {{"type", "L1"}});
  EXPECT_EQ(error_of(no_size.text()), "t.json: node 0: buffer has no \"size\"");
}

TEST(Capture, UnknownNodeTypesAreCountedNotFatal) {
  CaptureText t;
  t.node("capture_start", nullptr)
      .node("tensor_reshard", {{"x", 1}})
      .node("tensor_reshard")
      .node("capture_end");
  const Capture c = parse_capture(t.text(), "t.json");
  EXPECT_EQ(c.unknown_types, (std::map<std::string, std::size_t>{{"tensor_reshard", 2}}));
  EXPECT_EQ(c.nodes[1].kind, NodeKind::unknown);
}

TEST(Capture, EveryErrorNamesTheFileTheNodeAndWhatIsWrong) {
  CaptureText skipped;
  skipped.node("capture_start");
  skipped.json().push_back({{"counter", 5}, {"node_type", "capture_end"}});
  EXPECT_EQ(
      error_of(skipped.text()),
      "t.json: node 1: \"counter\" is 5; it must equal the node's index (the list is the execution order)");

  CaptureText no_size;
  no_size.node("capture_start").node("buffer_allocate", {{"address", 0}, {"type", "L1"}, {"device_id", 0}});
  EXPECT_EQ(error_of(no_size.text()), "t.json: node 1: buffer_allocate has no \"size\"");

  CaptureText bad_size;
  bad_size.node("buffer_allocate", {{"size", "ten"}, {"address", 0}, {"type", "L1"}, {"device_id", 0}});
  EXPECT_EQ(error_of(bad_size.text()),
            "t.json: node 0: buffer_allocate \"size\" is \"ten\", not a non-negative whole number");

  CaptureText negative;
  negative.node("buffer_allocate", {{"size", -4}, {"address", 0}, {"type", "L1"}, {"device_id", 0}});
  EXPECT_EQ(error_of(negative.text()), "t.json: node 0: buffer_allocate \"size\" is negative (-4)");

  CaptureText bad_type;
  bad_type.node("buffer_allocate", {{"size", 4}, {"address", 0}, {"buffer_type", 9}, {"device_id", 0}});
  EXPECT_NE(error_of(bad_type.text()).find("node 0: buffer_allocate \"buffer_type\" is 9, not a BufferType"),
            std::string::npos);

  CaptureText bad_cores;
  bad_cores.cb(4096, "{[0-0 - 1]}");
  EXPECT_NE(error_of(bad_cores.text())
                .find("t.json: node 0: circular_buffer_allocate core range set \"{[0-0 - 1]}\""),
            std::string::npos);

  CaptureText flag;
  flag.cb(4096, "{[0-0 - 0-0]}", 0, "2");
  EXPECT_EQ(error_of(flag.text()),
            "t.json: node 0: circular_buffer_allocate \"globally_allocated\" is \"2\", not 0 or 1");

  CaptureText no_name;
  no_name.node("function_start", {{"inputs", "0"}});
  EXPECT_EQ(error_of(no_name.text()), "t.json: node 0: function_start has no \"name\"");

  EXPECT_EQ(error_of(R"([{"counter": 0}])"), "t.json: node 0: has no \"node_type\"");
  EXPECT_EQ(error_of(R"([3])"), "t.json: node 0: not an object");
  EXPECT_EQ(error_of(R"([{"counter": 0, "node_type": "tensor", "params": 7}])"),
            "t.json: node 0: \"params\" is not an object");
  EXPECT_EQ(error_of(R"({"version": 1})"),
            "t.json: neither a node list nor a report file (an object without \"graph\")");
  EXPECT_EQ(error_of("7"), "t.json: neither a node list nor a report file");
  EXPECT_NE(error_of(R"([{"counter": 0,)").find("t.json: not JSON: "), std::string::npos);
  // A number too large for any type is nlohmann's out_of_range, not a parse error (found by fuzz_capture).
  EXPECT_NE(error_of(R"([{"counter": 0, "node_type": "tensor", "params": {"size": 20222e222222}}])")
                .find("t.json: not JSON: "),
            std::string::npos);
  try {
    read_capture("/nonexistent/capture.json");
    ADD_FAILURE() << "read a file that is not there";
  } catch (const CaptureError& e) {
    EXPECT_EQ(std::string(e.what()),
              "/nonexistent/capture.json: cannot be read (no such file, or no permission)");
  }
}

std::string file_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

RC_GTEST_PROP(Capture, ACorruptedCaptureIsReadOrRefusedNeverACrash, ()) {
  static const std::string original = file_text(data("matmul_normal_mode.json"));
  std::string text = original;
  const auto edits = *rc::gen::inRange(1, 6);
  for (int i = 0; i < edits; ++i) {
    const auto at = *rc::gen::inRange<std::size_t>(0, text.size());
    const auto len = *rc::gen::inRange<std::size_t>(0, 8);
    const std::string with = *rc::gen::container<std::string>(
        *rc::gen::inRange<std::size_t>(0, 8), rc::gen::elementOf(std::string("0123456789-\"{}[],:x ")));
    text.replace(at, std::min(len, text.size() - at), with);
  }
  try {
    const Capture c = parse_capture(text, "fuzzed.json");
    RC_ASSERT(c.nodes.size() <= 64u);
  } catch (const CaptureError& e) {
    RC_ASSERT(std::string(e.what()).rfind("fuzzed.json: ", 0) == 0);
  }
}

}  // namespace
}  // namespace ttmem::replay
