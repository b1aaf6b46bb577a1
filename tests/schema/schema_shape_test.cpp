// The JSON the schema writes is the documented one (docs/protocol.md, "Queries"), and JSON that is not a
// view is refused with the field named.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "ttmem/schema.hpp"

namespace ttmem::test {
namespace {

using nlohmann::json;

template <typename View>
std::string refusal(std::string_view text) {
  try {
    schema::from_json<View>(text);
  } catch (const schema::SchemaError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(SchemaShape, StatsAreKeyedBySlotName) {
  views::Stats s;
  auto& d = s.devices.emplace_back();
  d.id = 3;
  d.arch = Arch::blackhole;
  d.memory[index(Slot::CB)] = {10, 20, 1, 1000, {}};
  auto& p = s.processes.emplace_back();
  p.pid = 42;
  p.name = "python";
  p.bytes[index(Slot::L1_SMALL)] = 7;
  s.active_allocations = 1;
  const json j = json::parse(schema::to_json(s));
  EXPECT_EQ(j["devices"][0]["arch"], "blackhole");
  EXPECT_EQ(j["devices"][0]["memory"]["CB"],
            (json{{"used", 10}, {"peak", 20}, {"buffers", 1}, {"total", 1000}}));
  EXPECT_EQ(j["processes"][0]["L1_SMALL"], 7);
  EXPECT_EQ(j["processes"][0]["name"], "python");
  EXPECT_EQ(j["active_allocations"], 1);
  d.arch.reset();
  EXPECT_TRUE(json::parse(schema::to_json(s))["devices"][0]["arch"].is_null());  // not announced yet
}

TEST(SchemaShape, ABufferRowHasItsFieldsInTheDocumentedOrder) {
  views::BufferList v{{{7, "p", 1, BufferType::L1, AllocKind::circular_buffer, 9, 4096, 0x1000, "a.py:3",
                        "fwd/mm", true, 12}},
                      1,
                      {},
                      0};
  EXPECT_EQ(schema::to_json(v),
            R"({"buffers":[{"pid":7,"name":"p","device":1,"type":"L1","kind":"cb","id":9,"size":4096,)"
            R"("address":4096,"site":"a.py:3","scope":"fwd/mm","internal":true,"age_ms":12}],"total":1})");
}

TEST(SchemaShape, LeaksSayTheirCauseInWords) {
  views::Leaks v;
  v.leaks.push_back({});
  v.leaks.push_back({});
  v.leaks[1].swept_by_close = false;
  const json j = json::parse(schema::to_json(v));
  EXPECT_EQ(j["leaks"][0]["cause"], "held at close (swept)");
  EXPECT_EQ(j["leaks"][1]["cause"], "never released by the close sequence");
}

TEST(SchemaShape, StreamEventsSayWhatTheyAre) {
  views::EventRow free_event;
  free_event.op = EventOp::free;
  free_event.reason = ReleaseReason::close_leak;
  json j = json::parse(schema::to_json(views::StreamEvent(free_event)));
  EXPECT_EQ(j["event"], "free");
  EXPECT_EQ(j["reason"], "close_leak");
  EXPECT_FALSE(json::parse(schema::to_json(views::StreamEvent(views::EventRow{}))).contains("reason"));
  EXPECT_EQ(json::parse(schema::to_json(views::StreamEvent(views::Leak{})))["event"], "leak");
  EXPECT_EQ(json::parse(schema::to_json(views::StreamEvent(views::Orphan{})))["event"], "orphan");
  EXPECT_EQ(schema::to_json(views::StreamEvent(views::Dropped{5})), R"({"count":5,"event":"dropped"})");
}

TEST(SchemaShape, AnswersThatAreNotViewsAreRefusedWithTheFieldNamed) {
  EXPECT_NE(refusal<views::Stats>("[1,2]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(refusal<views::Stats>("{").find("not JSON"), std::string::npos);
  // A number past a double's range is the parser's own error (found by fuzz_schema): still a SchemaError.
  EXPECT_NE(
      refusal<views::Stats>(R"({"devices":[],"processes":[],"active_allocations":640e496})").find("not JSON"),
      std::string::npos);
  EXPECT_NE(refusal<views::Stats>(R"({"devices":[],"processes":[]})").find("active_allocations"),
            std::string::npos);
  EXPECT_NE(
      refusal<views::Stats>(R"({"devices":[],"processes":[],"active_allocations":-1})").find("negative"),
      std::string::npos);
  EXPECT_NE(refusal<views::BufferList>(R"({"buffers":[{"pid":"seven"}]})").find("'pid'"), std::string::npos);
  EXPECT_NE(refusal<views::Leaks>(R"({"leaks":[],"orphans":{}})").find("'orphans'"), std::string::npos);
  EXPECT_NE(refusal<views::StreamEvent>(R"({"event":"alloc","type":"HBM"})").find("'pid'"),
            std::string::npos);
  // A newer server may say more: fields this tool does not know are left alone.
  EXPECT_EQ(refusal<views::EventList>(R"({"events":[],"next":"something new"})"), "accepted");
}

TEST(SchemaShape, QueriesThatAreWrongSayWhatToChange) {
  auto refused = [](std::string_view text) {
    try {
      schema::query_from_json(text);
    } catch (const schema::SchemaError& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(refused(R"({"type":"statz"})").find("stats, buffers, leaks, devices, events, info, subscribe"),
            std::string::npos);
  EXPECT_NE(refused(R"({"kind":"stats"})").find("string field 'type'"), std::string::npos);
  EXPECT_NE(refused(R"({"type":"events","limit":-3})").find("'limit'"), std::string::npos);
  EXPECT_NE(refused(R"({"type":"info","reset_loop":"yes"})").find("'reset_loop'"), std::string::npos);
  EXPECT_NE(refused("not json").find("not JSON"), std::string::npos);
  EXPECT_NE(refused(R"({"type":"events","limit":1e999})").find("not JSON"), std::string::npos);
  EXPECT_EQ(refused(R"({"type":"buffers","buffer_type":"L1_SMALL","limit":5,"device":null})"), "accepted");
}

TEST(SchemaShape, ErrorAnswersKeepTheirCode) {
  const auto e = schema::error_from_json(schema::error_json(ErrorCode::limit_exceeded, "narrow it"));
  EXPECT_EQ(e.code, ErrorCode::limit_exceeded);
  EXPECT_EQ(e.text, "narrow it");
  EXPECT_EQ(schema::error_from_json("garbage").code, ErrorCode::internal);
  EXPECT_EQ(schema::error_from_json(R"({"error":"x","code":"no_such_code"})").code, ErrorCode::internal);
}

TEST(SchemaShape, PagesOfAnyAnswerJoinUntyped) {
  schema::PageJoiner j;
  j.add(R"({"buffers":[1,2]})");
  j.add(R"({"buffers":[3],"total":3})");
  EXPECT_EQ(j.text(), R"({"buffers":[1,2,3],"total":3})");
  EXPECT_THROW(j.add("[]"), schema::SchemaError);
}

}  // namespace
}  // namespace ttmem::test
