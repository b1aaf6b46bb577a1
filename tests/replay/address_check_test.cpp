// The address check: TT-Metal's NORMAL-mode matmul capture replayed through the emulator matches every
// address TT-Metal's allocator chose (the output tensor, the three CBs, the kernel binary), with the chip's
// geometry read from the capture; a wrong address is reported as such; NO_DISPATCH captures are refused.
#include "ttmem/replay/address_check.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "capture_text.hpp"

namespace ttmem::replay {
namespace {

using test::CaptureText;

Capture data(const std::string& name) {
  return read_capture(std::string(TTMEM_TEST_DATA_DIR) + "/traces/" + name);
}

TEST(AddressCheck, EveryAddressOfTheNormalModeMatmulMatchesTheEmulator) {
  const AddressCheck c = check_addresses(data("matmul_normal_mode.json"), {});
  // 1024 pages of 2048 B at 10 pages per bank: 103..113 banks; Blackhole's 13 columns do not fit, 11 do.
  EXPECT_EQ(c.grid_x, 11u);
  EXPECT_EQ(c.grid_y, 10u);
  EXPECT_EQ(c.l1_base, 111616u);  // the first CB
  ASSERT_EQ(c.rows.size(), 5u);
  const std::vector<std::pair<std::size_t, std::uint64_t>> expected = {
      {8, 1552384}, {12, 111616}, {13, 242688}, {14, 373760}, {16, 4278185984}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(c.rows[i].node, expected[i].first);
    EXPECT_EQ(c.rows[i].recorded, expected[i].second);
    ASSERT_TRUE(c.rows[i].emulated) << c.rows[i].note;
    EXPECT_EQ(*c.rows[i].emulated, expected[i].second) << c.rows[i].what;
    EXPECT_TRUE(c.rows[i].match);
  }
  EXPECT_EQ(c.rows[4].what, "kernel binary, 22528 B (DRAM)");
  EXPECT_EQ(c.matched, 5u);
  EXPECT_EQ(c.mismatched, 0u);
  EXPECT_EQ(c.buffers_before_capture, 1u);
  std::ostringstream text;
  write_text(text, c);
  EXPECT_NE(text.str().find("5 of 5 match, 0 differ, 0 not placed"), std::string::npos) << text.str();
  const auto json = nlohmann::json::parse(to_json(c));
  EXPECT_EQ(json["grid"]["x"], 11);
  EXPECT_EQ(json["rows"][4]["emulated"], 4278185984ull);
}

TEST(AddressCheck, NoDispatchCapturesHaveNothingToCheck) {
  try {
    check_addresses(data("matmul_l1_out.json"), {});
    ADD_FAILURE() << "checked a NO_DISPATCH capture";
  } catch (const CaptureError& e) {
    EXPECT_NE(std::string(e.what()).find("a NO_DISPATCH capture: every address in it is 0"),
              std::string::npos);
  }
}

TEST(AddressCheck, AnAddressTheEmulatorWouldNotChooseIsReported) {
  CaptureText t;
  t.buffer(64 * 1024).node("buffer_allocate",
                           {{"size", 65536},
                            {"address", 1000000},
                            {"type", "L1"},
                            {"buffer_type", 1},
                            {"layout", "INTERLEAVED"},
                            {"page_size", 1024},
                            {"num_cores", 0},
                            {"max_size_per_bank", 1024},
                            {"device_id", 0}},
                           nlohmann::json::array({0}));
  t.node("circular_buffer_deallocate_all", {{"device_id", 0}})
      .node("circular_buffer_allocate", {{"size", 4096},
                                         {"address", 200000},
                                         {"core_range_set", "{[0-0 - 7-0]}"},
                                         {"globally_allocated", "0"},
                                         {"device_id", 0}})
      .node("circular_buffer_allocate", {{"size", 2048},
                                         {"address", 300000},
                                         {"core_range_set", "{[0-0 - 7-0]}"},
                                         {"globally_allocated", "1"},
                                         {"device_id", 0}});
  AddressCheckOptions options;
  options.arch = Arch::wormhole_b0;
  options.grid_x = 8;
  options.grid_y = 8;
  const AddressCheck c = check_addresses(parse_capture(t.text(), "t.json"), options);
  EXPECT_EQ(c.grid_source, "given");
  EXPECT_EQ(c.l1_base, 200000u);
  ASSERT_EQ(c.rows.size(), 3u);
  // 64 pages over 64 banks, one 1024-B page each, top-down from the top of a Wormhole core's L1.
  EXPECT_FALSE(c.rows[0].match);
  ASSERT_TRUE(c.rows[0].emulated);
  EXPECT_EQ(*c.rows[0].emulated, 1499136u - 1024);
  EXPECT_TRUE(c.rows[1].match);  // placed on the capture's own core range
  EXPECT_TRUE(c.rows[1].note.empty());
  EXPECT_FALSE(c.rows[2].emulated);  // tensor-backed
  EXPECT_EQ(c.matched, 1u);
  EXPECT_EQ(c.mismatched, 1u);
  EXPECT_EQ(c.skipped, 1u);
}

}  // namespace
}  // namespace ttmem::replay
