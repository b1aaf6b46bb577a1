// The server's JSON answers over the model: buffer listings (paged), filters and their errors.
#include "queries.hpp"

#include <gtest/gtest.h>

#include "query_pages.hpp"
#include "raw_client.hpp"

namespace ttmem::server {
namespace {

using proto::AllocKind;
using proto::BufferType;

using test::alloc_event;

nlohmann::json buffers_json(const Registry& r, const BufferFilter& f) {
  return run_paged_query(*buffers_query(f), r);
}

TEST(Queries, BufferListingsFilterAndSortBySize) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.sites(p, {{1, "s"}});
  r.event(p, alloc_event(0, 1, 100, BufferType::DRAM, AllocKind::owning, 1));
  r.event(p, alloc_event(0, 2, 300, BufferType::L1));
  r.event(p, alloc_event(1, 3, 200, BufferType::L1, AllocKind::circular_buffer));
  auto all = buffers_json(r, {});
  ASSERT_EQ(all["buffers"].size(), 3u);
  EXPECT_EQ(all["buffers"][0]["size"], 300);
  EXPECT_EQ(all["buffers"][2]["site"], "s");
  BufferFilter f;
  f.type = BufferType::L1;
  EXPECT_EQ(buffers_json(r, f)["buffers"].size(), 2u);
  f.kind = AllocKind::circular_buffer;
  EXPECT_EQ(buffers_json(r, f)["buffers"][0]["id"], 3);
  BufferFilter g;
  g.device = 0;
  g.limit = 1;
  const auto limited = buffers_json(r, g);
  EXPECT_EQ(limited["buffers"].size(), 1u);
  EXPECT_EQ(limited["total"], 2);
  for (const auto& bad : {nlohmann::json{{"buffer_type", "HBM"}}, nlohmann::json{{"device", "zero"}},
                          nlohmann::json{{"limit", -1}}, nlohmann::json{{"kind", "weights"}}}) {
    try {
      parse_buffer_filter(bad);
      ADD_FAILURE() << bad.dump() << " was accepted";
    } catch (const QueryFailure& e) {
      EXPECT_EQ(e.code(), ErrorCode::bad_query) << bad.dump();
      EXPECT_EQ(query_error_json(e.code(), e.what())["code"], "bad_query");
    }
  }
}

}  // namespace
}  // namespace ttmem::server
