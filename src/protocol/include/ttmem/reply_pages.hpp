// How the pages of a paged answer join into one answer (ttmemd sends large answers as pages: see
// docs/protocol.md, "Paged answers"). One definition for the server's own use and every client's.
#pragma once

#include <nlohmann/json.hpp>

namespace ttmem {

/// Joins one page into `answer`: arrays continue those of earlier pages, other fields are replaced.
inline void join_page(nlohmann::json& answer, nlohmann::json page) {
  if (!answer.is_object()) answer = nlohmann::json::object();
  for (auto& [key, value] : page.items()) {
    if (value.is_array() && answer.contains(key) && answer[key].is_array()) {
      for (auto& v : value) answer[key].push_back(std::move(v));
    } else {
      answer[key] = std::move(value);
    }
  }
}

}  // namespace ttmem
