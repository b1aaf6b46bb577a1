// The paged listings (`buffers`, `leaks`, `events`) and the event stream.
#include <fmt/format.h>

#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

// ---- buffers --------------------------------------------------------------------------------------------

BufferPageWriter::BufferPageWriter(std::string& out) : out_(out) {
  out_ += R"({"buffers":[)";
}

void BufferPageWriter::row(const BufferRowText& r) {
  if (!first_) out_ += ',';
  first_ = false;
  auto to = std::back_inserter(out_);
  fmt::format_to(to, R"({{"pid":{},"name":)", r.pid);
  out_ += r.name_json;
  fmt::format_to(to, R"(,"device":{},"type":"{}","kind":"{}","id":{},"size":{},"address":{},"site":)",
                 r.device, to_string(r.type), to_string(r.kind), r.id, r.size, r.address);
  out_ += r.site_json.empty() ? std::string_view(R"("")") : r.site_json;
  out_ += R"(,"scope":)";
  out_ += r.scope_json.empty() ? std::string_view(R"("")") : r.scope_json;
  fmt::format_to(to, R"(,"internal":{},"age_ms":{}}})", r.internal ? "true" : "false", r.age_ms);
}

void BufferPageWriter::end(std::optional<std::uint64_t> total, const std::vector<views::BufferGroup>& groups,
                           std::uint64_t total_groups) {
  out_ += ']';
  if (!groups.empty() || total_groups) {
    json g = json::array();
    for (const auto& x : groups) {
      g.push_back({{"key", x.key},
                   {"pid", x.pid},
                   {"name", x.name},
                   {"device", x.device},
                   {"slot", name(x.slot)},
                   {"bytes", x.bytes},
                   {"buffers", x.buffers},
                   {"largest", x.largest},
                   {"devices", x.devices},
                   {"processes", x.processes}});
    }
    out_ += R"(,"groups":)";
    out_ += dump(g);
    fmt::format_to(std::back_inserter(out_), R"(,"total_groups":{})", total_groups);
  }
  if (total) fmt::format_to(std::back_inserter(out_), R"(,"total":{})", *total);
  out_ += '}';
}

std::string to_json(const views::BufferList& v) {
  std::string out;
  BufferPageWriter page(out);
  std::string name, site, scope;
  for (const auto& b : v.buffers) {
    name.clear();
    site.clear();
    scope.clear();
    append_json_string(name, b.name);
    append_json_string(site, b.site);
    append_json_string(scope, b.scope);
    page.row(
        {b.pid, name, b.device, b.type, b.kind, b.id, b.size, b.address, site, scope, b.internal, b.age_ms});
  }
  page.end(v.total, v.groups, v.total_groups);
  return out;
}

template <>
views::BufferList from_json<views::BufferList>(std::string_view text) {
  return decode(text, "buffers answer", [](const json& j) {
    views::BufferList v;
    each(j, "buffers", [&](const json& b) {
      v.buffers.push_back({get<pid_t>(b, "pid"), get<std::string>(b, "name"), get<std::uint16_t>(b, "device"),
                           get_enum<BufferType>(b, "type"), get_enum<AllocKind>(b, "kind"),
                           get<std::uint64_t>(b, "id"), get<std::uint64_t>(b, "size"),
                           get<std::uint64_t>(b, "address"), get<std::string>(b, "site"),
                           get_optional<std::string>(b, "scope").value_or(""), get<bool>(b, "internal"),
                           get<std::uint64_t>(b, "age_ms")});
    });
    v.total = get_optional<std::uint64_t>(j, "total").value_or(0);  // the last page has it
    if (j.contains("groups"))
      each(j, "groups", [&](const json& g) {  // grouped answers only
        v.groups.push_back({get<std::string>(g, "key"), get<pid_t>(g, "pid"), get<std::string>(g, "name"),
                            get<std::uint16_t>(g, "device"), get_enum<Slot>(g, "slot"),
                            get<std::uint64_t>(g, "bytes"), get<std::uint64_t>(g, "buffers"),
                            get<std::uint64_t>(g, "largest"), get<std::uint32_t>(g, "devices"),
                            get<std::uint32_t>(g, "processes")});
      });
    v.total_groups = get_optional<std::uint64_t>(j, "total_groups").value_or(0);
    return v;
  });
}

void append_page(views::BufferList& to, views::BufferList&& page) {
  to.buffers.insert(to.buffers.end(), std::make_move_iterator(page.buffers.begin()),
                    std::make_move_iterator(page.buffers.end()));
  if (page.total) to.total = page.total;
  to.groups.insert(to.groups.end(), std::make_move_iterator(page.groups.begin()),
                   std::make_move_iterator(page.groups.end()));
  if (page.total_groups) to.total_groups = page.total_groups;
}

// ---- ops --------------------------------------------------------------------------------------------------

