// Queries whose answers can be large (buffers, leaks, events), answered in pages: each step does a bounded
// slice of work between batches of events, so a query over a million buffers never stalls the loop for
// more than a slice, and its memory is bounded by what it keeps, never a whole JSON document.
//
// Every page is a JSON object; arrays of later pages continue those of earlier ones, and the last page
// carries the totals. A `buffers` answer is largest first. The rows reflect the table as the scan passed:
// a buffer allocated or freed while the query runs may or may not be listed; none is listed twice.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "ledger.hpp"
#include "queries.hpp"

namespace ttmem::server {

class PagedQuery {
 public:
  virtual ~PagedQuery() = default;
  /// Does one bounded slice of work. Appends a page's JSON text to `page` when one is ready (not every
  /// step yields one). Returns true once the last page has been appended. Throws QueryFailure when the
  /// query cannot be answered (the answer is then that error).
  virtual bool step(const Registry& registry, std::string& page) = 0;
  /// After the last page: frees a bounded part of what the query holds (returning tens of megabytes to
  /// the system at once would stall the loop); true once nothing is left.
  virtual bool release_some() { return true; }
};

/// Limits of one paged query.
struct PagedQueryLimits {
  std::size_t max_rows = 4'000'000;  ///< matching buffers a `buffers` query may collect (48 bytes each)
};

std::unique_ptr<PagedQuery> buffers_query(const views::BufferQuery& filter, PagedQueryLimits limits = {});
/// Leak and orphan records newest first; only those numbered above q's bounds.
std::unique_ptr<PagedQuery> leaks_query(const views::LeaksQuery& q);
std::unique_ptr<PagedQuery> events_query(const Registry& registry, std::uint64_t limit);

/// Runs a paged query to its end: its pages' JSON texts (tests).
std::vector<std::string> run_paged_query(PagedQuery& query, const Registry& registry);

}  // namespace ttmem::server
