// See history_http.hpp.
#include "history_http.hpp"

#include <charconv>
#include <limits>

#include "ttmem/history.hpp"
#include "ttmem/schema.hpp"
#include "ttmem/units.hpp"

namespace ttmem::server {

namespace {

/// A parameter the request got wrong: answered 400 with the sentence.
struct BadParameter {
  std::string what;
};

template <typename T>
T whole_number(const HttpParams& params, const std::string& key, T fallback) {
  auto it = params.find(key);
  if (it == params.end()) return fallback;
  T value{};
  const std::string& text = it->second;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw BadParameter{"parameter '" + key + "' must be a whole number from " +
                       std::to_string(std::numeric_limits<T>::min()) + " to " +
                       std::to_string(std::numeric_limits<T>::max()) + ", not '" + text + "'"};
  return value;
}

std::uint64_t time_parameter(const HttpParams& params, const std::string& key, std::uint64_t now,
                             std::uint64_t fallback) {
  auto it = params.find(key);
  if (it == params.end()) return fallback;
  auto t = history::parse_time(it->second, now);
  if (!t)
    throw BadParameter{"parameter '" + key + "' is '" + it->second + "', not a time: give " +
                       history::kTimeForms};
  return *t;
}

std::string text_parameter(const HttpParams& params, const std::string& key) {
  auto it = params.find(key);
  return it == params.end() ? std::string() : it->second;
}

void only(const HttpParams& params, std::initializer_list<std::string_view> known, const std::string& path) {
  for (const auto& [key, value] : params) {
    bool ok = false;
    for (std::string_view k : known) ok = ok || k == key;
    if (ok) continue;
    std::string list;
    for (std::string_view k : known) list += std::string(list.empty() ? "" : ", ") + std::string(k);
    throw BadParameter{path + " has no parameter '" + key + "' (it takes " + list + ")"};
  }
}

std::string records(const history::Reader& reader, const HttpParams& params, std::uint64_t now) {
  only(params, {"since", "until", "device", "pid", "site", "op", "kind", "limit"}, "/api/history");
  history::RecordFilter f;
  f.since_ns = time_parameter(params, "since", now, 0);
  f.until_ns = time_parameter(params, "until", now, UINT64_MAX);
  if (params.contains("device")) f.device = whole_number<std::uint16_t>(params, "device", 0);
  if (params.contains("pid")) f.pid = whole_number<pid_t>(params, "pid", 0);
  f.site = text_parameter(params, "site");
  f.op = text_parameter(params, "op");
  f.limit = whole_number<std::size_t>(params, "limit", 1000);
  if (f.limit == 0 || f.limit > 100'000) throw BadParameter{"parameter 'limit' must be 1 to 100000"};
  if (const std::string kinds = text_parameter(params, "kind"); !kinds.empty()) {
    std::string bad;
    auto list = parse_enum_list<HistoryKind>(kinds, &bad);
    if (!list)
      throw BadParameter{"parameter 'kind' has '" + bad + "', not one of " +
                         names_of(enum_values<HistoryKind>())};
    f.kinds = std::move(*list);
  }
  if (f.until_ns < f.since_ns) throw BadParameter{"'until' is before 'since'"};
  return schema::to_json(reader.records(f));
}

std::string timeline(const history::Reader& reader, const HttpParams& params, std::uint64_t now) {
  only(params, {"device", "since", "until", "type", "processes", "pid"}, "/api/timeline");
  history::TimelineQuery q;
  q.device = whole_number<std::uint16_t>(params, "device", 0);
  q.since_ns = time_parameter(params, "since", now, now - 3600 * history::kSecondNs);
  q.until_ns = time_parameter(params, "until", now, now);
  if (q.until_ns < q.since_ns) throw BadParameter{"'until' is before 'since'"};
  if (const std::string type = text_parameter(params, "type"); !type.empty()) {
    const auto slot = parse_enum<Slot>(type);
    if (!slot)
      throw BadParameter{"parameter 'type' is '" + type + "', not one of " + names_of(enum_values<Slot>())};
    q.slot = *slot;
  }
  const std::string processes = text_parameter(params, "processes");
  if (!processes.empty() && processes != "0" && processes != "1")
    throw BadParameter{"parameter 'processes' is 0 or 1, not '" + processes + "'"};
  q.per_process = processes == "1";
  if (params.contains("pid")) q.pid = whole_number<pid_t>(params, "pid", 0);
  return schema::to_json(reader.timeline(q));
}

}  // namespace

bool is_history_path(const std::string& path) {
  return path == "/api/history" || path == "/api/timeline";
}

HttpReply history_http(const std::string& state_dir, const std::string& path, const HttpParams& params) {
  if (state_dir.empty())
    return {404, schema::error_json(ErrorCode::bad_query,
                                    "this ttmemd keeps no history (it was started with --no-history)")};
  try {
    const history::Reader reader(state_dir);
    const std::uint64_t now = realtime_ns();
    return {200, path == "/api/history" ? records(reader, params, now) : timeline(reader, params, now)};
  } catch (const BadParameter& e) {
    return {400, schema::error_json(ErrorCode::bad_query, e.what)};
  } catch (const history::HistoryError& e) {
    // The database is ttmemd's own: it exists once ttmemd started. Unreadable is the server's problem.
    return {500, schema::error_json(ErrorCode::internal, e.what())};
  }
}

}  // namespace ttmem::server
