// `ttmem smi`: the nvidia-smi of ttmem — a table per device and per process, JSON, CSV, loop.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>
#include <iostream>
#include <span>
#include <thread>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

namespace {

/// "a,b,c" as its non-empty parts.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    if (comma > start) out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

/// The slot a CSV field names ("l1_small" or "l1_small.used"), if any.
std::optional<Slot> slot_named(std::string_view field) {
  const std::string name = lower(field.substr(0, field.find('.')));
  for (Slot s : enum_values<Slot>()) {
    if (lower(to_string(s)) == name) return s;
  }
  return std::nullopt;
}

views::Stats filtered(views::Stats stats, const SmiOptions& o) {
  if (o.devices.empty()) return stats;
  auto wanted = [&](int id) { return std::find(o.devices.begin(), o.devices.end(), id) != o.devices.end(); };
  std::erase_if(stats.devices, [&](const views::DeviceUsage& d) { return !wanted(d.id); });
  std::erase_if(stats.processes, [&](const views::ProcessUsage& p) { return !wanted(p.device); });
  return stats;
}

/// nvidia-smi's names for fields ttmem has under its own: scripts written for GPUs keep working.
struct Alias {
  const char* theirs;
  const char* ours;
};
constexpr Alias kDeviceAliases[] = {{"index", "id"},
                                    {"name", "arch"},
                                    {"memory.used", "dram.used"},
                                    {"memory.total", "dram.total"},
                                    {"memory.free", "dram.free"}};
constexpr Alias kProcessAliases[] = {
    {"process_name", "name"}, {"used_memory", "dram"}, {"gpu_index", "device"}};

/// Now as nvidia-smi's CSV has it: "2026/12/03 12:39:19.123", local time.
std::string timestamp_now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm local{};
  localtime_r(&t, &local);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:04}/{:02}/{:02} {:02}:{:02}:{:02}.{:03}", local.tm_year + 1900, local.tm_mon + 1,
                     local.tm_mday, local.tm_hour, local.tm_min, local.tm_sec, ms);
}

std::string device_field(const views::DeviceUsage& d, const std::string& field, const std::string& now) {
  if (field == "timestamp") return now;
  if (field == "id") return std::to_string(d.id);
  if (field == "arch") return d.arch ? std::string(to_string(*d.arch)) : "";
  if (field == "buffers") return std::to_string(d.buffers);
  if (field == "processes") return std::to_string(d.processes);
  const views::SlotUsage& m = d.memory[index(*slot_named(field))];  // fields were checked by the parser
  const std::string part = field.substr(field.find('.') + 1);
  if (part == "used" || part == "total" || part == "peak")
    return std::to_string(part == "used" ? m.used : part == "total" ? m.total : m.peak);
  if (!m.space) return "";  // the device did not announce its banks: no free-space figures
  if (part == "free") return std::to_string(m.space->free);
  if (part == "largest_free_block") return std::to_string(m.space->largest_free_block);
  if (part == "free_blocks") return std::to_string(m.space->free_blocks);
  return fmt::format("{:.4f}", m.space->fragmentation);
}

std::string process_field(const views::ProcessUsage& p, const std::string& field, const std::string& now) {
  if (field == "timestamp") return now;
  if (field == "name") return p.name;
  if (field == "command") return p.command;
  if (field == "pid") return std::to_string(p.pid);
  if (field == "device") return std::to_string(p.device);
  if (field == "buffers") return std::to_string(p.buffers);
  return std::to_string(p.bytes[index(*slot_named(field))]);
}

void print_csv(const views::Stats& stats, const SmiOptions& o, bool header) {
  const auto& valid = o.processes ? smi_process_fields() : smi_device_fields();
  std::vector<std::string> fields = o.query;
  if (fields.empty()) {
    fields = o.processes ? std::vector<std::string>(valid.begin() + 1, valid.end())  // all but the timestamp
                         : std::vector<std::string>{"id",      "arch",     "dram.used",     "dram.total",
                                                    "l1.used", "l1.total", "l1_small.used", "trace.used",
                                                    "cb.used", "buffers",  "processes"};
  }
  if (header) std::cout << csv_line(o.header.empty() ? fields : o.header) << '\n';
  const std::string now = timestamp_now();  // one per report, as nvidia-smi's loop
  std::vector<std::string> cells;
  if (o.processes) {
    for (const auto& row : stats.processes) {
      cells.clear();
      for (const auto& f : fields) cells.push_back(process_field(row, f, now));
      std::cout << csv_line(cells) << '\n';
    }
  } else {
    for (const auto& row : stats.devices) {
      cells.clear();
      for (const auto& f : fields) cells.push_back(device_field(row, f, now));
      std::cout << csv_line(cells) << '\n';
    }
  }
}