std::string to_json(const views::OpList& v) {
  json ops = json::array();
  for (const auto& o : v.ops) {
    ops.push_back({{"pid", o.pid},
                   {"name", o.name},
                   {"scope", o.scope},
                   {"device", o.device},
                   {"slot", name(o.slot)},
                   {"bytes", o.bytes},
                   {"buffers", o.buffers},
                   {"peak", o.peak}});
  }
  return dump({{"ops", std::move(ops)}, {"total", v.total}});
}

template <>
views::OpList from_json<views::OpList>(std::string_view text) {
  return decode(text, "ops answer", [](const json& j) {
    views::OpList v;
    each(j, "ops", [&](const json& o) {
      v.ops.push_back({get<pid_t>(o, "pid"), get<std::string>(o, "name"), get<std::string>(o, "scope"),
                       get<std::uint16_t>(o, "device"), get_enum<Slot>(o, "slot"),
                       get<std::uint64_t>(o, "bytes"), get<std::uint64_t>(o, "buffers"),
                       get<std::uint64_t>(o, "peak")});
    });
    v.total = get<std::uint64_t>(j, "total");
    return v;
  });
}

// ---- leaks and orphans ------------------------------------------------------------------------------

namespace {

constexpr std::string_view kSwept = "held at close (swept)";
constexpr std::string_view kNeverReleased = "never released by the close sequence";
constexpr std::string_view kAfterOom = "left by a run that failed to allocate (see its oom record)";

}  // namespace

json detail::leak_to_json(const views::Leak& l) {
  return {{"pid", l.pid},
          {"name", l.name},
          {"device", l.device},
          {"type", name(l.type)},
          {"kind", name(l.kind)},
          {"id", l.id},
          {"size", l.size},
          {"address", l.address},
          {"site", l.site},
          {"scope", l.scope},
          {"age_ms", l.age_ms},
          {"time_ns", l.time_ns},
          {"swept_by_close", l.swept_by_close},
          {"after_oom", l.after_oom},
          {"seq", l.seq},
          {"cause", l.after_oom        ? kAfterOom
                    : l.swept_by_close ? kSwept
                                       : kNeverReleased}};
}

views::Leak detail::leak_from_json(const json& j) {
  return {get<pid_t>(j, "pid"),
          get<std::string>(j, "name"),
          get<std::uint16_t>(j, "device"),
          get_enum<BufferType>(j, "type"),
          get_enum<AllocKind>(j, "kind"),
          get<std::uint64_t>(j, "id"),
          get<std::uint64_t>(j, "size"),
          get<std::uint64_t>(j, "address"),
          get<std::string>(j, "site"),
          get_optional<std::string>(j, "scope").value_or(""),
          get<std::uint64_t>(j, "age_ms"),
          get<std::uint64_t>(j, "time_ns"),
          get<bool>(j, "swept_by_close"),
          get_optional<std::uint64_t>(j, "after_oom").value_or(0),
          get_optional<std::uint64_t>(j, "seq").value_or(0)};
}

json detail::orphan_to_json(const views::Orphan& o) {
  json held = json::array();
  for (const auto& h : o.held)
    held.push_back(
        {{"device", h.device}, {"type", name(h.slot)}, {"bytes", h.bytes}, {"buffers", h.buffers}});
  json origins = json::array();
  for (const auto& w : o.origins)
    origins.push_back({{"site", w.site}, {"scope", w.scope}, {"bytes", w.bytes}, {"buffers", w.buffers}});
  return {{"pid", o.pid},           {"name", o.name},     {"time_ns", o.time_ns},
          {"held", held},           {"bytes", o.bytes},   {"buffers", o.buffers},
          {"messages", o.messages}, {"origins", origins}, {"seq", o.seq}};
}

views::Orphan detail::orphan_from_json(const json& j) {
  views::Orphan o;
  o.pid = get<pid_t>(j, "pid");
  o.name = get<std::string>(j, "name");
  o.time_ns = get<std::uint64_t>(j, "time_ns");
  each(j, "held", [&](const json& h) {
    o.held.push_back({get<std::uint16_t>(h, "device"), get_enum<Slot>(h, "type"),
                      get<std::uint64_t>(h, "bytes"), get<std::uint64_t>(h, "buffers")});
  });
  o.bytes = get<std::uint64_t>(j, "bytes");
  o.buffers = get<std::uint64_t>(j, "buffers");
  o.messages = get<std::vector<std::string>>(j, "messages");
  o.seq = get_optional<std::uint64_t>(j, "seq").value_or(0);
  if (j.contains("origins")) {
    each(j, "origins", [&](const json& w) {
      o.origins.push_back({get<std::string>(w, "site"), get<std::string>(w, "scope"),
                           get<std::uint64_t>(w, "bytes"), get<std::uint64_t>(w, "buffers")});
    });
  }
  return o;
}

std::string to_json(const views::Leaks& v) {
  json leaks = json::array(), orphans = json::array();
  for (const auto& l : v.leaks) leaks.push_back(leak_to_json(l));
  for (const auto& o : v.orphans) orphans.push_back(orphan_to_json(o));
  return dump({{"leaks", std::move(leaks)}, {"orphans", std::move(orphans)}});
}

