// The one place views meet JSON: every view of ttmem/views.hpp to the JSON text of the wire and back, and
// the queries a tool sends. The server encodes with it, the query client decodes with it, so the shape of
// an answer is written down once (and documented in docs/protocol.md, "Queries"). The JSON library stays
// inside: this header shows only text and views.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "ttmem/views.hpp"

namespace ttmem::schema {

/// Text that is not the JSON a view or query is written as: says which field is wrong, and how.
class SchemaError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// ---- views to JSON text -------------------------------------------------------------------------------
// Strings from clients (sites, names) may hold invalid UTF-8: it becomes U+FFFD, never an exception.

std::string to_json(const views::Stats& v);
std::string to_json(const views::DeviceList& v);
std::string to_json(const views::BufferList& v);
std::string to_json(const views::Leaks& v);
std::string to_json(const views::EventList& v);
std::string to_json(const views::StreamEvent& v);
std::string to_json(const views::OomList& v);
std::string to_json(const views::AddressMap& v);
std::string to_json(const views::OpList& v);
std::string to_json(const views::ServerInfo& v);
std::string to_json(const views::HistoryList& v);
std::string to_json(const views::Timeline& v);
/// The same JSON text indented for people (`ttmem ... --json`), as the JSON library's dump(2) would; a linear
/// pass over the text that builds no document (a million-row listing is indented as it is written).
/// `json_text` must be valid JSON, as every to_json answer is.
void write_pretty(std::ostream& out, std::string_view json_text);
std::string pretty(std::string_view json_text);

/// The error answer of a failed query: {"error": text, "code": name}.
std::string error_json(ErrorCode code, std::string_view text);
struct ErrorAnswer {
  ErrorCode code = ErrorCode::internal;
  std::string text;
};
/// Never throws: an unreadable error answer is an internal error that says so.
ErrorAnswer error_from_json(std::string_view text);

// ---- JSON text to views ---------------------------------------------------------------------------------
// Each throws SchemaError. Unknown fields are ignored (a newer server may send more).

template <typename View>
View from_json(std::string_view text);
/// Adds a later page of a paged answer (buffers, leaks, events) to what came before: arrays continue,
/// totals come with the last page.
void append_page(views::BufferList& to, views::BufferList&& page);
void append_page(views::Leaks& to, views::Leaks&& page);
void append_page(views::EventList& to, views::EventList&& page);

/// Joins the pages of any paged answer into one JSON text, for tools that pass answers through untyped
/// (`ttmem query`, the Python module): arrays continue, other fields are replaced by later pages.
class PageJoiner {
 public:
  PageJoiner();
  ~PageJoiner();
  PageJoiner(const PageJoiner&) = delete;
  PageJoiner& operator=(const PageJoiner&) = delete;
  /// Throws SchemaError if the page is not a JSON object.
  void add(std::string_view page);
  std::string text() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ---- queries --------------------------------------------------------------------------------------------

std::string to_json(const views::Query& q);
/// A query's text: a JSON object with a string field "type" and the fields of that type. Throws
/// SchemaError naming what is wrong (unknown type, with the known ones; a field of the wrong type or out
/// of range).
views::Query query_from_json(std::string_view text);
/// "stats, buffers, leaks, devices, events, info, subscribe"
std::string query_type_names();

// ---- the buffers listing, fast ----------------------------------------------------------------------
// A million-row answer is encoded row by row into pages, with each distinct name and site escaped once.

/// `text` as a JSON string literal; invalid UTF-8 becomes U+FFFD (clients send arbitrary bytes).
void append_json_string(std::string& out, std::string_view text);

/// One row whose name and site are JSON string literals already (append_json_string).
struct BufferRowText {
  pid_t pid = 0;
  std::string_view name_json;
  std::uint16_t device = 0;
  BufferType type = BufferType::DRAM;
  AllocKind kind = AllocKind::owning;
  std::uint64_t id = 0;
  std::uint64_t size = 0;
  std::uint64_t address = 0;
  std::string_view site_json;
  std::string_view scope_json;  ///< empty: no op scope (written as "")
  bool internal = false;
  std::uint64_t age_ms = 0;
};

/// Writes a page of a BufferList: begin, rows, end (with the total on the last page).
class BufferPageWriter {
 public:
  explicit BufferPageWriter(std::string& out);
  void row(const BufferRowText& r);
  /// `groups`: a grouped query's answer (it then has no rows), with how many groups there were.
  void end(std::optional<std::uint64_t> total, const std::vector<views::BufferGroup>& groups = {},
           std::uint64_t total_groups = 0);

 private:
  std::string& out_;
  bool first_ = true;
};

}  // namespace ttmem::schema
