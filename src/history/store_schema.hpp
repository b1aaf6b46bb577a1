// The history database's tables, in one place for the writer and the readers (docs/history.md shows them).
// Times are CLOCK_REALTIME nanoseconds; enums are their wire numbers (ttmem/vocab.hpp).
#pragma once

namespace ttmem::history {

inline constexpr int kSchemaVersion = 1;

inline constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records(
  seq INTEGER PRIMARY KEY, time_ns INT NOT NULL, kind INT NOT NULL, pid INT NOT NULL, name TEXT NOT NULL,
  command TEXT NOT NULL, device INT, site TEXT NOT NULL, scope TEXT NOT NULL, bytes INT NOT NULL,
  buffers INT NOT NULL, summary TEXT NOT NULL, detail TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS records_by_time ON records(time_ns);
CREATE TABLE IF NOT EXISTS processes(
  id INTEGER PRIMARY KEY, pid INT NOT NULL, start_time INT NOT NULL, name TEXT NOT NULL,
  UNIQUE(pid, start_time));
CREATE TABLE IF NOT EXISTS series(
  id INTEGER PRIMARY KEY, device INT NOT NULL, slot INT NOT NULL, process INT NOT NULL,
  UNIQUE(device, slot, process));
CREATE TABLE IF NOT EXISTS samples(
  tier INT NOT NULL, series INT NOT NULL, t INT NOT NULL, bytes INT NOT NULL, peak INT NOT NULL,
  PRIMARY KEY(tier, series, t)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS labels(id INTEGER PRIMARY KEY, site TEXT NOT NULL, scope TEXT NOT NULL,
  UNIQUE(site, scope));
CREATE TABLE IF NOT EXISTS lifetimes(
  alloc_ns INT NOT NULL, free_ns INT NOT NULL, process INT NOT NULL, device INT NOT NULL, type INT NOT NULL,
  kind INT NOT NULL, id INT NOT NULL, size INT NOT NULL, address INT NOT NULL, size_per_bank INT NOT NULL,
  label INT NOT NULL);
CREATE INDEX IF NOT EXISTS lifetimes_by_free ON lifetimes(free_ns);
)sql";

}  // namespace ttmem::history
