// What a query's failure says: the code its error reply carries. Requests and answers themselves are
// typed (ttmem/views.hpp) and written as JSON by the schema (ttmem/schema.hpp).
#pragma once

#include <stdexcept>
#include <string>

#include "ledger.hpp"
#include "ttmem/views.hpp"

namespace ttmem::server {

/// A query that cannot be answered, with the code its error reply carries: `bad_query` (the request is
/// wrong: say what to change), `limit_exceeded` (too large an answer: narrow it), `internal`.
class QueryFailure : public std::runtime_error {
 public:
  QueryFailure(ErrorCode code, const std::string& what) : std::runtime_error(what), code_(code) {}
  ErrorCode code() const { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace ttmem::server
