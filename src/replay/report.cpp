// See ttmem/replay/report.hpp.
#include "ttmem/replay/report.hpp"

#include <fmt/format.h>

#include <nlohmann/json.hpp>
#include <ostream>

#include "ttmem/units.hpp"

namespace ttmem::replay {

namespace {

using nlohmann::json;

std::string core_text(const L1Peak& peak) {
  if (!peak.core) return "all";
  return fmt::format("({},{})", peak.core->x, peak.core->y);
}

std::string part_kind(const PeakPart& p) {
  if (p.program) return std::string(bridge::to_string(*p.program));
  return std::string(to_string(p.type));
}

std::string mode_text(const Capture& c) {
  return c.no_dispatch ? "NO_DISPATCH (addresses are 0)" : "NORMAL (real addresses)";
}

void write_parts(std::ostream& out, const std::vector<PeakPart>& parts, const char* indent) {
  for (const PeakPart& p : parts) {
    out << fmt::format("{}{:>10}  {:<15} {:<22} node {:<6} at {:<10} {}{}\n", indent, human_bytes(p.bytes),
                       part_kind(p), p.cores, p.node, p.address, p.op.empty() ? "(outside any op)" : p.op,
                       p.bytes == 0 ? "  [tensor-backed: its bytes are the tensor's]" : "");
  }
}

json peak_json(const L1Peak& p) {
  json parts = json::array();
  for (const PeakPart& part : p.parts) {
    parts.push_back({{"id", part.id},
                     {"kind", part_kind(part)},
                     {"bytes_per_core", part.bytes},
                     {"size", part.size},
                     {"address", part.address},
                     {"cores", part.cores},
                     {"site", part.site},
                     {"op", part.op},
                     {"node", part.node}});
  }
  json core = nullptr;
  if (p.core) core = {{"x", p.core->x}, {"y", p.core->y}};
  return {{"per_core", p.per_core},
          {"program_per_core", p.program},
          {"buffers_per_core", p.per_core - p.program},
          {"chip", p.chip},
          {"core", core},
          {"upper_bound", p.upper_bound},
          {"node", p.node},
          {"parts", parts}};
}

}  // namespace

void write_text(std::ostream& out, const ReportInput& in, const TextOptions& options) {
  const Capture& c = in.capture;
  const CaptureFigures& f = in.figures;
  out << fmt::format("{}: {} nodes, {} schema, {}\n", c.name, c.nodes.size(),
                     c.integer_params ? "2025+" : "2024 (string params)", mode_text(c));
  std::string chips;
  for (TtDeviceId id : in.setup.chips) chips += (chips.empty() ? "" : ", ") + std::to_string(id);
  for (const auto& [mesh, list] : in.setup.meshes)
    chips += fmt::format(" (mesh {} = {} chip{})", mesh, list.size(), list.size() == 1 ? "" : "s");
  out << fmt::format(
      "chips: {}; {}{}\n", chips.empty() ? "none" : chips, to_string(in.setup.arch),
      in.setup.arch_assumed ? " (assumed: the capture names no architecture; --arch sets it)" : "");
  if (in.setup.buffers_before_capture > 0) {
    std::string bytes;
    for (BufferType t : kManagedTypes) {
      const auto b = in.setup.bytes_before_capture[static_cast<std::size_t>(t)];
      if (b) bytes += fmt::format("{}{} {}", bytes.empty() ? "" : ", ", human_bytes(b), to_string(t));
    }
    out << fmt::format("before the capture: {} buffer{} ({}) allocated outside it: in no figure below\n",
                       in.setup.buffers_before_capture, in.setup.buffers_before_capture == 1 ? "" : "s",
                       bytes);
  }
  if (in.stats.untracked_releases > 0)
    out << fmt::format("released but never allocated in the capture: {} buffer{}, {} (not subtracted)\n",
                       in.stats.untracked_releases, in.stats.untracked_releases == 1 ? "" : "s",
                       human_bytes(in.stats.untracked_release_bytes));
  for (const auto& [type, count] : c.unknown_types)
    out << fmt::format("node type \"{}\": {} node{} this version of ttmem does not read (skipped)\n", type,
                       count, count == 1 ? "" : "s");
  out << "\n";

  out << fmt::format("{:<48} {:>11} {:>12} {:>11} {:>7} {:>11} {:>6}  {}\n", "OP", "NODES", "PEAK L1/CORE",
                     "OF IT CB", "CORE", "PEAK DRAM", "ALLOCS", "OUTLIVED");
  std::size_t shown = 0;
  for (const OpFiguresRow& row : f.ops) {
    if (shown++ == options.limit) {
      out << fmt::format("... {} more ops (--limit, or --json for all)\n", f.ops.size() - options.limit);
      break;
    }
    std::string name = std::string(static_cast<std::size_t>(row.depth) * 2, ' ') + row.name;
    if (name.size() > 48) name = name.substr(0, 45) + "...";
    std::uint64_t outlived_bytes = 0;
    for (const Outlived& o : row.outlived) outlived_bytes += o.size;
    const std::string outlived =
        row.outlived.empty() ? "-" : fmt::format("{} ({})", row.outlived.size(), human_bytes(outlived_bytes));
    out << fmt::format("{:<48} {:>11} {:>12} {:>11} {:>7} {:>11} {:>6}  {}\n", name,
                       fmt::format("{}-{}{}", row.start_node, row.end_node, row.ended ? "" : "+"),
                       row.l1.per_core ? human_bytes(row.l1.per_core) + (row.l1.upper_bound ? "*" : "") : "-",
                       row.l1.per_core ? human_bytes(row.l1.program) : "-",
                       row.l1.per_core ? core_text(row.l1) : "-",
                       row.peak_dram ? human_bytes(row.peak_dram) : "-", row.allocations, outlived);
  }
  out << "\n";
  if (f.l1.per_core > 0) {
    out << fmt::format(
        "peak L1 per core: {} ({} B) on chip {}, core {}, at node {}; of it program-scope L1 {}{}\n",
        human_bytes(f.l1.per_core), f.l1.per_core, f.l1.chip, core_text(f.l1), f.l1.node,
        human_bytes(f.l1.program),
        f.l1.upper_bound ? " (an upper bound: a sharded buffer of unknown grid counts on every core)" : "");
    write_parts(out, f.l1.parts, "  ");
  } else {
    out << "peak L1 per core: nothing allocated in L1 during the capture\n";
  }
  if (f.peak_dram > 0)
    out << fmt::format("peak DRAM: {} ({} B) on chip {}\n", human_bytes(f.peak_dram), f.peak_dram,
                       f.dram_chip);
  const TtMetalPeaks& tt = f.tt_metal;
  out << fmt::format(
      "by TT-Metal's rules (extract_resource_usage_per_core, cores ignored): peak_cb {} B, peak_l1 {} B, "
      "peak_total {} B\n",
      tt.peak_cb, tt.peak_l1, tt.peak_total);
  if (!options.op.empty()) {
    for (const OpFiguresRow& row : f.ops) {
      if (row.op.find(options.op) == std::string::npos) continue;
      out << fmt::format("\n{} (nodes {}-{}): peak L1 {} per core {}", row.op, row.start_node, row.end_node,
                         human_bytes(row.l1.per_core),
                         row.l1.core ? "on core " + core_text(row.l1) : "on every core");
      out << (row.l1.per_core ? ", made of:\n" : "\n");
      write_parts(out, row.l1.parts, "  ");
      for (const Outlived& o : row.outlived)
        out << fmt::format("  outlived it: {} {} at {} (node {}, {})\n", human_bytes(o.size),
                           to_string(o.type), o.address, o.node, o.site);
    }
  }
}

std::string to_json(const ReportInput& in) {
  const Capture& c = in.capture;
  const CaptureFigures& f = in.figures;
  json meshes = json::object();
  for (const auto& [mesh, list] : in.setup.meshes) meshes[std::to_string(mesh)] = list;
  json before = json::object();
  for (BufferType t : kManagedTypes)
    before[std::string(to_string(t))] = in.setup.bytes_before_capture[static_cast<std::size_t>(t)];
  json ops = json::array();
  for (const OpFiguresRow& row : f.ops) {
    json outlived = json::array();
    for (const Outlived& o : row.outlived)
      outlived.push_back({{"id", o.id},
                          {"type", to_string(o.type)},
                          {"size", o.size},
                          {"address", o.address},
                          {"site", o.site},
                          {"node", o.node}});
    ops.push_back({{"name", row.name},
                   {"op", row.op},
                   {"depth", row.depth},
                   {"start_node", row.start_node},
                   {"end_node", row.end_node},
                   {"ended", row.ended},
                   {"l1", peak_json(row.l1)},
                   {"peak_dram", row.peak_dram},
                   {"dram_chip", row.dram_chip},
                   {"allocations", row.allocations},
                   {"outlived", outlived}});
  }
  const bridge::BridgeStats& s = in.stats;
  json unknown = json::object();
  for (const auto& [type, count] : c.unknown_types) unknown[type] = count;
  const json doc = {{"capture", c.name},
                    {"nodes", c.nodes.size()},
                    {"schema", c.integer_params ? "2025" : "2024"},
                    {"mode", c.no_dispatch ? "NO_DISPATCH" : "NORMAL"},
                    {"arch", to_string(in.setup.arch)},
                    {"arch_assumed", in.setup.arch_assumed},
                    {"chips", in.setup.chips},
                    {"meshes", meshes},
                    {"unknown_node_types", unknown},
                    {"before_capture", {{"buffers", in.setup.buffers_before_capture}, {"bytes", before}}},
                    {"bridge",
                     {{"buffers_allocated", s.buffers_allocated},
                      {"buffers_released", s.buffers_released},
                      {"untracked_releases", s.untracked_releases},
                      {"untracked_release_bytes", s.untracked_release_bytes},
                      {"program_buffers", s.program_buffers},
                      {"tensor_backed", s.tensor_backed},
                      {"duplicate_allocations", s.duplicate_allocations},
                      {"unmatched_function_ends", s.unmatched_function_ends}}},
                    {"peak", {{"l1", peak_json(f.l1)}, {"dram", f.peak_dram}, {"dram_chip", f.dram_chip}}},
                    {"tt_metal_rules",
                     {{"peak_cb", f.tt_metal.peak_cb},
                      {"peak_l1", f.tt_metal.peak_l1},
                      {"peak_dataflow_buffer", f.tt_metal.peak_dataflow_buffer},
                      {"peak_scratchpad", f.tt_metal.peak_scratchpad},
                      {"peak_total", f.tt_metal.peak_total}}},
                    {"ops", ops}};
  if (!in.address_check) return doc.dump(2);
  json with_check = doc;
  with_check["address_check"] = json::parse(to_json(*in.address_check));
  return with_check.dump(2);
}

std::string offline_report_json(const Capture& capture, const ReplayOptions& options,
                                const std::optional<AddressCheckOptions>& check) {
  OpAnalysis analysis;
  bridge::Bridge bridge(analysis);
  const ReplaySetup setup = announce(capture, bridge, options);
  feed(capture, bridge, analysis);
  const bridge::BridgeStats stats = bridge.stats();
  const CaptureFigures figures = analysis.finish();
  std::optional<AddressCheck> checked;
  if (check) {
    AddressCheckOptions c = *check;
    c.arch = setup.arch;
    checked = check_addresses(capture, c);
  }
  return to_json(ReportInput{capture, setup, stats, figures, checked ? &*checked : nullptr});
}

}  // namespace ttmem::replay
