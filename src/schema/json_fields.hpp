// Inside the schema: reading and writing fields of nlohmann::json with errors that name the field. Not
// installed; only the schema's own files include it.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "ttmem/schema.hpp"

namespace ttmem::schema::detail {

using nlohmann::json;

/// Serialises for the wire; invalid UTF-8 in client strings is replaced, never thrown on.
std::string dump(const json& j);
/// Parses `text`, which must be a JSON object (`what` names it in the error).
json parse_object(std::string_view text, std::string_view what);

/// A required field.
template <typename T>
T get(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) throw SchemaError(std::string("missing field '") + field + "'");
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) throw SchemaError(std::string("field '") + field + "' is not true or false");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) throw SchemaError(std::string("field '") + field + "' is not a string");
  } else if constexpr (std::is_floating_point_v<T>) {
    if (!it->is_number()) throw SchemaError(std::string("field '") + field + "' is not a number");
  } else if constexpr (std::is_integral_v<T>) {
    if (!it->is_number_integer())
      throw SchemaError(std::string("field '") + field + "' is not a whole number");
    if (std::is_unsigned_v<T> && !it->is_number_unsigned())
      throw SchemaError(std::string("field '") + field + "' must not be negative");
  }
  try {
    return it->get<T>();
  } catch (const json::exception&) {
    throw SchemaError(std::string("field '") + field + "' has the wrong type");
  }
}

/// An optional field: empty when absent or null.
template <typename T>
std::optional<T> get_optional(const json& j, const char* field) {
  auto it = j.find(field);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return get<T>(j, field);
}

/// An enum written as its name.
template <NamedEnum E>
E get_enum(const json& j, const char* field) {
  const std::string name = get<std::string>(j, field);
  if (auto v = parse_enum<E>(name)) return *v;
  throw SchemaError(std::string("field '") + field + "' has an unknown value '" + name + "'");
}

template <NamedEnum E>
std::string name(E v) {
  return std::string(to_string(v));
}

/// Each element of a required array field.
template <typename F>
void each(const json& j, const char* field, F&& f) {
  auto it = j.find(field);
  if (it == j.end() || !it->is_array()) throw SchemaError(std::string("missing array '") + field + "'");
  for (const auto& e : *it) {
    if (!e.is_object()) throw SchemaError(std::string("an element of '") + field + "' is not an object");
    f(e);
  }
}

// Views that are parts of others (a leak is a row of `leaks` and an event of the stream).
json leak_to_json(const views::Leak& l);
views::Leak leak_from_json(const json& j);
json orphan_to_json(const views::Orphan& o);
views::Orphan orphan_from_json(const json& j);
json event_to_json(const views::EventRow& e);
json oom_to_json(const views::OomRecord& r);
views::OomRecord oom_from_json(const json& j);
/// A free-space view's fields, added to an object (a memory slot of `stats`, an OOM record's space).
void add_free_space(json& out, const views::FreeSpace& f);
views::FreeSpace free_space_from(const json& j);
views::EventRow event_from_json(const json& j);

/// Runs `decode` on the parsed object; every failure becomes a SchemaError that names the answer.
template <typename F>
auto decode(std::string_view text, std::string_view what, F&& f) {
  const json j = parse_object(text, what);
  try {
    return f(j);
  } catch (const SchemaError& e) {
    throw SchemaError(std::string(what) + ": " + e.what());
  } catch (const json::exception& e) {
    throw SchemaError(std::string(what) + ": " + e.what());
  }
}

}  // namespace ttmem::schema::detail
