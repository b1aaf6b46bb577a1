// The server's paged answers over the model: buffer listings filtered and sorted, their pages read back
// through the schema, and requests that are refused with the reason.
#include "queries.hpp"

#include <gtest/gtest.h>

#include "query_pages.hpp"
#include "raw_client.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::server {
namespace {

using proto::AllocKind;
using proto::BufferType;

using test::alloc_event;

views::BufferList buffers(const Registry& r, const views::BufferQuery& f) {
  views::BufferList out;
  for (auto& page : run_paged_query(*buffers_query(f), r))
    schema::append_page(out, schema::from_json<views::BufferList>(page));
  return out;
}

TEST(Queries, BufferListingsFilterAndSortBySize) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  r.sites(p, {{1, "s"}});
  r.event(p, alloc_event(0, 1, 100, BufferType::DRAM, AllocKind::owning, 1));
  r.event(p, alloc_event(0, 2, 300, BufferType::L1));
  r.event(p, alloc_event(1, 3, 200, BufferType::L1, AllocKind::circular_buffer));
  auto all = buffers(r, {});
  ASSERT_EQ(all.buffers.size(), 3u);
  EXPECT_EQ(all.total, 3u);
  EXPECT_EQ(all.buffers[0].size, 300u);
  EXPECT_EQ(all.buffers[2].site, "s");
  EXPECT_EQ(all.buffers[2].name, "p");
  views::BufferQuery f;
  f.type = BufferType::L1;
  EXPECT_EQ(buffers(r, f).buffers.size(), 2u);
  f.kind = AllocKind::circular_buffer;
  EXPECT_EQ(buffers(r, f).buffers[0].id, 3u);
  views::BufferQuery g;
  g.device = 0;
  g.limit = 1;
  const auto limited = buffers(r, g);
  EXPECT_EQ(limited.buffers.size(), 1u);
  EXPECT_EQ(limited.total, 2u);
}

TEST(Queries, ManyBuffersComeInSeveralPagesThatJoinInOrder) {
  Registry r;
  ProcessState& p = r.process(1, 1, 0, "p");
  for (std::uint64_t i = 1; i <= 1000; ++i) r.event(p, alloc_event(0, i, 4096 + i));
  const auto pages = run_paged_query(*buffers_query({}), r);
  EXPECT_GT(pages.size(), 1u);
  views::BufferList all;
  for (const auto& page : pages) schema::append_page(all, schema::from_json<views::BufferList>(page));
  ASSERT_EQ(all.buffers.size(), 1000u);
  EXPECT_EQ(all.total, 1000u);
  for (std::size_t i = 1; i < all.buffers.size(); ++i)
    EXPECT_GT(all.buffers[i - 1].size, all.buffers[i].size);
}

TEST(Queries, BadBufferFiltersAreRefusedWithTheFieldNamed) {
  for (const char* bad : {R"({"type":"buffers","buffer_type":"HBM"})",
                          R"({"type":"buffers","device":"zero"})", R"({"type":"buffers","limit":-1})",
                          R"({"type":"buffers","kind":"weights"})", R"({"type":"buffers","device":70000})"}) {
    try {
      schema::query_from_json(bad);
      ADD_FAILURE() << bad << " was accepted";
    } catch (const schema::SchemaError& e) {
      const std::string what = e.what();
      EXPECT_TRUE(what.find("buffer_type") != std::string::npos || what.find("device") != std::string::npos ||
                  what.find("limit") != std::string::npos || what.find("kind") != std::string::npos)
          << what;
    }
  }
}

}  // namespace
}  // namespace ttmem::server
