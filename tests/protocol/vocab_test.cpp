// The vocabulary's tables against their enums: every value once, every name once, names and wire bytes
// round-trip, and nothing outside the table is accepted from the wire or from a person.
#include "ttmem/vocab.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <string>

#include "ttmem/units.hpp"

namespace ttmem {
namespace {

template <typename E>
void expect_table_covers_enum(const char* enum_name) {
  SCOPED_TRACE(enum_name);
  using Rep = std::underlying_type_t<E>;
  std::set<Rep> values;
  std::set<std::string> names;
  for (E v : enum_values<E>()) {
    EXPECT_TRUE(values.insert(static_cast<Rep>(v)).second) << "value listed twice: " << +static_cast<Rep>(v);
    const std::string name(to_string(v));
    EXPECT_FALSE(name.empty());
    EXPECT_TRUE(names.insert(name).second) << "name listed twice: " << name;
    EXPECT_EQ(parse_enum<E>(name), v) << name;
  }
  EXPECT_EQ(values.size(), kEnumCount<E>);
  // Every raw value the representation can hold (all of them for 8 bits, the first 64 Ki for 16): those in
  // the table decode to themselves, all others are refused.
  const std::uint32_t last = std::min<std::uint32_t>(std::numeric_limits<Rep>::max(), 65535);
  for (std::uint32_t raw = 0; raw <= last; ++raw) {
    const auto v = enum_from<E>(static_cast<Rep>(raw));
    EXPECT_EQ(v.has_value(), values.contains(static_cast<Rep>(raw))) << raw;
    if (v) {
      EXPECT_EQ(static_cast<Rep>(*v), raw);
    }
  }
  EXPECT_FALSE(parse_enum<E>("no such name"));
  EXPECT_FALSE(parse_enum<E>(""));
}

TEST(Vocabulary, EveryTableCoversItsEnumOnce) {
  expect_table_covers_enum<BufferType>("BufferType");
  expect_table_covers_enum<Slot>("Slot");
  expect_table_covers_enum<BufferLayout>("BufferLayout");
  expect_table_covers_enum<AllocKind>("AllocKind");
  expect_table_covers_enum<ReleaseReason>("ReleaseReason");
  expect_table_covers_enum<EventOp>("EventOp");
  expect_table_covers_enum<ClosePhase>("ClosePhase");
  expect_table_covers_enum<Arch>("Arch");
  expect_table_covers_enum<Role>("Role");
  expect_table_covers_enum<DeviceUseState>("DeviceUseState");
  expect_table_covers_enum<MessageType>("MessageType");
  expect_table_covers_enum<ErrorCode>("ErrorCode");
}

TEST(Vocabulary, SlotsAreTheManagedTypesPlusCircularBuffers) {
  // CBs live in L1 but are counted apart; every other slot is the memory type of the same name.
  for (BufferType t : kManagedTypes) {
    const Slot s = slot_of(t, AllocKind::owning);
    EXPECT_EQ(to_string(s), to_string(t));
    EXPECT_EQ(memory_of(s), t);
  }
  EXPECT_EQ(slot_of(BufferType::L1, AllocKind::circular_buffer), Slot::CB);
  EXPECT_EQ(memory_of(Slot::CB), BufferType::L1);
  EXPECT_EQ(kSlots, kManagedTypes.size() + 1);
  EXPECT_EQ(names_of(kManagedTypes), "DRAM, L1, L1_SMALL, TRACE");
}

TEST(Units, SizesAndByteCountsReadAndPrintAsPeopleWriteThem) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("4K"), 4096u);
  EXPECT_EQ(parse_size("4kib"), 4096u);
  EXPECT_EQ(parse_size("16M"), 16u << 20);
  EXPECT_EQ(parse_size("2G"), 2ull << 30);
  EXPECT_FALSE(parse_size("12 GB"));  // no space inside a size
  EXPECT_FALSE(parse_size("K"));
  EXPECT_FALSE(parse_size("4T"));
  EXPECT_FALSE(parse_size("17179869184G"));  // past 2^64 - 1
  EXPECT_EQ(human_bytes(512), "512 B");
  EXPECT_EQ(human_bytes(4096), "4.0 KiB");
  EXPECT_EQ(human_bytes(3ull << 29), "1.5 GiB");
  EXPECT_EQ(human_bytes(~0ull), "16.0 EiB");
  const std::uint64_t before = monotonic_ns();
  EXPECT_LE(before, monotonic_ns());
}

}  // namespace
}  // namespace ttmem