void print_table(const views::Stats& stats, const views::ServerInfo& info, const Style& style,
                 bool processes_only) {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  std::cout << style.bold("ttmem smi") << "  "
            << style.dim(fmt::format("ttmemd {} at {} | up {} | {} process{} | {} active allocation{} | {}",
                                     info.version, info.socket,
                                     human_age_ms(static_cast<std::uint64_t>(info.uptime_s * 1000)),
                                     info.processes, info.processes == 1 ? "" : "es",
                                     stats.active_allocations, stats.active_allocations == 1 ? "" : "s",
                                     clock_time(static_cast<std::uint64_t>(
                                         std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()))))
            << "\n\n";
  if (!processes_only && stats.devices.empty()) {  // --processes: the process table alone, as nvidia-smi's
    std::cout << "  No device has been reported yet.\n";
  } else if (!processes_only) {
    Table t;
    t.column("DEV", Table::Align::right);
    t.column("ARCH", Table::Align::left);
    t.column("DRAM used / total", Table::Align::left);
    t.column("L1 used / total", Table::Align::left);
    t.column("L1_SMALL", Table::Align::right);
    t.column("TRACE", Table::Align::right);
    t.column("CB", Table::Align::right);
    t.column("DRAM LARGEST", Table::Align::right);
    t.column("L1 LARGEST", Table::Align::right);
    t.column("BUFFERS", Table::Align::right);
    t.column("PROCS", Table::Align::right);
    for (const auto& d : stats.devices) {
      auto usage = [&](Slot slot) {
        const auto& m = d.memory[index(slot)];
        return fmt::format("{:>9} / {:<9} {} {:>4}", human_bytes(m.used), human_bytes(m.total),
                           bar(m.used, m.total, 10, style), percent(m.used, m.total));
      };
      auto largest = [&](Slot slot) {
        const auto& space = d.memory[index(slot)].space;
        return space ? human_bytes(space->largest_free_block) : "-";
      };
      t.row({std::to_string(d.id), d.arch ? std::string(to_string(*d.arch)) : "?", usage(Slot::DRAM),
             usage(Slot::L1), human_bytes(d.memory[index(Slot::L1_SMALL)].used),
             human_bytes(d.memory[index(Slot::TRACE)].used), human_bytes(d.memory[index(Slot::CB)].used),
             largest(Slot::DRAM), largest(Slot::L1), std::to_string(d.buffers), std::to_string(d.processes)});
    }
    t.print(std::cout, style, "  ");
    std::cout << style.dim(
                     "  LARGEST: the largest free block of one bank, the most one allocation can take "
                     "in each bank (ttmem map -d DEV -t TYPE draws it)")
              << '\n';
    print_device_warnings(std::cout, stats, style, "  ");
  }
  if (!processes_only) std::cout << '\n';
  if (stats.processes.empty()) {
    std::cout << "  No process holds device memory.\n";
    return;
  }
  Table p;
  p.column("DEV", Table::Align::right);
  p.column("PID", Table::Align::right);
  p.column("NAME", Table::Align::left);
  for (Slot s : enum_values<Slot>()) p.column(std::string(to_string(s)), Table::Align::right);
  p.column("BUFFERS", Table::Align::right);
  p.column("COMMAND", Table::Align::left);
  for (const auto& r : stats.processes) {
    std::vector<std::string> cells{std::to_string(r.device), std::to_string(r.pid), r.name};
    for (Slot s : enum_values<Slot>()) cells.push_back(human_bytes(r.bytes[index(s)]));
    cells.push_back(std::to_string(r.buffers));
    cells.push_back(abbreviated(r.command, 60));
    p.row(cells);
  }
  p.print(std::cout, style, "  ");
}

}  // namespace

const std::vector<std::string>& smi_device_fields() {
  static const std::vector<std::string> fields = [] {
    std::vector<std::string> f{"timestamp", "id", "arch"};
    for (Slot s : enum_values<Slot>()) {
      for (const char* part : {"used", "total", "peak"}) f.push_back(lower(to_string(s)) + "." + part);
      if (s == Slot::CB) continue;  // CBs are not the allocator's: no free space of their own
      for (const char* part : {"free", "largest_free_block", "free_blocks", "fragmentation"})
        f.push_back(lower(to_string(s)) + "." + part);
    }
    f.push_back("buffers");
    f.push_back("processes");
    return f;
  }();
  return fields;
}

