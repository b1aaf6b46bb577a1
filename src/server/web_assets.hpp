// The dashboard's files (web/), built into ttmemd (cmake/embed_files.cmake): served at `/` and
// `/assets/...` by the HTTP service, with no file needed beside the binary and no network beyond the host.
#pragma once

#include <string_view>
#include <vector>

namespace ttmem::server {

struct WebAsset {
  std::string_view path;          ///< the URL path: "/", "/assets/app.js"
  std::string_view content_type;  ///< without a charset: every asset is UTF-8 text
  std::string_view body;
};

const std::vector<WebAsset>& web_assets();

}  // namespace ttmem::server
