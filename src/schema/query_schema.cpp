// The queries a tool sends: {"type": name, ...fields}, one table of types.
#include <algorithm>

#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

namespace {

views::BufferQuery buffer_query(const json& q) {
  views::BufferQuery f;
  if (auto d = get_optional<std::int64_t>(q, "device")) {
    if (*d < 0 || *d > 65535) throw SchemaError("field 'device' is out of range");
    f.device = static_cast<std::uint16_t>(*d);
  }
  if (auto p = get_optional<std::int64_t>(q, "pid")) f.pid = static_cast<pid_t>(*p);
  if (auto t = get_optional<std::string>(q, "buffer_type")) {
    f.type = parse_enum<BufferType>(*t);
    if (!f.type) throw SchemaError("unknown buffer_type '" + *t + "' (" + names_of(kManagedTypes) + ")");
  }
  if (auto k = get_optional<std::string>(q, "kind")) {
    f.kind = parse_enum<AllocKind>(*k);
    if (!f.kind) throw SchemaError("unknown kind '" + *k + "' (" + names_of(enum_values<AllocKind>()) + ")");
  }
  if (auto l = get_optional<std::int64_t>(q, "limit")) {
    if (*l < 0) throw SchemaError("field 'limit' must not be negative");
    f.limit = static_cast<std::uint64_t>(*l);
  }
  f.site = get_optional<std::string>(q, "site");
  f.scope = get_optional<std::string>(q, "scope");
  if (auto by = get_optional<std::string>(q, "by")) {
    f.by = parse_enum<GroupBy>(*by);
    if (!f.by) throw SchemaError("unknown 'by' '" + *by + "' (" + names_of(enum_values<GroupBy>()) + ")");
  }
  return f;
}

json buffer_query_json(const views::BufferQuery& f) {
  json q = json::object();
  if (f.device) q["device"] = *f.device;
  if (f.pid) q["pid"] = *f.pid;
  if (f.type) q["buffer_type"] = name(*f.type);
  if (f.kind) q["kind"] = name(*f.kind);
  if (f.limit) q["limit"] = *f.limit;
  if (f.site) q["site"] = *f.site;
  if (f.scope) q["scope"] = *f.scope;
  if (f.by) q["by"] = name(*f.by);
  return q;
}

/// One query type: its name, and its fields to and from JSON.
struct QueryType {
  std::string_view name;
  views::Query (*parse)(const json& fields);
  json (*fields)(const views::Query& q);  // called with a query of this type
};

template <typename Q>
json no_fields(const views::Query&) {
  return json::object();
}

const std::array<QueryType, std::variant_size_v<views::Query>> kQueryTypes = {{
    {"stats", [](const json&) -> views::Query { return views::StatsQuery{}; }, no_fields<views::StatsQuery>},
    {"buffers", [](const json& q) -> views::Query { return buffer_query(q); },
     [](const views::Query& q) { return buffer_query_json(std::get<views::BufferQuery>(q)); }},
    {"leaks",
     [](const json& q) -> views::Query {
       views::LeaksQuery l;
       for (auto [field, value] :
            {std::pair{"after_leak", &l.after_leak}, {"after_orphan", &l.after_orphan}}) {
         if (auto n = get_optional<std::int64_t>(q, field)) {
           if (*n < 0) throw SchemaError(std::string("field '") + field + "' must not be negative");
           *value = static_cast<std::uint64_t>(*n);
         }
       }
       return l;
     },
     [](const views::Query& q) {
       const auto& l = std::get<views::LeaksQuery>(q);
       json j = json::object();
       if (l.after_leak) j["after_leak"] = l.after_leak;
       if (l.after_orphan) j["after_orphan"] = l.after_orphan;
       return j;
     }},
    {"devices", [](const json&) -> views::Query { return views::DevicesQuery{}; },
     no_fields<views::DevicesQuery>},
    {"events",
     [](const json& q) -> views::Query {
       const auto limit = get_optional<std::int64_t>(q, "limit").value_or(100);
       if (limit < 0) throw SchemaError("field 'limit' must not be negative");
       return views::EventsQuery{static_cast<std::uint64_t>(limit)};
     },
     [](const views::Query& q) {
       return json{{"limit", std::get<views::EventsQuery>(q).limit}};
     }},
    {"info",
     [](const json& q) -> views::Query {
       return views::InfoQuery{get_optional<bool>(q, "reset_loop").value_or(false)};
     },
     [](const views::Query& q) {
       const auto& i = std::get<views::InfoQuery>(q);
       return i.reset_loop ? json{{"reset_loop", true}} : json::object();
     }},
    {"subscribe", [](const json&) -> views::Query { return views::SubscribeQuery{}; },
     no_fields<views::SubscribeQuery>},
    {"oom",
     [](const json& q) -> views::Query {
       views::OomQuery o;
       if (auto id = get_optional<std::int64_t>(q, "id")) {
         if (*id <= 0) throw SchemaError("field 'id' must be a record id (1, 2, ...)");
         o.id = static_cast<std::uint64_t>(*id);
       }
       return o;
     },
     [](const views::Query& q) {
       const auto& o = std::get<views::OomQuery>(q);
       return o.id ? json{{"id", *o.id}} : json::object();
     }},
    {"map",
     [](const json& q) -> views::Query {
       views::MapQuery m;
       const auto device = get<std::int64_t>(q, "device");
       if (device < 0 || device > 65535) throw SchemaError("field 'device' is out of range");
       m.device = static_cast<std::uint16_t>(device);
       const std::string t = get<std::string>(q, "buffer_type");
       const auto type = parse_enum<BufferType>(t);
       if (!type || std::find(kManagedTypes.begin(), kManagedTypes.end(), *type) == kManagedTypes.end())
         throw SchemaError("unknown buffer_type '" + t + "' (" + names_of(kManagedTypes) + ")");
       m.type = *type;
       return m;
     },
     [](const views::Query& q) {
       const auto& m = std::get<views::MapQuery>(q);
       return json{{"device", m.device}, {"buffer_type", name(m.type)}};
     }},
    {"ops",
     [](const json& q) -> views::Query {
       views::OpsQuery o;
       if (auto p = get_optional<std::int64_t>(q, "pid")) o.pid = static_cast<pid_t>(*p);
       if (auto d = get_optional<std::int64_t>(q, "device")) {
         if (*d < 0 || *d > 65535) throw SchemaError("field 'device' is out of range");
         o.device = static_cast<std::uint16_t>(*d);
       }
       o.scope = get_optional<std::string>(q, "scope");
       if (auto l = get_optional<std::int64_t>(q, "limit")) {
         if (*l < 0) throw SchemaError("field 'limit' must not be negative");
         o.limit = static_cast<std::uint64_t>(*l);
       }
       return o;
     },
     [](const views::Query& q) {
       const auto& o = std::get<views::OpsQuery>(q);
       json j{{"limit", o.limit}};
       if (o.pid) j["pid"] = *o.pid;
       if (o.device) j["device"] = *o.device;
       if (o.scope) j["scope"] = *o.scope;
       return j;
     }},
}};

}  // namespace

std::string query_type_names() {
  std::string names;
  for (const auto& t : kQueryTypes) names += (names.empty() ? "" : ", ") + std::string(t.name);
  return names;
}

std::string to_json(const views::Query& q) {
  const QueryType& t = kQueryTypes[q.index()];
  json j = t.fields(q);
  j["type"] = t.name;
  return dump(j);
}

views::Query query_from_json(std::string_view text) {
  const json q = parse_object(text, "the query");
  auto type = q.find("type");
  if (type == q.end() || !type->is_string())
    throw SchemaError("a query is a JSON object with a string field 'type'");
  const std::string name = *type;
  auto it = std::find_if(kQueryTypes.begin(), kQueryTypes.end(),
                         [&](const QueryType& t) { return t.name == name; });
  if (it == kQueryTypes.end())
    throw SchemaError("unknown query type '" + name + "' (" + query_type_names() + ")");
  views::Query parsed = it->parse(q);
  if (parsed.index() != static_cast<std::size_t>(it - kQueryTypes.begin()))
    throw SchemaError("internal: query table out of order for '" + name + "'");
  return parsed;
}

}  // namespace ttmem::schema
