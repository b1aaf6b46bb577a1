// JSON text: parsing with a clear error, wire serialisation that never throws, and string literals for
// the fast buffer pages.
#include <fmt/format.h>

#include "json_fields.hpp"

namespace ttmem::schema {

using detail::json;

namespace detail {

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

json parse_object(std::string_view text, std::string_view what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {  // its message says where, and may quote the bad byte
    throw SchemaError(std::string(what) + " is not JSON: " + e.what());
  }
  if (!j.is_object()) throw SchemaError(std::string(what) + " is not a JSON object");
  return j;
}

}  // namespace detail

std::string error_json(ErrorCode code, std::string_view text) {
  return detail::dump({{"error", text}, {"code", to_string(code)}});
}

std::string pretty(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return std::string(text);
  return j.dump(2, ' ', false, json::error_handler_t::replace);
}

ErrorAnswer error_from_json(std::string_view text) {
  const json j = json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("error") || !j["error"].is_string())
    return {ErrorCode::internal, "ttmemd's error answer is unreadable: " + std::string(text.substr(0, 200))};
  ErrorAnswer out{ErrorCode::internal, j["error"].get<std::string>()};
  if (j.contains("code") && j["code"].is_string()) {
    out.code = parse_enum<ErrorCode>(j["code"].get<std::string>()).value_or(ErrorCode::internal);
  }
  return out;
}

struct PageJoiner::Impl {
  json answer = json::object();
};

PageJoiner::PageJoiner() : impl_(std::make_unique<Impl>()) {}
PageJoiner::~PageJoiner() = default;

void PageJoiner::add(std::string_view page) {
  json p = detail::parse_object(page, "a page of the answer");
  json& answer = impl_->answer;
  for (auto& [key, value] : p.items()) {
    if (value.is_array() && answer.contains(key) && answer[key].is_array()) {
      for (auto& v : value) answer[key].push_back(std::move(v));
    } else {
      answer[key] = std::move(value);
    }
  }
}

std::string PageJoiner::text() const {
  return detail::dump(impl_->answer);
}

void append_json_string(std::string& out, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 15];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    // A well-formed UTF-8 sequence (no overlongs, no surrogates, at most U+10FFFF) is copied as is.
    std::size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    bool valid = len != 0 && c <= 0xf4 && i + len <= s.size();
    for (std::size_t k = 1; valid && k < len; ++k)
      valid = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
    if (valid && len >= 3) {
      const auto c1 = static_cast<unsigned char>(s[i + 1]);
      if (c == 0xe0 && c1 < 0xa0) valid = false;   // overlong
      if (c == 0xed && c1 >= 0xa0) valid = false;  // surrogate
      if (c == 0xf0 && c1 < 0x90) valid = false;   // overlong
      if (c == 0xf4 && c1 >= 0x90) valid = false;  // above U+10FFFF
    }
    if (valid) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out += "\\ufffd";
      ++i;
    }
  }
  out += '"';
}

}  // namespace ttmem::schema
