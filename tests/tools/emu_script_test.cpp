// The ttmem-emu script parser on its own.
#include <gtest/gtest.h>

#include "script.hpp"

namespace ttmem::emu_tool {
namespace {

TEST(EmuScript, SizesAcceptBinarySuffixes) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("4K"), 4096u);
  EXPECT_EQ(parse_size("4k"), 4096u);
  EXPECT_EQ(parse_size("1M"), 1u << 20);
  EXPECT_EQ(parse_size("1MiB"), 1u << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_EQ(parse_size(""), std::nullopt);
  EXPECT_EQ(parse_size("K"), std::nullopt);
  EXPECT_EQ(parse_size("-1"), std::nullopt);
  EXPECT_EQ(parse_size("1T"), std::nullopt);
  EXPECT_EQ(parse_size("99999999999999999999G"), std::nullopt);
  EXPECT_EQ(parse_size("17179869184G"), std::nullopt);  // overflows 64 bits
}

TEST(EmuScript, TokensHonourQuotesAndComments) {
  EXPECT_EQ(tokenize("alloc a DRAM 4K site=\"my tensor\" # note", 1),
            (std::vector<std::string>{"alloc", "a", "DRAM", "4K", "site=my tensor"}));
  EXPECT_TRUE(tokenize("   # only a comment", 1).empty());
}

TEST(EmuScript, RepeatBlocksNest) {
  const auto script =
      parse_script("mesh n150\nrepeat 2\n repeat 3\n  alloc a DRAM 4K\n  free a\n end\nend\nclose\n");
  ASSERT_EQ(script.size(), 3u);
  ASSERT_EQ(script[1].verb, "repeat");
  EXPECT_EQ(script[1].repeat_count, 2u);
  ASSERT_EQ(script[1].body.size(), 1u);
  EXPECT_EQ(script[1].body[0].repeat_count, 3u);
  EXPECT_EQ(script[1].body[0].body.size(), 2u);
  EXPECT_EQ(script[1].body[0].body[1].line, 5);
}

TEST(EmuScript, ProgramCollectsEveryCircularBuffer) {
  const auto script = parse_script("program p cb=4Kx3 cb=64K cores=8\n");
  EXPECT_EQ(script[0].cbs, (std::vector<std::string>{"4Kx3", "64K"}));
  EXPECT_EQ(script[0].options.at("cores"), "8");
}

TEST(EmuScript, ErrorsCarryTheirLine) {
  try {
    parse_script("mesh n150\n\n# fine\nalloc a DRAM 4K page=x\n");
    FAIL();
  } catch (const ScriptError& e) {
    EXPECT_EQ(e.line(), 4);
    EXPECT_STREQ(e.what(), "page 'x' is not a size (use bytes or a K, M, G suffix: 4096, 4K, 1M)");
  }
  EXPECT_THROW(parse_script("program p cb=4Kxq\n"), ScriptError);
  EXPECT_THROW(parse_script("alloc a DRAM 4K page=1K page=2K\n"), ScriptError);
  EXPECT_THROW(parse_script("sleep soon\n"), ScriptError);
}

}  // namespace
}  // namespace ttmem::emu_tool