template <>
views::Leaks from_json<views::Leaks>(std::string_view text) {
  return decode(text, "leaks answer", [](const json& j) {
    views::Leaks v;
    each(j, "leaks", [&](const json& l) { v.leaks.push_back(leak_from_json(l)); });
    each(j, "orphans", [&](const json& o) { v.orphans.push_back(orphan_from_json(o)); });
    return v;
  });
}

void append_page(views::Leaks& to, views::Leaks&& page) {
  to.leaks.insert(to.leaks.end(), std::make_move_iterator(page.leaks.begin()),
                  std::make_move_iterator(page.leaks.end()));
  to.orphans.insert(to.orphans.end(), std::make_move_iterator(page.orphans.begin()),
                    std::make_move_iterator(page.orphans.end()));
}

// ---- events and the stream ------------------------------------------------------------------------------

json detail::event_to_json(const views::EventRow& e) {
  json j = {{"event", name(e.op)},
            {"pid", e.pid},
            {"name", e.name},
            {"device", e.device},
            {"type", name(e.type)},
            {"kind", name(e.kind)},
            {"id", e.id},
            {"size", e.size},
            {"address", e.address},
            {"site", e.site},
            {"scope", e.scope},
            {"internal", e.internal},
            {"num_banks", e.num_banks},
            {"size_per_bank", e.size_per_bank},
            {"mesh", e.mesh},
            {"timestamp_ns", e.timestamp_ns},
            {"time_ns", e.time_ns}};
  if (e.reason) j["reason"] = name(*e.reason);
  return j;
}

views::EventRow detail::event_from_json(const json& j) {
  views::EventRow e;
  e.op = get_enum<EventOp>(j, "event");
  e.pid = get<pid_t>(j, "pid");
  e.name = get<std::string>(j, "name");
  e.device = get<std::uint16_t>(j, "device");
  e.type = get_enum<BufferType>(j, "type");
  e.kind = get_enum<AllocKind>(j, "kind");
  e.id = get<std::uint64_t>(j, "id");
  e.size = get<std::uint64_t>(j, "size");
  e.address = get<std::uint64_t>(j, "address");
  e.site = get<std::string>(j, "site");
  e.scope = get_optional<std::string>(j, "scope").value_or("");
  e.internal = get<bool>(j, "internal");
  e.num_banks = get<std::uint32_t>(j, "num_banks");
  e.size_per_bank = get<std::uint64_t>(j, "size_per_bank");
  e.mesh = get<std::uint32_t>(j, "mesh");
  e.timestamp_ns = get<std::uint64_t>(j, "timestamp_ns");
  e.time_ns = get<std::uint64_t>(j, "time_ns");
  if (j.contains("reason")) e.reason = get_enum<ReleaseReason>(j, "reason");
  return e;
}

std::string to_json(const views::EventList& v) {
  json out = json::array();
  for (const auto& e : v.events) out.push_back(event_to_json(e));
  return dump({{"events", std::move(out)}});
}

template <>
views::EventList from_json<views::EventList>(std::string_view text) {
  return decode(text, "events answer", [](const json& j) {
    views::EventList v;
    each(j, "events", [&](const json& e) { v.events.push_back(event_from_json(e)); });
    return v;
  });
}

void append_page(views::EventList& to, views::EventList&& page) {
  to.events.insert(to.events.end(), std::make_move_iterator(page.events.begin()),
                   std::make_move_iterator(page.events.end()));
}

std::string to_json(const views::StreamEvent& v) {
  struct Encode {
    json operator()(const views::EventRow& e) const { return event_to_json(e); }
    json operator()(const views::Leak& l) const {
      json j = leak_to_json(l);
      j["event"] = "leak";
      return j;
    }
    json operator()(const views::Orphan& o) const {
      json j = orphan_to_json(o);
      j["event"] = "orphan";
      return j;
    }
    json operator()(const views::OomRecord& r) const {
      json j = oom_to_json(r);
      j["event"] = "oom";
      return j;
    }
    json operator()(const views::Dropped& d) const { return {{"event", "dropped"}, {"count", d.count}}; }
    json operator()(const views::Changes& c) const {
      return {{"event", "changes"}, {"events", c.events}, {"time_ns", c.time_ns}};
    }
  };
  return dump(std::visit(Encode{}, v));
}

template <>
views::StreamEvent from_json<views::StreamEvent>(std::string_view text) {
  return decode(text, "streamed event", [](const json& j) -> views::StreamEvent {
    const std::string event = get<std::string>(j, "event");
    if (event == "leak") return leak_from_json(j);
    if (event == "orphan") return orphan_from_json(j);
    if (event == "oom") return oom_from_json(j);
    if (event == "dropped") return views::Dropped{get<std::uint64_t>(j, "count")};
    if (event == "changes")
      return views::Changes{get<std::uint64_t>(j, "events"), get<std::uint64_t>(j, "time_ns")};
    return event_from_json(j);
  });
}

}  // namespace ttmem::schema