const std::vector<std::string>& smi_process_fields() {
  static const std::vector<std::string> fields = [] {
    std::vector<std::string> f{"timestamp", "pid", "name", "command", "device"};
    for (Slot s : enum_values<Slot>()) f.push_back(lower(to_string(s)));
    f.push_back("buffers");
    return f;
  }();
  return fields;
}

std::string apply_smi_flags(const SmiFlags& flags, const Common& common, SmiOptions& o) {
  if (!flags.format.empty()) {
    for (const auto& part : split_list(flags.format)) {
      if (part == "csv") {
        o.csv = true;
      } else if (part == "noheader") {
        o.noheader = true;
      } else if (part != "nounits") {  // ttmem's CSV has no units to leave out: every figure is bytes
        return "--format takes csv, noheader and nounits, not '" + part + "'";
      }
    }
    if (!o.csv) return "--format needs csv (--format=csv,noheader,nounits)";
  }
  const int queries = !flags.query.empty() + !flags.query_gpu.empty() + !flags.query_apps.empty();
  if (queries > 1) return "give one of --query, --query-gpu and --query-compute-apps";
  if (!flags.query_apps.empty()) o.processes = true;
  const std::string fields = flags.query + flags.query_gpu + flags.query_apps;
  if (!fields.empty()) o.csv = true;  // fields are CSV's
  if (common.json && o.csv) return "--json and CSV (--csv, --format, --query...) exclude each other";
  if (o.noheader && !o.csv) return "--noheader is for CSV (--csv or --format=csv)";
  if (!flags.query_gpu.empty() && o.processes)
    return "--query-gpu is the device table; the process table's fields are --query-compute-apps";
  for (const auto& name : split_list(fields)) {
    const auto& valid = o.processes ? smi_process_fields() : smi_device_fields();
    std::string canonical = name;
    for (const Alias& a :
         o.processes ? std::span<const Alias>(kProcessAliases) : std::span<const Alias>(kDeviceAliases))
      if (name == a.theirs) canonical = a.ours;
    if (std::find(valid.begin(), valid.end(), canonical) == valid.end()) {
      const auto& other = o.processes ? smi_device_fields() : smi_process_fields();
      if (std::find(other.begin(), other.end(), name) != other.end())
        return o.processes
                   ? "'" + name + "' is a field of the device table: leave out --processes (--query-gpu)"
                   : "'" + name +
                         "' is a field of the process table: add --processes "
                         "(nvidia-smi: --query-compute-apps=" +
                         name + ")";
      std::string list;
      for (const auto& v : valid) list += (list.empty() ? "" : ",") + v;
      return "unknown --query field '" + name + "'" + (o.processes ? " for --processes" : "") +
             "; valid: " + list;
    }
    o.query.push_back(canonical);
    o.header.push_back(name);
  }
  for (const auto& d : split_list(flags.devices)) {
    int id = -1;
    const auto [end, ec] = std::from_chars(d.data(), d.data() + d.size(), id);
    if (ec != std::errc() || end != d.data() + d.size() || id < 0 || id > 65535)
      return "-d/-i takes device ids, 0 or 0,1, not '" + flags.devices + "'";
    o.devices.push_back(id);
  }
  return "";
}

int run_smi(const Common& common, const SmiOptions& o) {
  query::QueryClient client = connect_or_exit(common.socket);
  const Style style = Style::detect();
  for (std::uint32_t n = 1;; ++n) {
    views::Stats all = client.stats();
    for (int wanted : n == 1 ? o.devices : std::vector<int>{}) {
      if (std::any_of(all.devices.begin(), all.devices.end(),
                      [&](const views::DeviceUsage& d) { return d.id == wanted; }))
        continue;
      std::string known;
      for (const auto& d : all.devices) known += (known.empty() ? "" : ", ") + std::to_string(d.id);
      std::cerr << "ttmem smi: device " << wanted << " is unknown to ttmemd ("
                << (known.empty() ? "no device has been reported yet" : "it knows devices " + known) << ")\n";
      return kExitUsage;
    }
    const views::Stats stats = filtered(std::move(all), o);
    if (common.json) {
      const std::string text = schema::to_json(stats);
      if (o.loop_ms) {
        std::cout << text;  // one line per report: easy to follow with a script
      } else {
        schema::write_pretty(std::cout, text);
      }
      std::cout << std::endl;
    } else if (o.csv) {
      print_csv(stats, o, !o.noheader && n == 1);
      std::cout.flush();
    } else {
      if (n > 1) std::cout << '\n';
      print_table(stats, client.info(), style, o.processes);
      std::cout.flush();
    }
    if (o.loop_ms == 0 || (o.count && n >= o.count)) return 0;
    std::this_thread::sleep_for(std::chrono::milliseconds(o.loop_ms));
  }
}

}  // namespace ttmem::cli
