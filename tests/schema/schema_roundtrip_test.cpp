// Every view, and every query, survives JSON: from_json(to_json(v)) == v for arbitrary values.
#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

#include <nlohmann/json.hpp>

#include "ttmem/schema.hpp"
#include "view_generators.hpp"

namespace ttmem::test {
namespace {

template <typename View>
void round_trips(const View& v) {
  const std::string text = schema::to_json(v);
  RC_ASSERT(schema::from_json<View>(text) == v);
}

RC_GTEST_PROP(SchemaRoundTrip, Stats, (const views::Stats& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, DeviceList, (const views::DeviceList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, BufferList, (const views::BufferList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, OpList, (const views::OpList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, Leaks, (const views::Leaks& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, EventList, (const views::EventList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, StreamEvent, (const views::StreamEvent& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, OomList, (const views::OomList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, AddressMap, (const views::AddressMap& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, ServerInfo, (const views::ServerInfo& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, HistoryList, (const views::HistoryList& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, Timeline, (const views::Timeline& v)) {
  round_trips(v);
}
RC_GTEST_PROP(SchemaRoundTrip, Query, (const views::Query& q)) {
  RC_ASSERT(schema::query_from_json(schema::to_json(q)) == q);
}

template <typename View>
void indents_as_nlohmann_does(const View& v) {
  const std::string text = schema::to_json(v);
  RC_ASSERT(schema::pretty(text) == nlohmann::ordered_json::parse(text).dump(2));  // keys in written order
}

RC_GTEST_PROP(SchemaPretty, IndentsAsTheJsonLibraryDoes,
              (const views::Stats& s, const views::BufferList& b, const views::ServerInfo& i,
               const views::Leaks& l)) {
  indents_as_nlohmann_does(s);
  indents_as_nlohmann_does(b);
  indents_as_nlohmann_does(i);
  indents_as_nlohmann_does(l);
}

RC_GTEST_PROP(SchemaRoundTrip, PagesOfAListingJoinToTheWhole, (const views::BufferList& whole)) {
  // The server sends a long listing as pages, the total on the last: joined, they are the listing.
  const auto cut = *rc::gen::inRange<std::size_t>(0, whole.buffers.size() + 1);
  views::BufferList first{
      {whole.buffers.begin(), whole.buffers.begin() + static_cast<std::ptrdiff_t>(cut)}, 0, {}, 0};
  views::BufferList last{{whole.buffers.begin() + static_cast<std::ptrdiff_t>(cut), whole.buffers.end()},
                         whole.total,
                         whole.groups,
                         whole.total_groups};
  views::BufferList joined;
  schema::append_page(joined, schema::from_json<views::BufferList>(schema::to_json(first)));
  schema::append_page(joined, schema::from_json<views::BufferList>(schema::to_json(last)));
  RC_ASSERT(joined == whole);
}

RC_GTEST_PROP(SchemaRoundTrip, InvalidUtf8BecomesReplacementCharactersNeverAnError,
              (const std::string& raw)) {
  // Names and sites come from clients as bytes: whatever they are, the text is valid JSON and decodes.
  views::BufferList v{{views::BufferRow{}}, 1, {}, 0};
  v.buffers[0].name = raw;
  v.buffers[0].site = raw;
  const auto back = schema::from_json<views::BufferList>(schema::to_json(v));
  RC_ASSERT(back.buffers.size() == 1u);
  views::Leaks l{{views::Leak{}}, {}};
  l.leaks[0].site = raw;
  RC_ASSERT(schema::from_json<views::Leaks>(schema::to_json(l)).leaks.size() == 1u);
}

}  // namespace
}  // namespace ttmem::test
