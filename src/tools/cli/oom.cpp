// `ttmem oom`: the allocations the runtime refused, each with the device as it was and a verdict.
#include <fmt/format.h>

#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "output.hpp"
#include "ttmem/schema.hpp"

namespace ttmem::cli {

namespace {

std::string verdict_text(const views::OomRecord& r, const Style& style) {
  const std::string name(to_string(r.verdict));
  switch (r.verdict) {
    case OomVerdict::exhausted:
      return style.red(name);
    case OomVerdict::fragmented:
    case OomVerdict::reserved:
      return style.yellow(name);
    case OomVerdict::unknown:
      break;
  }
  return name;
}

void print_list(const views::OomList& list, const Style& style) {
  std::cout << style.bold("Out-of-memory records") << " (newest first; ttmem oom ID shows one in full)\n";
  if (list.records.empty()) {
    std::cout << "  none\n";
    return;
  }
  Table t;
  for (const char* c : {"ID", "TIME", "PID", "NAME", "DEV", "TYPE", "ASKED", "NEED/BANK", "FREE/BANK",
                        "LARGEST", "SHORT/BANK", "VERDICT"}) {
    const std::string_view v(c);
    const bool number =
        v == "ID" || v == "ASKED" || v.find("BANK") != std::string_view::npos || v == "LARGEST";
    t.column(c, number ? Table::Align::right : Table::Align::left);
  }
  for (const auto& r : list.records) {
    t.row({std::to_string(r.id), clock_time(r.time_ns), std::to_string(r.pid), r.name,
           std::to_string(r.device), std::string(to_string(r.type)), human_bytes(r.size),
           human_bytes(r.needed_per_bank), r.space ? human_bytes(r.space->free_per_bank) : "-",
           r.space ? human_bytes(r.space->largest_free_block) : "-",
           // Exact: a shortfall of a few KiB hides behind two sizes that both round to 512.0 MiB.
           r.space && r.space->free_per_bank < r.needed_per_bank
               ? exact_bytes(r.needed_per_bank - r.space->free_per_bank)
               : "-",
           verdict_text(r, style)});
  }
  t.print(std::cout, style, "  ");
  if (list.total > list.records.size())
    std::cout << "  (" << list.total - list.records.size() << " older records are no longer kept)\n";
}

void print_record(const views::OomRecord& r, const Style& style) {
  std::cout << style.bold(fmt::format("Out-of-memory record {}", r.id)) << "  " << clock_time(r.time_ns)
            << "  pid " << r.pid << " (" << r.name << ")\n";
  std::cout << "  asked     " << exact_bytes(r.size) << " of " << to_string(r.type) << " on device "
            << r.device << " (" << to_string(r.reason) << ")";
  if (r.num_banks) {
    std::cout << ": " << exact_bytes(r.needed_per_bank) << " in each of " << r.num_banks << " banks";
  }
  if (r.page_size) std::cout << ", pages of " << exact_bytes(r.page_size);
  std::cout << '\n';
  if (!r.site.empty()) std::cout << "  site      " << r.site << '\n';
  if (!r.scope.empty()) std::cout << "  op        " << r.scope << '\n';
  if (!r.message.empty()) std::cout << "  runtime   " << r.message << '\n';
  std::cout << "  verdict   " << verdict_text(r, style) << '\n';
  std::cout << "            " << r.summary << '\n';
  if (r.space) {
    const auto& f = *r.space;
    std::cout << "  free      " << exact_bytes(f.free_per_bank) << " per bank of " << exact_bytes(f.bank_size)
              << ", in " << f.free_blocks << " block" << (f.free_blocks == 1 ? "" : "s") << "; largest "
              << exact_bytes(f.largest_free_block) << "; fragmentation "
              << fmt::format("{:.1f}%", f.fragmentation * 100) << '\n';
    if (f.unplaced_buffers)
      std::cout << "            (" << f.unplaced_buffers << " buffers had no place in the map)\n";
  }
  std::cout << '\n' << style.bold("  Holders on device " + std::to_string(r.device)) << '\n';
  Table h;
  h.column("PID", Table::Align::right);
  h.column("NAME", Table::Align::left);
  for (Slot s : enum_values<Slot>()) h.column(std::string(to_string(s)), Table::Align::right);
  h.column("BUFFERS", Table::Align::right);
  h.column(std::string(to_string(r.type)) + "/BANK", Table::Align::right);
  h.column("RUNTIME/BANK", Table::Align::right);
  h.column("COMMAND", Table::Align::left);
  for (const auto& row : r.holders) {
    std::vector<std::string> cells{std::to_string(row.pid), row.name};
    for (Slot s : enum_values<Slot>()) cells.push_back(human_bytes(row.bytes[index(s)]));
    cells.push_back(std::to_string(row.buffers));
    cells.push_back(human_bytes(row.per_bank));
    cells.push_back(human_bytes(row.internal_per_bank));
    cells.push_back(row.command);
    h.row(std::move(cells));
  }
  h.print(std::cout, style, "  ");
  if (!r.largest.empty()) {
    std::cout << '\n' << style.bold("  Largest " + std::string(to_string(r.type)) + " buffers") << '\n';
    const bool ops = std::any_of(r.largest.begin(), r.largest.end(),
                                 [](const views::OomBuffer& x) { return !x.scope.empty(); });
    Table b;
    for (const char* c : {"PID", "ID", "KIND", "SIZE", "PER BANK", "ADDRESS", "AGE", "SITE", "OP"}) {
      const std::string_view v(c);
      if (v == "OP" && !ops) continue;
      b.column(c, v == "SIZE" || v == "PER BANK" || v == "ID" ? Table::Align::right : Table::Align::left);
    }
    for (const auto& x : r.largest) {
      std::vector<std::string> row{std::to_string(x.pid),
                                   std::to_string(x.id),
                                   std::string(to_string(x.kind)) + (x.internal ? " (runtime)" : ""),
                                   human_bytes(x.size),
                                   human_bytes(x.size_per_bank),
                                   fmt::format("{:#x}", x.address),
                                   human_age_ms(x.age_ms),
                                   x.site.empty() ? "-" : x.site};
      if (ops) row.push_back(x.scope.empty() ? "-" : x.scope);
      b.row(std::move(row));
    }
    b.print(std::cout, style, "  ");
  }
  if (!r.free_blocks.empty()) {
    std::cout << '\n'
              << style.bold("  Free blocks of one bank") << " (the largest " << r.free_blocks.size()
              << ", by address)\n";
    Table f;
    f.column("ADDRESS", Table::Align::left);
    f.column("SIZE", Table::Align::right);
    f.column("BYTES", Table::Align::right);
    for (const auto& x : r.free_blocks)
      f.row({fmt::format("{:#x}", x.address), human_bytes(x.size), exact_bytes(x.size)});
    f.print(std::cout, style, "  ");
  }
}

}  // namespace

std::string oom_line(const views::OomRecord& r, const Style& style) {
  return fmt::format("{} {} pid {} ({}) was refused {} of {} on device {}: {} (ttmem oom {})",
                     style.dim(clock_time(r.time_ns)), style.red("OOM"), r.pid, r.name, human_bytes(r.size),
                     to_string(r.type), r.device, r.summary, r.id);
}

int run_oom(const Common& common, std::optional<std::uint64_t> id) {
  query::QueryClient client = connect_or_exit(common.socket);
  const views::OomList list = client.oom(id);
  if (common.json) {
    print_json(schema::to_json(list));
    return 0;
  }
  const Style style = Style::detect();
  if (id) {
    for (const auto& r : list.records) print_record(r, style);
  } else {
    print_list(list, style);
  }
  return 0;
}

}  // namespace ttmem::cli
