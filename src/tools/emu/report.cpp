// JSON report of a ttmem-emu run.
#include "report.hpp"

#include <nlohmann/json.hpp>

namespace ttmem::emu_tool {

namespace {

using nlohmann::json;

json buffer_json(const BufferRecord& b) {
  return {{"name", b.name},
          {"line", b.line},
          {"type", emu::to_string(b.type)},
          {"kind", emu::to_string(b.kind)},
          {"size", b.size},
          {"page_size", b.page_size},
          {"address", b.address},
          {"devices", b.devices},
          {"site", b.site},
          {"freed_at_line", b.freed_at_line ? json(*b.freed_at_line) : json(nullptr)}};
}

json figures_json(const UsageTracker::Figures& f) {
  json out = json::object();
  for (Slot s : enum_values<Slot>()) out[std::string(to_string(s))] = f[index(s)];
  return out;
}

json to_json(const RunResult& result) {
  json out;
  out["meshes"] = json::array();
  for (const MeshRecord& m : result.meshes) {
    out["meshes"].push_back({{"preset", m.preset},
                             {"arch", emu::to_string(m.arch)},
                             {"rows", m.rows},
                             {"cols", m.cols},
                             {"l1_small_size", m.options.l1_small_size},
                             {"trace_region_size", m.options.trace_region_size},
                             {"worker_l1_size", m.options.worker_l1_size},
                             {"opened_at_line", m.line},
                             {"closed_at_line", m.closed_at_line ? json(*m.closed_at_line) : json(nullptr)}});
  }
  out["buffers"] = json::array();
  for (const BufferRecord& b : result.buffers) out["buffers"].push_back(buffer_json(b));
  out["programs"] = json::array();
  for (const ProgramRecord& p : result.programs) {
    json cbs = json::array();
    for (const CbRecord& cb : p.cbs) {
      cbs.push_back({{"index", cb.index},
                     {"address", cb.address},
                     {"size", cb.size},
                     {"cores", cb.cores.str()},
                     {"num_cores", cb.cores.num_cores()}});
    }
    out["programs"].push_back(
        {{"name", p.name},
         {"line", p.line},
         {"runs", p.runs},
         {"kernel_binary_size", p.kernel_binary_size},
         {"cbs", cbs},
         {"released_at_line", p.released_at_line ? json(*p.released_at_line) : json(nullptr)}});
  }
  out["peak"] = json::object();
  for (const auto& [device, figures] : result.peaks)
    out["peak"][std::to_string(device)] = figures_json(figures);
  out["live_at_close"] = json::array();
  for (const BufferRecord& b : result.live_at_close) out["live_at_close"].push_back(buffer_json(b));
  out["error"] = result.error ? json{{"line", result.error->line},
                                     {"message", result.error->message},
                                     {"detail", result.error->detail}}
                              : json(nullptr);
  return out;
}

}  // namespace

std::string report_json(const RunResult& result) {
  return to_json(result).dump(2, ' ', false, json::error_handler_t::replace);  // script text may not be UTF-8
}

}  // namespace ttmem::emu_tool
