// ttmemd's history (docs/history.md): kept records and the timeline, as `ttmem history --json` and
// `ttmem timeline --json` write them.
#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

std::string to_json(const views::HistoryList& v) {
  json records = json::array();
  for (const auto& r : v.records) {
    json j = {{"seq", r.seq},     {"time_ns", r.time_ns}, {"kind", name(r.kind)}, {"pid", r.pid},
              {"name", r.name},   {"command", r.command}, {"site", r.site},       {"scope", r.scope},
              {"bytes", r.bytes}, {"buffers", r.buffers}, {"summary", r.summary}};
    j["device"] = r.device ? json(*r.device) : json(nullptr);
    // The whole record as its own view's JSON (a leak, an orphan, an OOM record), not as a string in one.
    j["detail"] = r.detail.empty() ? json(nullptr) : json::parse(r.detail, nullptr, false);
    records.push_back(std::move(j));
  }
  return dump({{"records", std::move(records)}, {"truncated", v.truncated}});
}

template <>
views::HistoryList from_json<views::HistoryList>(std::string_view text) {
  return decode(text, "history answer", [](const json& j) {
    views::HistoryList v;
    each(j, "records", [&](const json& e) {
      views::HistoryRecord r;
      r.seq = get<std::uint64_t>(e, "seq");
      r.time_ns = get<std::uint64_t>(e, "time_ns");
      r.kind = get_enum<HistoryKind>(e, "kind");
      r.pid = get<pid_t>(e, "pid");
      r.name = get<std::string>(e, "name");
      r.command = get<std::string>(e, "command");
      r.device = get_optional<std::uint16_t>(e, "device");
      r.site = get<std::string>(e, "site");
      r.scope = get<std::string>(e, "scope");
      r.bytes = get<std::uint64_t>(e, "bytes");
      r.buffers = get<std::uint64_t>(e, "buffers");
      r.summary = get<std::string>(e, "summary");
      if (auto d = e.find("detail"); d != e.end() && !d->is_null()) r.detail = dump(*d);
      v.records.push_back(std::move(r));
    });
    v.truncated = get<bool>(j, "truncated");
    return v;
  });
}

std::string to_json(const views::Timeline& v) {
  json series = json::array();
  for (const auto& s : v.series) {
    json points = json::array();
    // [time_ns, bytes, peak] triples: a day of one-minute points per series stays small.
    for (const auto& p : s.points) points.push_back({p.time_ns, p.bytes, p.peak});
    series.push_back(
        {{"slot", name(s.slot)}, {"pid", s.pid}, {"name", s.name}, {"points", std::move(points)}});
  }
  json gaps = json::array();
  for (const auto& g : v.gaps) gaps.push_back({{"from_ns", g.from_ns}, {"to_ns", g.to_ns}});
  return dump({{"device", v.device},
               {"since_ns", v.since_ns},
               {"until_ns", v.until_ns},
               {"resolution_ns", v.resolution_ns},
               {"series", std::move(series)},
               {"gaps", std::move(gaps)}});
}

template <>
views::Timeline from_json<views::Timeline>(std::string_view text) {
  return decode(text, "timeline answer", [](const json& j) {
    views::Timeline v;
    v.device = get<std::uint16_t>(j, "device");
    v.since_ns = get<std::uint64_t>(j, "since_ns");
    v.until_ns = get<std::uint64_t>(j, "until_ns");
    v.resolution_ns = get<std::uint64_t>(j, "resolution_ns");
    each(j, "series", [&](const json& e) {
      views::TimelineSeries s;
      s.slot = get_enum<Slot>(e, "slot");
      s.pid = get<pid_t>(e, "pid");
      s.name = get<std::string>(e, "name");
      const auto& points = e.at("points");
      if (!points.is_array()) throw SchemaError("field 'points' is not an array");
      for (const auto& p : points) {
        if (!p.is_array() || p.size() != 3) throw SchemaError("a point is not [time_ns, bytes, peak]");
        s.points.push_back({p[0].get<std::uint64_t>(), p[1].get<std::uint64_t>(), p[2].get<std::uint64_t>()});
      }
      v.series.push_back(std::move(s));
    });
    each(j, "gaps", [&](const json& g) {
      v.gaps.push_back({get<std::uint64_t>(g, "from_ns"), get<std::uint64_t>(g, "to_ns")});
    });
    return v;
  });
}

}  // namespace ttmem::schema
