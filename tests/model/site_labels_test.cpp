// The (site, op scope) labels of live records: every pair comes back as it went in, a pair without a scope
// is its site's own id, and a full table still keeps the site.
#include "site_labels.hpp"

#include <gtest/gtest.h>
#include <rapidcheck/gtest.h>

namespace ttmem::model {
namespace {

RC_GTEST_PROP(SiteLabels, EveryPairComesBackAsItWentIn, ()) {
  SiteLabels labels;
  const auto pairs = *rc::gen::container<std::vector<std::pair<std::uint32_t, std::uint32_t>>>(
      rc::gen::pair(rc::gen::inRange<std::uint32_t>(0, 50), rc::gen::inRange<std::uint32_t>(0, 20)));
  std::vector<std::uint32_t> given;
  for (const auto& [site, scope] : pairs) given.push_back(labels.label(site, scope, 1'000'000));
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    const auto [site, scope] = pairs[i];
    RC_ASSERT(labels.at(given[i]) == (SiteAndScope{site, scope}));
    if (scope == 0) RC_ASSERT(given[i] == site);
    // The same pair always gets the same label, whatever came between.
    RC_ASSERT(labels.label(site, scope, 1'000'000) == given[i]);
  }
}

TEST(SiteLabels, SiteIdsWithThePairBitAreNoSite) {
  SiteLabels labels;
  EXPECT_EQ(labels.label(SiteLabels::kPairBit | 5, 0, 10), 0u);
  EXPECT_EQ(labels.at(labels.label(SiteLabels::kPairBit | 5, 3, 10)), (SiteAndScope{0, 3}));
}

TEST(SiteLabels, AFullTableKeepsTheSiteAndDropsOnlyTheScope) {
  SiteLabels labels;
  const std::uint32_t first = labels.label(1, 2, 1);
  EXPECT_EQ(labels.at(first), (SiteAndScope{1, 2}));
  EXPECT_EQ(labels.label(3, 4, 1), 3u);
  EXPECT_EQ(labels.label(1, 2, 1), first);
  EXPECT_EQ(labels.pairs(), 1u);
}

TEST(SiteLabels, AnUnknownLabelIsNoSiteAndNoScope) {
  SiteLabels labels;
  EXPECT_EQ(labels.at(SiteLabels::kPairBit | 9), (SiteAndScope{}));
}

}  // namespace
}  // namespace ttmem::model
