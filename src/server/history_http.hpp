// ttmemd's history over HTTP: GET /api/history and /api/timeline, read from the state directory's database
// on the HTTP thread that asked (a read-only SQLite connection of its own), so the event loop and the
// history's writer never wait on a browser.
//
//   /api/history?since=1h&until=..&device=N&pid=N&site=..&op=..&kind=leak,oom&limit=N   views::HistoryList
//   /api/timeline?device=N&since=1h&until=..&type=L1&processes=1&pid=N                  views::Timeline
//
// Times are `ttmem history --since`'s: 90s, 30m, 2h, 7d (before now), seconds since the epoch, or
// 2026-12-02T10:00:00 (UTC).
#pragma once

#include <string>

#include "http_service.hpp"

namespace ttmem::server {

/// The two paths this answers.
bool is_history_path(const std::string& path);

/// The answer to one of them. `state_dir` empty: ttmemd keeps no history (--no-history), a 404 saying so.
HttpReply history_http(const std::string& state_dir, const std::string& path, const HttpParams& params);

}  // namespace ttmem::server
