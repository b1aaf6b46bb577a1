// The views in Prometheus' text exposition format (what `/metrics` serves): names and labels by
// Prometheus' conventions (`_bytes`, `_total`; labels host, device, arch, type, pid, process).
#pragma once

#include <cstdint>
#include <string>

#include "ttmem/views.hpp"

namespace ttmem::server {

struct MetricsInput {
  const views::Stats& stats;
  const views::ServerInfo& info;
  std::string host;                 ///< this machine's name: one Prometheus scrapes many
  std::uint64_t leaks_total = 0;    ///< leak records made since ttmemd started
  std::uint64_t orphans_total = 0;  ///< orphan records made since ttmemd started
};

std::string metrics_text(const MetricsInput& in);

/// `text` as a label value: backslash, double quote and line feed escaped, invalid UTF-8 replaced.
void append_label_value(std::string& out, std::string_view text);

}  // namespace ttmem::server
