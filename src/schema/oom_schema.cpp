// `oom` and `map`: out-of-memory records, whole, as the query answers and the stream sends them; the
// address map of one bank.
#include "json_fields.hpp"

namespace ttmem::schema {

using namespace detail;

json detail::oom_to_json(const views::OomRecord& r) {
  json holders = json::array();
  for (const auto& h : r.holders) {
    json row = {{"pid", h.pid},         {"name", h.name},         {"command", h.command},
                {"buffers", h.buffers}, {"per_bank", h.per_bank}, {"internal_per_bank", h.internal_per_bank}};
    json bytes = json::object();
    for (Slot s : enum_values<Slot>()) bytes[name(s)] = h.bytes[index(s)];
    row["bytes"] = std::move(bytes);
    holders.push_back(std::move(row));
  }
  json largest = json::array();
  for (const auto& b : r.largest) {
    largest.push_back({{"pid", b.pid},
                       {"id", b.id},
                       {"kind", name(b.kind)},
                       {"size", b.size},
                       {"size_per_bank", b.size_per_bank},
                       {"address", b.address},
                       {"site", b.site},
                       {"scope", b.scope},
                       {"internal", b.internal},
                       {"age_ms", b.age_ms}});
  }
  json free_blocks = json::array();
  for (const auto& f : r.free_blocks) free_blocks.push_back({{"address", f.address}, {"size", f.size}});
  json space = nullptr;
  if (r.space) {
    space = json::object();
    add_free_space(space, *r.space);
  }
  return {{"id", r.id},
          {"pid", r.pid},
          {"name", r.name},
          {"time_ns", r.time_ns},
          {"device", r.device},
          {"type", name(r.type)},
          {"reason", name(r.reason)},
          {"size", r.size},
          {"page_size", r.page_size},
          {"num_banks", r.num_banks},
          {"needed_per_bank", r.needed_per_bank},
          {"site", r.site},
          {"scope", r.scope},
          {"message", r.message},
          {"space", std::move(space)},
          {"free_blocks", std::move(free_blocks)},
          {"holders", std::move(holders)},
          {"largest", std::move(largest)},
          {"verdict", name(r.verdict)},
          {"summary", r.summary}};
}

views::OomRecord detail::oom_from_json(const json& j) {
  views::OomRecord r;
  r.id = get<std::uint64_t>(j, "id");
  r.pid = get<pid_t>(j, "pid");
  r.name = get<std::string>(j, "name");
  r.time_ns = get<std::uint64_t>(j, "time_ns");
  r.device = get<std::uint16_t>(j, "device");
  r.type = get_enum<BufferType>(j, "type");
  r.reason = get_enum<FailureReason>(j, "reason");
  r.size = get<std::uint64_t>(j, "size");
  r.page_size = get<std::uint64_t>(j, "page_size");
  r.num_banks = get<std::uint32_t>(j, "num_banks");
  r.needed_per_bank = get<std::uint64_t>(j, "needed_per_bank");
  r.site = get<std::string>(j, "site");
  r.scope = get_optional<std::string>(j, "scope").value_or("");
  r.message = get<std::string>(j, "message");
  if (auto it = j.find("space"); it != j.end() && it->is_object()) r.space = free_space_from(*it);
  each(j, "free_blocks", [&](const json& f) {
    r.free_blocks.push_back({get<std::uint64_t>(f, "address"), get<std::uint64_t>(f, "size")});
  });
  each(j, "holders", [&](const json& h) {
    views::OomHolder& row = r.holders.emplace_back();
    row.pid = get<pid_t>(h, "pid");
    row.name = get<std::string>(h, "name");
    row.command = get_optional<std::string>(h, "command").value_or("");
    row.buffers = get<std::uint64_t>(h, "buffers");
    row.per_bank = get<std::uint64_t>(h, "per_bank");
    row.internal_per_bank = get<std::uint64_t>(h, "internal_per_bank");
    auto bytes = h.find("bytes");
    if (bytes == h.end() || !bytes->is_object()) throw SchemaError("missing object 'bytes'");
    for (Slot s : enum_values<Slot>()) row.bytes[index(s)] = get<std::uint64_t>(*bytes, name(s).c_str());
  });
  each(j, "largest", [&](const json& b) {
    r.largest.push_back({get<pid_t>(b, "pid"), get<std::uint64_t>(b, "id"), get_enum<AllocKind>(b, "kind"),
                         get<std::uint64_t>(b, "size"), get<std::uint64_t>(b, "size_per_bank"),
                         get<std::uint64_t>(b, "address"), get<std::string>(b, "site"),
                         get_optional<std::string>(b, "scope").value_or(""), get<bool>(b, "internal"),
                         get<std::uint64_t>(b, "age_ms")});
  });
  r.verdict = get_enum<OomVerdict>(j, "verdict");
  r.summary = get<std::string>(j, "summary");
  return r;
}

std::string to_json(const views::OomList& v) {
  json records = json::array();
  for (const auto& r : v.records) records.push_back(oom_to_json(r));
  return dump({{"records", std::move(records)}, {"total", v.total}});
}

template <>
views::OomList from_json<views::OomList>(std::string_view text) {
  return decode(text, "oom answer", [](const json& j) {
    views::OomList v;
    each(j, "records", [&](const json& r) { v.records.push_back(oom_from_json(r)); });
    v.total = get<std::uint64_t>(j, "total");
    return v;
  });
}

// ---- map ---------------------------------------------------------------------------------------------

namespace {

json block_json(const views::MapBlock& b) {
  json j = {{"address", b.address}, {"size", b.size}, {"use", name(b.use)}};
  if (b.use == BlockUse::buffer || b.use == BlockUse::circular_buffer) {
    j["pid"] = b.pid;
    j["id"] = b.id;
    j["kind"] = name(b.kind);
    j["internal"] = b.internal;
    j["site"] = b.site;
    j["scope"] = b.scope;
  }
  if (b.use == BlockUse::overlap) j["buffers"] = b.buffers;
  return j;
}

views::MapBlock block_from(const json& j) {
  views::MapBlock b;
  b.address = get<std::uint64_t>(j, "address");
  b.size = get<std::uint64_t>(j, "size");
  b.use = get_enum<BlockUse>(j, "use");
  if (b.use == BlockUse::buffer || b.use == BlockUse::circular_buffer) {
    b.pid = get<pid_t>(j, "pid");
    b.id = get<std::uint64_t>(j, "id");
    b.kind = get_enum<AllocKind>(j, "kind");
    b.internal = get<bool>(j, "internal");
    b.site = get<std::string>(j, "site");
    b.scope = get_optional<std::string>(j, "scope").value_or("");
    b.buffers = 1;
  }
  if (b.use == BlockUse::overlap) b.buffers = get<std::uint32_t>(j, "buffers");
  return b;
}

}  // namespace

std::string to_json(const views::AddressMap& v) {
  json space = json::object();
  add_free_space(space, v.space);
  json blocks = json::array(), cbs = json::array();
  for (const auto& b : v.blocks) blocks.push_back(block_json(b));
  for (const auto& b : v.circular_buffers) cbs.push_back(block_json(b));
  return dump({{"device", v.device},
               {"type", name(v.type)},
               {"base", v.base},
               {"space", std::move(space)},
               {"overlapping_bytes", v.overlapping_bytes},
               {"blocks", std::move(blocks)},
               {"circular_buffers", std::move(cbs)}});
}

template <>
views::AddressMap from_json<views::AddressMap>(std::string_view text) {
  return decode(text, "map answer", [](const json& j) {
    views::AddressMap v;
    v.device = get<std::uint16_t>(j, "device");
    v.type = get_enum<BufferType>(j, "type");
    v.base = get<std::uint64_t>(j, "base");
    auto space = j.find("space");
    if (space == j.end() || !space->is_object()) throw SchemaError("missing object 'space'");
    v.space = free_space_from(*space);
    v.overlapping_bytes = get<std::uint64_t>(j, "overlapping_bytes");
    each(j, "blocks", [&](const json& b) { v.blocks.push_back(block_from(b)); });
    each(j, "circular_buffers", [&](const json& b) { v.circular_buffers.push_back(block_from(b)); });
    return v;
  });
}

}  // namespace ttmem::schema
