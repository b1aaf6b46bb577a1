// `ttmem smi`: the nvidia-smi of ttmem — a table per device and per process, JSON, CSV, loop.
#include <fmt/format.h>

#include <chrono>
#include <iostream>
#include <thread>

#include "commands.hpp"
#include "output.hpp"

namespace ttmem::cli {

using nlohmann::json;

namespace {

constexpr const char* kSlots[] = {"DRAM", "L1", "L1_SMALL", "TRACE", "CB"};

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

json filtered(json stats, const SmiOptions& o) {
  if (!o.device) return stats;
  json devices = json::array(), processes = json::array();
  for (const auto& d : stats["devices"]) {
    if (d["id"] == *o.device) devices.push_back(d);
  }
  for (const auto& p : stats["processes"]) {
    if (p["device"] == *o.device) processes.push_back(p);
  }
  stats["devices"] = devices;
  stats["processes"] = processes;
  return stats;
}

std::string device_field(const json& d, const std::string& field) {
  if (field == "id") return std::to_string(d["id"].get<int>());
  if (field == "arch") return d["arch"].is_null() ? "" : d["arch"].get<std::string>();
  if (field == "buffers" || field == "processes") return std::to_string(d[field].get<std::uint64_t>());
  const auto dot = field.find('.');
  std::string slot = field.substr(0, dot);
  for (char& c : slot) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return std::to_string(d["memory"][slot][field.substr(dot + 1)].get<std::uint64_t>());
}

std::string process_field(const json& p, const std::string& field) {
  if (field == "name") return p["name"];
  if (field == "pid" || field == "device" || field == "buffers")
    return std::to_string(p[field].get<std::uint64_t>());
  std::string slot = field;
  for (char& c : slot) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return std::to_string(p[slot].get<std::uint64_t>());
}

void print_csv(const json& stats, const SmiOptions& o, bool header) {
  const auto& valid = o.processes ? smi_process_fields() : smi_device_fields();
  std::vector<std::string> fields = o.query;
  if (fields.empty()) {
    fields =
        o.processes ? valid : std::vector<std::string>{"id",      "arch",     "dram.used",     "dram.total",
                                                       "l1.used", "l1.total", "l1_small.used", "trace.used",
                                                       "cb.used", "buffers",  "processes"};
  }
  if (header) std::cout << csv_line(fields) << '\n';
  for (const auto& row : stats[o.processes ? "processes" : "devices"]) {
    std::vector<std::string> cells;
    for (const auto& f : fields) cells.push_back(o.processes ? process_field(row, f) : device_field(row, f));
    std::cout << csv_line(cells) << '\n';
  }
}

void print_table(const json& stats, const json& info, const Style& style) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::cout << style.bold("ttmem smi") << "  "
            << style.dim(fmt::format(
                   "ttmemd {} at {} | up {} | {} process{} | {} active allocation{} | {}",
                   info["version"].get<std::string>(), info["socket"].get<std::string>(),
                   human_age_ms(static_cast<std::uint64_t>(info["uptime_s"].get<double>() * 1000)),
                   info["processes"].get<int>(), info["processes"] == 1 ? "" : "es",
                   stats["active_allocations"].get<std::uint64_t>(),
                   stats["active_allocations"] == 1 ? "" : "s",
                   clock_time(static_cast<std::uint64_t>(
                       std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()))))
            << "\n\n";
  if (stats["devices"].empty()) {
    std::cout << "  No device has been reported yet.\n";
  } else {
    Table t;
    t.column("DEV", Table::Align::right);
    t.column("ARCH", Table::Align::left);
    t.column("DRAM used / total", Table::Align::left);
    t.column("L1 used / total", Table::Align::left);
    t.column("L1_SMALL", Table::Align::right);
    t.column("TRACE", Table::Align::right);
    t.column("CB", Table::Align::right);
    t.column("BUFFERS", Table::Align::right);
    t.column("PROCS", Table::Align::right);
    for (const auto& d : stats["devices"]) {
      auto usage = [&](const char* slot) {
        const auto& m = d["memory"][slot];
        const std::uint64_t used = m["used"], total = m["total"];
        return fmt::format("{:>9} / {:<9} {} {:>4}", human_bytes(used), human_bytes(total),
                           bar(used, total, 10, style), percent(used, total));
      };
      t.row({std::to_string(d["id"].get<int>()), d["arch"].is_null() ? "?" : d["arch"].get<std::string>(),
             usage("DRAM"), usage("L1"), human_bytes(d["memory"]["L1_SMALL"]["used"]),
             human_bytes(d["memory"]["TRACE"]["used"]), human_bytes(d["memory"]["CB"]["used"]),
             std::to_string(d["buffers"].get<std::uint64_t>()),
             std::to_string(d["processes"].get<std::uint64_t>())});
    }
    t.print(std::cout, style, "  ");
  }
  std::cout << '\n';
  if (stats["processes"].empty()) {
    std::cout << "  No process holds device memory.\n";
    return;
  }
  Table p;
  p.column("DEV", Table::Align::right);
  p.column("PID", Table::Align::right);
  p.column("NAME", Table::Align::left);
  for (const char* s : kSlots) p.column(s, Table::Align::right);
  p.column("BUFFERS", Table::Align::right);
  for (const auto& r : stats["processes"]) {
    std::vector<std::string> cells{std::to_string(r["device"].get<int>()),
                                   std::to_string(r["pid"].get<int>()), r["name"]};
    for (const char* s : kSlots) cells.push_back(human_bytes(r[s]));
    cells.push_back(std::to_string(r["buffers"].get<std::uint64_t>()));
    p.row(cells);
  }
  p.print(std::cout, style, "  ");
}

}  // namespace

const std::vector<std::string>& smi_device_fields() {
  static const std::vector<std::string> fields = [] {
    std::vector<std::string> f{"id", "arch"};
    for (const char* s : kSlots) {
      for (const char* part : {"used", "total", "peak"}) f.push_back(lower(s) + "." + part);
    }
    f.push_back("buffers");
    f.push_back("processes");
    return f;
  }();
  return fields;
}

const std::vector<std::string>& smi_process_fields() {
  static const std::vector<std::string> fields = {"pid",      "name",  "device", "dram",   "l1",
                                                  "l1_small", "trace", "cb",     "buffers"};
  return fields;
}

int run_smi(const Common& common, const SmiOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  const Style style = Style::detect();
  for (std::uint32_t n = 1;; ++n) {
    const json stats = filtered(client.stats(), o);
    if (common.json) {
      std::cout << (o.loop_ms ? stats.dump() : stats.dump(2)) << std::endl;
    } else if (o.csv) {
      print_csv(stats, o, !o.noheader && n == 1);
      std::cout.flush();
    } else {
      if (n > 1) std::cout << '\n';
      print_table(stats, client.info(), style);
      std::cout.flush();
    }
    if (o.loop_ms == 0 || (o.count && n >= o.count)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(o.loop_ms));
  }
}

}  // namespace ttmem::cli
