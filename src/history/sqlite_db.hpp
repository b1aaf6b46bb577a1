// A thin owner of an SQLite connection and its prepared statements: errors become HistoryError with
// SQLite's own text, and nothing leaks on a throw.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "ttmem/history.hpp"

namespace ttmem::history {

class Statement {
 public:
  Statement() = default;
  Statement(sqlite3* db, std::string_view sql);
  ~Statement();
  Statement(Statement&& o) noexcept : db_(o.db_), stmt_(o.stmt_) { o.stmt_ = nullptr; }
  Statement& operator=(Statement&& o) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, std::int64_t v);
  Statement& bind(int i, std::uint64_t v) { return bind(i, static_cast<std::int64_t>(v)); }
  Statement& bind(int i, int v) { return bind(i, static_cast<std::int64_t>(v)); }
  Statement& bind(int i, unsigned v) { return bind(i, static_cast<std::int64_t>(v)); }
  Statement& bind(int i, std::string_view v);
  Statement& bind_null(int i);
  /// True while there is a row; false at the end. Throws on an error.
  bool step();
  /// Runs a statement that returns no rows, then makes it ready to run again.
  void run();
  void reset();

  std::int64_t i64(int col) const { return sqlite3_column_int64(stmt_, col); }
  std::uint64_t u64(int col) const { return static_cast<std::uint64_t>(sqlite3_column_int64(stmt_, col)); }
  bool is_null(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }
  std::string text(int col) const;

 private:
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

class Database {
 public:
  /// Opens (read_only) or opens and creates the file; throws HistoryError naming the path.
  Database(const std::string& path, bool read_only);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(std::string_view sql);
  Statement prepare(std::string_view sql) { return Statement(db_, sql); }
  sqlite3* handle() const { return db_; }
  std::int64_t last_insert_rowid() const { return sqlite3_last_insert_rowid(db_); }

 private:
  sqlite3* db_ = nullptr;
};

/// "disk full", "read-only", ...: SQLite's message with its code's meaning.
std::string sqlite_error(sqlite3* db, int rc);

}  // namespace ttmem::history
