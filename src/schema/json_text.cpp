// JSON text: parsing with a clear error, wire serialisation that never throws, and string literals for
// the fast buffer pages.
#include <fmt/format.h>

#include <ostream>
#include <sstream>

#include "json_fields.hpp"
#include "ttmem/utf8.hpp"

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
  } catch (const json::exception& e) {  // not JSON, or a number past double's range: the message says where
    throw SchemaError(std::string(what) + " is not JSON: " + e.what());
  }
  if (!j.is_object()) throw SchemaError(std::string(what) + " is not a JSON object");
  return j;
}

}  // namespace detail

std::string error_json(ErrorCode code, std::string_view text) {
  return detail::dump({{"error", text}, {"code", to_string(code)}});
}

void write_pretty(std::ostream& out, std::string_view text) {
  std::string buf;  // written out in large pieces: one stream call per character would dominate
  buf.reserve(1 << 16);
  int depth = 0;
  auto newline = [&] {
    buf += '\n';
    buf.append(static_cast<std::size_t>(2 * depth), ' ');
  };
  auto next_significant = [&](std::size_t i) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n' || text[i] == '\t' || text[i] == '\r')) ++i;
    return i;
  };
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    switch (c) {
      case '"': {  // a string, escapes and all, copied as it is
        const std::size_t start = i++;
        while (i < text.size() && text[i] != '"') i += text[i] == '\\' ? 2 : 1;
        buf.append(text.substr(start, i - start + 1));
        break;
      }
      case '{':
      case '[': {
        const std::size_t n = next_significant(i + 1);
        if (n < text.size() && (text[n] == '}' || text[n] == ']')) {  // empty: {} or []
          buf += c;
          buf += text[n];
          i = n;
          break;
        }
        buf += c;
        ++depth;
        newline();
        break;
      }
      case '}':
      case ']':
        --depth;
        newline();
        buf += c;
        break;
      case ',':
        buf += ',';
        newline();
        break;
      case ':':
        buf += ": ";
        break;
      case ' ':
      case '\n':
      case '\t':
      case '\r':
        break;
      default:
        buf += c;
    }
    if (buf.size() >= (1 << 16) - 256) {
      out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
      buf.clear();
    }
  }
  out.write(buf.data(), static_cast<std::streamsize>(buf.size()));
}

std::string pretty(std::string_view text) {
  std::ostringstream out;
  write_pretty(out, text);
  return out.str();
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
    // A well-formed UTF-8 sequence is copied as is (JSON may carry it raw); any other byte is replaced.
    const std::size_t len = utf8_sequence_length(s, i);
    const bool valid = len != 0;
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
